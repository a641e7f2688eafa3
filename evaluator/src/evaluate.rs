//! One evaluation end to end, as the `ascent-eval` CLI and a worker run it.
//!
//! Cheap checks come first — config and phase limits, every safetensors header and the
//! tensor set, the token shard's header and length, the request against the model's
//! context and the data, every token against the vocabulary — so an invalid submission
//! is refused before a weight is copied. Then the weights are loaded and the windows
//! scored. The [`Report`] is what the CLI prints with `--json`.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use ascent_domain::limits::ModelLimits;
use candle_core::{DType, Device};
use serde::Serialize;

use crate::checkpoint::{self, Residency, CONFIG_FILE};
use crate::error::{EvalError, Result};
use crate::model::Llama;
use crate::placement::describe;
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
    /// One device, or several to split the model across ([`crate::placement`]).
    pub devices: &'a [Device],
    /// Whether the layers stay on the device or are streamed to it (`Residency`).
    pub residency: Residency,
    /// Set from another thread to stop the run between steps and batches
    /// ([`EvalError::Cancelled`]): a worker's lost lease, time limit or shutdown.
    pub cancel: Option<&'a AtomicBool>,
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
    /// `cpu`, `cuda`, or `cuda ×N` for a model split across N GPUs
    /// ([`crate::placement::describe`]).
    pub device: String,
    /// Wall time of the whole evaluation, validation and loading included.
    pub seconds: f64,
    /// Wall time of the forward passes and the loss.
    pub scoring_seconds: f64,
    /// Tokens through the model (windows × N) per second of scoring.
    pub tokens_per_second: f64,
    /// CPU time (all threads, user + system) spent scoring, where the OS reports it
    /// (Linux); with `scoring_seconds` it tells how well the threads were used, and it
    /// is a fairer speed measure than wall time on a shared machine.
    pub scoring_cpu_seconds: Option<f64>,
    /// Canonical hash of the tensors (see [`crate::checkpoint`]).
    pub weights_sha256: String,
    /// SHA-256 of the token shard file.
    pub data_sha256: String,
    /// Near-copy fingerprint of the weights (`domain::fingerprint`).
    #[serde(skip)]
    pub fingerprint: Vec<f32>,
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

    check_cancel(e.cancel)?;
    let loading = Instant::now();
    let ck = checkpoint::load(e.model_dir, e.limits, e.dtype, e.devices, e.residency)?;
    let parameters = ck.parameters;
    let weights_sha256 = ck.weights_sha256.clone();
    let fingerprint = ck.fingerprint.clone();
    tracing::info!(
        model = %e.model_dir.display(),
        parameters,
        stored_bytes = ck.stored_bytes,
        seconds = loading.elapsed().as_secs_f64(),
        "checkpoint validated and loaded"
    );
    let model = Llama::from_checkpoint(ck)?;
    if model.devices().len() > 1 {
        tracing::info!(
            devices = model.devices().len(),
            "model split across devices"
        );
    }
    check_cancel(e.cancel)?;

    let scoring = Instant::now();
    let cpu_before = process_cpu_seconds();
    let result = score(&model, &shard, &e.request, windows, e.cancel, &mut |done| {
        progress(done, windows)
    })?;
    let scoring_seconds = scoring.elapsed().as_secs_f64();
    let scoring_cpu_seconds = match (cpu_before, process_cpu_seconds()) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    tracing::info!(loss = result.loss, scoring_seconds, "scored");
    Ok(Report {
        parameters,
        dtype: format!("{:?}", e.dtype).to_lowercase(),
        device: describe(model.devices()),
        seconds: started.elapsed().as_secs_f64(),
        scoring_seconds,
        tokens_per_second: (windows * e.request.seq_len) as f64 / scoring_seconds.max(1e-9),
        scoring_cpu_seconds,
        weights_sha256,
        data_sha256,
        fingerprint,
        score: result,
    })
}

fn check_cancel(cancel: Option<&AtomicBool>) -> Result<()> {
    match cancel {
        Some(flag) if flag.load(Ordering::Relaxed) => Err(EvalError::Cancelled),
        _ => Ok(()),
    }
}

/// CPU time of this process so far (user + system, all threads), from `/proc/self/stat`;
/// `None` where that file does not exist or cannot be parsed.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_cpu_seconds(&stat)
}

/// utime and stime are fields 14 and 15 of `/proc/<pid>/stat`, in clock ticks of
/// USER_HZ, which is 100 on Linux. Field 2 (the command name) may hold spaces and
/// parentheses, so counting starts after its closing parenthesis (at field 3).
fn parse_cpu_seconds(stat: &str) -> Option<f64> {
    const USER_HZ: f64 = 100.0;
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_from_proc_stat() {
        let line = "4242 (ascent eval (x)) R 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 3 0 100";
        assert_eq!(parse_cpu_seconds(line), Some(3.0));
        assert_eq!(parse_cpu_seconds("garbage"), None);
        if cfg!(target_os = "linux") {
            assert!(process_cpu_seconds().is_some());
        }
    }
}
