//! The reward ledger: points granted when a phase is finalized (`domain::rewards` decides
//! the split), each contributor's payout account, and the ledger as organizers export it.

use ascent_domain::public_log::{Award as LoggedAward, Event};
use ascent_domain::rewards::{self, check_payout_account, Place, RewardRule};
use ascent_domain::views::FinalRow;
use serde::{Deserialize, Serialize};
use sqlx::{SqliteConnection, SqlitePool};

use crate::{notifications, public_log, unsigned, Result, StoreError};

/// Shares phase `number`'s budget among the rows that advance, inside the transaction
/// that finalizes it: the ledger, a notice to each, and the log.
pub(crate) async fn grant(
    conn: &mut SqliteConnection,
    number: u8,
    rows: &[(&FinalRow, i64)],
    now: i64,
) -> Result<()> {
    let (budget, rule, vocab_size): (i64, String, i64) = sqlx::query_as(
        "SELECT reward_budget, reward_rule, vocab_size FROM phases WHERE number = ?",
    )
    .bind(i64::from(number))
    .fetch_one(&mut *conn)
    .await?;
    let spec = rewards::RewardSpec {
        budget: unsigned(budget, "reward budget")?,
        rule: RewardRule::parse(&rule)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown reward rule {rule:?}")))?,
    };
    let paid: Vec<Place> = rows
        .iter()
        .filter(|(row, _)| row.advances)
        .map(|(row, user_id)| Place {
            user_id: *user_id,
            rank: row.rank,
            loss: row.private_loss,
        })
        .collect();
    let awards = rewards::split(&spec, &paid, unsigned(vocab_size, "vocab_size")?);
    let mut logged = Vec::with_capacity(awards.len());
    for award in &awards {
        let points = i64::try_from(award.points)
            .map_err(|_| StoreError::Corrupt("points out of range".into()))?;
        sqlx::query(
            "INSERT INTO reward_ledger (phase, user_id, rank, points, rule, at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(i64::from(number))
        .bind(award.user_id)
        .bind(i64::try_from(award.rank).unwrap_or(i64::MAX))
        .bind(points)
        .bind(spec.rule.as_str())
        .bind(now)
        .execute(&mut *conn)
        .await?;
        let text = format!(
            "You earned {} points in phase {number} (#{}); set a payout account on your profile to receive them.",
            award.points, award.rank
        );
        let handle = rows
            .iter()
            .find(|(_, id)| *id == award.user_id)
            .map(|(row, _)| row.handle.clone())
            .unwrap_or_default();
        notifications::send(
            conn,
            award.user_id,
            &text,
            &format!("/contributors/{handle}"),
            now,
        )
        .await?;
        logged.push(LoggedAward {
            contributor: handle,
            rank: award.rank,
            points: award.points,
        });
    }
    let event = Event::RewardsGranted {
        phase: number,
        budget: spec.budget,
        rule: spec.rule.as_str().to_owned(),
        awards: logged,
    };
    public_log::append(conn, &event, now).await
}

/// One ledger entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct LedgerEntry {
    pub phase: i64,
    pub contributor: String,
    pub rank: i64,
    pub points: i64,
    pub rule: String,
    pub at: i64,
    /// Where the contributor wants the points paid, if they said.
    pub payout_account: Option<String>,
}

/// The whole ledger, by phase and place.
pub async fn ledger(pool: &SqlitePool) -> Result<Vec<LedgerEntry>> {
    Ok(sqlx::query_as(
        "SELECT r.phase, u.handle AS contributor, r.rank, r.points, r.rule, r.at, u.payout_account
         FROM reward_ledger r JOIN users u ON u.id = r.user_id ORDER BY r.phase, r.rank",
    )
    .fetch_all(pool)
    .await?)
}

/// A contributor's payout account.
pub async fn payout_account(pool: &SqlitePool, user_id: i64) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT payout_account FROM users WHERE id = ?")
            .bind(user_id)
            .fetch_optional(pool)
            .await?
            .flatten(),
    )
}

/// Sets (or, with an empty value, clears) a contributor's payout account.
pub async fn set_payout_account(
    pool: &SqlitePool,
    user_id: i64,
    value: &str,
) -> Result<Option<String>> {
    let account = if value.trim().is_empty() {
        None
    } else {
        Some(check_payout_account(value).map_err(|e| StoreError::Refused(e.to_string()))?)
    };
    sqlx::query("UPDATE users SET payout_account = ? WHERE id = ?")
        .bind(&account)
        .bind(user_id)
        .execute(pool)
        .await?;
    Ok(account)
}

/// The points of the contributor with `handle`, phase by phase: (phase, place, points).
pub async fn earned_by(pool: &SqlitePool, handle: &str) -> Result<Vec<(u8, u64, u64)>> {
    let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT r.phase, r.rank, r.points FROM reward_ledger r JOIN users u ON u.id = r.user_id
         WHERE u.handle = ? ORDER BY r.phase",
    )
    .bind(handle)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(phase, rank, points)| {
            Ok((
                unsigned(phase, "phase")?,
                unsigned(rank, "rank")?,
                unsigned(points, "points")?,
            ))
        })
        .collect()
}
