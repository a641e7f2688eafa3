//! Submissions: their creation and the recording of their outcome.

use sqlx::{Sqlite, SqlitePool, Transaction};

use ascent_domain::protocol::{
    JobProgress, JobStage, SignedScore, SubmissionReport, SubmissionState,
};
use ascent_domain::public_log::Event;
use ascent_domain::PhaseState;

use crate::standings::{self, LandedScore};
use crate::{public_log, sha256_hex, unsigned, Result, StoreError};

/// A checkpoint received for a phase, before it is scored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubmission {
    pub phase: u8,
    pub user_id: i64,
    pub weights_sha256: String,
    pub bytes: u64,
    pub at: i64,
}

/// Records a received submission in the `queued` state; returns its id.
pub async fn create(pool: &SqlitePool, new: &NewSubmission) -> Result<i64> {
    let mut tx = crate::write(pool).await?;
    let id = sqlx::query_scalar(
        "INSERT INTO submissions (phase, user_id, state, created_at, weights_sha256, bytes)
         VALUES (?, ?, 'queued', ?, ?, ?) RETURNING id",
    )
    .bind(i64::from(new.phase))
    .bind(new.user_id)
    .bind(new.at)
    .bind(&new.weights_sha256)
    .bind(
        i64::try_from(new.bytes)
            .map_err(|_| StoreError::Conflict("submission too large".into()))?,
    )
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("UPDATE phases SET submission_count = submission_count + 1 WHERE number = ?")
        .bind(i64::from(new.phase))
        .execute(&mut *tx)
        .await?;
    public_log::log_received(
        &mut tx,
        id,
        new.phase,
        new.user_id,
        &new.weights_sha256,
        new.at,
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Submissions still queued or being scored, all phases together.
pub async fn unscored(pool: &SqlitePool) -> Result<u64> {
    let waiting: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM submissions WHERE state IN ('queued', 'validating', 'scoring')",
    )
    .fetch_one(pool)
    .await?;
    unsigned(waiting, "submission count")
}

/// The evaluator's verdict on a submission.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreRecord {
    pub loss: f64,
    pub public_loss: f64,
    pub private_loss: f64,
    pub parameters: u64,
    pub at: i64,
}

/// Marks a submission scored and updates the standings in one transaction.
/// Scoring an already scored or failed submission is refused.
pub async fn record_score(pool: &SqlitePool, submission_id: i64, score: ScoreRecord) -> Result<()> {
    let mut tx = crate::write(pool).await?;
    record_score_in(&mut tx, submission_id, score).await?;
    tx.commit().await?;
    Ok(())
}

/// [`record_score`] inside the caller's transaction.
pub(crate) async fn record_score_in(
    tx: &mut Transaction<'_, Sqlite>,
    submission_id: i64,
    score: ScoreRecord,
) -> Result<()> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "UPDATE submissions
         SET state = 'scored', scored_at = ?, loss = ?, public_loss = ?, private_loss = ?, parameters = ?
         WHERE id = ? AND state NOT IN ('scored', 'failed')
         RETURNING phase, user_id",
    )
    .bind(score.at)
    .bind(score.loss)
    .bind(score.public_loss)
    .bind(score.private_loss)
    .bind(i64::try_from(score.parameters).unwrap_or(i64::MAX))
    .bind(submission_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((phase, user_id)) = row else {
        return Err(StoreError::Conflict(format!(
            "submission {submission_id} does not exist or already has an outcome"
        )));
    };
    log_score(tx, submission_id, score).await?;
    // While a phase is open its leaderboard shows the public part of the score.
    standings::apply(
        tx,
        LandedScore {
            submission_id,
            phase: unsigned(phase, "phase")?,
            user_id,
            loss: score.public_loss,
            parameters: score.parameters,
            at: score.at,
        },
    )
    .await
}

/// Logs a score: its public loss and a commitment to the worker's signed statement,
/// which is itself published at once if the phase has already closed.
async fn log_score(tx: &mut Transaction<'_, Sqlite>, id: i64, score: ScoreRecord) -> Result<()> {
    let (statement, signature, public_key, phase_state): (
        Option<String>,
        Option<String>,
        Option<String>,
        String,
    ) = sqlx::query_as(
        "SELECT s.score_statement, s.score_signature, s.score_key, p.state
         FROM submissions s JOIN phases p ON p.number = s.phase WHERE s.id = ?",
    )
    .bind(id)
    .fetch_one(&mut **tx)
    .await?;
    let recorded = Event::ScoreRecorded {
        submission: id,
        public_loss: score.public_loss,
        statement_sha256: statement.as_deref().map(sha256_hex),
        signature,
        public_key,
    };
    public_log::append(tx, &recorded, score.at).await?;
    if phase_state != PhaseState::Open.as_str() {
        public_log::reveal(tx, id, score.at).await?;
    }
    Ok(())
}

