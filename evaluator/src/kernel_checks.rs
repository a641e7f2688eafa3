//! What our CUDA kernels (`cuda/kernels.cu`) are checked on, in one place for both
//! checks: on the device before first use ([`crate::cuda_kernels`]) and on the CPU
//! emulation in the tests (`cuda_emulation`). The inputs exercise what full-size rows
//! do: scores of 2 × 2 groups of a block of 5 queries starting at 700 (705 keys: each
//! thread of a 256-thread block loops, and every warp holds data), 6 rows of 3001 logits
//! (more than one pass of 1024 threads; targets past the first pass), and SwiGLU's gate
//! over 3 rows of 1001 (a partial last block). The CPU paths give the expected values.

use candle_core::{DType, Device, Tensor};

use crate::causal_softmax::CausalSoftmax;
use crate::error::Result;

/// The block of queries the scores belong to.
pub(crate) const SOFTMAX: CausalSoftmax = CausalSoftmax { n: 5, start: 700 };

/// Each dtype with the bound of the softmax and SwiGLU checks.
pub(crate) const DTYPES: [(DType, f64); 2] = [(DType::F32, 1e-5), (DType::BF16, 8e-3)];

/// Random inputs (f32, on the CPU) for the three kernels.
pub(crate) struct Inputs {
    pub scores: Tensor,
    pub logits: Tensor,
    pub targets: Tensor,
    pub gate: Tensor,
    pub up: Tensor,
}

impl Inputs {
    pub(crate) fn draw() -> Result<Inputs> {
        let cpu = Device::Cpu;
        Ok(Inputs {
            scores: Tensor::randn(0f32, 3.0, (2, 2, 10, 705), &cpu)?,
            logits: Tensor::randn(0f32, 4.0, (6, 3001), &cpu)?,
            targets: Tensor::from_vec(vec![0u32, 3000, 5, 1024, 2047, 1500], 6, &cpu)?,
            gate: (Tensor::randn(0f32, 3.0, (3, 1001), &cpu)? - 1.0)?,
            up: Tensor::randn(0f32, 1.0, (3, 1001), &cpu)?,
        })
    }

    /// The causal softmax of the scores in `dtype`, on the CPU.
    pub(crate) fn softmax(&self, dtype: DType) -> Result<Vec<f64>> {
        values(&self.scores.to_dtype(dtype)?.apply_op1_no_bwd(&SOFTMAX)?)
    }

    /// The cross-entropy of the logits in `dtype`, on the CPU.
    pub(crate) fn nll(&self, dtype: DType) -> Result<Vec<f64>> {
        let logits = self.logits.to_dtype(dtype)?;
        values(&crate::loss::fused_token_nll(&logits, &self.targets)?)
    }

    /// SwiGLU's gate of the inputs in `dtype`: computed in f32 and rounded once, as the
    /// kernel does.
    pub(crate) fn silu_mul(&self, dtype: DType) -> Result<Vec<f64>> {
        let in_f32 = |x: &Tensor| x.to_dtype(dtype)?.to_dtype(DType::F32);
        let gated = crate::swiglu::fused_silu_mul(&in_f32(&self.gate)?, &in_f32(&self.up)?)?;
        values(&gated.to_dtype(dtype)?)
    }
}

/// A tensor's elements as f64.
pub(crate) fn values(x: &Tensor) -> Result<Vec<f64>> {
    Ok(x.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?)
}

/// The largest absolute difference of `got` from `want`; NaN if any value is NaN,
/// infinite if the lengths differ.
#[cfg(feature = "cuda")]
pub(crate) fn worst(got: &[f64], want: &[f64]) -> f64 {
    worst_by(got, want, |_| 1.0)
}

/// The largest difference of `got` from `want`, relative to `max(1, |want|)` (bf16's
/// step grows with the value); NaN if any value is NaN, infinite if the lengths differ.
pub(crate) fn worst_relative(got: &[f64], want: &[f64]) -> f64 {
    worst_by(got, want, |w| w.abs().max(1.0))
}

fn worst_by(got: &[f64], want: &[f64], scale: impl Fn(f64) -> f64) -> f64 {
    if got.len() != want.len() {
        return f64::INFINITY;
    }
    got.iter()
        .zip(want)
        .map(|(&g, &w)| (g - w).abs() / scale(w))
        .fold(0.0, |m, d| if d.is_nan() || d > m { d } else { m })
}
