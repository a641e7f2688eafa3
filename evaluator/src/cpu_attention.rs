//! Causal grouped-query attention on CPU in one op, in f32.
//!
//! Built from candle's ops, attention on CPU was a loop of small batched matmuls (one per
//! batch element and key/value head, per query block), each handed to gemm's thread pool
//! on its own, with transposing copies of q, k, v and the output around them: on the
//! bench model it ran at a quarter of the speed of the model's other matmuls. Here the
//! work is split once, into tasks of one window and one block of queries, which run in
//! parallel; each task does its own small matmuls single-threaded, reading q, k and v
//! where the projections left them (`[batch, seq, heads, head_dim]`) and writing its
//! rows of the output in place.
//!
//! The arithmetic is transformers' eager attention: scores `(q · kᵀ) · scale` in f32
//! (the scale applied to the product, as transformers does), the causal softmax of
//! [`crate::vmath::softmax_in_place`] over each query's visible keys, then the
//! probabilities times v.

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::error::Result;

/// Query rows per task: 128 measured best for the candle-op version on CPU, and the
/// scores of one block (`128 × keys` f32) stay in cache.
const BLOCK: usize = 128;

/// Causal attention for `q [b, t, nh, d]` and `k, v [b, t, nkv, d]` (f32, contiguous, on
/// CPU, rope applied), returning `[b, t, nh · d]`. Query head `h` reads key/value head
/// `h / (nh / nkv)`, as transformers' `repeat_kv` does.
pub fn causal_attention(q: &Tensor, k: &Tensor, v: &Tensor, scale: f32) -> Result<Tensor> {
    Ok(q.apply_op3_no_bwd(k, v, &CausalAttention { scale })?)
}

struct CausalAttention {
    scale: f32,
}

fn contiguous<'a>(data: &'a [f32], layout: &Layout) -> candle_core::Result<&'a [f32]> {
    match layout.contiguous_offsets() {
        Some((o1, o2)) => Ok(&data[o1..o2]),
        None => candle_core::bail!("cpu attention: inputs must be contiguous"),
    }
}

/// The dimensions of one call, checked against the inputs' lengths.
#[derive(Clone, Copy)]
struct Dims {
    t: usize,
    nh: usize,
    nkv: usize,
    d: usize,
}

impl CustomOp3 for CausalAttention {
    fn name(&self) -> &'static str {
        "cpu-causal-attention"
    }

    fn cpu_fwd(
        &self,
        q: &CpuStorage,
        q_layout: &Layout,
        k: &CpuStorage,
        k_layout: &Layout,
        v: &CpuStorage,
        v_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(q), CpuStorage::F32(k), CpuStorage::F32(v)) = (q, k, v) else {
            candle_core::bail!("cpu attention takes f32 q, k and v");
        };
        let (b, t, nh, d) = q_layout.shape().dims4()?;
        let (kb, kt, nkv, kd) = k_layout.shape().dims4()?;
        if k_layout.shape() != v_layout.shape()
            || (kb, kt, kd) != (b, t, d)
            || nkv == 0
            || nh % nkv != 0
        {
            candle_core::bail!(
                "cpu attention: q {:?} does not fit k {:?} and v {:?}",
                q_layout.shape(),
                k_layout.shape(),
                v_layout.shape()
            );
        }
        let (q, k, v) = (
            contiguous(q, q_layout)?,
            contiguous(k, k_layout)?,
            contiguous(v, v_layout)?,
        );
        let dims = Dims { t, nh, nkv, d };
        let width = nh * d;
        let mut out = vec![0f32; b * t * width];
        if out.is_empty() {
            return Ok((CpuStorage::F32(out), Shape::from((b, t, width))));
        }
        out.par_chunks_mut(t * width)
            .enumerate()
            .try_for_each(|(window, rows)| {
                rows.par_chunks_mut(BLOCK * width)
                    .enumerate()
                    .try_for_each_init(Vec::new, |scores, (block, out)| {
                        self.block(dims, (q, k, v), window, block * BLOCK, out, scores)
                    })
            })?;
        Ok((CpuStorage::F32(out), Shape::from((b, t, width))))
    }
}

