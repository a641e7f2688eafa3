//! Vectorised f32 math for the CPU kernels: `exp`, a row softmax, a row log-sum-exp and
//! SwiGLU's `silu(gate) · up`.
//!
//! These loops were scalar: libm's `expf` is a function call the compiler cannot
//! vectorise, and an in-order float sum cannot be reordered into SIMD lanes. On the bench
//! model `expf` alone was 5–6% of scoring CPU time (softmax, loss and SiLU each call it
//! about 10⁸ times a batch set). Here `exp` is a branch-free polynomial the compiler turns
//! into SIMD code, and sums and maxima run in 16 fixed lanes combined in a fixed order, so
//! a row's result is the same whichever instruction set runs it and however rows are
//! split across threads. Each entry point is compiled for the best instruction set the
//! CPU has (AVX-512, AVX2 or baseline) and picks it at run time (`pulp`).

/// Lanes of the partial sums and maxima: a 512-bit vector of f32.
const LANES: usize = 16;

/// `e^x` within 2 units in the last place for normal results (Cephes' `expf` reduction
/// and polynomial; the test checks every f32 at both ends of the range), `+inf` where it
/// overflows, `0` below -87.33 (where the result would
/// be subnormal), NaN for NaN. Inline so that the callers' loops vectorise it.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const HI: f32 = 88.722_84; // ln f32::MAX
    const LO: f32 = -87.336_55; // ln of the smallest normal f32
                                // ln 2 split in two so that `n · ln 2` is exact in the first part.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let c = x.clamp(LO, HI);
    let n = c.mul_add(std::f32::consts::LOG2_E, 0.5).floor();
    let r = n.mul_add(-LN2_LO, n.mul_add(-LN2_HI, c));
    let p = 1.987_569_1e-4f32
        .mul_add(r, 1.398_199_9e-3)
        .mul_add(r, 8.333_452e-3)
        .mul_add(r, 4.166_579_6e-2)
        .mul_add(r, 1.666_666_5e-1)
        .mul_add(r, 0.5);
    let y = p.mul_add(r * r, r) + 1.0;
    // 2^n for n in [-126, 128], as two normal factors 2^(n/2) (2^128 is not an f32):
    // exact scalings of y, rounded once if at all.
    let n = n as i32;
    let half = n >> 1;
    let pow2 = |k: i32| f32::from_bits(((k + 127) as u32) << 23);
    let e = y * pow2(half) * pow2(n - half);
    let e = if x > HI { f32::INFINITY } else { e };
    let e = if x < LO { 0.0 } else { e };
    if x.is_nan() {
        x
    } else {
        e
    }
}

/// The softmax of one row in place: the max, then `exp(x - max)`, then each divided by
/// their sum.
pub fn softmax_in_place(row: &mut [f32]) {
    pulp::Arch::new().dispatch(Softmax(row))
}

/// `ln Σ exp(x)` over a row, with the exponentials summed in f64: for a next-token loss
/// over a vocabulary of 10⁵ logits.
pub fn log_sum_exp(row: &[f32]) -> f64 {
    pulp::Arch::new().dispatch(LogSumExp(row))
}

/// SwiGLU's `silu(gate) · up = gate / (1 + e^-gate) · up`, elementwise into `out`.
pub fn silu_mul(gate: &[f32], up: &[f32], out: &mut [f32]) {
    pulp::Arch::new().dispatch(SiluMul { gate, up, out })
}

// Each kernel is a `pulp::WithSimd` whose body pulp compiles once per instruction set;
// everything it calls is `#[inline(always)]` so that it is compiled into that body (a
// closure would be called out of line, compiled for the baseline).

struct Softmax<'a>(&'a mut [f32]);

impl pulp::WithSimd for Softmax<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let row = self.0;
        let max = max(row);
        let mut lanes = [0f32; LANES];
        let mut chunks = row.chunks_exact_mut(LANES);
        for chunk in &mut chunks {
            for (x, lane) in chunk.iter_mut().zip(lanes.iter_mut()) {
                *x = exp(*x - max);
                *lane += *x;
            }
        }
        let mut sum = combine(&lanes, 0.0, |a, b| a + b);
        for x in chunks.into_remainder() {
            *x = exp(*x - max);
            sum += *x;
        }
        for x in row.iter_mut() {
            *x /= sum;
        }
    }
}

struct LogSumExp<'a>(&'a [f32]);

impl pulp::WithSimd for LogSumExp<'_> {
    type Output = f64;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) -> f64 {
        let row = self.0;
        let max = max(row);
        if !max.is_finite() {
            // NaN if any is NaN, +inf if any is +inf, -inf if all are (or none).
            return f64::from(max);
        }
        let mut lanes = [0f64; LANES];
        let mut chunks = row.chunks_exact(LANES);
        for chunk in &mut chunks {
            for (&x, lane) in chunk.iter().zip(lanes.iter_mut()) {
                *lane += f64::from(exp(x - max));
            }
        }
        let mut sum = lanes.iter().sum::<f64>();
        for &x in chunks.remainder() {
            sum += f64::from(exp(x - max));
        }
        f64::from(max) + sum.ln()
    }
}

