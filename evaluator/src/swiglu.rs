//! SwiGLU's gate: `silu(gate) · up`, fused on CPU.
//!
//! candle computes it as two passes (SiLU with a scalar `exp`, then a multiply) over two
//! `[positions, intermediate]` tensors; on CPU in f32 it is one parallel pass with the
//! vectorised [`crate::vmath::silu_mul`]. Other devices and dtypes use candle's ops.

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::error::Result;

/// `silu(gate) · up` for tensors of one shape.
pub fn silu_mul(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    if gate.device().is_cpu() && gate.dtype() == DType::F32 {
        return Ok(gate.apply_op2_no_bwd(up, &SiluMul)?);
    }
    Ok((candle_nn::ops::silu(gate)? * up)?)
}

struct SiluMul;

/// Elements per parallel task: large enough to amortise the task, small enough to
/// spread a few million elements over the threads.
const CHUNK: usize = 1 << 14;

impl CustomOp2 for SiluMul {
    fn name(&self) -> &'static str {
        "silu-mul"
    }

    fn cpu_fwd(
        &self,
        gate: &CpuStorage,
        gate_layout: &Layout,
        up: &CpuStorage,
        up_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(gate), CpuStorage::F32(up)) = (gate, up) else {
            candle_core::bail!("silu-mul takes f32 tensors");
        };
        let (Some((g0, g1)), Some((u0, u1))) = (
            gate_layout.contiguous_offsets(),
            up_layout.contiguous_offsets(),
        ) else {
            candle_core::bail!("silu-mul needs contiguous inputs");
        };
        if gate_layout.shape() != up_layout.shape() {
            candle_core::bail!(
                "silu-mul: gate {:?} and up {:?} differ",
                gate_layout.shape(),
                up_layout.shape()
            );
        }
        let (gate, up) = (&gate[g0..g1], &up[u0..u1]);
        let mut out = vec![0f32; gate.len()];
        out.par_chunks_mut(CHUNK)
            .zip(gate.par_chunks(CHUNK).zip(up.par_chunks(CHUNK)))
            .for_each(|(out, (gate, up))| crate::vmath::silu_mul(gate, up, out));
        Ok((CpuStorage::F32(out), gate_layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn fused_equals_candles_ops() -> Result<()> {
        let gate = (Tensor::randn(0f32, 3.0, (37, 1001), &Device::Cpu)? - 1.0)?;
        let up = Tensor::randn(0f32, 1.0, (37, 1001), &Device::Cpu)?;
        let fused = silu_mul(&gate, &up)?;
        let plain = (candle_nn::ops::silu(&gate)? * &up)?;
        let diff = (fused - plain)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-5, "max difference {diff}");
        assert!(silu_mul(&gate, &up.narrow(0, 0, 3)?).is_err());
        Ok(())
    }
}