impl CausalAttention {
    /// The output rows of queries `start..` of one window (as many as `out` holds), every
    /// head. `scores` is the task's scratch space.
    fn block(
        &self,
        Dims { t, nh, nkv, d }: Dims,
        (q, k, v): (&[f32], &[f32], &[f32]),
        window: usize,
        start: usize,
        out: &mut [f32],
        scores: &mut Vec<f32>,
    ) -> candle_core::Result<()> {
        let n = out.len() / (nh * d);
        let keys = start + n; // keys after the block's last query are masked anyway
        scores.clear();
        scores.resize(n * keys, 0.0);
        let kv_base = window * t * nkv * d;
        let group = nh / nkv;
        for h in 0..nh {
            let kv = kv_base + (h / group) * d;
            let queries = Strided::new(&q[((window * t + start) * nh + h) * d..], n, d, nh * d, 1);
            // kᵀ: row i of it is element i of every key.
            let keys_t = Strided::new(&k[kv..], d, keys, 1, nkv * d);
            product(Out::new(scores, n, keys, keys), queries, keys_t, self.scale)?;
            for (i, row) in scores.chunks_exact_mut(keys).enumerate() {
                let visible = start + i + 1;
                crate::vmath::softmax_in_place(&mut row[..visible]);
                row[visible..].fill(0.0);
            }
            let probs = Strided::new(scores, n, keys, keys, 1);
            let values = Strided::new(&v[kv..], keys, d, nkv * d, 1);
            product(
                Out::new(&mut out[h * d..], n, d, nh * d),
                probs,
                values,
                1.0,
            )?;
        }
        Ok(())
    }
}

/// A read-only strided matrix view: element `(i, j)` is `data[i · row + j · col]`.
struct Strided<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row: usize,
    col: usize,
}

impl<'a> Strided<'a> {
    fn new(data: &'a [f32], rows: usize, cols: usize, row: usize, col: usize) -> Self {
        Strided {
            data,
            rows,
            cols,
            row,
            col,
        }
    }

    /// Whether every element lies inside `data` (strides are non-negative).
    fn fits(&self) -> bool {
        span(self.rows, self.cols, self.row, self.col).is_some_and(|s| s <= self.data.len())
    }
}

/// A writable matrix view with unit column stride.
struct Out<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    row: usize,
}

impl<'a> Out<'a> {
    fn new(data: &'a mut [f32], rows: usize, cols: usize, row: usize) -> Self {
        Out {
            data,
            rows,
            cols,
            row,
        }
    }
}

/// Elements spanned by a `rows × cols` view with these strides: one past the last index.
fn span(rows: usize, cols: usize, row: usize, col: usize) -> Option<usize> {
    if rows == 0 || cols == 0 {
        return Some(0);
    }
    (rows - 1)
        .checked_mul(row)?
        .checked_add((cols - 1).checked_mul(col)?)?
        .checked_add(1)
}

