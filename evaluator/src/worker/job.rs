//! One job: download the checkpoint and the held-out data (verified), score it under
//! the lease, and decide the outcome. The job's directory is deleted afterwards.

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ascent_domain::protocol::{
    check_file_name, JobAssignment, JobOutcome, JobStage, ScoredCheckpoint, LEASE_HEADER,
};
use ascent_domain::statement::{spec_sha256, ScoreStatement, WorkerKey};
use candle_core::{DType, Device};

use super::lease::{keep, CancelReason, JobState, Lease};
use super::outcome::{outcome, Failure, JobPaths};
use crate::checkpoint::Residency;
use crate::client::{download, segment, Client, ClientError, Expected};
use crate::encryption::{decrypt_file, EvaluationKey};
use crate::evaluate::{evaluate, Evaluation, Report};
use crate::score::ScoreRequest;

/// Windows per forward pass on the worker; never changes the result.
const BATCH: usize = 8;

/// What every job of one worker shares.
pub struct Context<'a> {
    pub client: &'a Client,
    pub cache_dir: &'a Path,
    pub devices: &'a [Device],
    pub dtype: DType,
    pub residency: Residency,
    pub stop: &'a AtomicBool,
    /// Data files hashed since this worker started (name, length), not hashed again.
    pub verified_data: &'a Mutex<HashSet<(String, u64)>>,
    /// Signs each score (`statement::ScoreStatement`).
    pub key: &'a WorkerKey,
    /// Decrypts encrypted submissions of the phases whose evaluation keys these are.
    pub evaluation_keys: &'a [EvaluationKey],
}

/// Runs `job` to its outcome; `None` when the lease was lost (report nothing).
pub fn run(cx: &Context<'_>, job: &JobAssignment) -> Option<JobOutcome> {
    let started = Instant::now();
    let state = JobState::default();
    let job_dir = cx.cache_dir.join("jobs").join(job.job_id.to_string());
    let model_dir = job_dir.join("model");
    let data = data_path(cx.cache_dir, &job.data.sha256);
    let lease = Lease {
        client: cx.client,
        job_id: job.job_id,
        lease: &job.lease,
        lease_seconds: job.lease_seconds,
        deadline: started + Duration::from_secs(job.time_limit_seconds),
    };
    let span = tracing::Span::current();
    let result = std::thread::scope(|scope| {
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let keeper = scope.spawn(|| {
            let _span = tracing::info_span!(parent: &span, "lease").entered();
            keep(&lease, &state, cx.stop, wait)
        });
        let result = work(cx, job, &state, &model_dir, data.as_deref());
        drop(done);
        if keeper.join().is_err() {
            tracing::error!("the lease keeper panicked");
        }
        result
    });
    if let Err(e) = std::fs::remove_dir_all(&job_dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(dir = %job_dir.display(), error = %e, "cannot delete the job directory");
        }
    }
    let outcome = match (state.cancel_reason(), result) {
        (Some(CancelReason::LeaseLost), _) => return None,
        // Finished just as it was cancelled: the score stands.
        (_, Ok(scored)) => JobOutcome::Scored(scored),
        (Some(CancelReason::TimeLimit), Err(_)) => JobOutcome::Error {
            message: format!(
                "not finished within the time limit of {} s on this worker",
                job.time_limit_seconds
            ),
        },
        (Some(CancelReason::Stopped), Err(_)) => JobOutcome::Error {
            message: "the worker was stopped before the job finished".into(),
        },
        (None, Err(failure)) => {
            let data = data.unwrap_or_default();
            outcome(
                &failure,
                &JobPaths {
                    model_dir: &model_dir,
                    data: &data,
                },
            )
        }
    };
    Some(outcome)
}

/// `<cache>/data/<sha256>.bin`, if the hash is one (it becomes a file name).
fn data_path(cache_dir: &Path, sha256: &str) -> Option<PathBuf> {
    let is_hash = sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit());
    is_hash.then(|| {
        cache_dir
            .join("data")
            .join(format!("{}.bin", sha256.to_ascii_lowercase()))
    })
}

