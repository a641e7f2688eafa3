//! The durable job queue: one job per submission, claimed by workers under leases.
//!
//! A claim is one `UPDATE … WHERE id = (SELECT … LIMIT 1) RETURNING` (SQLite has no
//! `SKIP LOCKED`; its single writer makes the statement atomic). A lease lapses
//! [`LEASE_SECONDS`] after the last heartbeat, and a job also has a deadline from its
//! phase's time limit. [`reap`] puts a job whose lease lapsed or whose deadline passed
//! back in the queue with backoff, until it has used its attempts; then it fails on our
//! side and does not count against the contributor's quota. A result is accepted only
//! under a live lease, once.

use ascent_domain::limits::ModelLimits;
use ascent_domain::protocol::{JobData, JobFile, JobStage};
use sqlx::{Sqlite, SqliteConnection, SqlitePool, Transaction};

use crate::submissions::{record_score_in, ScoreRecord};
use crate::{random_token, sha256_hex, unsigned, Result, StoreError};

/// Seconds a lease lives without a heartbeat.
pub const LEASE_SECONDS: i64 = 30;

/// Seconds before attempt `attempts + 1` may start, after `attempts` failed on our side:
/// 10 s, 20 s, 40 s, … capped at 5 minutes.
pub fn backoff_seconds(attempts: u32) -> i64 {
    10i64
        .saturating_mul(1 << attempts.saturating_sub(1).min(5))
        .min(300)
}

/// A job a worker just claimed, with everything it needs to run it.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub job_id: i64,
    pub submission_id: i64,
    pub phase: u8,
    /// The lease secret (only its hash is stored).
    pub lease: String,
    pub time_limit_seconds: u64,
    /// Where the files are stored (the upload's id).
    pub upload_id: String,
    pub files: Vec<JobFile>,
    pub data: JobData,
    pub seq_len: u32,
    pub windows: u32,
    pub limits: ModelLimits,
    /// For an encrypted submission, the evaluation key its files are encrypted to.
    pub encrypted_to: Option<String>,
}

