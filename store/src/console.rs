//! The organizer console's overview: accounts, the pipeline, recent phase changes.

use ascent_domain::views::{ConsoleOverview, TransitionView};
use sqlx::SqlitePool;

use crate::{phases, unsigned, Result};

/// Submission states in pipeline order.
pub const SUBMISSION_STATES: [&str; 5] = ["queued", "validating", "scoring", "scored", "failed"];

#[derive(sqlx::FromRow)]
struct TransitionRow {
    phase: i64,
    from_state: Option<String>,
    to_state: String,
    at: i64,
    actor: Option<String>,
    reason: String,
}

pub async fn overview(pool: &SqlitePool) -> Result<ConsoleOverview> {
    let phases = phases::summaries(pool, phases::Audience::Organizers).await?;
    let roles: Vec<(String, i64)> =
        sqlx::query_as("SELECT role, COUNT(*) FROM users GROUP BY role")
            .fetch_all(pool)
            .await?;
    let count_of = |role: &str| -> Result<u64> {
        let n = roles.iter().find(|(r, _)| r == role).map_or(0, |(_, n)| *n);
        unsigned(n, "account count")
    };
    let states: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, COUNT(*) FROM submissions GROUP BY state")
            .fetch_all(pool)
            .await?;
    let submissions_by_state = SUBMISSION_STATES
        .iter()
        .map(|state| {
            let n = states
                .iter()
                .find(|(s, _)| s == state)
                .map_or(0, |(_, n)| *n);
            Ok(((*state).to_owned(), unsigned(n, "submission count")?))
        })
        .collect::<Result<Vec<_>>>()?;
    let transitions: Vec<TransitionRow> = sqlx::query_as(
        "SELECT t.phase, t.from_state, t.to_state, t.at, u.handle AS actor, t.reason
         FROM phase_transitions t LEFT JOIN users u ON u.id = t.actor_id
         ORDER BY t.at DESC, t.id DESC LIMIT 20",
    )
    .fetch_all(pool)
    .await?;
    let recent_transitions = transitions
        .into_iter()
        .map(|row| {
            Ok(TransitionView {
                phase: unsigned(row.phase, "phase")?,
                from_state: row.from_state,
                to_state: row.to_state,
                at: row.at,
                actor: row.actor,
                reason: row.reason,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ConsoleOverview {
        phases,
        contributors: count_of("contributor")?,
        organizers: count_of("organizer")?,
        submissions_by_state,
        recent_transitions,
    })
}
