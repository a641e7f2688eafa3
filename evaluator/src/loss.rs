//! Chunked next-token cross-entropy.
//!
//! For a large vocabulary the full logits of a batch (`batch × seq × vocab` floats, 8 ×
//! 2048 × 128k × 4 bytes = 8 GiB) would dwarf the model. Instead the final hidden states
//! are cut into chunks of positions; each chunk goes through the LM head, is widened to
//! f32, and reduced to one loss per position (log-sum-exp minus the target logit) before
//! the next chunk is computed. Per-window sums are accumulated in f64 so that the order
//! of summation, and thus the batch size, does not move the result.

use candle_core::{DType, Tensor, D};

use crate::error::{EvalError, Result};
use crate::model::Llama;

/// Upper bound on the logits held at once (elements) for `device`. On CPU 4 Mi f32 =
/// 16 MiB per chunk: the loss makes a few temporaries of that size, and fresh memory is
/// expensive to touch, while 512+ rows per chunk keep the matmul efficient for a
/// vocabulary up to 8k (still ≥ 32 rows at 128k). A GPU wants bigger matmuls: 64 Mi.
pub fn chunk_elements(device: &candle_core::Device) -> usize {
    if device.is_cpu() {
        1 << 22
    } else {
        1 << 26
    }
}

/// Sum of next-token cross-entropy in nats for each of `batch` windows of `seq_len`
/// tokens laid out consecutively in `tokens`; position `i` predicts token `i + 1`.
pub fn window_nll(
    model: &Llama,
    tokens: &[u32],
    batch: usize,
    seq_len: usize,
    chunk_elements: usize,
) -> Result<Vec<f64>> {
    if seq_len < 2 || batch == 0 || tokens.len() != batch * seq_len {
        return Err(EvalError::Internal(format!(
            "window_nll: {} tokens for {batch} windows of {seq_len}",
            tokens.len()
        )));
    }
    let device = model.device();
    let ids = Tensor::from_slice(tokens, (batch, seq_len), device)?;
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

    let vocab = model.config().vocab_size;
    let chunk_rows = (chunk_elements / vocab).max(1);
    let head_t = model.lm_head().t()?;
    let mut sums = vec![0f64; batch];
    let total = batch * predicted;
    let mut start = 0;
    while start < total {
        let n = chunk_rows.min(total - start);
        let logits = rows
            .narrow(0, start, n)?
            .matmul(&head_t)?
            .to_dtype(DType::F32)?; // [n, vocab]
        let target = Tensor::from_slice(&targets[start..start + n], (n, 1), device)?;
        let picked = logits.gather(&target, 1)?.squeeze(1)?;
        let nll = (logits.log_sum_exp(1)? - picked)?.to_vec1::<f32>()?;
        for (i, v) in nll.into_iter().enumerate() {
            sums[(start + i) / predicted] += f64::from(v);
        }
        start += n;
    }
    Ok(sums)
}
