//! Contributor profiles and submission pages.

use ascent_domain::views::{ContributorProfile, PhaseReached, Role, SubmissionView};
use sqlx::SqlitePool;

use crate::{unsigned, Result, StoreError};

#[derive(sqlx::FromRow)]
pub(crate) struct SubmissionRow {
    id: i64,
    phase: i64,
    phase_title: String,
    handle: String,
    state: String,
    created_at: i64,
    scored_at: Option<i64>,
    weights_sha256: Option<String>,
    bytes: Option<i64>,
    parameters: Option<i64>,
    loss: Option<f64>,
    error: Option<String>,
    disqualified: bool,
    disqualified_reason: Option<String>,
}

pub(crate) const SUBMISSION_SELECT: &str = "
    SELECT s.id, s.phase, p.title AS phase_title, u.handle, s.state, s.created_at, s.scored_at,
           s.weights_sha256, s.bytes, s.parameters, s.public_loss AS loss, s.error, s.disqualified,
           s.disqualified_reason
    FROM submissions s
    JOIN users u ON u.id = s.user_id
    JOIN phases p ON p.number = s.phase";

impl TryFrom<SubmissionRow> for SubmissionView {
    type Error = StoreError;
    fn try_from(row: SubmissionRow) -> Result<SubmissionView> {
        Ok(SubmissionView {
            id: row.id,
            phase: unsigned(row.phase, "phase")?,
            phase_title: row.phase_title,
            handle: row.handle,
            state: row.state,
            created_at: row.created_at,
            scored_at: row.scored_at,
            weights_sha256: row.weights_sha256,
            bytes: row.bytes.map(|b| unsigned(b, "bytes")).transpose()?,
            parameters: row
                .parameters
                .map(|p| unsigned(p, "parameters"))
                .transpose()?,
            loss: row.loss,
            error: row.error,
            disqualified: row.disqualified,
            disqualified_reason: row.disqualified_reason,
        })
    }
}

/// One submission as its page shows it.
pub async fn submission(pool: &SqlitePool, id: i64) -> Result<Option<SubmissionView>> {
    let row: Option<SubmissionRow> = sqlx::query_as(&format!("{SUBMISSION_SELECT} WHERE s.id = ?"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.map(SubmissionView::try_from).transpose()
}

/// A contributor's public profile: phases taken part in, with rank, and the latest
/// submissions (at most `history` of them).
pub async fn contributor(
    pool: &SqlitePool,
    handle: &str,
    history: u32,
) -> Result<Option<ContributorProfile>> {
    let user: Option<(i64, String, String, i64)> =
        sqlx::query_as("SELECT id, handle, role, created_at FROM users WHERE handle = ?")
            .bind(handle.to_lowercase())
            .fetch_optional(pool)
            .await?;
    let Some((user_id, handle, role, joined_at)) = user else {
        return Ok(None);
    };
    let role = Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role:?}")))?;
    let phases: Vec<(i64, String, Option<f64>, Option<i64>)> = sqlx::query_as(
        "SELECT p.number, p.title, s.loss,
                CASE WHEN s.loss IS NULL THEN NULL ELSE
                  (SELECT COUNT(*) + 1 FROM standings o
                   WHERE o.phase = s.phase AND (o.loss < s.loss
                     OR (o.loss = s.loss AND (o.achieved_at < s.achieved_at
                       OR (o.achieved_at = s.achieved_at AND o.submission_id < s.submission_id)))))
                END AS rank
         FROM phases p
         LEFT JOIN standings s ON s.phase = p.number AND s.user_id = ?
         WHERE s.user_id IS NOT NULL
            OR EXISTS (SELECT 1 FROM submissions x WHERE x.phase = p.number AND x.user_id = ?)
         ORDER BY p.number",
    )
    .bind(user_id)
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    let phases = phases
        .into_iter()
        .map(|(phase, title, best_loss, rank)| {
            Ok(PhaseReached {
                phase: unsigned(phase, "phase")?,
                title,
                best_loss,
                rank: rank.map(|r| unsigned(r, "rank")).transpose()?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let rows: Vec<SubmissionRow> = sqlx::query_as(&format!(
        "{SUBMISSION_SELECT} WHERE s.user_id = ? ORDER BY s.created_at DESC, s.id DESC LIMIT ?"
    ))
    .bind(user_id)
    .bind(i64::from(history))
    .fetch_all(pool)
    .await?;
    let submissions = rows
        .into_iter()
        .map(SubmissionView::try_from)
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(ContributorProfile {
        handle,
        role,
        joined_at,
        phases,
        submissions,
    }))
}
