//! Our CUDA kernels (feature `cuda`): attention's causal softmax
//! ([`crate::causal_softmax`]), the next-token cross-entropy ([`crate::loss`]) and
//! SwiGLU's gate ([`crate::swiglu`]).
//!
//! Flash attention ([`crate::flash_attention`]) is a module of its own, compiled for sm_80
//! and later (its tensor-core `mma` needs them) and checked on its own, so that a device
//! without it still gets the other kernels.
//!
//! One CUDA source, compiled at run time with NVRTC (cudarc, through candle) once per
//! process. Before first use on each GPU the kernels are run there against the CPU path
//! on small random inputs ([`available`]): a kernel that compiles but computes something
//! else must not decide a competition, so then the generic ops are used instead, with a
//! warning. The self-check costs a few milliseconds, once per GPU.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use candle_core::{DType, Device, DeviceLocation, Tensor};

/// The module name the kernels are loaded under.
pub const MODULE: &str = "ascent_kernels";

/// The module name flash attention is loaded under.
pub const FLASH_MODULE: &str = "ascent_flash_attention";

/// Threads per block of the cross-entropy kernel: a 128k-token row is 125 logits each.
pub const NLL_THREADS: u32 = 1024;

const SOURCE: &str = include_str!("cuda/kernels.cu");

/// The kernels' PTX, compiled once; `Err` with NVRTC's message if it cannot be.
pub fn ptx() -> &'static Result<String, String> {
    static PTX: OnceLock<Result<String, String>> = OnceLock::new();
    PTX.get_or_init(|| {
        candle_core::cuda_backend::cudarc::nvrtc::compile_ptx(SOURCE)
            .map(|p| p.to_src())
            .map_err(|e| format!("{e:?}"))
    })
}

/// Flash attention's PTX (its device prelude and kernel, for compute capability 8.0),
/// compiled once; `Err` with NVRTC's message if it cannot be.
pub fn flash_ptx() -> &'static Result<String, String> {
    use candle_core::cuda_backend::cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions};
    static PTX: OnceLock<Result<String, String>> = OnceLock::new();
    PTX.get_or_init(|| {
        let source = [
            include_str!("cuda/device_prelude.cuh"),
            crate::flash_attention::KERNEL_SOURCE,
        ]
        .join("\n");
        let options = CompileOptions {
            arch: Some("compute_80"),
            ..Default::default()
        };
        compile_ptx_with_opts(source, options)
            .map(|p| p.to_src())
            .map_err(|e| format!("{e:?}"))
    })
}

/// Whether flash attention may be used on `device`: a CUDA device where it compiles,
/// loads and agrees with the CPU's attention. Decided once per GPU; logs why not.
pub fn flash_available(device: &Device) -> bool {
    static READY: OnceLock<Mutex<HashMap<usize, bool>>> = OnceLock::new();
    once_per_gpu(&READY, device, || {
        let check = flash_ptx()
            .as_ref()
            .map_err(|e| format!("NVRTC: {e}"))
            .and_then(|_| check_flash(device).map_err(|e| e.to_string()));
        match check {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "flash attention is not usable here; using blocked attention");
                false
            }
        }
    })
}

/// `decide()`'s answer for `device`'s GPU, computed the first time that GPU is asked
/// about; `false` off CUDA. The lock is held while deciding, so a GPU is checked once.
fn once_per_gpu(
    answers: &OnceLock<Mutex<HashMap<usize, bool>>>,
    device: &Device,
    decide: impl FnOnce() -> bool,
) -> bool {
    let DeviceLocation::Cuda { gpu_id } = device.location() else {
        return false;
    };
    let mut answers = answers
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    *answers.entry(gpu_id).or_insert_with(decide)
}

