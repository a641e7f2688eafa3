//! Organizers' actions on single submissions: find them, disqualify one, re-run one.
//! Each needs a reason, goes into the audit log, and refreshes the standings in the
//! same transaction. A finalized phase's results are final: both are refused there.

use ascent_domain::public_log::Event;
use ascent_domain::views::SubmissionView;
use ascent_domain::PhaseState;
use serde_json::json;
use sqlx::{QueryBuilder, SqliteConnection, SqlitePool};

use crate::audit::{self, required_reason, Change};
use crate::lifecycle::touch;
use crate::profiles::{SubmissionRow, MODERATION_SELECT};
use crate::standings::{rebuild_records, refresh_contributor};
use crate::{public_log, unsigned, Result, StoreError};

/// What the console's submission search filters on; empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubmissionQuery {
    /// A submission id, a contributor handle, or the start of a weights or files SHA-256.
    pub text: String,
    pub phase: Option<u8>,
    pub state: Option<String>,
    pub disqualified_only: bool,
    pub near_copies_only: bool,
}

/// The newest matching submissions, at most `limit`.
pub async fn search(
    pool: &SqlitePool,
    query: &SubmissionQuery,
    limit: u32,
) -> Result<Vec<SubmissionView>> {
    let mut sql = QueryBuilder::new(MODERATION_SELECT);
    sql.push(" WHERE 1 = 1");
    let text = query.text.trim();
    if !text.is_empty() {
        if let Ok(id) = text.trim_start_matches('#').parse::<i64>() {
            sql.push(" AND s.id = ").push_bind(id);
        } else if text.len() >= 6 && text.chars().all(|c| c.is_ascii_hexdigit()) {
            let prefix = format!("{}%", text.to_ascii_lowercase());
            sql.push(" AND (s.weights_sha256 LIKE ")
                .push_bind(prefix.clone())
                .push(" OR s.files_sha256 LIKE ")
                .push_bind(prefix)
                .push(")");
        } else {
            sql.push(" AND u.handle = ").push_bind(text.to_owned());
        }
    }
    if let Some(phase) = query.phase {
        sql.push(" AND s.phase = ").push_bind(i64::from(phase));
    }
    if let Some(state) = query.state.as_deref().filter(|s| !s.is_empty()) {
        sql.push(" AND s.state = ").push_bind(state.to_owned());
    }
    if query.disqualified_only {
        sql.push(" AND s.disqualified = 1");
    }
    if query.near_copies_only {
        sql.push(" AND s.near_copy_of IS NOT NULL");
    }
    sql.push(" ORDER BY s.id DESC LIMIT ")
        .push_bind(i64::from(limit));
    let rows: Vec<SubmissionRow> = sql.build_query_as().fetch_all(pool).await?;
    rows.into_iter().map(SubmissionView::try_from).collect()
}

struct Target {
    phase: u8,
    user_id: i64,
    state: String,
    disqualified: bool,
}

/// Takes the write lock, reads the submission, and refuses if its phase is final.
async fn target(conn: &mut SqliteConnection, id: i64, now: i64) -> Result<Target> {
    let found: Option<(i64, i64, String, bool)> =
        sqlx::query_as("SELECT phase, user_id, state, disqualified FROM submissions WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some((phase, user_id, state, disqualified)) = found else {
        return Err(StoreError::NotFound(format!("there is no submission {id}")));
    };
    let phase: u8 = unsigned(phase, "phase")?;
    if touch(conn, phase, now).await? == PhaseState::Finalized {
        return Err(StoreError::Refused(format!(
            "phase {phase} is finalized; its results are final"
        )));
    }
    Ok(Target {
        phase,
        user_id,
        state,
        disqualified,
    })
}

