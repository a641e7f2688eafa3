//! Held-out data: token shards stored by content hash and attached to phases. Their
//! files live in the server's data directory and are served only to workers.

use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;

use crate::{Result, StoreError};

/// A registered shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Dataset {
    pub sha256: String,
    pub name: String,
    pub bytes: i64,
    pub tokens: i64,
    pub added_at: i64,
}

/// Registers a shard (once per hash) and makes it phase `phase`'s held-out data, with
/// its hash in the public log (`Event::HeldOutData`).
///
/// Data that scored submissions already is never replaced: their scores would no longer
/// mean what the phase says.
pub async fn attach(pool: &SqlitePool, phase: u8, data: &Dataset, by: Option<i64>) -> Result<()> {
    let mut tx = crate::write(pool).await?;
    let (current, submissions) = current_data(&mut *tx, phase).await?;
    if current.as_deref() == Some(data.sha256.as_str()) {
        return Ok(());
    }
    refuse_replacing(phase, current.as_deref(), submissions)?;
    sqlx::query(
        "INSERT INTO datasets (sha256, name, bytes, tokens, added_at, added_by) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (sha256) DO NOTHING",
    )
    .bind(&data.sha256)
    .bind(&data.name)
    .bind(data.bytes)
    .bind(data.tokens)
    .bind(data.added_at)
    .bind(by)
    .execute(&mut *tx)
    .await?;
    let done = sqlx::query("UPDATE phases SET data_sha256 = ?, updated_at = ? WHERE number = ?")
        .bind(&data.sha256)
        .bind(data.added_at)
        .bind(i64::from(phase))
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("there is no phase {phase}")));
    }
    crate::public_log::log_data(&mut tx, phase, data.added_at).await?;
    crate::audit::record(
        &mut tx,
        crate::audit::Change {
            actor: by,
            action: "held-out data attached",
            subject: format!("phase {phase}"),
            reason: "",
            detail: serde_json::json!({
                "sha256": data.sha256,
                "name": data.name,
                "tokens": data.tokens,
                "replaced": current,
            }),
            at: data.added_at,
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(phase, sha256 = %data.sha256, "held-out data attached");
    Ok(())
}

/// The held-out data of a phase, if it has any.
pub async fn of_phase(pool: &SqlitePool, phase: u8) -> Result<Option<Dataset>> {
    Ok(sqlx::query_as(
        "SELECT d.sha256, d.name, d.bytes, d.tokens, d.added_at
         FROM phases p JOIN datasets d ON d.sha256 = p.data_sha256 WHERE p.number = ?",
    )
    .bind(i64::from(phase))
    .fetch_optional(pool)
    .await?)
}

/// Whether a shard with this hash is registered (attached to some phase now or before).
pub async fn is_registered(pool: &SqlitePool, sha256: &str) -> Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM datasets WHERE sha256 = ?")
        .bind(sha256)
        .fetch_one(pool)
        .await?;
    Ok(n > 0)
}

/// Refuses, before any byte of new data is received, what [`attach`] would refuse
/// (but attaching the same data again): an unknown phase, or one whose current data has
/// submissions.
pub async fn check_replaceable(pool: &SqlitePool, phase: u8) -> Result<()> {
    let (current, submissions) = current_data(pool, phase).await?;
    refuse_replacing(phase, current.as_deref(), submissions)
}

/// Data that scored submissions is never replaced: their scores would no longer mean
/// what the phase says.
fn refuse_replacing(phase: u8, current: Option<&str>, submissions: i64) -> Result<()> {
    if current.is_some() && submissions > 0 {
        return Err(StoreError::Refused(format!(
            "phase {phase} has {submissions} submissions for its current held-out data; it cannot be replaced"
        )));
    }
    Ok(())
}

/// The hash of phase `phase`'s current held-out data and the phase's submission count.
async fn current_data<'e, E>(executor: E, phase: u8) -> Result<(Option<String>, i64)>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    let current: Option<(Option<String>, i64)> = sqlx::query_as(
        "SELECT data_sha256, (SELECT COUNT(*) FROM submissions s WHERE s.phase = p.number)
         FROM phases p WHERE number = ?",
    )
    .bind(i64::from(phase))
    .fetch_optional(executor)
    .await?;
    current.ok_or_else(|| StoreError::NotFound(format!("there is no phase {phase}")))
}
