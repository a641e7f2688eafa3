//! A fused causal softmax: the causal mask, the softmax in f32 and the cast back to the
//! compute dtype in one pass, one read and one write of the scores.
//!
//! Without it, attention's elementwise work (mask add, widening to f32, softmax,
//! narrowing) was over 70% of a bf16 forward on an H200 (ncu); on CPU the mask add was a
//! single-threaded pass between parallel ones. The arithmetic is the unfused path's:
//! masked keys get probability 0, the others `exp(x - max) / sum` in f32, rounded to bf16
//! to nearest even as candle's cast does.
//!
//! On CPU the rows run in parallel (rayon). On CUDA it is one of our kernels
//! ([`crate::cuda_kernels`]); where those are not usable the model falls back to the
//! unfused path.

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
                let ptx = crate::cuda_kernels::ptx()
                    .as_ref()
                    .map_err(|e| candle_core::Error::Msg(format!("causal softmax: {e}")))?;
                let func = dev.get_or_load_custom_func(kernel, crate::cuda_kernels::MODULE, ptx)?;
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
