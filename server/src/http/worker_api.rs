//! The worker API (see `ascent_domain::protocol`): claim a job, renew its lease, fetch
//! its files and held-out data, report its result. The server's own in-process worker
//! speaks it too, over loopback.

use ascent_domain::protocol::{
    ClaimRequest, Heartbeat, JobAssignment, JobOutcome, JobResult, LeaseRenewal, ScoredCheckpoint,
    LEASE_HEADER,
};
use ascent_domain::statement::{spec_sha256, verify, ScoreStatement};
use ascent_evaluator::score::{summarize, SplitSpec};
use ascent_store::jobs::{self, JobEnd, ScoredJob, LEASE_SECONDS};
use ascent_store::submissions::ScoreRecord;
use ascent_store::{now, phases, workers};
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::StatusCode;
use tower::ServiceExt;
use tower_http::services::ServeFile;

use crate::http::api::ApiError;
use crate::http::auth::Worker;
use crate::state::AppState;

pub async fn claim(
    State(state): State<AppState>,
    Worker(worker_id): Worker,
    Json(request): Json<ClaimRequest>,
) -> Result<Response, ApiError> {
    workers::describe(
        &state.pool,
        worker_id,
        &request.device,
        &request.evaluator_version,
    )
    .await?;
    check_key_count(&request.evaluation_keys)?;
    let Some(job) = jobs::claim(&state.pool, worker_id, &request.evaluation_keys, now()).await?
    else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    state.changes.notify();
    Ok(Json(JobAssignment {
        job_id: job.job_id,
        submission_id: job.submission_id,
        phase: job.phase,
        lease: job.lease,
        lease_seconds: LEASE_SECONDS.unsigned_abs(),
        time_limit_seconds: job.time_limit_seconds,
        files: job.files,
        data: job.data,
        seq_len: job.seq_len,
        windows: job.windows,
        limits: job.limits,
        encrypted_to: job.encrypted_to,
    })
    .into_response())
}

/// Refuses a worker naming more evaluation keys than any worker holds (a claim, or a
/// listing of sealed winners, looks each one up).
pub fn check_key_count(keys: &[String]) -> Result<(), ApiError> {
    if keys.len() > 64 {
        return Err(ApiError::BadRequest(
            "a worker names at most 64 evaluation keys".into(),
        ));
    }
    Ok(())
}

fn lease_lost() -> ApiError {
    ApiError::Conflict("this lease has expired or the job has ended; drop the job".into())
}

pub async fn heartbeat(
    State(state): State<AppState>,
    Worker(worker_id): Worker,
    Path(job_id): Path<i64>,
    Json(beat): Json<Heartbeat>,
) -> Result<Json<LeaseRenewal>, ApiError> {
    let alive = jobs::heartbeat(
        &state.pool,
        job_id,
        worker_id,
        &beat.lease,
        beat.stage,
        beat.done,
        beat.total,
        now(),
    )
    .await?;
    if !alive {
        return Err(lease_lost());
    }
    state.changes.notify();
    Ok(Json(LeaseRenewal {
        lease_seconds: LEASE_SECONDS.unsigned_abs(),
    }))
}

/// The job a live lease of this worker is on — (submission id, upload id, phase) —
/// which must be `job_id` when one is named.
async fn leased_job(
    state: &AppState,
    worker_id: i64,
    lease: &str,
    job_id: Option<i64>,
) -> Result<(i64, String, u8), ApiError> {
    let mut conn = state
        .pool
        .acquire()
        .await
        .map_err(ascent_store::StoreError::from)?;
    let (leased, submission_id, upload_id, phase) =
        jobs::leased(&mut conn, worker_id, lease, now())
            .await?
            .ok_or_else(lease_lost)?;
    if job_id.is_some_and(|id| id != leased) {
        return Err(lease_lost());
    }
    Ok((submission_id, upload_id, phase))
}

fn lease_of(request: &Request) -> Result<String, ApiError> {
    request
        .headers()
        .get(LEASE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::Unauthorized(format!("send the job's lease in the {LEASE_HEADER} header"))
        })
}

pub(crate) async fn serve_file(
    path: std::path::PathBuf,
    request: Request,
) -> Result<Response, ApiError> {
    let response = ServeFile::new(path)
        .oneshot(request)
        .await
        .map_err(|e| ApiError::Internal(format!("serving a file: {e}")))?;
    if response.status() == StatusCode::NOT_FOUND {
        return Err(ApiError::Internal("a stored file is missing".into()));
    }
    Ok(response.map(Body::new))
}

/// `GET /api/worker/jobs/{job}/files/{name}` (Range supported).
pub async fn file(
    State(state): State<AppState>,
    Worker(worker_id): Worker,
    Path((job_id, name)): Path<(i64, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    let lease = lease_of(&request)?;
    let (_, upload_id, _) = leased_job(&state, worker_id, &lease, Some(job_id)).await?;
    ascent_domain::protocol::check_file_name(&name)
        .map_err(|_| ApiError::NotFound(format!("{name} is not a file of this job")))?;
    let path = state.storage.checkpoint_file(&upload_id, &name);
    if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
        return Err(ApiError::NotFound(format!(
            "{name} is not a file of this job"
        )));
    }
    serve_file(path, request).await
}

/// `GET /api/worker/data/{sha256}`: the held-out shard of the leased job's phase.
pub async fn data(
    State(state): State<AppState>,
    Worker(worker_id): Worker,
    Path(sha256): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let lease = lease_of(&request)?;
    let (_, _, phase) = leased_job(&state, worker_id, &lease, None).await?;
    let spec = phases::scoring_spec(&state.pool, phase).await?;
    if spec.data_sha256.as_deref() != Some(sha256.as_str()) {
        return Err(ApiError::NotFound(
            "this is not the held-out data of the leased job".into(),
        ));
    }
    serve_file(state.storage.dataset_file(&sha256), request).await
}