/// A submission as its report needs it, before redaction for the viewer.
#[derive(Debug, Clone, PartialEq)]
pub struct SubmissionRecord {
    pub report: SubmissionReport,
    pub user_id: i64,
    pub phase_state: PhaseState,
}

#[derive(sqlx::FromRow)]
struct ReportRow {
    phase: i64,
    user_id: i64,
    handle: String,
    state: String,
    created_at: i64,
    scored_at: Option<i64>,
    files_sha256: Option<String>,
    bytes: Option<i64>,
    parameters: Option<i64>,
    loss: Option<f64>,
    public_loss: Option<f64>,
    private_loss: Option<f64>,
    error: Option<String>,
    phase_state: String,
    attempts: Option<i64>,
    stage: Option<String>,
    progress_done: Option<i64>,
    progress_total: Option<i64>,
    lease_expires_at: Option<i64>,
    score_statement: Option<String>,
    score_signature: Option<String>,
    score_key: Option<String>,
    worker: Option<String>,
    worker_attestation: Option<String>,
    encrypted_to: Option<String>,
}

/// A submission with its job's live progress; `None` if there is no such submission.
pub async fn report(pool: &SqlitePool, id: i64, now: i64) -> Result<Option<SubmissionRecord>> {
    let row: Option<ReportRow> = sqlx::query_as(
        "SELECT s.phase, s.user_id, u.handle, s.state, s.created_at, s.scored_at, s.files_sha256,
                s.bytes, s.parameters, s.loss, s.public_loss, s.private_loss, s.error,
                p.state AS phase_state, j.attempts, j.stage, j.progress_done, j.progress_total,
                j.lease_expires_at, s.score_statement, s.score_signature, s.score_key,
                w.name AS worker, w.attestation AS worker_attestation, s.encrypted_to
         FROM submissions s JOIN users u ON u.id = s.user_id JOIN phases p ON p.number = s.phase
         LEFT JOIN jobs j ON j.submission_id = s.id
         LEFT JOIN workers w ON w.id = s.scored_by
         WHERE s.id = ?",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    let Some(ReportRow {
        phase,
        user_id,
        handle,
        state,
        created_at,
        scored_at,
        files_sha256: sha256,
        bytes,
        parameters,
        loss,
        public_loss,
        private_loss,
        error,
        phase_state,
        attempts,
        stage,
        progress_done: done,
        progress_total: total,
        lease_expires_at: lease_until,
        score_statement,
        score_signature,
        score_key,
        worker,
        worker_attestation,
        encrypted_to,
    }) = row
    else {
        return Ok(None);
    };
    let state = SubmissionState::parse(&state)
        .ok_or_else(|| StoreError::Corrupt(format!("submission state {state:?}")))?;
    let phase_state = PhaseState::ALL
        .into_iter()
        .find(|s| s.as_str() == phase_state)
        .ok_or_else(|| StoreError::Corrupt(format!("phase state {phase_state:?}")))?;
    let live = lease_until.is_some_and(|t| t >= now) && !state.is_final();
    let progress = match (live, stage.as_deref(), done, total) {
        (true, Some(stage), Some(done), Some(total)) => Some(JobProgress {
            stage: if stage == "scoring" {
                JobStage::Scoring
            } else {
                JobStage::Validating
            },
            done: unsigned(done, "progress")?,
            total: unsigned(total, "progress")?,
        }),
        _ => None,
    };
    Ok(Some(SubmissionRecord {
        user_id,
        phase_state,
        report: SubmissionReport {
            id,
            phase: unsigned(phase, "phase")?,
            contributor: handle,
            state,
            created_at,
            scored_at,
            sha256,
            bytes: bytes.map(|b| unsigned(b, "bytes")).transpose()?,
            parameters: parameters.map(|p| unsigned(p, "parameters")).transpose()?,
            loss,
            public_loss,
            private_loss,
            error,
            progress,
            attempts: attempts
                .map(|a| unsigned(a, "attempts"))
                .transpose()?
                .unwrap_or(0),
            url: format!("/submissions/{id}"),
            signed: match (score_statement, score_signature, score_key) {
                (Some(statement), Some(signature), Some(public_key)) => Some(SignedScore {
                    statement,
                    signature,
                    public_key,
                    worker: worker.unwrap_or_default(),
                }),
                _ => None,
            },
            worker_attestation: worker_attestation
                .as_deref()
                .and_then(ascent_domain::attestation::TeeKind::parse),
            encrypted: encrypted_to.is_some(),
        },
    }))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::phases::{load_preset, tests::demo_preset};
    use crate::standings::{best_over_time, leaderboard, scored_count};

    pub(crate) async fn user(pool: &SqlitePool, handle: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "INSERT INTO users (email, handle, password_hash, created_at) VALUES (?, ?, 'x', 0) RETURNING id",
        )
        .bind(format!("{handle}@example.org"))
        .bind(handle)
        .fetch_one(pool)
        .await?)
    }

    async fn scored(pool: &SqlitePool, user_id: i64, loss: f64, at: i64) -> Result<i64> {
        scored_parts(pool, 1, user_id, (loss, loss), at).await
    }

    /// A scored submission with its (public, private) losses; `loss` is their mean.
    pub(crate) async fn scored_parts(
        pool: &SqlitePool,
        phase: u8,
        user_id: i64,
        (public_loss, private_loss): (f64, f64),
        at: i64,
    ) -> Result<i64> {
        let id = create(
            pool,
            &NewSubmission {
                phase,
                user_id,
                weights_sha256: format!("{user_id}-{at}"),
                bytes: 10,
                at,
            },
        )
        .await?;
        let score = ScoreRecord {
            loss: (public_loss + private_loss) / 2.0,
            public_loss,
            private_loss,
            parameters: 1000,
            at,
        };
        record_score(pool, id, score).await?;
        Ok(id)
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn leaderboard_keeps_each_contributors_best(pool: SqlitePool) -> Result<()> {
        load_preset(&pool, &demo_preset(0), 0, false).await?;
        let (ada, bob, cy) = (
            user(&pool, "ada").await?,
            user(&pool, "bob").await?,
            user(&pool, "cy").await?,
        );
        scored(&pool, ada, 3.0, 10).await?;
        let bob_best = scored(&pool, bob, 2.5, 20).await?;
        scored(&pool, ada, 2.0, 30).await?;
        scored(&pool, bob, 2.7, 40).await?; // worse: bob keeps 2.5
        scored(&pool, cy, 2.5, 50).await?; // ties bob, later: ranks below him
        let board = leaderboard(&pool, 1, 0, 10).await?.expect("phase 1 exists");
        let lines: Vec<(u64, &str, f64, u64)> = board
            .rows
            .iter()
            .map(|r| (r.rank, r.handle.as_str(), r.loss, r.submissions))
            .collect();
        assert_eq!(
            lines,
            [(1, "ada", 2.0, 2), (2, "bob", 2.5, 2), (3, "cy", 2.5, 1)]
        );
        assert_eq!(board.rows[1].submission_id, bob_best);
        assert_eq!(board.rows[1].last_improvement_at, 20);
        assert_eq!(board.total, 3);
        let page_two = leaderboard(&pool, 1, 2, 10).await?.expect("phase 1 exists");
        assert_eq!(
            page_two.rows.iter().map(|r| r.rank).collect::<Vec<_>>(),
            [3]
        );
        let records: Vec<(i64, f64, u64)> = best_over_time(&pool, 1)
            .await?
            .iter()
            .map(|p| (p.at, p.loss, p.scored_so_far))
            .collect();
        // Each record counts the scored submissions by then, itself included.
        assert_eq!(records, [(10, 3.0, 1), (20, 2.5, 2), (30, 2.0, 3)]);
        assert_eq!(scored_count(&pool, 1).await?, 5);
        assert_eq!(scored_count(&pool, 2).await?, 0);
        Ok(())
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn a_contributor_moves_only_on_a_clear_improvement(pool: SqlitePool) -> Result<()> {
        // The demo preset's epsilon is 0.001 (0.1%).
        load_preset(&pool, &demo_preset(0), 0, false).await?;
        let ada = user(&pool, "ada").await?;
        let first = scored(&pool, ada, 2.0, 10).await?;
        scored(&pool, ada, 1.9995, 20).await?; // 0.025% better: noise, the first stands
        let board = leaderboard(&pool, 1, 0, 10).await?.expect("phase 1 exists");
        assert_eq!(
            (board.rows[0].submission_id, board.rows[0].loss),
            (first, 2.0)
        );
        assert_eq!(board.rows[0].submissions, 2);
        let clear = scored(&pool, ada, 1.99, 30).await?; // 0.5% better
        let board = leaderboard(&pool, 1, 0, 10).await?.expect("phase 1 exists");
        assert_eq!(
            (board.rows[0].submission_id, board.rows[0].loss),
            (clear, 1.99)
        );
        Ok(())
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn a_score_lands_once(pool: SqlitePool) -> Result<()> {
        load_preset(&pool, &demo_preset(0), 0, false).await?;
        let ada = user(&pool, "ada").await?;
        let id = scored(&pool, ada, 3.0, 10).await?;
        let again = ScoreRecord {
            loss: 1.0,
            public_loss: 1.0,
            private_loss: 1.0,
            parameters: 1,
            at: 11,
        };
        assert!(matches!(
            record_score(&pool, id, again).await,
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            record_score(&pool, 999, again).await,
            Err(StoreError::Conflict(_))
        ));
        let board = leaderboard(&pool, 1, 0, 10).await?.expect("phase 1 exists");
        assert_eq!(board.rows[0].loss, 3.0);
        assert!(leaderboard(&pool, 9, 0, 10).await?.is_none());
        Ok(())
    }
}
