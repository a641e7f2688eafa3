//! SwiGLU's gate: `silu(gate) · up`, fused.
//!
//! candle computes it as two passes (SiLU with a scalar `exp`, then a multiply) over two
//! `[positions, intermediate]` tensors, the largest activations of the model. Fused it is
//! one pass: on CPU in f32 a parallel one with the vectorised [`crate::vmath::silu_mul`];
//! on CUDA (f32 and bf16) one of our kernels ([`crate::cuda_kernels`]), in f32 and
//! rounded once to the compute dtype, where candle's bf16 ops round twice. Elsewhere, and
//! where our CUDA kernels are not usable, candle's ops.

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::error::Result;

/// `silu(gate) · up` for tensors of one shape.
pub fn silu_mul(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    if fused_here(gate) {
        return fused_silu_mul(gate, up);
    }
    Ok((candle_nn::ops::silu(gate)? * up)?)
}

/// [`silu_mul`] by the fused op, on the CPU (f32) or with our CUDA kernel.
pub(crate) fn fused_silu_mul(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    Ok(gate
        .contiguous()?
        .apply_op2_no_bwd(&up.contiguous()?, &SiluMul)?)
}

fn fused_here(gate: &Tensor) -> bool {
    #[cfg(feature = "cuda")]
    if gate.device().is_cuda() && matches!(gate.dtype(), DType::F32 | DType::BF16) {
        return crate::cuda_kernels::available(gate.device());
    }
    gate.device().is_cpu() && gate.dtype() == DType::F32
}

/// Checks [`SiluMul`]'s inputs: contiguous, of one shape. Returns where each lies.
fn check(gate: &Layout, up: &Layout) -> candle_core::Result<(Range, Range)> {
    let (Some((g0, g1)), Some((u0, u1))) = (gate.contiguous_offsets(), up.contiguous_offsets())
    else {
        candle_core::bail!("silu-mul needs contiguous inputs");
    };
    if gate.shape() != up.shape() {
        candle_core::bail!(
            "silu-mul: gate {:?} and up {:?} differ",
            gate.shape(),
            up.shape()
        );
    }
    Ok((g0..g1, u0..u1))
}

type Range = std::ops::Range<usize>;

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
        let (g, u) = check(gate_layout, up_layout)?;
        let (gate, up) = (&gate[g], &up[u]);
        let mut out = vec![0f32; gate.len()];
        out.par_chunks_mut(CHUNK)
            .zip(gate.par_chunks(CHUNK).zip(up.par_chunks(CHUNK)))
            .for_each(|(out, (gate, up))| crate::vmath::silu_mul(gate, up, out));
        Ok((CpuStorage::F32(out), gate_layout.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    #[allow(unsafe_code)] // launching a CUDA kernel is FFI; see the SAFETY notes below.
    fn cuda_fwd(
        &self,
        gate: &candle_core::CudaStorage,
        gate_layout: &Layout,
        up: &candle_core::CudaStorage,
        up_layout: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::backend::BackendStorage;
        use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
        use candle_core::cuda_backend::WrapErr;

        let (g, u) = check(gate_layout, up_layout)?;
        let n = g.len();
        if n == 0 {
            candle_core::bail!("silu-mul: no elements"); // a grid of no blocks is a launch error
        }
        let dev = gate.device().clone();
        let ptx = crate::cuda_kernels::ptx()
            .as_ref()
            .map_err(|e| candle_core::Error::Msg(format!("silu-mul: {e}")))?;
        const THREADS: usize = 256;
        // Enough blocks to fill any GPU; each thread takes 16-byte vectors (4 or 8
        // elements) and strides over the rest.
        let blocks = n.div_ceil(THREADS * 4).min(65_535) as u32;
        let config = LaunchConfig {
            grid_dim: (blocks, 1, 1),
            block_dim: (THREADS as u32, 1, 1),
            shared_mem_bytes: 0,
        };
        let n_i64 = n as i64;
        // Both arms pass the same arguments, differing in the element type.
        macro_rules! launch {
            ($t:ty, $kernel:literal) => {{
                let func =
                    dev.get_or_load_custom_func($kernel, crate::cuda_kernels::MODULE, ptx)?;
                let gate = gate.as_cuda_slice::<$t>()?.slice(g.clone());
                let up = up.as_cuda_slice::<$t>()?.slice(u.clone());
                // SAFETY: the kernel writes all n elements (a grid-stride loop over
                // 0..n) before anything reads `out`.
                let out = unsafe { dev.alloc::<$t>(n)? };
                let mut builder = func.builder();
                builder.arg(&gate);
                builder.arg(&up);
                builder.arg(&out);
                builder.arg(&n_i64);
                // SAFETY: the arguments match the kernel's signature: two device
                // pointers of n elements of the type, the output of n, and n as long long.
                unsafe { builder.launch(config) }.w()?;
                candle_core::CudaStorage::wrap_cuda_slice(out, dev.clone())
            }};
        }
        let out = match gate.dtype() {
            DType::F32 => launch!(f32, "silu_mul_f32"),
            DType::BF16 => launch!(half::bf16, "silu_mul_bf16"),
            other => candle_core::bail!("silu-mul: no kernel for {other:?}"),
        };
        Ok((out, gate_layout.shape().clone()))
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