pub async fn result(
    State(state): State<AppState>,
    Worker(worker_id): Worker,
    Path(job_id): Path<i64>,
    Json(result): Json<JobResult>,
) -> Result<StatusCode, ApiError> {
    let (submission_id, _, phase) =
        leased_job(&state, worker_id, &result.lease, Some(job_id)).await?;
    if phases::requires_attestation(&state.pool, phase).await?
        && workers::attestation(&state.pool, worker_id)
            .await?
            .is_none()
    {
        tracing::warn!(
            job_id,
            worker_id,
            phase,
            "result from an unattested worker refused"
        );
        return Err(ApiError::Forbidden(format!(
            "phase {phase} accepts results only from attested workers, and this worker has no verified attestation"
        )));
    }
    let end = match result.outcome {
        JobOutcome::Scored(scored) => {
            let spec = phases::scoring_spec(&state.pool, phase).await?;
            let (statement, public_key) =
                signed_statement(&state, worker_id, submission_id, &spec, &scored).await?;
            match checked_score(&scored, &spec) {
                Ok(record) => JobEnd::Scored(Box::new(ScoredJob {
                    score: record,
                    window_nll: serde_json::to_string(&scored.window_nll)
                        .map_err(|e| ApiError::Internal(e.to_string()))?,
                    weights_sha256: scored.weights_sha256,
                    evaluator_version: scored.evaluator_version,
                    device: scored.device,
                    statement: statement.canonical(),
                    signature: scored.signature,
                    public_key,
                    fingerprint: (scored.fingerprint.len() == ascent_domain::fingerprint::DIMS)
                        .then(|| serde_json::to_string(&scored.fingerprint).ok())
                        .flatten(),
                })),
                Err(problem) => {
                    tracing::warn!(
                        job_id,
                        worker_id,
                        problem,
                        "worker result does not fit the job"
                    );
                    JobEnd::Error(format!("a worker reported an unusable result ({problem})"))
                }
            }
        }
        JobOutcome::Invalid { message } => JobEnd::Invalid(message),
        JobOutcome::Error { message } => JobEnd::Error(message),
    };
    let scored = matches!(end, JobEnd::Scored(_));
    jobs::complete(&state.pool, job_id, worker_id, &result.lease, end, now()).await?;
    tracing::info!(job_id, submission_id, worker_id, "result accepted");
    if scored {
        // The result is in; a failed comparison must not turn it into an error.
        if let Err(error) = ascent_store::copies::check(&state.pool, submission_id, now()).await {
            tracing::error!(submission_id, %error, "near-copy check failed");
        }
    }
    state.changes.notify();
    Ok(StatusCode::NO_CONTENT)
}

/// The statement of a scored result, once its signature verifies with the key registered
/// for the worker; a result that does not is refused (the job stays leased, then goes
/// back to the queue for another worker).
async fn signed_statement(
    state: &AppState,
    worker_id: i64,
    submission_id: i64,
    spec: &phases::ScoringSpec,
    scored: &ScoredCheckpoint,
) -> Result<(ScoreStatement, String), ApiError> {
    let Some(public_key) = workers::public_key(&state.pool, worker_id).await? else {
        return Err(ApiError::Forbidden(
            "this worker has no registered public key, so its scores cannot be verified; register it with the worker's token".into(),
        ));
    };
    let spec_hash = spec_sha256(
        spec.seq_len,
        spec.windows,
        spec.data_sha256.as_deref().unwrap_or_default(),
        spec.max_parameters,
    );
    let statement = ScoreStatement::of(submission_id, &spec_hash, scored);
    if let Err(error) = verify(&statement.canonical(), &scored.signature, &public_key) {
        tracing::warn!(worker_id, submission_id, %error, "score signature refused");
        return Err(ApiError::Forbidden(format!(
            "the score's signature was refused: {error}"
        )));
    }
    Ok((statement, public_key))
}

/// Checks a worker's measurements against the job (right data, right windows, sane
/// numbers) and splits them into the whole, public and private losses.
fn checked_score(
    scored: &ScoredCheckpoint,
    spec: &phases::ScoringSpec,
) -> Result<ScoreRecord, String> {
    if spec.data_sha256.as_deref() != Some(scored.data_sha256.as_str()) {
        return Err("scored on other data".into());
    }
    if scored.seq_len != spec.seq_len || scored.window_nll.len() != spec.windows as usize {
        return Err(format!(
            "{} windows of {} tokens instead of {} of {}",
            scored.window_nll.len(),
            scored.seq_len,
            spec.windows,
            spec.seq_len
        ));
    }
    if scored.window_nll.iter().any(|v| !v.is_finite() || *v < 0.0) {
        return Err("a window loss is negative or not finite".into());
    }
    if scored.parameters > spec.max_parameters {
        return Err("more parameters than the phase allows".into());
    }
    let split = SplitSpec {
        secret: spec.split_secret.as_bytes().to_vec(),
        public_share: spec.public_share,
    };
    let score = summarize(&scored.window_nll, spec.seq_len as usize, Some(&split));
    let (Some(public), Some(private)) = (score.public, score.private) else {
        return Err("the split left the public or the private part empty".into());
    };
    Ok(ScoreRecord {
        loss: score.loss,
        public_loss: public.loss,
        private_loss: private.loss,
        parameters: scored.parameters,
        at: now(),
    })
}
