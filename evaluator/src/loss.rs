//! Chunked next-token cross-entropy.
//!
//! For a large vocabulary the full logits of a batch (`batch × seq × vocab` floats, 8 ×
//! 2048 × 128k × 4 bytes = 8 GiB) would dwarf the model. Instead the final hidden states
//! are cut into chunks of positions; each chunk goes through the LM head, is widened to
//! f32, and reduced to one loss per position (log-sum-exp minus the target logit) before
//! the next chunk is computed. Per-window sums are accumulated in f64 so that the order
//! of summation, and thus the batch size, does not move the result.

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Shape, Tensor, D};
use rayon::prelude::*;

use crate::error::{EvalError, Result};
use crate::model::Llama;

/// Positions per LM-head chunk for a vocabulary of `vocab` on `device`.
///
/// Aim for 4 Mi logits (16 MiB of f32) per chunk on CPU and 64 Mi on a GPU, which wants
/// bigger matmuls: the loss makes a few temporaries of that size, and on CPU fresh
/// memory is expensive to touch. But never fewer than 256 positions: every chunk reads
/// the whole LM head, so tiny chunks would make a large vocabulary memory-bound (at
/// 128k tokens, 256 rows are 128 MiB of f32 logits, still far below the weights). On a
/// GPU the count is a multiple of 128, the row tile of the LM head's matmul: at 128k
/// tokens 523 rows would fill 5 tiles of 128 for 4.1 tiles of work.
pub fn chunk_rows(device: &candle_core::Device, vocab: usize) -> usize {
    rows_per_chunk(!device.is_cpu(), vocab)
}

fn rows_per_chunk(gpu: bool, vocab: usize) -> usize {
    if gpu {
        ((1 << 26) / vocab.max(1)).max(256) / 128 * 128
    } else {
        ((1 << 22) / vocab.max(1)).max(256)
    }
}

/// Sum of next-token cross-entropy in nats for each of `batch` windows of `seq_len`
/// tokens laid out consecutively in `tokens`; position `i` predicts token `i + 1`.
pub fn window_nll(
    model: &Llama,
    tokens: &[u32],
    batch: usize,
    seq_len: usize,
    chunk_rows: usize,
) -> Result<Vec<f64>> {
    if seq_len < 2 || batch == 0 || tokens.len() != batch * seq_len {
        return Err(EvalError::Internal(format!(
            "window_nll: {} tokens for {batch} windows of {seq_len}",
            tokens.len()
        )));
    }
    let ids = Tensor::from_slice(tokens, (batch, seq_len), model.input_device())?;
    let hidden = model.hidden_states(&ids)?; // [b, t, h]
    let h = hidden.dim(D::Minus1)?;
    let predicted = seq_len - 1;
    // Positions 0..t-1 of every window, flattened: row r is window r / (t-1).
    let rows = hidden
        .narrow(1, 0, predicted)?
        .reshape((batch * predicted, h))?;
    let targets: Vec<u32> = tokens
        .chunks_exact(seq_len)
        .flat_map(|w| w[1..].iter().copied())
        .collect();

    let chunk_rows = chunk_rows.max(1);
    let head_t = model.lm_head().t()?;
    let total = batch * predicted;
    // The targets go to the device once and the losses come back once: on a GPU every
    // copy between host and device waits for the work queued before it.
    let targets = Tensor::from_vec(targets, total, model.head_device())?;
    let mut chunks = Vec::with_capacity(total.div_ceil(chunk_rows));
    let mut start = 0;
    while start < total {
        let n = chunk_rows.min(total - start);
        let logits = rows.narrow(0, start, n)?.matmul(&head_t)?; // [n, vocab]
        chunks.push(token_nll(&logits, &targets.narrow(0, start, n)?)?);
        start += n;
    }
    let nll = Tensor::cat(&chunks, 0)?.to_vec1::<f64>()?;
    let mut sums = vec![0f64; batch];
    for (i, v) in nll.into_iter().enumerate() {
        sums[i / predicted] += v;
    }
    Ok(sums)
}