fn work(
    cx: &Context<'_>,
    job: &JobAssignment,
    state: &JobState,
    model_dir: &Path,
    data: Option<&Path>,
) -> Result<ScoredCheckpoint, Failure> {
    let data = data.ok_or_else(|| {
        Failure::Assignment(format!("data hash {:?} is not a SHA-256", job.data.sha256))
    })?;
    fetch(cx, job, state, model_dir, data)?;
    let report = score(cx, job, state, model_dir, data)?;
    if report.data_sha256 != job.data.sha256.to_ascii_lowercase() {
        return Err(Failure::Assignment(format!(
            "the data scored has SHA-256 {}, the job names {}",
            report.data_sha256, job.data.sha256
        )));
    }
    if report.score.window_nll.len() != job.windows as usize {
        return Err(Failure::Panic(format!(
            "{} window losses for {} windows",
            report.score.window_nll.len(),
            job.windows
        )));
    }
    let mut scored = ScoredCheckpoint {
        window_nll: report.score.window_nll,
        seq_len: job.seq_len,
        parameters: report.parameters,
        weights_sha256: report.weights_sha256,
        data_sha256: report.data_sha256,
        evaluator_version: env!("CARGO_PKG_VERSION").to_owned(),
        device: report.device,
        dtype: report.dtype,
        seconds: report.seconds,
        scored_at: unix_now(),
        signature: String::new(),
        fingerprint: report.fingerprint,
    };
    let spec = spec_sha256(
        job.seq_len,
        job.windows,
        &job.data.sha256,
        job.limits.max_parameters,
    );
    scored.signature = cx
        .key
        .sign(&ScoreStatement::of(job.submission_id, &spec, &scored));
    Ok(scored)
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Downloads the checkpoint into `model_dir` and makes sure the data is in the cache.
fn fetch(
    cx: &Context<'_>,
    job: &JobAssignment,
    state: &JobState,
    model_dir: &Path,
    data: &Path,
) -> Result<(), Failure> {
    let key = decryption_key(cx, job)?;
    let mut names = HashSet::new();
    for file in &job.files {
        check_file_name(&file.name).map_err(|e| Failure::Assignment(e.to_string()))?;
        if !names.insert(file.name.as_str()) {
            return Err(Failure::Assignment(format!(
                "{} is listed twice",
                file.name
            )));
        }
    }
    let _ = std::fs::remove_dir_all(model_dir);
    private_dir(model_dir).map_err(|e| Failure::Transfer(ClientError::io(model_dir, e)))?;
    if let Some(parent) = data.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| Failure::Transfer(ClientError::io(parent, e)))?;
    }

    let data_cached = cached_data_ok(cx, job, data);
    let total = job.files.iter().map(|f| f.bytes).sum::<u64>()
        + if data_cached { 0 } else { job.data.bytes };
    let mut done_before = 0;
    state.set_progress(JobStage::Validating, 0, total);
    let lease_header = [(LEASE_HEADER, job.lease.as_str())];
    for file in &job.files {
        let path = format!(
            "/api/worker/jobs/{}/files/{}",
            segment(&job.job_id.to_string()),
            segment(&file.name)
        );
        let expected = Expected {
            name: &file.name,
            bytes: file.bytes,
            sha256: &file.sha256,
        };
        download(
            cx.client,
            &path,
            &lease_header,
            &model_dir.join(&file.name),
            expected,
            &state.cancel,
            &mut |have| state.set_progress(JobStage::Validating, done_before + have, total),
        )
        .map_err(Failure::Transfer)?;
        done_before += file.bytes;
    }
    if !data_cached {
        let path = format!("/api/worker/data/{}", segment(&job.data.sha256));
        let expected = Expected {
            name: "held-out data",
            bytes: job.data.bytes,
            sha256: &job.data.sha256,
        };
        download(
            cx.client,
            &path,
            &lease_header,
            data,
            expected,
            &state.cancel,
            &mut |have| state.set_progress(JobStage::Validating, done_before + have, total),
        )
        .map_err(Failure::Transfer)?;
        remember(cx, job);
    }
    tracing::info!(files = job.files.len(), bytes = total, "downloaded");
    if let Some(key) = key {
        decrypt(job, model_dir, key, &state.cancel)?;
    }
    Ok(())
}

