//! Standings: each contributor's best scored submission per phase, kept current as
//! scores land, and the phase's record progression for the "best over time" chart.

use ascent_domain::views::{Leaderboard, LeaderboardRow, ScorePoint};
use sqlx::{Sqlite, SqlitePool, Transaction};

use crate::{unsigned, Result};

/// A score that just landed, as the standings need it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LandedScore {
    pub submission_id: i64,
    pub phase: u8,
    pub user_id: i64,
    /// The loss the leaderboard ranks by.
    pub loss: f64,
    pub parameters: u64,
    pub at: i64,
}

/// Folds a landed score into the standings, inside the transaction that recorded it.
pub(crate) async fn apply(tx: &mut Transaction<'_, Sqlite>, score: LandedScore) -> Result<()> {
    let phase = i64::from(score.phase);
    let parameters = i64::try_from(score.parameters).unwrap_or(i64::MAX);
    let epsilon: f64 = sqlx::query_scalar("SELECT epsilon FROM phases WHERE number = ?")
        .bind(phase)
        .fetch_one(&mut **tx)
        .await?;
    let phase_best: Option<f64> =
        sqlx::query_scalar("SELECT MIN(loss) FROM standings WHERE phase = ?")
            .bind(phase)
            .fetch_one(&mut **tx)
            .await?;
    let newcomer: bool = sqlx::query_scalar(
        "SELECT NOT EXISTS (SELECT 1 FROM standings WHERE phase = ? AND user_id = ?)",
    )
    .bind(phase)
    .bind(score.user_id)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE phases SET contributor_count = contributor_count + ?,
                           standings_version = standings_version + 1
         WHERE number = ?",
    )
    .bind(i64::from(newcomer))
    .bind(phase)
    .execute(&mut **tx)
    .await?;
    // A contributor's standing moves only when a later submission beats it by more than
    // the phase's epsilon (relative; `domain::ranking::clearly_beats`), so ties and noise
    // keep the earlier submission.
    sqlx::query(
        "INSERT INTO standings (phase, user_id, submission_id, loss, parameters, achieved_at, submissions)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1)
         ON CONFLICT (phase, user_id) DO UPDATE SET
             submissions   = standings.submissions + 1,
             submission_id = CASE WHEN ?4 < standings.loss - ?7 * abs(standings.loss) THEN excluded.submission_id ELSE standings.submission_id END,
             parameters    = CASE WHEN ?4 < standings.loss - ?7 * abs(standings.loss) THEN excluded.parameters ELSE standings.parameters END,
             achieved_at   = CASE WHEN ?4 < standings.loss - ?7 * abs(standings.loss) THEN excluded.achieved_at ELSE standings.achieved_at END,
             loss          = CASE WHEN ?4 < standings.loss - ?7 * abs(standings.loss) THEN excluded.loss ELSE standings.loss END",
    )
    .bind(phase)
    .bind(score.user_id)
    .bind(score.submission_id)
    .bind(score.loss)
    .bind(parameters)
    .bind(score.at)
    .bind(epsilon.max(0.0))
    .execute(&mut **tx)
    .await?;
    if phase_best.is_none_or(|best| score.loss < best) {
        sqlx::query(
            "INSERT INTO phase_records (phase, at, loss, submission_id, scored_so_far)
             VALUES (?, ?, ?, ?, (SELECT COUNT(*) FROM submissions WHERE phase = ? AND state = 'scored'))",
        )
        .bind(phase)
        .bind(score.at)
        .bind(score.loss)
        .bind(score.submission_id)
        .bind(phase)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct RowData {
    handle: String,
    loss: f64,
    parameters: i64,
    submissions: i64,
    achieved_at: i64,
    submission_id: i64,
}

/// A page of a phase's leaderboard: best loss first, ties to the earlier result.
/// `None` if there is no such phase.
pub async fn leaderboard(
    pool: &SqlitePool,
    phase: u8,
    offset: u64,
    limit: u64,
) -> Result<Option<Leaderboard>> {
    let phase_key = i64::from(phase);
    let total: Option<i64> =
        sqlx::query_scalar("SELECT contributor_count FROM phases WHERE number = ?")
            .bind(phase_key)
            .fetch_optional(pool)
            .await?;
    let Some(total) = total else {
        return Ok(None);
    };
    let rows: Vec<RowData> = sqlx::query_as(
        "SELECT u.handle, s.loss, s.parameters, s.submissions, s.achieved_at, s.submission_id
         FROM standings s JOIN users u ON u.id = s.user_id
         WHERE s.phase = ?
         ORDER BY s.loss, s.achieved_at, s.submission_id
         LIMIT ? OFFSET ?",
    )
    .bind(phase_key)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .bind(i64::try_from(offset).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await?;
    let rows = rows
        .into_iter()
        .zip(offset + 1..)
        .map(|(row, rank)| {
            Ok(LeaderboardRow {
                rank,
                handle: row.handle,
                loss: row.loss,
                perplexity: row.loss.exp(),
                parameters: unsigned(row.parameters, "parameters")?,
                submissions: unsigned(row.submissions, "submissions")?,
                last_improvement_at: row.achieved_at,
                submission_id: row.submission_id,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(Leaderboard {
        phase,
        total: unsigned(total, "contributor count")?,
        offset,
        rows,
    }))
}

/// Every improvement of the phase's best loss, oldest first, with the number of the
/// phase's submissions scored by then.
pub async fn best_over_time(pool: &SqlitePool, phase: u8) -> Result<Vec<ScorePoint>> {
    let points: Vec<(i64, f64, i64)> = sqlx::query_as(
        "SELECT at, loss, scored_so_far FROM phase_records WHERE phase = ? ORDER BY at, loss DESC",
    )
    .bind(i64::from(phase))
    .fetch_all(pool)
    .await?;
    points
        .into_iter()
        .map(|(at, loss, scored)| {
            Ok(ScorePoint {
                at,
                loss,
                scored_so_far: unsigned(scored, "scored_so_far")?,
            })
        })
        .collect()
}

/// How many of the phase's submissions are scored now (the last count of the chart).
pub async fn scored_count(pool: &SqlitePool, phase: u8) -> Result<u64> {
    let count: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM submissions WHERE phase = ? AND state = 'scored'")
            .bind(i64::from(phase))
            .fetch_one(pool)
            .await?;
    unsigned(count, "scored count")
}