/// `out = scale · (lhs · rhs)`, single-threaded (the caller runs tasks in parallel).
#[allow(unsafe_code)] // gemm takes raw pointers and strides; checked just below.
fn product(
    out: Out<'_>,
    lhs: Strided<'_>,
    rhs: Strided<'_>,
    scale: f32,
) -> candle_core::Result<()> {
    let fits_out = span(out.rows, out.cols, out.row, 1).is_some_and(|s| s <= out.data.len());
    if lhs.cols != rhs.rows
        || (out.rows, out.cols) != (lhs.rows, rhs.cols)
        || !fits_out
        || !lhs.fits()
        || !rhs.fits()
    {
        candle_core::bail!("cpu attention: matrix views out of bounds");
    }
    let stride =
        |s: usize| isize::try_from(s).map_err(|_| candle_core::Error::Msg(format!("stride {s}")));
    // SAFETY: each view was just checked to lie inside its slice for the dimensions
    // passed, with non-negative strides; `out` is a unique borrow, so it overlaps neither
    // input; `read_dst` is false, so the output's prior contents are not read (alpha is
    // then ignored); Parallelism::None runs on this thread, within the borrows' lifetime.
    unsafe {
        gemm::gemm(
            out.rows,
            out.cols,
            lhs.cols,
            out.data.as_mut_ptr(),
            1,
            stride(out.row)?,
            false,
            lhs.data.as_ptr(),
            stride(lhs.col)?,
            stride(lhs.row)?,
            rhs.data.as_ptr(),
            stride(rhs.col)?,
            stride(rhs.row)?,
            0.0,
            scale,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    Ok(())
}

/// The textbook computation, for tests: `q [b, nh, t, d]` and `k, v [b, nkv, t, d]`, k/v
/// repeated per query head, full scores times `scale`, the causal mask, the softmax;
/// `[b, t, nh · d]`.
#[cfg(test)]
pub(crate) fn naive_attention(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Result<Tensor> {
    let (b, nh, t, d) = q.dims4()?;
    let nkv = k.dim(1)?;
    let repeat = |x: &Tensor| -> Result<Tensor> {
        Ok(x.unsqueeze(2)?
            .expand((b, nkv, nh / nkv, t, d))?
            .reshape((b, nh, t, d))?)
    };
    let mask: Vec<f32> = (0..t)
        .flat_map(|i| (0..t).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    let mask = Tensor::from_vec(mask, (t, t), q.device())?;
    let scores = (q.matmul(&repeat(k)?.t()?)? * scale)?.broadcast_add(&mask)?;
    Ok(candle_nn::ops::softmax_last_dim(&scores)?
        .matmul(&repeat(v)?)?
        .transpose(1, 2)?
        .reshape((b, t, nh * d))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    /// The op equals the textbook computation (k/v repeated per query head, full scores,
    /// causal mask, softmax) for a length that spans several blocks and ends in a partial
    /// one, with grouped heads and an odd head size.
    #[test]
    fn equals_naive_attention() -> Result<()> {
        let dev = Device::Cpu;
        let (b, nh, nkv, t, d) = (2, 6, 2, 300, 7);
        let q = Tensor::randn(0f32, 1.0, (b, t, nh, d), &dev)?;
        let k = Tensor::randn(0f32, 1.0, (b, t, nkv, d), &dev)?;
        let v = Tensor::randn(0f32, 1.0, (b, t, nkv, d), &dev)?;
        let scale = 0.4f32;
        let ours = causal_attention(&q, &k, &v, scale)?;
        assert_eq!(ours.dims(), &[b, t, nh * d]);

        let heads = |x: &Tensor| -> Result<Tensor> { Ok(x.transpose(1, 2)?.contiguous()?) };
        let naive = naive_attention(&heads(&q)?, &heads(&k)?, &heads(&v)?, scale.into())?;
        let diff = (ours - naive)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-5, "max difference {diff}");
        Ok(())
    }

    #[test]
    fn refuses_what_it_cannot_compute() -> Result<()> {
        let dev = Device::Cpu;
        let q = Tensor::zeros((1, 4, 3, 2), DType::F32, &dev)?;
        let k = Tensor::zeros((1, 4, 2, 2), DType::F32, &dev)?; // 3 heads over 2 groups
        assert!(causal_attention(&q, &k, &k, 1.0).is_err());
        let short = Tensor::zeros((1, 3, 3, 2), DType::F32, &dev)?;
        assert!(causal_attention(&q, &short, &short, 1.0).is_err());
        let bf16 = q.to_dtype(DType::BF16)?;
        assert!(causal_attention(&bf16, &bf16, &bf16, 1.0).is_err());
        // A single position attends to itself only: the output is its own value.
        let v = Tensor::from_vec(vec![1f32, 2.0], (1, 1, 1, 2), &dev)?;
        let out = causal_attention(&v, &v, &v, 1.0)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        assert_eq!(out, vec![1.0, 2.0]);
        Ok(())
    }
}