struct SiluMul<'a> {
    gate: &'a [f32],
    up: &'a [f32],
    out: &'a mut [f32],
}

impl pulp::WithSimd for SiluMul<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        for ((o, &g), &u) in self.out.iter_mut().zip(self.gate).zip(self.up) {
            *o = g / (1.0 + exp(-g)) * u;
        }
    }
}

/// The largest element (NaN if any is NaN, -inf for an empty row).
#[inline(always)]
fn max(row: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut nan = false;
    let mut chunks = row.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (&x, lane) in chunk.iter().zip(lanes.iter_mut()) {
            *lane = if x > *lane { x } else { *lane };
            nan |= x.is_nan();
        }
    }
    let mut m = combine(&lanes, f32::NEG_INFINITY, f32::max);
    for &x in chunks.remainder() {
        m = m.max(x);
        nan |= x.is_nan();
    }
    if nan {
        f32::NAN
    } else {
        m
    }
}

/// Folds the lanes in index order.
#[inline(always)]
fn combine(lanes: &[f32; LANES], init: f32, f: impl Fn(f32, f32) -> f32) -> f32 {
    lanes.iter().fold(init, |a, &b| f(a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relative error against f64's `exp` over the whole range where the result is a
    /// normal f32, and the edges.
    #[test]
    fn exp_is_accurate_everywhere() {
        let mut worst = 0f64;
        let mut check = |x: f32| {
            let want = f64::from(x).exp();
            if want <= f64::from(f32::MAX) {
                worst = worst.max((f64::from(exp(x)) - want).abs() / want);
            }
        };
        let steps = 2_000_000;
        for i in 0..=steps {
            check(-87.3f32 + (88.7f32 + 87.3) * i as f32 / steps as f32);
        }
        // Every f32 at both ends, where the reduction and the scaling are at their limits.
        for (from, to) in [(-87.336_55f32, -86.0f32), (88.0, 88.722_84)] {
            let mut x = from;
            while x <= to {
                check(x);
                x = f32::from_bits(x.to_bits().wrapping_add(if x < 0.0 {
                    -1i32 as u32
                } else {
                    1
                }));
            }
        }
        assert!(worst < 2.5e-7, "worst relative error {worst:e}");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(88.8), f32::INFINITY);
        assert!(exp(88.72).is_finite());
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert!(exp(f32::NAN).is_nan());
    }

    /// Rows of every length around the lane count, against a direct f64 computation.
    #[test]
    fn softmax_and_log_sum_exp_match_f64() {
        for len in [1, 2, 15, 16, 17, 33, 1000] {
            let row: Vec<f32> = (0..len)
                .map(|i| ((i * 37) % 23) as f32 * 0.7 - 8.0)
                .collect();
            let max = row
                .iter()
                .copied()
                .fold(f64::NEG_INFINITY, |m, x| m.max(f64::from(x)));
            let sum: f64 = row.iter().map(|&x| (f64::from(x) - max).exp()).sum();
            let lse = log_sum_exp(&row);
            assert!((lse - (max + sum.ln())).abs() < 1e-6, "{len}: {lse}");
            let mut probs = row.clone();
            softmax_in_place(&mut probs);
            for (p, &x) in probs.iter().zip(&row) {
                let want = (f64::from(x) - max).exp() / sum;
                assert!(
                    (f64::from(*p) - want).abs() < 1e-6 * want.max(1e-3),
                    "{len}"
                );
            }
        }
    }

    #[test]
    fn non_finite_rows_give_what_the_formula_gives() {
        assert!(log_sum_exp(&[1.0, f32::NAN, 2.0]).is_nan());
        assert_eq!(log_sum_exp(&[1.0, f32::INFINITY]), f64::INFINITY);
        assert_eq!(log_sum_exp(&[f32::NEG_INFINITY; 3]), f64::NEG_INFINITY);
        let mut row = vec![0.0f32; 20];
        row[19] = f32::NAN;
        softmax_in_place(&mut row);
        assert!(row.iter().all(|p| p.is_nan()));
        // A masked (-inf) entry gets probability 0 and leaves the others exact.
        let mut row = [0.0f32, f32::NEG_INFINITY];
        softmax_in_place(&mut row);
        assert_eq!(row, [1.0, 0.0]);
    }

    #[test]
    fn silu_mul_matches_the_definition() {
        let gate: Vec<f32> = (0..50).map(|i| i as f32 * 0.5 - 12.0).collect();
        let up: Vec<f32> = (0..50).map(|i| 1.0 + i as f32 * 0.1).collect();
        let mut out = vec![0.0; 50];
        silu_mul(&gate, &up, &mut out);
        for i in 0..50 {
            let g = f64::from(gate[i]);
            let want = g / (1.0 + (-g).exp()) * f64::from(up[i]);
            assert!(
                (f64::from(out[i]) - want).abs() <= 1e-6 * want.abs().max(1e-3),
                "{i}"
            );
        }
    }
}
