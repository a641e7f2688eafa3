//! Causal grouped-query attention on a GPU in one kernel, FlashAttention-2's forward
//! (`cuda/flash_attention.cu`), for bf16 models with head size 64 or 128.
//!
//! The blocked attention built from candle's ops writes every block's scores to GPU
//! memory, reads them back for the softmax, writes the probabilities and reads them again
//! for the product with v, with transposing copies of q, k, v and the output around it:
//! on an H200 it was the largest part of a bf16 forward of the 500M model at sequence
//! 2048. Here scores live in registers: per tile of 64 keys, tensor cores compute the
//! scores, the running softmax rescales the output accumulators, and tensor cores add
//! probabilities · v. q, k and v are read where the projections left them
//! (`[batch, seq, heads, head_dim]`), and the output is written in the layout the output
//! projection reads.
//!
//! The arithmetic is an eager bf16 forward's up to rounding: scores `(q · kᵀ) · scale`
//! accumulated in f32, softmax in f32, probabilities rounded to bf16 for the product with
//! v (accumulated in f32), the output rounded to bf16 once.
//!
//! Its source is tested without a GPU: the tests compile it as C++ against a CPU
//! emulation of the few warp-level primitives it uses (`cuda/emulated_prelude.hpp`:
//! threads, barriers, shuffles, and `mma` rebuilt from PTX's fragment layout) and compare
//! it with [`crate::cpu_attention`]. On a device, [`crate::cuda_kernels::flash_available`]
//! checks it against the CPU once before first use, and the model falls back to the
//! blocked attention if it is not usable there.

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Shape, Tensor};

use crate::error::Result;

/// The kernel's source, without the primitives' prelude.
pub const KERNEL_SOURCE: &str = include_str!("cuda/flash_attention.cu");

/// Head sizes the kernel is instantiated for (`flash_attention_bf16_d{D}`).
pub const HEAD_DIMS: [usize; 2] = [64, 128];

/// Queries per block and threads per block, as in the kernel.
const ROWS: usize = 64;
#[cfg(feature = "cuda")]
const THREADS: u32 = 128;

/// Whether the kernel is built for a model computing in `dtype` with heads of `head_dim`.
pub fn fits(dtype: DType, head_dim: usize) -> bool {
    dtype == DType::BF16 && HEAD_DIMS.contains(&head_dim)
}

/// Causal attention for `q [b, t, nh, d]` and `k, v [b, t, nkv, d]` (bf16, contiguous, on
/// a CUDA device, rope applied), returning `[b, t, nh · d]`. Query head `h` reads
/// key/value head `h / (nh / nkv)`, as transformers' `repeat_kv` does.
pub fn causal_attention(q: &Tensor, k: &Tensor, v: &Tensor, scale: f32) -> Result<Tensor> {
    let (b, t, nh, d) = q.dims4()?;
    let out = q.apply_op3_no_bwd(k, v, &FlashAttention { scale })?;
    Ok(out.reshape((b, t, nh * d))?)
}

#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
struct FlashAttention {
    scale: f32,
}

/// One call's dimensions and where q, k and v lie in their storage.
#[derive(Debug)]
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
struct Dims {
    batch: usize,
    t: usize,
    heads: usize,
    kv_heads: usize,
    d: usize,
    q: std::ops::Range<usize>,
    k: std::ops::Range<usize>,
    v: std::ops::Range<usize>,
}

