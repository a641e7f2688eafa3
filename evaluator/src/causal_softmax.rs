//! A fused causal softmax: the causal mask, the softmax in f32 and the cast back to the
//! compute dtype in one pass, one read and one write of the scores.
//!
//! Without it, attention's elementwise work (mask add, widening to f32, softmax,
//! narrowing) was over 70% of a bf16 forward on an H200 (ncu); on CPU the mask add was a
//! single-threaded pass between parallel ones. The arithmetic is the unfused path's:
//! masked keys get probability 0, the others `exp(x - max) / sum` in f32, rounded to bf16
//! to nearest even as candle's cast does.
//!
//! On CPU the rows run in parallel (rayon). On CUDA the kernel is compiled at run time
//! with NVRTC (cudarc, through candle), once per process; where that fails the model
//! falls back to the unfused path.

#[cfg(feature = "cuda")]
use std::sync::OnceLock;

#[cfg(feature = "cuda")]
use candle_core::cuda_backend::cudarc::driver::{
    CudaSlice, DeviceRepr, LaunchConfig, PushKernelArg,
};
#[cfg(feature = "cuda")]
use candle_core::cuda_backend::{Map1, WrapErr};
use candle_core::{CpuStorage, CustomOp1, Layout, Shape};
#[cfg(feature = "cuda")]
use candle_core::{CudaDevice, CudaStorage, WithDType};
use half::bf16;
use rayon::prelude::*;

#[cfg(feature = "cuda")]
const MODULE: &str = "ascent_causal_softmax";

#[cfg(feature = "cuda")]
const SOURCE: &str = r#"
// NVRTC has no math.h: -inf by its bits.
#define NEG_INF __int_as_float(0xff800000)
__device__ __forceinline__ float load(const float* p, long long i) { return p[i]; }
__device__ __forceinline__ float load(const unsigned short* p, long long i) {
    return __uint_as_float(((unsigned int)p[i]) << 16);
}
__device__ __forceinline__ void store(float* p, long long i, float v) { p[i] = v; }
__device__ __forceinline__ void store(unsigned short* p, long long i, float v) {
    unsigned int u = __float_as_uint(v);
    if ((u & 0x7fffffffu) > 0x7f800000u) { p[i] = 0x7fc0; return; }
    u += 0x7fffu + ((u >> 16) & 1u);
    p[i] = (unsigned short)(u >> 16);
}
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
// blockDim.x is a multiple of 32, at most 1024.
__device__ float block_max(float v, float* shared) {
    v = warp_max(v);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = lane < (int)(blockDim.x >> 5) ? shared[lane] : NEG_INF;
    return warp_max(v);
}
__device__ float block_sum(float v, float* shared) {
    v = warp_sum(v);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = lane < (int)(blockDim.x >> 5) ? shared[lane] : 0.0f;
    return warp_sum(v);
}
// One block per row of scores [rows, keys]; row r is query start + r % n, which sees keys
// 0..=start + r % n.
template <typename T>
__device__ void causal_softmax(const T* x, T* y, int n, int start, int keys) {
    __shared__ float shared[32];
    const long long row = blockIdx.x;
    const int visible = start + (int)(row % n) + 1;
    const T* xr = x + row * keys;
    T* yr = y + row * keys;
    float m = NEG_INF;
    for (int c = threadIdx.x; c < visible; c += blockDim.x) m = fmaxf(m, load(xr, c));
    m = block_max(m, shared);
    float s = 0.0f;
    for (int c = threadIdx.x; c < visible; c += blockDim.x) s += expf(load(xr, c) - m);
    s = block_sum(s, shared);
    const float inv = 1.0f / s;
    for (int c = threadIdx.x; c < keys; c += blockDim.x) {
        store(yr, c, c < visible ? expf(load(xr, c) - m) * inv : 0.0f);
    }
}
extern "C" __global__ void causal_softmax_f32(const float* x, float* y, int n, int start, int keys) {
    causal_softmax(x, y, n, start, keys);
}
extern "C" __global__ void causal_softmax_bf16(const unsigned short* x, unsigned short* y, int n, int start, int keys) {
    causal_softmax(x, y, n, start, keys);
}
"#;

/// The kernels' PTX, compiled once; `Err` with NVRTC's message if it cannot be.
#[cfg(feature = "cuda")]
fn ptx() -> &'static Result<String, String> {
    static PTX: OnceLock<Result<String, String>> = OnceLock::new();
    PTX.get_or_init(|| {
        candle_core::cuda_backend::cudarc::nvrtc::compile_ptx(SOURCE)
            .map(|p| p.to_src())
            .map_err(|e| format!("{e:?}"))
    })
}

/// Whether the fused CUDA kernel is usable here (compiles); logs why not, once.
#[cfg(feature = "cuda")]
pub fn available() -> bool {
    match ptx() {
        Ok(_) => true,
        Err(e) => {
            static WARNED: OnceLock<()> = OnceLock::new();
            WARNED.get_or_init(|| {
                tracing::warn!(error = %e, "the fused causal softmax does not compile; using the unfused path")
            });
            false
        }
    }
}

