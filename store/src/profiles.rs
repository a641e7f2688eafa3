//! Contributor profiles and submission pages.

use ascent_domain::views::{ContributorProfile, NearCopy, PhaseReached, Role, SubmissionView};
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
    near_copy_of: Option<i64>,
    near_copy_handle: Option<String>,
    near_copy_similarity: Option<f64>,
}

/// The columns of a submission row, with `$near` giving the near-copy columns.
macro_rules! submission_select {
    ($near:literal) => {
        concat!(
            "SELECT s.id, s.phase, p.title AS phase_title, u.handle, s.state, s.created_at, s.scored_at,
                    s.weights_sha256, s.bytes, s.parameters, s.public_loss AS loss, s.error, s.disqualified,
                    s.disqualified_reason, ",
            $near,
            " FROM submissions s
             JOIN users u ON u.id = s.user_id
             JOIN phases p ON p.number = s.phase"
        )
    };
}

/// Submissions as anyone may see them (near-copy flags are for organizers).
pub(crate) const SUBMISSION_SELECT: &str = submission_select!(
    "NULL AS near_copy_of, NULL AS near_copy_handle, NULL AS near_copy_similarity"
);

/// Submissions as organizers review them, with near-copy flags.
pub(crate) const MODERATION_SELECT: &str = submission_select!(
    "s.near_copy_of, (SELECT cu.handle FROM submissions cs JOIN users cu ON cu.id = cs.user_id
                      WHERE cs.id = s.near_copy_of) AS near_copy_handle, s.near_copy_similarity"
);

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
            near_copy: match (
                row.near_copy_of,
                row.near_copy_handle,
                row.near_copy_similarity,
            ) {
                (Some(submission), Some(handle), Some(similarity)) => Some(NearCopy {
                    submission,
                    handle,
                    similarity,
                }),
                _ => None,
            },
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
    let reached: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT p.number, p.title, p.state FROM phases p
         WHERE EXISTS (SELECT 1 FROM submissions x WHERE x.phase = p.number AND x.user_id = ?)
         ORDER BY p.number",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    let mut phases = Vec::with_capacity(reached.len());
    for (number, title, state) in reached {
        let phase: u8 = unsigned(number, "phase")?;
        let (best_loss, rank, advanced) = if state == "finalized" {
            let fin: Option<(f64, i64, bool)> = sqlx::query_as(
                "SELECT private_loss, rank, advanced FROM final_standings WHERE phase = ? AND user_id = ?",
            )
            .bind(number)
            .bind(user_id)
            .fetch_optional(pool)
            .await?;
            match fin {
                Some((loss, rank, advanced)) => {
                    (Some(loss), Some(unsigned(rank, "rank")?), Some(advanced))
                }
                None => (None, None, Some(false)),
            }
        } else {
            match crate::standings::place_of(pool, phase, user_id).await? {
                Some((rank, loss)) => (Some(loss), Some(rank), None),
                None => (None, None, None),
            }
        };
        phases.push(PhaseReached {
            phase,
            title,
            best_loss,
            rank,
            advanced,
        });
    }
    let eligible: Vec<(i64, String)> = sqlx::query_as(
        "SELECT e.phase, e.reason FROM phase_entrants e JOIN phases p ON p.number = e.phase
             WHERE e.user_id = ? AND p.state <> 'draft' ORDER BY e.phase",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    let eligible = eligible
        .into_iter()
        .map(|(phase, reason)| Ok((unsigned(phase, "phase")?, reason)))
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
        eligible,
    }))
}