/// Cross-entropy of each row of `logits [n, vocab]` against `targets [n]` (u32), in
/// nats, as f64 `[n]` on the logits' device: `logsumexp(row) - row[target]`, computed in
/// f32 or wider whatever the logits' dtype.
///
/// On CPU this is one fused, parallel pass per row (max, then a sum of exponentials
/// accumulated in f64) instead of the five full-size temporaries the generic ops make;
/// on the bench model that was ~10% of scoring time. On CUDA it is one kernel reading
/// the logits once in their own dtype (f32 or bf16), where our kernels are usable
/// ([`crate::cuda_kernels::available`]); otherwise candle's generic ops in f32.
pub fn token_nll(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let device = logits.device();
    #[cfg(feature = "cuda")]
    if crate::cuda_kernels::available(device) {
        return fused_token_nll(logits, targets);
    }
    if device.is_cpu() {
        return fused_token_nll(logits, targets);
    }
    generic_token_nll(&logits.to_dtype(DType::F32)?, targets)
}

/// [`token_nll`] by the fused op, on the CPU or with our CUDA kernel.
pub(crate) fn fused_token_nll(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let native = match logits.dtype() {
        DType::F32 => true,
        DType::BF16 => logits.device().is_cuda(),
        _ => false,
    };
    let logits = if native {
        logits.contiguous()?
    } else {
        logits.to_dtype(DType::F32)?
    };
    Ok(logits.apply_op2_no_bwd(&targets.contiguous()?, &TokenNll)?)
}

/// [`token_nll`] from candle's generic ops on f32 logits; runs on every device.
pub fn generic_token_nll(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let picked = logits.gather(&targets.unsqueeze(1)?, 1)?.squeeze(1)?;
    let nll = (logits.log_sum_exp(1)? - picked)?;
    Ok(nll.to_dtype(DType::F64)?)
}

struct TokenNll;

/// Checks [`TokenNll`]'s inputs: contiguous `[rows, vocab]` logits (`vocab` at least 1)
/// and one target per row. Returns rows, vocab and where each lies in its storage.
fn check(logits: &Layout, targets: &Layout) -> candle_core::Result<(usize, usize, Range, Range)> {
    let (rows, vocab) = logits.shape().dims2()?;
    let (Some(l), Some(t)) = (logits.contiguous_offsets(), targets.contiguous_offsets()) else {
        candle_core::bail!("token-nll needs contiguous inputs");
    };
    if t.1 - t.0 != rows || vocab == 0 {
        candle_core::bail!(
            "token-nll: {} targets for {rows} rows of {vocab}",
            t.1 - t.0
        );
    }
    Ok((rows, vocab, l.0..l.1, t.0..t.1))
}

type Range = std::ops::Range<usize>;

