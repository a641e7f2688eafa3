//! The worker loop, run by `ascent-eval worker` on a GPU box and by the server's own
//! in-process worker thread: claim a job, download and verify its files, score it while
//! a heartbeat keeps the lease, report the outcome, repeat. While the queue is empty, a
//! worker holding evaluation keys also opens the encrypted checkpoints that finalized
//! phases promoted under them (`open`).

mod job;
pub mod key;
mod lease;
mod open;
mod outcome;

use ascent_domain::statement::WorkerKey;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ascent_domain::protocol::{ClaimRequest, JobAssignment, JobOutcome, JobResult};
use candle_core::{DType, Device};
use ureq::http::Method;

pub use lease::{beat_interval, CancelReason};
pub use open::{open_sealed, OpenSummary};
pub use outcome::contributor_message;

use crate::checkpoint::Residency;
use crate::client::{segment, Client, ClientError};
use crate::encryption::EvaluationKey;

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Base URL of the server, e.g. `http://127.0.0.1:3000`.
    pub server: String,
    /// Worker token (`ascw_…`).
    pub token: String,
    /// Downloads: `jobs/<job>/` (deleted after each job) and `data/<sha256>.bin` (kept).
    /// One worker process per cache directory.
    pub cache_dir: PathBuf,
    /// One device, or several to split each model across ([`crate::placement`]).
    pub devices: Vec<Device>,
    pub dtype: DType,
    /// Whether checkpoints' layers stay on the device or are streamed to it, for models
    /// larger than its memory (`checkpoint::Residency`).
    pub residency: Residency,
    /// Wait between claims while the queue is empty.
    pub poll_interval: Duration,
    /// Return after one job, or as soon as the queue is empty (tests).
    pub once: bool,
    /// The worker's signing key; its public half is registered with the worker's token.
    pub key: WorkerKey,
    /// Private halves of phases' evaluation keys: the worker is given encrypted
    /// submissions of those phases and decrypts them in its job folder.
    pub evaluation_keys: Vec<EvaluationKey>,
}

impl WorkerOptions {
    /// CPU, f32, a claim every 5 s, running until stopped.
    pub fn new(
        server: impl Into<String>,
        token: impl Into<String>,
        cache_dir: PathBuf,
        key: WorkerKey,
    ) -> Self {
        WorkerOptions {
            server: server.into(),
            token: token.into(),
            cache_dir,
            key,
            devices: vec![Device::Cpu],
            dtype: DType::F32,
            residency: Residency::Resident,
            poll_interval: Duration::from_secs(5),
            once: false,
            evaluation_keys: Vec::new(),
        }
    }
}

/// What a worker did before it returned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerSummary {
    pub scored: u32,
    pub invalid: u32,
    pub errors: u32,
    /// Jobs whose lease was lost (nothing reported).
    pub abandoned: u32,
    /// Outcomes the server did not record (409: lease expired or already decided).
    pub refused: u32,
    /// Promoted encrypted checkpoints this worker let the server open (`open`).
    pub opened: u32,
}

/// How often an idle worker holding evaluation keys asks for promoted encrypted
/// checkpoints to open.
const OPEN_INTERVAL: Duration = Duration::from_secs(600);