/// Claims the oldest job that is ready, for `worker_id`, which holds the private halves
/// of `evaluation_keys`: encrypted submissions of other phases wait for another worker.
pub async fn claim(
    pool: &SqlitePool,
    worker_id: i64,
    evaluation_keys: &[String],
    now: i64,
) -> Result<Option<Claimed>> {
    let keys = serde_json::to_string(evaluation_keys)
        .map_err(|e| StoreError::Corrupt(format!("evaluation keys: {e}")))?;
    reap(pool, now).await?;
    let lease = random_token()?;
    let mut tx = crate::write(pool).await?;
    let row: Option<(i64, i64)> = sqlx::query_as(
        "UPDATE jobs SET worker_id = ?, lease_hash = ?, lease_expires_at = ?, attempts = attempts + 1,
                started_at = ?, stage = 'validating', progress_done = 0, progress_total = 0,
                deadline_at = ? + (SELECT p.time_limit_seconds FROM submissions s
                                   JOIN phases p ON p.number = s.phase WHERE s.id = jobs.submission_id)
         WHERE id = (SELECT j.id FROM jobs j
                     JOIN submissions s ON s.id = j.submission_id
                     JOIN phases p ON p.number = s.phase
                     WHERE j.finished_at IS NULL AND j.lease_hash IS NULL AND j.available_at <= ?
                           -- Phases that need attested workers wait for one.
                           AND (p.require_attestation = 0
                                OR (SELECT w.attestation FROM workers w WHERE w.id = ?) IS NOT NULL)
                           -- Encrypted submissions only go to a worker holding the phase's key.
                           AND (s.encrypted_to IS NULL
                                OR s.encrypted_to IN (SELECT value FROM json_each(?)))
                     ORDER BY j.available_at, j.id LIMIT 1)
         RETURNING id, submission_id",
    )
    .bind(worker_id)
    .bind(sha256_hex(&lease))
    .bind(now + LEASE_SECONDS)
    .bind(now)
    .bind(now)
    .bind(now)
    .bind(worker_id)
    .bind(&keys)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((job_id, submission_id)) = row else {
        return Ok(None);
    };
    sqlx::query("UPDATE submissions SET state = 'validating' WHERE id = ?")
        .bind(submission_id)
        .execute(&mut *tx)
        .await?;
    #[allow(clippy::type_complexity)]
    let spec: (
        i64,
        String,
        i64,
        i64,
        i64,
        i64,
        String,
        i64,
        i64,
        Option<String>,
        Option<i64>,
        Option<String>,
    ) = sqlx::query_as(
        "SELECT s.phase, s.upload_id, p.seq_len, p.windows, p.time_limit_seconds, p.vocab_size,
                    p.architecture, p.max_parameters, p.min_context, d.sha256, d.bytes,
                    s.encrypted_to
             FROM submissions s JOIN phases p ON p.number = s.phase
             LEFT JOIN datasets d ON d.sha256 = p.data_sha256
             WHERE s.id = ?",
    )
    .bind(submission_id)
    .fetch_one(&mut *tx)
    .await?;
    let (
        phase,
        upload_id,
        seq_len,
        windows,
        time_limit,
        vocab,
        architecture,
        max_parameters,
        min_context,
        data_sha,
        data_bytes,
        encrypted_to,
    ) = spec;
    let (Some(data_sha), Some(data_bytes)) = (data_sha, data_bytes) else {
        // The door refuses submissions to a phase without data; if the data was
        // removed since, fail on our side rather than hand out a job nobody can run.
        fail_on_our_side(
            &mut tx,
            job_id,
            submission_id,
            "the phase has no held-out data",
            now,
        )
        .await?;
        tx.commit().await?;
        return Ok(None);
    };
    let files: Vec<(String, i64, Option<String>)> = sqlx::query_as(
        "SELECT name, bytes, sha256 FROM upload_files WHERE upload_id = ? ORDER BY name",
    )
    .bind(&upload_id)
    .fetch_all(&mut *tx)
    .await?;
    let files = files
        .into_iter()
        .map(|(name, bytes, sha)| {
            Ok(JobFile {
                name,
                bytes: unsigned(bytes, "bytes")?,
                sha256: sha.ok_or_else(|| StoreError::Corrupt("file without hash".into()))?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    tx.commit().await?;
    tracing::info!(job_id, submission_id, worker_id, "job claimed");
    Ok(Some(Claimed {
        job_id,
        submission_id,
        phase: unsigned(phase, "phase")?,
        lease,
        time_limit_seconds: unsigned(time_limit, "time limit")?,
        upload_id,
        files,
        data: JobData {
            sha256: data_sha,
            bytes: unsigned(data_bytes, "data bytes")?,
        },
        seq_len: unsigned(seq_len, "seq_len")?,
        windows: unsigned(windows, "windows")?,
        limits: ModelLimits {
            architecture,
            vocab_size: unsigned(vocab, "vocab_size")?,
            max_parameters: unsigned(max_parameters, "max_parameters")?,
            min_context: unsigned(min_context, "min_context")?,
        },
        encrypted_to,
    }))
}

/// The job a live lease of `worker_id` is on: (job id, submission id, upload id, phase).
pub async fn leased(
    conn: &mut SqliteConnection,
    worker_id: i64,
    lease: &str,
    now: i64,
) -> Result<Option<(i64, i64, String, u8)>> {
    let row: Option<(i64, i64, String, i64)> = sqlx::query_as(
        "SELECT j.id, j.submission_id, s.upload_id, s.phase FROM jobs j JOIN submissions s ON s.id = j.submission_id
         WHERE j.lease_hash = ? AND j.worker_id = ? AND j.finished_at IS NULL AND j.lease_expires_at >= ?",
    )
    .bind(sha256_hex(lease))
    .bind(worker_id)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|(j, s, u, p)| Ok((j, s, u, unsigned(p, "phase")?)))
        .transpose()
}

/// Renews a lease and notes the worker's progress; `false` when the lease is gone (the
/// worker must drop the job).
#[allow(clippy::too_many_arguments)]
pub async fn heartbeat(
    pool: &SqlitePool,
    job_id: i64,
    worker_id: i64,
    lease: &str,
    stage: JobStage,
    done: u64,
    total: u64,
    now: i64,
) -> Result<bool> {
    let stage = match stage {
        JobStage::Validating => "validating",
        JobStage::Scoring => "scoring",
    };
    let mut tx = crate::write(pool).await?;
    let submission: Option<i64> = sqlx::query_scalar(
        "UPDATE jobs SET lease_expires_at = ?, stage = ?, progress_done = ?, progress_total = ?
         WHERE id = ? AND worker_id = ? AND lease_hash = ? AND finished_at IS NULL
               AND lease_expires_at >= ? AND deadline_at > ?
         RETURNING submission_id",
    )
    .bind(now + LEASE_SECONDS)
    .bind(stage)
    .bind(i64::try_from(done).unwrap_or(i64::MAX))
    .bind(i64::try_from(total).unwrap_or(i64::MAX))
    .bind(job_id)
    .bind(worker_id)
    .bind(sha256_hex(lease))
    .bind(now)
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(submission) = submission else {
        return Ok(false);
    };
    sqlx::query("UPDATE submissions SET state = ? WHERE id = ? AND state IN ('queued', 'validating', 'scoring')")
        .bind(stage)
        .bind(submission)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// What a worker measured, ready to record.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredJob {
    pub score: ScoreRecord,
    pub weights_sha256: String,
    /// JSON array of the per-window losses.
    pub window_nll: String,
    pub evaluator_version: String,
    pub device: String,
    /// The statement the worker signed (canonical JSON), its signature and the key.
    pub statement: String,
    pub signature: String,
    pub public_key: String,
    /// JSON array of the weights' near-copy fingerprint (`copies`), if the worker sent one.
    pub fingerprint: Option<String>,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq)]
pub enum JobEnd {
    Scored(Box<ScoredJob>),
    /// The checkpoint is invalid: final, and it counts against the quota.
    Invalid(String),
    /// Our side failed: retried, or failed without counting once attempts are spent.
    Error(String),
}

/// Records a job's end under a live lease; a lapsed or foreign lease, or a job that
/// already ended, is a conflict and changes nothing.
pub async fn complete(
    pool: &SqlitePool,
    job_id: i64,
    worker_id: i64,
    lease: &str,
    end: JobEnd,
    now: i64,
) -> Result<()> {
    let mut tx = crate::write(pool).await?;
    let row: Option<i64> = sqlx::query_scalar(
        "UPDATE jobs SET lease_expires_at = lease_expires_at
         WHERE id = ? AND worker_id = ? AND lease_hash = ? AND finished_at IS NULL AND lease_expires_at >= ?
         RETURNING submission_id",
    )
    .bind(job_id)
    .bind(worker_id)
    .bind(sha256_hex(lease))
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(submission_id) = row else {
        return Err(StoreError::Conflict(
            "this job's lease expired or the job already ended; the result was not recorded".into(),
        ));
    };
    match end {
        JobEnd::Scored(scored) => {
            let copy: Option<(i64, String)> = sqlx::query_as(
                "SELECT s.id, u.handle FROM submissions s JOIN users u ON u.id = s.user_id
                 WHERE s.weights_sha256 = ? AND s.id != ?
                       AND s.user_id != (SELECT user_id FROM submissions WHERE id = ?)
                 ORDER BY s.id LIMIT 1",
            )
            .bind(&scored.weights_sha256)
            .bind(submission_id)
            .bind(submission_id)
            .fetch_optional(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE submissions SET weights_sha256 = ?, window_nll = ?, evaluator_version = ?,
                        device = ?, scored_by = ?, score_statement = ?, score_signature = ?,
                        score_key = ?, fingerprint = ?
                 WHERE id = ?",
            )
            .bind(&scored.weights_sha256)
            .bind(&scored.window_nll)
            .bind(&scored.evaluator_version)
            .bind(&scored.device)
            .bind(worker_id)
            .bind(&scored.statement)
            .bind(&scored.signature)
            .bind(&scored.public_key)
            .bind(&scored.fingerprint)
            .bind(submission_id)
            .execute(&mut *tx)
            .await?;
            match copy {
                Some((other, handle)) => {
                    let message = format!(
                        "the weights are identical to those of submission {other} by {handle}; copies of another contributor's weights are not ranked"
                    );
                    fail(&mut tx, submission_id, &message, true, now).await?;
                }
                None => record_score_in(&mut tx, submission_id, scored.score).await?,
            }
            finish_job(&mut tx, job_id, None, now).await?;
        }
        JobEnd::Invalid(message) => {
            fail(&mut tx, submission_id, &message, true, now).await?;
            finish_job(&mut tx, job_id, Some(&message), now).await?;
        }
        JobEnd::Error(message) => {
            retry_or_fail(&mut tx, job_id, submission_id, &message, now).await?;
        }
    }
    tx.commit().await?;
    tracing::info!(job_id, submission_id, worker_id, "job result recorded");
    Ok(())
}

async fn finish_job(
    tx: &mut Transaction<'_, Sqlite>,
    job_id: i64,
    error: Option<&str>,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE jobs SET finished_at = ?, lease_hash = NULL, lease_expires_at = NULL, stage = NULL,
                last_error = COALESCE(?, last_error)
         WHERE id = ?",
    )
    .bind(now)
    .bind(error)
    .bind(job_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn fail(
    tx: &mut Transaction<'_, Sqlite>,
    submission_id: i64,
    message: &str,
    counts: bool,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE submissions SET state = 'failed', error = ?, counts_toward_quota = ?, scored_at = ?
         WHERE id = ?",
    )
    .bind(message)
    .bind(counts)
    .bind(now)
    .bind(submission_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn fail_on_our_side(
    tx: &mut Transaction<'_, Sqlite>,
    job_id: i64,
    submission_id: i64,
    cause: &str,
    now: i64,
) -> Result<()> {
    let message = format!(
        "Ascent could not evaluate this checkpoint ({cause}). The fault is on our side: it does not count against your daily quota, and you may submit it again."
    );
    fail(tx, submission_id, &message, false, now).await?;
    finish_job(tx, job_id, Some(cause), now).await
}

/// Puts a job back in the queue after a failure on our side, or fails it (without
/// counting against the quota) once its attempts are spent.
async fn retry_or_fail(
    tx: &mut Transaction<'_, Sqlite>,
    job_id: i64,
    submission_id: i64,
    cause: &str,
    now: i64,
) -> Result<()> {
    let (attempts, max_attempts): (i64, i64) =
        sqlx::query_as("SELECT attempts, max_attempts FROM jobs WHERE id = ?")
            .bind(job_id)
            .fetch_one(&mut **tx)
            .await?;
    if attempts >= max_attempts {
        tracing::warn!(
            job_id,
            submission_id,
            attempts,
            cause,
            "job failed on our side; giving up"
        );
        let cause = format!("{attempts} attempts; the last: {cause}");
        return fail_on_our_side(tx, job_id, submission_id, &cause, now).await;
    }
    let wait = backoff_seconds(unsigned(attempts, "attempts")?);
    tracing::warn!(
        job_id,
        submission_id,
        attempts,
        wait,
        cause,
        "job goes back in the queue"
    );
    sqlx::query(
        "UPDATE jobs SET lease_hash = NULL, lease_expires_at = NULL, worker_id = NULL, stage = NULL,
                available_at = ?, last_error = ?
         WHERE id = ?",
    )
    .bind(now + wait)
    .bind(cause)
    .bind(job_id)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE submissions SET state = 'queued' WHERE id = ?")
        .bind(submission_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Requeues (or fails) every job whose lease lapsed or whose deadline passed; returns
/// how many.
pub async fn reap(pool: &SqlitePool, now: i64) -> Result<u64> {
    let stale: Vec<(i64, i64, bool, i64)> = sqlx::query_as(
        "SELECT j.id, j.submission_id, j.deadline_at <= ?, p.time_limit_seconds
         FROM jobs j JOIN submissions s ON s.id = j.submission_id JOIN phases p ON p.number = s.phase
         WHERE j.finished_at IS NULL AND j.lease_hash IS NOT NULL
               AND (j.lease_expires_at < ? OR j.deadline_at <= ?)",
    )
    .bind(now)
    .bind(now)
    .bind(now)
    .fetch_all(pool)
    .await?;
    let count = stale.len() as u64;
    for (job_id, submission_id, late, limit) in stale {
        let mut tx = crate::write(pool).await?;
        // Re-check inside the transaction: a result may have landed meanwhile.
        let still = sqlx::query_scalar::<_, i64>(
            "UPDATE jobs SET lease_hash = lease_hash WHERE id = ? AND finished_at IS NULL
                 AND lease_hash IS NOT NULL AND (lease_expires_at < ? OR deadline_at <= ?)
             RETURNING 1",
        )
        .bind(job_id)
        .bind(now)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
        if still {
            let cause = if late {
                format!(
                    "the evaluation took longer than the phase's limit of {} minutes",
                    limit / 60
                )
            } else {
                "the worker stopped responding".to_owned()
            };
            retry_or_fail(&mut tx, job_id, submission_id, &cause, now).await?;
        }
        tx.commit().await?;
    }
    Ok(count)
}

/// Ends the leases a worker holds (the built-in worker's, when the server restarts):
/// its jobs go back in the queue now rather than when the leases lapse.
pub async fn release_worker(pool: &SqlitePool, worker_id: i64, now: i64) -> Result<u64> {
    sqlx::query(
        "UPDATE jobs SET lease_expires_at = ? WHERE worker_id = ? AND finished_at IS NULL AND lease_hash IS NOT NULL",
    )
    .bind(now - 1)
    .bind(worker_id)
    .execute(pool)
    .await?;
    reap(pool, now).await
}

/// Jobs waiting and running, for the console.
pub async fn queue_counts(pool: &SqlitePool, now: i64) -> Result<(u64, u64)> {
    let (waiting, running): (i64, i64) = sqlx::query_as(
        "SELECT COALESCE(SUM(lease_hash IS NULL), 0), COALESCE(SUM(lease_hash IS NOT NULL AND lease_expires_at >= ?), 0)
         FROM jobs WHERE finished_at IS NULL",
    )
    .bind(now)
    .fetch_one(pool)
    .await?;
    Ok((unsigned(waiting, "waiting")?, unsigned(running, "running")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_cap() {
        let waits: Vec<i64> = (1..=8).map(backoff_seconds).collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(backoff_seconds(0), 10);
    }
}