impl CustomOp2 for TokenNll {
    fn name(&self) -> &'static str {
        "token-nll"
    }

    fn cpu_fwd(
        &self,
        logits: &CpuStorage,
        logits_layout: &Layout,
        targets: &CpuStorage,
        targets_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(logits), CpuStorage::U32(targets)) = (logits, targets) else {
            candle_core::bail!("token-nll takes f32 logits and u32 targets");
        };
        let (rows, vocab, l, t) = check(logits_layout, targets_layout)?;
        let (logits, targets) = (&logits[l], &targets[t]);
        let nll: Vec<f64> = logits
            .par_chunks_exact(vocab)
            .zip(targets.par_iter())
            .map(|(row, &target)| {
                // A target outside the row cannot happen for validated data; NaN makes
                // the caller refuse the score rather than panic here.
                let picked = row.get(target as usize).map_or(f64::NAN, |&v| f64::from(v));
                crate::vmath::log_sum_exp(row) - picked
            })
            .collect();
        Ok((CpuStorage::F64(nll), Shape::from(rows)))
    }

    #[cfg(feature = "cuda")]
    #[allow(unsafe_code)] // launching a CUDA kernel is FFI; see the SAFETY notes below.
    fn cuda_fwd(
        &self,
        logits: &candle_core::CudaStorage,
        logits_layout: &Layout,
        targets: &candle_core::CudaStorage,
        targets_layout: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::backend::BackendStorage;
        use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
        use candle_core::cuda_backend::WrapErr;

        let (rows, vocab, l, t) = check(logits_layout, targets_layout)?;
        let vocab_i = i32::try_from(vocab)
            .map_err(|_| candle_core::Error::Msg(format!("token-nll: vocabulary {vocab}")))?;
        if rows == 0 {
            candle_core::bail!("token-nll: no rows"); // a grid of no blocks is a launch error
        }
        let grid = u32::try_from(rows)
            .map_err(|_| candle_core::Error::Msg(format!("token-nll: {rows} rows")))?;
        let dev = logits.device().clone();
        let ptx = crate::cuda_kernels::ptx()
            .as_ref()
            .map_err(|e| candle_core::Error::Msg(format!("token-nll: {e}")))?;
        let targets = targets.as_cuda_slice::<u32>()?.slice(t);
        // SAFETY: the kernel writes one value per row (thread 0 of each row's block)
        // before anything reads `out`.
        let out = unsafe { dev.alloc::<f64>(rows)? };
        let config = LaunchConfig {
            grid_dim: (grid, 1, 1),
            block_dim: (crate::cuda_kernels::NLL_THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        // Both arms pass the same arguments, differing in the logits' element type.
        macro_rules! launch {
            ($t:ty, $kernel:literal) => {{
                let logits = logits.as_cuda_slice::<$t>()?.slice(l.clone());
                let func =
                    dev.get_or_load_custom_func($kernel, crate::cuda_kernels::MODULE, ptx)?;
                let mut builder = func.builder();
                builder.arg(&logits);
                builder.arg(&targets);
                builder.arg(&out);
                builder.arg(&vocab_i);
                // SAFETY: the arguments match the kernel's signature (`rows × vocab`
                // logits, `rows` targets, `rows` outputs, the vocabulary as int), and the
                // grid has one block per row.
                unsafe { builder.launch(config) }.w()?;
            }};
        }
        match logits.dtype() {
            DType::F32 => launch!(f32, "token_nll_f32"),
            DType::BF16 => launch!(half::bf16, "token_nll_bf16"),
            other => candle_core::bail!("token-nll: no kernel for {other:?}"),
        }
        Ok((
            candle_core::CudaStorage::wrap_cuda_slice(out, dev),
            Shape::from(rows),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn chunks_hold_a_bounded_number_of_logits_and_whole_gpu_row_tiles() {
        // CPU: 4 Mi logits, at least 256 rows.
        assert_eq!(rows_per_chunk(false, 8192), 512);
        assert_eq!(rows_per_chunk(false, 128_256), 256);
        // GPU: 64 Mi logits rounded down to whole tiles of 128 rows, at least 256.
        assert_eq!(rows_per_chunk(true, 128_256), 512);
        assert_eq!(rows_per_chunk(true, 32_000), 2048);
        assert_eq!(rows_per_chunk(true, 1_000_000), 256);
        assert_eq!(chunk_rows(&Device::Cpu, 8192), 512);
    }

    #[test]
    fn fused_nll_matches_generic_ops_and_a_direct_computation() {
        let (rows, vocab) = (37, 1001);
        let values: Vec<f32> = (0..rows * vocab)
            .map(|i| ((i * 7919) % 1000) as f32 / 50.0 - 10.0)
            .collect();
        let targets: Vec<u32> = (0..rows).map(|r| ((r * 131) % vocab) as u32).collect();
        let logits = Tensor::from_vec(values.clone(), (rows, vocab), &Device::Cpu).expect("logits");
        let t = Tensor::from_vec(targets.clone(), rows, &Device::Cpu).expect("targets");
        let values_of = |x: Result<Tensor>| x.and_then(|x| Ok(x.to_vec1::<f64>()?));
        let fused = values_of(token_nll(&logits, &t)).expect("fused");
        let generic = values_of(generic_token_nll(&logits, &t)).expect("generic");
        for r in 0..rows {
            let row = &values[r * vocab..(r + 1) * vocab];
            let direct = row.iter().map(|&v| (v as f64).exp()).sum::<f64>().ln()
                - row[targets[r] as usize] as f64;
            assert!((fused[r] - direct).abs() < 1e-5, "{} vs {direct}", fused[r]);
            assert!(
                (generic[r] - direct).abs() < 1e-4,
                "{} vs {direct}",
                generic[r]
            );
        }
    }

    #[test]
    fn fused_nll_refuses_mismatched_inputs() {
        let logits = Tensor::zeros((3, 4), DType::F32, &Device::Cpu).expect("logits");
        let short = Tensor::from_vec(vec![0u32, 1], 2, &Device::Cpu).expect("targets");
        assert!(token_nll(&logits, &short).is_err());
        let out_of_range = Tensor::from_vec(vec![0u32, 1, 9], 3, &Device::Cpu).expect("targets");
        let nll = token_nll(&logits, &out_of_range)
            .and_then(|x| Ok(x.to_vec1::<f64>()?))
            .expect("runs");
        assert!(nll[2].is_nan() && (nll[0] - 4f64.ln()).abs() < 1e-12);
    }
}