/// Checks the inputs against everything the kernel assumes: the shapes of one attention
/// call, a head size it is built for, contiguous storage starting on a 16-byte boundary
/// (it loads rows in 16-byte pieces), and sizes its `int` indices and grid can hold.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
fn check(q: &Layout, k: &Layout, v: &Layout) -> candle_core::Result<Dims> {
    let (batch, t, heads, d) = q.shape().dims4()?;
    let kv = k.shape().dims4()?;
    let (_, _, kv_heads, _) = kv;
    if v.shape().dims4()? != kv || kv.0 != batch || kv.1 != t || kv.3 != d {
        candle_core::bail!(
            "flash attention: q {:?}, k {:?} and v {:?} do not fit",
            q.shape(),
            k.shape(),
            v.shape()
        );
    }
    if heads == 0 || kv_heads == 0 || heads % kv_heads != 0 || t == 0 || batch == 0 {
        candle_core::bail!("flash attention: {heads} heads over {kv_heads} key/value heads, t {t}");
    }
    if !HEAD_DIMS.contains(&d) {
        candle_core::bail!("flash attention: no kernel for head size {d}");
    }
    let range = |l: &Layout| match l.contiguous_offsets() {
        Some((o1, o2)) if o1 % 8 == 0 => Ok(o1..o2),
        _ => Err(candle_core::Error::Msg(
            "flash attention: inputs must be contiguous from a 16-byte boundary".into(),
        )),
    };
    // The grid is (heads, batch, query blocks): y and z are at most 65535.
    let fits_int = |n: usize| i32::try_from(n).is_ok();
    if !fits_int(t * heads * d) || batch > 65_535 || t.div_ceil(ROWS) > 65_535 {
        candle_core::bail!("flash attention: {batch} × {t} × {heads} heads is too large");
    }
    Ok(Dims {
        batch,
        t,
        heads,
        kv_heads,
        d,
        q: range(q)?,
        k: range(k)?,
        v: range(v)?,
    })
}

