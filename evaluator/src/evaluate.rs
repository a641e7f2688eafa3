//! One evaluation end to end, as the `ascent-eval` CLI and a worker run it.
//!
//! Cheap checks come first — config and phase limits, every safetensors header and the
//! tensor set, the token shard's header and length, the request against the model's
//! context and the data, every token against the vocabulary — so an invalid submission
//! is refused before a weight is copied. Then the weights are loaded and the windows
//! scored. The [`Report`] is what the CLI prints with `--json`.

use std::path::Path;
use std::time::Instant;

use ascent_domain::limits::ModelLimits;
use candle_core::{DType, Device};
use serde::Serialize;

use crate::checkpoint::{self, CONFIG_FILE};
use crate::error::Result;
use crate::model::Llama;
use crate::score::{plan_windows, score, Score, ScoreRequest};
use crate::shard::TokenShard;

/// What to evaluate, and how.
#[derive(Debug, Clone)]
pub struct Evaluation<'a> {
    pub model_dir: &'a Path,
    pub data: &'a Path,
    pub request: ScoreRequest,
    pub limits: Option<&'a ModelLimits>,
    pub dtype: DType,
    pub device: &'a Device,
}

/// The outcome of an evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    #[serde(flatten)]
    pub score: Score,
    /// Exact parameter count, a tied embedding counted once.
    pub parameters: u64,
    /// Compute dtype: `f32`, `bf16` or `f16`.
    pub dtype: String,
    /// `cpu` or `cuda`.
    pub device: String,
    /// Wall time of the whole evaluation, validation and loading included.
    pub seconds: f64,
    /// Wall time of the forward passes and the loss.
    pub scoring_seconds: f64,
    /// Tokens through the model (windows × N) per second of scoring.
    pub tokens_per_second: f64,
    /// Canonical hash of the tensors (see [`crate::checkpoint`]).
    pub weights_sha256: String,
    /// SHA-256 of the token shard file.
    pub data_sha256: String,
}

/// Runs an evaluation. `progress(done, total)` is called with windows scored so far.
pub fn evaluate(e: &Evaluation<'_>, progress: &mut dyn FnMut(usize, usize)) -> Result<Report> {
    let started = Instant::now();
    let config = checkpoint::validate_only(e.model_dir, e.limits)?;
    let shard = TokenShard::open(e.data)?;
    let windows = plan_windows(
        &e.request,
        config.max_position_embeddings,
        &e.model_dir.join(CONFIG_FILE),
        e.data,
        shard.len(),
    )?;
    shard.check_vocab(config.vocab_size)?;
    let data_sha256 = shard.sha256();
    tracing::info!(
        data = %e.data.display(),
        tokens = shard.len(),
        windows,
        "data validated"
    );

    let loading = Instant::now();
    let ck = checkpoint::load(e.model_dir, e.limits, e.dtype, e.device)?;
    let parameters = ck.parameters;
    let weights_sha256 = ck.weights_sha256.clone();
    tracing::info!(
        model = %e.model_dir.display(),
        parameters,
        stored_bytes = ck.stored_bytes,
        seconds = loading.elapsed().as_secs_f64(),
        "checkpoint validated and loaded"
    );
    let model = Llama::from_checkpoint(ck)?;

    let scoring = Instant::now();
    let result = score(&model, &shard, &e.request, windows, &mut |done| {
        progress(done, windows)
    })?;
    let scoring_seconds = scoring.elapsed().as_secs_f64();
    tracing::info!(loss = result.loss, scoring_seconds, "scored");
    Ok(Report {
        parameters,
        dtype: format!("{:?}", e.dtype).to_lowercase(),
        device: if e.device.is_cpu() { "cpu" } else { "cuda" }.to_owned(),
        seconds: started.elapsed().as_secs_f64(),
        scoring_seconds,
        tokens_per_second: (windows * e.request.seq_len) as f64 / scoring_seconds.max(1e-9),
        weights_sha256,
        data_sha256,
        score: result,
    })
}