/// Runs the worker until `stop` is set (or, with `once`, after one job or an empty
/// queue). Server errors and network trouble are retried; only a refusal of the worker
/// itself (a bad token: 401/403, or another 4xx on claim) or an unusable cache
/// directory ends it with an error.
pub fn run(options: &WorkerOptions, stop: &AtomicBool) -> Result<WorkerSummary, ClientError> {
    let client = Client::new(&options.server, Some(&options.token))?;
    // What a previous run of this worker left in `jobs/` (killed mid-job) goes first: it
    // may be a decrypted checkpoint, which must not outlive its job.
    let jobs = options.cache_dir.join("jobs");
    if let Err(e) = std::fs::remove_dir_all(&jobs) {
        if e.kind() != std::io::ErrorKind::NotFound {
            return Err(ClientError::io(&jobs, e));
        }
    }
    for dir in ["jobs", "data"] {
        let path = options.cache_dir.join(dir);
        std::fs::create_dir_all(&path).map_err(|e| ClientError::io(&path, e))?;
    }
    let _span = tracing::info_span!("worker", server = %client.server()).entered();
    let verified_data = Mutex::new(HashSet::new());
    let cx = job::Context {
        client: &client,
        cache_dir: &options.cache_dir,
        devices: &options.devices,
        dtype: options.dtype,
        residency: options.residency,
        stop,
        verified_data: &verified_data,
        key: &options.key,
        evaluation_keys: &options.evaluation_keys,
    };
    let claim = ClaimRequest {
        evaluator_version: env!("CARGO_PKG_VERSION").to_owned(),
        device: crate::placement::describe(&options.devices),
        evaluation_keys: options
            .evaluation_keys
            .iter()
            .map(|k| k.recipient().to_owned())
            .collect(),
    };
    let mut summary = WorkerSummary::default();
    let mut last_open = None;
    tracing::info!(device = %claim.device, dtype = ?options.dtype, "worker started");
    while !stop.load(Ordering::Relaxed) {
        let job = match client.post_json::<_, JobAssignment>("/api/worker/claim", &claim) {
            Ok(job) => job,
            Err(e) if e.is_retryable() && !options.once => {
                tracing::warn!(error = %e, "cannot claim a job; trying again later");
                sleep_unless_stopped(options.poll_interval, stop);
                continue;
            }
            Err(e) => return Err(e),
        };
        let Some(job) = job else {
            // Idle: open what finalized phases promoted under a key this worker holds.
            if last_open.is_none_or(|at: Instant| at.elapsed() >= OPEN_INTERVAL) {
                last_open = Some(Instant::now());
                let scratch = options.cache_dir.join("open");
                match open_sealed(&client, &options.evaluation_keys, &scratch, stop) {
                    Ok(done) => summary.opened += done.opened,
                    Err(e) => tracing::warn!(error = %e, "cannot ask for checkpoints to open"),
                }
            }
            if options.once {
                break;
            }
            sleep_unless_stopped(options.poll_interval, stop);
            continue;
        };
        run_one(&cx, &job, &mut summary);
        if options.once {
            break;
        }
    }
    tracing::info!(?summary, "worker stopped");
    Ok(summary)
}

fn run_one(cx: &job::Context<'_>, job: &JobAssignment, summary: &mut WorkerSummary) {
    let span = tracing::info_span!(
        "job",
        job = job.job_id,
        submission = job.submission_id,
        phase = job.phase
    );
    let _entered = span.enter();
    tracing::info!(
        files = job.files.len(),
        windows = job.windows,
        seq_len = job.seq_len,
        "claimed"
    );
    let Some(outcome) = job::run(cx, job) else {
        summary.abandoned += 1;
        return;
    };
    match &outcome {
        JobOutcome::Scored(s) => {
            summary.scored += 1;
            tracing::info!(windows = s.window_nll.len(), seconds = s.seconds, "scored");
        }
        JobOutcome::Invalid { message } => {
            summary.invalid += 1;
            tracing::info!(%message, "invalid checkpoint");
        }
        JobOutcome::Error { message } => {
            summary.errors += 1;
            tracing::warn!(%message, "job failed on this worker");
        }
    }
    match report(cx.client, job, outcome) {
        Ok(()) => {}
        Err(e) if e.status() == Some(409) => {
            summary.refused += 1;
            tracing::warn!(error = %e, "the server did not record the outcome");
        }
        Err(e) => tracing::error!(error = %e, "cannot report the outcome"),
    }
}

/// `POST /api/worker/jobs/{job}/result`, with retries.
fn report(client: &Client, job: &JobAssignment, outcome: JobOutcome) -> Result<(), ClientError> {
    let path = format!(
        "/api/worker/jobs/{}/result",
        segment(&job.job_id.to_string())
    );
    let body = JobResult {
        lease: job.lease.clone(),
        outcome,
    };
    let bytes = serde_json::to_vec(&body).map_err(|e| ClientError::Decode {
        url: client.url(&path),
        message: e.to_string(),
    })?;
    client.retrying(&path, || {
        let response = client.send(
            Method::POST,
            &path,
            &[("content-type", "application/json")],
            &bytes[..],
        )?;
        client.success(&path, response).map(drop)
    })
}

/// Sleeps for `total`, waking every 100 ms to notice `stop`.
fn sleep_unless_stopped(total: Duration, stop: &AtomicBool) {
    let until = Instant::now() + total;
    while !stop.load(Ordering::Relaxed) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}