/// Flash attention on `device` against the CPU's f32 attention of the same bf16 inputs,
/// for each head size: 3 blocks of queries (the last one partial), several key tiles,
/// grouped heads, two windows; scores of ordinary and of 4× the spread (a row's maximum
/// moves more between tiles).
fn check_flash(device: &Device) -> crate::Result<()> {
    use crate::flash_attention as flash;
    for d in flash::HEAD_DIMS {
        for spread in [1.0, 4.0] {
            let ([q, k, v], want) = flash::case((2, 150, 4, 2, d), spread)?;
            let on = |x: &Tensor| x.to_device(device);
            let got = flash::causal_attention(&on(&q)?, &on(&k)?, &on(&v)?, flash::scale(d))?;
            let diff = flash::error(&got.to_device(&Device::Cpu)?, &want)?;
            if diff.is_nan() || diff > flash::BOUND {
                return Err(crate::EvalError::Internal(format!(
                    "flash attention (head size {d}, spread {spread}) differs from the CPU \
                     by {diff:e} beyond bf16 rounding (bound {:e})",
                    flash::BOUND
                )));
            }
        }
    }
    Ok(())
}

/// Whether the kernels may be used on `device`: a CUDA device where they compile and
/// agree with the CPU path. Decided once per GPU; logs why not.
pub fn available(device: &Device) -> bool {
    static READY: OnceLock<Mutex<HashMap<usize, bool>>> = OnceLock::new();
    once_per_gpu(&READY, device, || match self_check(device) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "our CUDA kernels are not usable here; using candle's generic ops");
            false
        }
    })
}

fn self_check(device: &Device) -> Result<(), String> {
    ptx().as_ref().map_err(|e| format!("NVRTC: {e}"))?;
    check_kernels(device).map_err(|e| e.to_string())
}

/// Runs the kernels on `device` on [`kernel_checks::Inputs`] in f32 and bf16, against
/// the CPU; an error says which differs and by how much.
fn check_kernels(device: &Device) -> crate::Result<()> {
    use crate::kernel_checks::{values, worst, worst_relative, Inputs, DTYPES, SOFTMAX};
    let differ = |what: String, diff: f64, bound: f64| {
        crate::EvalError::Internal(format!(
            "{what}: the CUDA kernel differs from the CPU by {diff:e} (bound {bound:e})"
        ))
    };
    let inputs = Inputs::draw()?;
    let on = |x: &Tensor, dtype: DType| x.to_dtype(dtype)?.to_device(device);
    for (dtype, bound) in DTYPES {
        let got = values(&on(&inputs.scores, dtype)?.apply_op1_no_bwd(&SOFTMAX)?)?;
        let diff = worst(&got, &inputs.softmax(dtype)?);
        if diff.is_nan() || diff > bound {
            return Err(differ(format!("causal softmax ({dtype:?})"), diff, bound));
        }
        let got = values(&crate::loss::fused_token_nll(
            &on(&inputs.logits, dtype)?,
            &inputs.targets.to_device(device)?,
        )?)?;
        let diff = worst(&got, &inputs.nll(dtype)?);
        if diff.is_nan() || diff > 1e-4 {
            return Err(differ(
                format!("token cross-entropy ({dtype:?})"),
                diff,
                1e-4,
            ));
        }
        let got = values(&crate::swiglu::fused_silu_mul(
            &on(&inputs.gate, dtype)?,
            &on(&inputs.up, dtype)?,
        )?)?;
        let diff = worst_relative(&got, &inputs.silu_mul(dtype)?);
        if diff.is_nan() || diff > bound {
            return Err(differ(format!("silu-mul ({dtype:?})"), diff, bound));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// NVRTC needs no GPU: the source compiles into PTX with every kernel the launches
    /// name (run with the `cuda` feature and NVRTC on the library path).
    #[test]
    fn the_kernels_compile() {
        let ptx = match super::ptx() {
            Ok(ptx) => ptx,
            Err(e) => panic!("NVRTC: {e}"),
        };
        for kernel in [
            "causal_softmax_f32",
            "causal_softmax_bf16",
            "token_nll_f32",
            "token_nll_bf16",
            "silu_mul_f32",
            "silu_mul_bf16",
        ] {
            assert!(ptx.contains(&format!(".entry {kernel}(")), "{kernel}");
        }
        let flash = match super::flash_ptx() {
            Ok(ptx) => ptx,
            Err(e) => panic!("NVRTC (flash attention): {e}"),
        };
        for d in crate::flash_attention::HEAD_DIMS {
            let kernel = format!("flash_attention_bf16_d{d}");
            assert!(flash.contains(&format!(".entry {kernel}(")), "{kernel}");
        }
    }
}