impl CustomOp3 for FlashAttention {
    fn name(&self) -> &'static str {
        "flash-attention"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        candle_core::bail!("flash attention runs on CUDA; the CPU runs cpu_attention")
    }

    #[cfg(feature = "cuda")]
    #[allow(unsafe_code)] // launching a CUDA kernel is FFI; see the SAFETY notes below.
    fn cuda_fwd(
        &self,
        q: &candle_core::CudaStorage,
        q_layout: &Layout,
        k: &candle_core::CudaStorage,
        k_layout: &Layout,
        v: &candle_core::CudaStorage,
        v_layout: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::backend::BackendStorage;
        use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
        use candle_core::cuda_backend::WrapErr;
        use half::bf16;

        let dims = check(q_layout, k_layout, v_layout)?;
        let dev = q.device().clone();
        let ptx = crate::cuda_kernels::flash_ptx()
            .as_ref()
            .map_err(|e| candle_core::Error::Msg(format!("flash attention: {e}")))?;
        let kernel = format!("flash_attention_bf16_d{}", dims.d);
        let func = dev.get_or_load_custom_func(&kernel, crate::cuda_kernels::FLASH_MODULE, ptx)?;
        let qs = q.as_cuda_slice::<bf16>()?.slice(dims.q.clone());
        let ks = k.as_cuda_slice::<bf16>()?.slice(dims.k.clone());
        let vs = v.as_cuda_slice::<bf16>()?.slice(dims.v.clone());
        let elements = dims.batch * dims.t * dims.heads * dims.d;
        // SAFETY: every output element is written by the kernel before anything reads
        // it: each block writes all D columns of each of its rows below t, and the
        // blocks cover every row of every head of every window.
        let mut out = unsafe { dev.alloc::<bf16>(elements)? };
        let as_u32 =
            |n: usize| u32::try_from(n).map_err(|_| candle_core::Error::Msg("grid".into()));
        let config = LaunchConfig {
            grid_dim: (
                as_u32(dims.heads)?,
                as_u32(dims.batch)?,
                as_u32(dims.t.div_ceil(ROWS))?,
            ),
            block_dim: (THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        // `check` bounded these by i32.
        let (t, heads, kv_heads) = (dims.t as i32, dims.heads as i32, dims.kv_heads as i32);
        let mut builder = func.builder();
        builder.arg(&qs);
        builder.arg(&ks);
        builder.arg(&vs);
        builder.arg(&mut out);
        builder.arg(&t);
        builder.arg(&heads);
        builder.arg(&kv_heads);
        builder.arg(&self.scale);
        // SAFETY: the arguments match the kernel's signature (three bf16 device pointers
        // of [b, t, heads or kv_heads, D] elements, contiguous, the output of
        // [b, t, heads, D], three ints and a float); the kernel's 16-byte copies need
        // 16-byte alignment: device allocations start on 256 bytes and `check` required
        // offsets of whole 8-element pieces. The grid has one block per 64 queries of
        // each head of each window, as the kernel reads it.
        unsafe { builder.launch(config) }.w()?;
        Ok((
            candle_core::CudaStorage::wrap_cuda_slice(out, dev),
            Shape::from((dims.batch, dims.t, dims.heads, dims.d)),
        ))
    }
}

/// How far the kernel may be from f32 attention beyond rounding its output to bf16
/// ([`error`]): its probabilities are rounded to bf16 too (relative 2⁻⁹ each), and
/// outputs, weighted means of unit-variance v, are of order 1. The emulated kernel is
/// within 0.008 of f32 attention on the tests' shapes; a misplaced fragment, a wrong mask
/// or a missed rescale is off by 0.4 or more.
#[cfg(any(test, feature = "cuda"))]
pub(crate) const BOUND: f32 = 1e-2;

/// Random bf16 q, k, v `[batch, t, heads or kv_heads, d]` of one attention call (q with
/// standard deviation `spread`, so scores spread by about `spread`), and the CPU's f32
/// attention of the same values: the reference both the emulation and the device
/// self-check compare with.
#[cfg(any(test, feature = "cuda"))]
pub(crate) fn case(
    (batch, t, heads, kv_heads, d): (usize, usize, usize, usize, usize),
    spread: f32,
) -> Result<([Tensor; 3], Tensor)> {
    let cpu = candle_core::Device::Cpu;
    let draw = |h: usize, std: f32| -> Result<Tensor> {
        Ok(Tensor::randn(0f32, std, (batch, t, h, d), &cpu)?.to_dtype(DType::BF16)?)
    };
    let (q, k, v) = (
        draw(heads, spread)?,
        draw(kv_heads, 1.0)?,
        draw(kv_heads, 1.0)?,
    );
    let f32s = |x: &Tensor| x.to_dtype(DType::F32);
    let want =
        crate::cpu_attention::causal_attention(&f32s(&q)?, &f32s(&k)?, &f32s(&v)?, scale(d))?;
    Ok(([q, k, v], want))
}

#[cfg(any(test, feature = "cuda"))]
pub(crate) fn scale(d: usize) -> f32 {
    1.0 / (d as f32).sqrt()
}

/// The largest difference of `got` from `want` beyond half a bf16 step of `want`
/// (`|got - want| - 2⁻⁸·|want|`), as f32; NaN if `got` has a NaN.
#[cfg(any(test, feature = "cuda"))]
pub(crate) fn error(got: &Tensor, want: &Tensor) -> Result<f32> {
    let want = want.to_dtype(DType::F32)?;
    let diff = (got.to_dtype(DType::F32)? - &want)?.abs()?;
    let excess = (diff - (want.abs()? / 256.0)?)?;
    let values = excess.flatten_all()?.to_vec1::<f32>()?;
    Ok(values
        .into_iter()
        .fold(f32::MIN, |m, v| if v.is_nan() || v > m { v } else { m }))
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use candle_core::{DType, Device, Tensor};

    use super::*;
    use crate::cuda_emulation::{self, bytes, run, TestResult};

    /// The kernel with the CPU emulation of its primitives and its driver, compiled into
    /// `dir/name` with extra compiler flags.
    fn compile(dir: &Path, name: &str, flags: &[&str]) -> TestResult<PathBuf> {
        let driver = include_str!("cuda/emulated_main.cpp");
        cuda_emulation::compile(dir, name, KERNEL_SOURCE, driver, flags)
    }

    /// Runs the emulated kernel `bin` on random inputs of one shape, with cp.async copies
    /// landing early (`eager`) or late, and returns its largest difference from the CPU's
    /// f32 attention ([`error`]). Fails on anything the run prints to stderr (a sanitizer's
    /// report).
    fn emulate(
        bin: &Path,
        dir: &Path,
        (batch, t, heads, kv_heads, d): (usize, usize, usize, usize, usize),
        spread: f32,
        eager: bool,
    ) -> TestResult<f32> {
        let ([q, k, v], want) = case((batch, t, heads, kv_heads, d), spread)?;
        let (input, output) = (dir.join("in"), dir.join("out"));
        std::fs::write(&input, [bytes(&q)?, bytes(&k)?, bytes(&v)?].concat())?;
        let mut args: Vec<std::ffi::OsString> = [d, batch, t, heads, kv_heads]
            .iter()
            .map(|n| n.to_string().into())
            .collect();
        args.push(scale(d).to_string().into());
        args.extend([input.into_os_string(), output.clone().into_os_string()]);
        if eager {
            args.push("eager".into());
        }
        run(bin, args)?;
        let got: Vec<half::bf16> = std::fs::read(&output)?
            .chunks_exact(2)
            .map(|p| half::bf16::from_bits(u16::from_le_bytes([p[0], p[1]])))
            .collect();
        let got = Tensor::from_vec(got, (batch, t, heads * d), &Device::Cpu)?;
        Ok(error(&got, &want)?)
    }

    /// The kernel's own source, run on the CPU (every CUDA thread a thread, the tensor
    /// core products and ldmatrix loads rebuilt from their fragment layouts), equals f32
    /// attention within bf16 rounding: several windows, grouped heads, a sequence that
    /// ends inside a block and inside a key tile, both head sizes, ordinary and widely
    /// spread scores; with the asynchronous copies landing as late and as early as they
    /// may.
    #[test]
    fn the_kernel_run_on_an_emulated_gpu_computes_causal_attention() -> TestResult {
        let dir = tempfile::tempdir()?;
        let bin = compile(dir.path(), "flash", &[])?;
        for (shape, spread) in [((2, 100, 4, 2, 64), 1.0), ((1, 70, 2, 1, 128), 4.0)] {
            for eager in [false, true] {
                let diff = emulate(&bin, dir.path(), shape, spread, eager)?;
                eprintln!("{shape:?} spread {spread}, eager {eager}: {diff}");
                assert!(diff <= BOUND, "{shape:?}, eager {eager}: off by {diff}");
            }
        }
        Ok(())
    }

    /// Under ThreadSanitizer the emulation finds shared-memory races between the
    /// kernel's threads: a tile overwritten while another warp still reads it, or read
    /// before every thread's part of it is there (a barrier missing or misplaced).
    #[test]
    fn the_emulated_kernel_has_no_data_races() -> TestResult {
        let dir = tempfile::tempdir()?;
        let bin = compile(dir.path(), "flash-tsan", &["-fsanitize=thread", "-g"])?;
        for eager in [false, true] {
            let diff = emulate(&bin, dir.path(), (1, 130, 2, 1, 64), 1.0, eager)?;
            assert!(diff <= BOUND, "eager {eager}: off by {diff}");
        }
        Ok(())
    }

    #[test]
    fn inputs_the_kernel_does_not_handle_are_refused() -> Result<()> {
        let cpu = Device::Cpu;
        let x = |shape: (usize, usize, usize, usize)| Tensor::zeros(shape, DType::BF16, &cpu);
        let (q, k) = (x((1, 8, 4, 64))?, x((1, 8, 2, 64))?);
        let layout = |t: &Tensor| t.layout().clone();
        assert!(check(&layout(&q), &layout(&k), &layout(&k)).is_ok());
        // heads not a multiple of key/value heads; another head size; mismatched v;
        // a view that is not contiguous.
        let three = x((1, 8, 3, 64))?;
        assert!(check(&layout(&q), &layout(&three), &layout(&three)).is_err());
        let (q80, k80) = (x((1, 8, 4, 80))?, x((1, 8, 2, 80))?);
        assert!(check(&layout(&q80), &layout(&k80), &layout(&k80)).is_err());
        assert!(check(&layout(&q), &layout(&k), &layout(&x((1, 7, 2, 64))?)).is_err());
        let strided = x((1, 4, 8, 64))?.transpose(1, 2)?;
        assert!(check(&layout(&strided), &layout(&k), &layout(&k)).is_err());
        // The CPU has its own attention; this op refuses to run there.
        assert!(causal_attention(&q, &k, &k, 0.125).is_err());
        Ok(())
    }
}