/// The key to decrypt `job` with: `None` for a plain checkpoint. A job this worker holds
/// no key for is an unusable assignment (the server gives encrypted jobs only to workers
/// naming the phase's key), so it goes back to the queue for another worker.
fn decryption_key<'a>(
    cx: &Context<'a>,
    job: &JobAssignment,
) -> Result<Option<&'a EvaluationKey>, Failure> {
    let sealed =
        ascent_domain::encryption::all_encrypted(job.files.iter().map(|f| f.name.as_str()))
            .ok_or_else(|| Failure::Assignment("some files are encrypted and some not".into()))?;
    match (&job.encrypted_to, sealed) {
        (None, false) => Ok(None),
        (Some(recipient), true) => cx
            .evaluation_keys
            .iter()
            .find(|k| k.recipient() == recipient)
            .map(Some)
            .ok_or_else(|| {
                Failure::Assignment(format!(
                    "this worker holds no private key for the evaluation key {recipient}"
                ))
            }),
        (None, true) => Err(Failure::Assignment(
            "encrypted files without the key they are encrypted to".into(),
        )),
        (Some(_), false) => Err(Failure::Assignment(
            "an encrypted submission whose files are not encrypted".into(),
        )),
    }
}

/// Decrypts every `NAME.age` in `model_dir` to `NAME` and deletes the ciphertext, so the
/// folder holds a plain checkpoint, on this worker's disk only.
fn decrypt(
    job: &JobAssignment,
    model_dir: &Path,
    key: &EvaluationKey,
    cancel: &std::sync::atomic::AtomicBool,
) -> Result<(), Failure> {
    for file in &job.files {
        let plain = ascent_domain::encryption::plain_name(&file.name).ok_or_else(|| {
            Failure::Assignment(format!("{} is not an encrypted file name", file.name))
        })?;
        let sealed = model_dir.join(&file.name);
        decrypt_file(
            &sealed,
            &model_dir.join(plain),
            &file.name,
            key,
            Some(cancel),
        )
        .map_err(Failure::Decrypt)?;
        std::fs::remove_file(&sealed)
            .map_err(|e| Failure::Transfer(ClientError::io(&sealed, e)))?;
    }
    tracing::info!(files = job.files.len(), "decrypted");
    Ok(())
}

/// Creates `dir` (and its parents), readable by this user only where that can be said.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Some(job_dir) = dir.parent() {
            std::fs::set_permissions(job_dir, std::fs::Permissions::from_mode(0o700))?;
        }
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Whether the cached data file is the one the job names, hashing it once per worker.
/// A file that does not match is deleted, to be downloaded again.
fn cached_data_ok(cx: &Context<'_>, job: &JobAssignment, data: &Path) -> bool {
    let key = (job.data.sha256.to_ascii_lowercase(), job.data.bytes);
    let Ok(meta) = std::fs::metadata(data) else {
        return false;
    };
    if meta.len() == job.data.bytes
        && cx
            .verified_data
            .lock()
            .is_ok_and(|verified| verified.contains(&key))
    {
        return true;
    }
    let expected = Expected {
        name: "held-out data",
        bytes: job.data.bytes,
        sha256: &job.data.sha256,
    };
    match crate::client::verify(data, expected) {
        Ok(()) => {
            remember(cx, job);
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "cached data does not match; downloading it again");
            let _ = std::fs::remove_file(data);
            false
        }
    }
}

fn remember(cx: &Context<'_>, job: &JobAssignment) {
    if let Ok(mut verified) = cx.verified_data.lock() {
        verified.insert((job.data.sha256.to_ascii_lowercase(), job.data.bytes));
    }
}

/// Validates and scores, with panics caught.
fn score(
    cx: &Context<'_>,
    job: &JobAssignment,
    state: &JobState,
    model_dir: &Path,
    data: &Path,
) -> Result<Report, Failure> {
    let evaluation = Evaluation {
        model_dir,
        data,
        request: ScoreRequest {
            seq_len: job.seq_len as usize,
            windows: Some(job.windows as usize),
            batch: BATCH,
            split: None,
        },
        limits: Some(&job.limits),
        dtype: cx.dtype,
        devices: cx.devices,
        residency: cx.residency,
        cancel: Some(&state.cancel),
    };
    let run = catch_unwind(AssertUnwindSafe(|| {
        evaluate(&evaluation, &mut |done, total| {
            state.set_progress(JobStage::Scoring, done as u64, total as u64)
        })
    }));
    match run {
        Ok(Ok(report)) => Ok(report),
        Ok(Err(e)) => Err(Failure::Eval(e)),
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            tracing::error!(%message, "scoring panicked");
            Err(Failure::Panic(message))
        }
    }
}