/// Disqualifies a submission: it no longer counts for its contributor's standing, the
/// leaderboard or the phase's record line. Its page says so, with the reason. One not
/// yet scored is not scored at all: it fails, and its job ends.
pub async fn disqualify(
    pool: &SqlitePool,
    id: i64,
    actor: i64,
    reason: &str,
    now: i64,
) -> Result<()> {
    let reason = required_reason(reason)?;
    let mut tx = crate::write(pool).await?;
    let target = target(&mut tx, id, now).await?;
    if target.disqualified {
        return Err(StoreError::Refused(format!(
            "submission {id} is already disqualified"
        )));
    }
    sqlx::query("UPDATE submissions SET disqualified = 1, disqualified_reason = ? WHERE id = ?")
        .bind(reason)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if matches!(target.state.as_str(), "queued" | "validating" | "scoring") {
        // Not scored yet: it never will be. Its job ends here (a worker holding its lease
        // is refused when it reports), and the submission is final, so nothing waits for
        // it: not finalizing (say its evaluation key was lost), not `submit --wait`.
        sqlx::query(
            "UPDATE jobs SET finished_at = ?, lease_hash = NULL, lease_expires_at = NULL,
                 stage = NULL, last_error = 'disqualified'
             WHERE submission_id = ? AND finished_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE submissions SET state = 'failed', scored_at = ?,
                 error = 'Disqualified by the organizers before it was scored.'
             WHERE id = ?",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    let event = Event::Disqualified {
        submission: id,
        reason: reason.to_owned(),
    };
    public_log::append(&mut tx, &event, now).await?;
    let detail = json!({ "phase": target.phase, "state": target.state });
    let change = Change {
        actor: Some(actor),
        action: "submission disqualified",
        subject: format!("submission {id}"),
        reason,
        detail,
        at: now,
    };
    settle(tx, &target, change).await
}

/// Puts a scored or failed submission back in the queue to be scored again from its
/// stored files (after a worker fault, say). Its old score leaves the standings until
/// the new one lands.
pub async fn rerun(pool: &SqlitePool, id: i64, actor: i64, reason: &str, now: i64) -> Result<()> {
    let reason = required_reason(reason)?;
    let mut tx = crate::write(pool).await?;
    let target = target(&mut tx, id, now).await?;
    if target.disqualified {
        return Err(StoreError::Refused(format!(
            "submission {id} is disqualified; a re-run would not count"
        )));
    }
    if target.state != "scored" && target.state != "failed" {
        return Err(StoreError::Refused(format!(
            "submission {id} is {}; only a scored or failed submission can be re-run",
            target.state
        )));
    }
    let files: Option<String> =
        sqlx::query_scalar("SELECT upload_id FROM submissions WHERE id = ?")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
    if files.is_none() {
        return Err(StoreError::Refused(format!(
            "submission {id} has no stored files to score again"
        )));
    }
    sqlx::query(
        "UPDATE submissions SET state = 'queued', scored_at = NULL, loss = NULL,
             public_loss = NULL, private_loss = NULL, parameters = NULL, error = NULL,
             window_nll = NULL, scored_by = NULL, evaluator_version = NULL, device = NULL
         WHERE id = ?",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    let requeued = sqlx::query(
        "UPDATE jobs SET attempts = 0, available_at = ?, worker_id = NULL, lease_hash = NULL,
             lease_expires_at = NULL, started_at = NULL, deadline_at = NULL, stage = NULL,
             progress_done = NULL, progress_total = NULL, last_error = NULL, finished_at = NULL
         WHERE submission_id = ?",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if requeued == 0 {
        sqlx::query("INSERT INTO jobs (submission_id, available_at) VALUES (?, ?)")
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    let event = Event::Rerun {
        submission: id,
        reason: reason.to_owned(),
    };
    public_log::append(&mut tx, &event, now).await?;
    let detail = json!({ "phase": target.phase, "previous_state": target.state });
    let change = Change {
        actor: Some(actor),
        action: "submission re-run",
        subject: format!("submission {id}"),
        reason,
        detail,
        at: now,
    };
    settle(tx, &target, change).await
}

/// Refreshes the standings the change touched, records it, and commits.
async fn settle(
    mut tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    target: &Target,
    change: Change<'_>,
) -> Result<()> {
    refresh_contributor(&mut tx, target.phase, target.user_id).await?;
    rebuild_records(&mut tx, target.phase).await?;
    audit::record(&mut tx, change).await?;
    tx.commit().await?;
    Ok(())
}