/// Softmax of each row of contiguous scores `[.., rows, keys]` (f32 or bf16) over the
/// keys its query may see: row `r` of a block of `n` queries starting at `start` sees
/// keys `0..=start + r % n`.
pub struct CausalSoftmax {
    pub n: usize,
    pub start: usize,
}

impl CausalSoftmax {
    /// The CPU pass: rows in parallel, each as candle's softmax computes it (max, then
    /// `exp(x - max)` summed in order, then divided by the sum) over its visible keys.
    fn rows<T: Copy + Send + Sync>(
        &self,
        x: &[T],
        keys: usize,
        load: impl Fn(T) -> f32 + Sync,
        store: impl Fn(f32) -> T + Sync + Send,
    ) -> Vec<T> {
        let n = self.n.max(1);
        let mut out = vec![store(0.0); x.len()];
        out.par_chunks_mut(keys)
            .zip(x.par_chunks(keys))
            .enumerate()
            .for_each_init(Vec::<f32>::new, |probs, (r, (out, row))| {
                let visible = (self.start + r % n + 1).min(row.len());
                probs.clear();
                probs.extend(row[..visible].iter().map(|&v| load(v)));
                crate::vmath::softmax_in_place(probs);
                for (o, &p) in out.iter_mut().zip(probs.iter()) {
                    *o = store(p);
                }
            });
        out
    }
}

impl CustomOp1 for CausalSoftmax {
    fn name(&self) -> &'static str {
        "causal-softmax"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let Some((o1, o2)) = layout.contiguous_offsets() else {
            candle_core::bail!("causal softmax: the scores must be contiguous")
        };
        let keys = layout.shape().dims().last().copied().unwrap_or(1).max(1);
        let out = match storage {
            CpuStorage::F32(x) => CpuStorage::F32(self.rows(&x[o1..o2], keys, |v| v, |v| v)),
            CpuStorage::BF16(x) => {
                CpuStorage::BF16(self.rows(&x[o1..o2], keys, bf16::to_f32, bf16::from_f32))
            }
            _ => candle_core::bail!("causal softmax: no CPU path for this dtype"),
        };
        Ok((out, layout.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    #[allow(unsafe_code)] // launching a CUDA kernel is FFI; see the SAFETY notes below.
    fn cuda_fwd(
        &self,
        storage: &CudaStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        struct Launch<'a>(&'a CausalSoftmax);
        impl Map1 for Launch<'_> {
            fn f<T: DeviceRepr + WithDType>(
                &self,
                src: &CudaSlice<T>,
                dev: &CudaDevice,
                layout: &Layout,
            ) -> candle_core::Result<CudaSlice<T>> {
                let Some((o1, o2)) = layout.contiguous_offsets() else {
                    candle_core::bail!("causal softmax: the scores must be contiguous")
                };
                let src = src.slice(o1..o2);
                let kernel = match T::DTYPE {
                    candle_core::DType::F32 => "causal_softmax_f32",
                    candle_core::DType::BF16 => "causal_softmax_bf16",
                    other => candle_core::bail!("causal softmax: no kernel for {other:?}"),
                };
                let ptx = ptx()
                    .as_ref()
                    .map_err(|e| candle_core::Error::Msg(format!("causal softmax: {e}")))?;
                let func = dev.get_or_load_custom_func(kernel, MODULE, ptx)?;
                let elements = layout.shape().elem_count();
                let keys = layout.shape().dims().last().copied().unwrap_or(1).max(1);
                let rows = elements / keys;
                let as_i32 = |v: usize, what: &str| {
                    i32::try_from(v)
                        .map_err(|_| candle_core::Error::Msg(format!("causal softmax: {what} {v}")))
                };
                let (n, start, keys_i) = (
                    as_i32(self.0.n.max(1), "block")?,
                    as_i32(self.0.start, "start")?,
                    as_i32(keys, "keys")?,
                );
                let grid = u32::try_from(rows)
                    .map_err(|_| candle_core::Error::Msg(format!("causal softmax: {rows} rows")))?;
                // SAFETY: every element of `dst` is written by the kernel (each row's
                // `keys` entries), before anything reads it.
                let dst = unsafe { dev.alloc::<T>(elements)? };
                let config = LaunchConfig {
                    grid_dim: (grid, 1, 1),
                    block_dim: (256, 1, 1),
                    shared_mem_bytes: 0,
                };
                let mut builder = func.builder();
                builder.arg(&src);
                builder.arg(&dst);
                builder.arg(&n);
                builder.arg(&start);
                builder.arg(&keys_i);
                // SAFETY: the arguments match the kernel's signature (two device pointers
                // of `rows × keys` elements of T, three ints), and the grid has one block
                // per row.
                unsafe { builder.launch(config) }.w()?;
                Ok(dst)
            }
        }
        use candle_core::backend::BackendStorage;
        let dev = storage.device();
        let slice = Launch(self).map(&storage.slice, dev, layout)?;
        Ok((
            CudaStorage {
                slice,
                device: dev.clone(),
            },
            layout.shape().clone(),
        ))
    }
}
