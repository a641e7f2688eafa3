//! Standings: each contributor's best scored submission per phase, kept current as
//! scores land, and the phase's record progression for the "best over time" chart.

use std::collections::HashMap;

use ascent_domain::ranking::{self, Scored};
use ascent_domain::split::{self, Part};
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
    let phase_best: Option<f64> =
        sqlx::query_scalar("SELECT MIN(loss) FROM standings WHERE phase = ?")
            .bind(phase)
            .fetch_one(&mut **tx)
            .await?;
    refresh_contributor(tx, score.phase, score.user_id).await?;
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
struct OwnScore {
    id: i64,
    public_loss: f64,
    created_at: i64,
    parameters: Option<i64>,
}

/// Recomputes one contributor's standing in a phase from their scored, non-disqualified
/// submissions with `domain::ranking::standings` (a later one replaces the standing one
/// only if it is better by more than the phase's epsilon), and the phase's counters.
pub(crate) async fn refresh_contributor(
    tx: &mut Transaction<'_, Sqlite>,
    phase: u8,
    user_id: i64,
) -> Result<()> {
    let phase_key = i64::from(phase);
    let epsilon: f64 = sqlx::query_scalar("SELECT epsilon FROM phases WHERE number = ?")
        .bind(phase_key)
        .fetch_one(&mut **tx)
        .await?;
    let own: Vec<OwnScore> = sqlx::query_as(
        "SELECT id, public_loss, created_at, parameters FROM submissions
         WHERE phase = ? AND user_id = ? AND state = 'scored' AND disqualified = 0
               AND public_loss IS NOT NULL",
    )
    .bind(phase_key)
    .bind(user_id)
    .fetch_all(&mut **tx)
    .await?;
    let scores: Vec<Scored> = own
        .iter()
        .map(|o| Scored {
            submission_id: o.id,
            user_id,
            loss: o.public_loss,
            at: o.created_at,
            disqualified: false,
        })
        .collect();
    let had_standing: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM standings WHERE phase = ? AND user_id = ?)",
    )
    .bind(phase_key)
    .bind(user_id)
    .fetch_one(&mut **tx)
    .await?;
    let standing = ranking::standings(&scores, epsilon).first().cloned();
    // The phase's contributor count moves by one when a standing appears or goes.
    let delta = i64::from(standing.is_some()) - i64::from(had_standing);
    match standing {
        Some(standing) => {
            let parameters = own
                .iter()
                .find(|o| o.id == standing.submission_id)
                .and_then(|o| o.parameters)
                .unwrap_or(0);
            sqlx::query(
                "INSERT INTO standings (phase, user_id, submission_id, loss, parameters, achieved_at, submissions)
                 VALUES (?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (phase, user_id) DO UPDATE SET
                     submission_id = excluded.submission_id, loss = excluded.loss,
                     parameters = excluded.parameters, achieved_at = excluded.achieved_at,
                     submissions = excluded.submissions",
            )
            .bind(phase_key)
            .bind(user_id)
            .bind(standing.submission_id)
            .bind(standing.loss)
            .bind(parameters)
            .bind(standing.at)
            .bind(i64::try_from(own.len()).unwrap_or(i64::MAX))
            .execute(&mut **tx)
            .await?;
        }
        None => {
            sqlx::query("DELETE FROM standings WHERE phase = ? AND user_id = ?")
                .bind(phase_key)
                .bind(user_id)
                .execute(&mut **tx)
                .await?;
        }
    }
    sqlx::query(
        "UPDATE phases SET contributor_count = contributor_count + ?,
                           standings_version = standings_version + 1
         WHERE number = ?",
    )
    .bind(delta)
    .bind(phase_key)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Rebuilds a phase's record progression ("best over time") from its scored,
/// non-disqualified submissions, after an organizer took one out or re-ran it.
pub(crate) async fn rebuild_records(tx: &mut Transaction<'_, Sqlite>, phase: u8) -> Result<()> {
    let phase_key = i64::from(phase);
    let scored: Vec<(i64, i64, f64)> = sqlx::query_as(
        "SELECT id, scored_at, public_loss FROM submissions
         WHERE phase = ? AND state = 'scored' AND disqualified = 0 AND public_loss IS NOT NULL
         ORDER BY scored_at, id",
    )
    .bind(phase_key)
    .fetch_all(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM phase_records WHERE phase = ?")
        .bind(phase_key)
        .execute(&mut **tx)
        .await?;
    let mut best = f64::INFINITY;
    for (count, (id, at, loss)) in (1i64..).zip(scored) {
        if loss < best {
            best = loss;
            sqlx::query(
                "INSERT INTO phase_records (phase, at, loss, submission_id, scored_so_far)
                 VALUES (?, ?, ?, ?, ?)",
            )
            .bind(phase_key)
            .bind(at)
            .bind(loss)
            .bind(id)
            .bind(count)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct RowData {
    user_id: i64,
    handle: String,
    loss: f64,
    parameters: i64,
    submissions: i64,
    achieved_at: i64,
    submission_id: i64,
}

/// A phase's contributor count and its standings in `ranking::rank` order; `None` if
/// there is no such phase.
async fn ranked_rows(pool: &SqlitePool, phase: u8) -> Result<Option<(i64, Vec<RowData>)>> {
    let phase_key = i64::from(phase);
    let found: Option<(i64, f64)> =
        sqlx::query_as("SELECT contributor_count, epsilon FROM phases WHERE number = ?")
            .bind(phase_key)
            .fetch_optional(pool)
            .await?;
    let Some((total, epsilon)) = found else {
        return Ok(None);
    };
    let all: Vec<RowData> = sqlx::query_as(
        "SELECT s.user_id, u.handle, s.loss, s.parameters, s.submissions, s.achieved_at, s.submission_id
         FROM standings s JOIN users u ON u.id = s.user_id
         WHERE s.phase = ?",
    )
    .bind(phase_key)
    .fetch_all(pool)
    .await?;
    let scores: Vec<Scored> = all
        .iter()
        .map(|r| Scored {
            submission_id: r.submission_id,
            user_id: r.user_id,
            loss: r.loss,
            at: r.achieved_at,
            disqualified: false,
        })
        .collect();
    let order = ranking::rank(&scores, epsilon);
    let mut by_submission: HashMap<i64, RowData> =
        all.into_iter().map(|r| (r.submission_id, r)).collect();
    let ranked = order
        .iter()
        .filter_map(|s| by_submission.remove(&s.submission_id))
        .collect();
    Ok(Some((total, ranked)))
}

/// How many leading rows get a bootstrap confidence interval.
pub const INTERVAL_ROWS: u64 = 10;
const BOOTSTRAP_ROUNDS: usize = 1000;

/// A page of a phase's leaderboard, ranked by `domain::ranking::rank`: best public loss
/// first, a later standing above an earlier one only if it is better by more than the
/// phase's epsilon, exact ties to the earlier. `None` if there is no such phase.
pub async fn leaderboard(
    pool: &SqlitePool,
    phase: u8,
    offset: u64,
    limit: u64,
) -> Result<Option<Leaderboard>> {
    let Some((total, ranked)) = ranked_rows(pool, phase).await? else {
        return Ok(None);
    };
    let page: Vec<(u64, &RowData)> = ranked
        .iter()
        .zip(1u64..)
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .map(|(row, rank)| (rank, row))
        .collect();
    let leading: Vec<i64> = page
        .iter()
        .filter(|(rank, _)| *rank <= INTERVAL_ROWS)
        .map(|(_, row)| row.submission_id)
        .collect();
    let intervals = intervals(pool, phase, &leading, Part::Public).await?;
    let rows = page
        .into_iter()
        .map(|(rank, row)| {
            Ok(LeaderboardRow {
                rank,
                handle: row.handle.clone(),
                loss: row.loss,
                perplexity: row.loss.exp(),
                parameters: unsigned(row.parameters, "parameters")?,
                submissions: unsigned(row.submissions, "submissions")?,
                last_improvement_at: row.achieved_at,
                submission_id: row.submission_id,
                interval: intervals.get(&row.submission_id).copied(),
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

/// A contributor's place on a phase's leaderboard and their standing loss, ranked as
/// [`leaderboard`] ranks; `None` if they have no standing there.
pub async fn place_of(pool: &SqlitePool, phase: u8, user_id: i64) -> Result<Option<(u64, f64)>> {
    let Some((_, ranked)) = ranked_rows(pool, phase).await? else {
        return Ok(None);
    };
    Ok(ranked
        .iter()
        .zip(1u64..)
        .find(|(row, _)| row.user_id == user_id)
        .map(|(row, place)| (place, row.loss)))
}

/// Bootstrap 95% intervals of the given submissions' losses on one part of the
/// phase's windows, resampling windows (`domain::ranking::bootstrap_interval`, seeded by
/// the submission id so a page shows the same interval on every visit).
pub(crate) async fn intervals(
    pool: &SqlitePool,
    phase: u8,
    submissions: &[i64],
    part: Part,
) -> Result<HashMap<i64, (f64, f64)>> {
    let mut found = HashMap::new();
    if submissions.is_empty() {
        return Ok(found);
    }
    let (secret, windows, share, seq_len): (String, i64, f64, i64) = sqlx::query_as(
        "SELECT split_secret, windows, public_share, seq_len FROM phases WHERE number = ?",
    )
    .bind(i64::from(phase))
    .fetch_one(pool)
    .await?;
    let parts = split::window_parts(secret.as_bytes(), unsigned(windows, "windows")?, share);
    let tokens_per_window = unsigned::<u32>(seq_len, "seq_len")?.saturating_sub(1);
    for &id in submissions {
        let nll: Option<String> =
            sqlx::query_scalar("SELECT window_nll FROM submissions WHERE id = ?")
                .bind(id)
                .fetch_optional(pool)
                .await?
                .flatten();
        let Some(nll) = nll else { continue };
        let Ok(nll) = serde_json::from_str::<Vec<f64>>(&nll) else {
            tracing::warn!(submission = id, "unreadable window losses; no interval");
            continue;
        };
        let means = split::part_window_means(&nll, tokens_per_window, &parts, part);
        let seed = u64::try_from(id).unwrap_or(0);
        if let Some(i) = ranking::bootstrap_interval(&means, BOOTSTRAP_ROUNDS, seed) {
            found.insert(id, (i.low, i.high));
        }
    }
    Ok(found)
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
