//! Workers: the machines that score, each with a token an organizer created (only its
//! SHA-256 is stored). The server's in-process worker is the `built-in` one, whose
//! token is replaced at every start.

use ascent_domain::attestation::TeeKind;
use ascent_domain::protocol::WORKER_TOKEN_PREFIX;
use ascent_domain::public_log::Event;
use ascent_domain::statement::check_public_key;
use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;

use crate::{public_log, random_token, sha256_hex, Result, StoreError};

/// Name of the server's own worker.
pub const BUILT_IN: &str = "built-in";

/// A worker as the organizer console lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct WorkerInfo {
    pub id: i64,
    pub name: String,
    pub built_in: bool,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub last_seen_at: Option<i64>,
    pub device: Option<String>,
    pub evaluator_version: Option<String>,
    /// The submission it holds a live lease on, if any.
    pub current_submission: Option<i64>,
    /// The kind of TEE evidence verified for it (`attestation::TeeKind`), if any.
    pub attestation: Option<String>,
}

fn check_name(name: &str) -> Result<&str> {
    let name = name.trim();
    let ok = !name.is_empty()
        && name.len() <= 40
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok && name != BUILT_IN {
        Ok(name)
    } else {
        Err(StoreError::Conflict(
            "a worker name is 1 to 40 letters, digits, '-', '_' or '.' (and not \"built-in\")"
                .into(),
        ))
    }
}

/// Registers a worker with the public half of its signing key (`ascent-eval key`);
/// returns its token, to be shown once.
pub async fn create(
    pool: &SqlitePool,
    name: &str,
    public_key: &str,
    created_by: Option<i64>,
    now: i64,
) -> Result<String> {
    create_attested(pool, name, public_key, None, created_by, now).await
}

/// [`create`], with the TEE evidence that `attestation::verify` accepted for its key
/// (its kind and the evidence as received), recorded in the same transaction.
pub async fn create_attested(
    pool: &SqlitePool,
    name: &str,
    public_key: &str,
    attestation: Option<(TeeKind, &str)>,
    created_by: Option<i64>,
    now: i64,
) -> Result<String> {
    let name = check_name(name)?;
    let public_key = check_public_key(public_key).map_err(|e| {
        StoreError::Conflict(format!(
            "the worker's public key: {e} (print it on the worker with `ascent-eval key`)"
        ))
    })?;
    let token = format!("{WORKER_TOKEN_PREFIX}{}", random_token()?);
    let mut tx = crate::write(pool).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO workers (name, token_hash, created_at, created_by, public_key, attestation,
                              attestation_evidence)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         RETURNING id",
    )
    .bind(name)
    .bind(sha256_hex(&token))
    .bind(now)
    .bind(created_by)
    .bind(&public_key)
    .bind(attestation.map(|(kind, _)| kind.as_str()))
    .bind(attestation.map(|(_, evidence)| evidence))
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| match e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(format!("a worker named {name:?} exists already"))
        }
        other => other.into(),
    })?;
    let registered = Event::WorkerRegistered {
        worker: id,
        name: name.to_owned(),
        public_key: public_key.clone(),
    };
    public_log::append(&mut tx, &registered, now).await?;
    if let Some((kind, _)) = attestation {
        let attested = Event::WorkerAttested {
            worker: id,
            tee: kind.as_str().to_owned(),
        };
        public_log::append(&mut tx, &attested, now).await?;
    }
    crate::audit::record(
        &mut tx,
        crate::audit::Change {
            actor: created_by,
            action: "worker registered",
            subject: format!("worker {id} ({name})"),
            reason: "",
            detail: serde_json::json!({
                "public_key": public_key,
                "attestation": attestation.map(|(kind, _)| kind.as_str()),
            }),
            at: now,
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(name, attestation = ?attestation.map(|(kind, _)| kind.as_str()), "worker registered");
    Ok(token)
}

/// Gives the built-in worker a fresh token (the old one dies with the old process) and
/// its signing key's public half; returns its id and the token.
pub async fn renew_built_in(
    pool: &SqlitePool,
    public_key: &str,
    now: i64,
) -> Result<(i64, String)> {
    let token = format!("{WORKER_TOKEN_PREFIX}{}", random_token()?);
    let mut tx = crate::write(pool).await?;
    let before: Option<(Option<String>, Option<i64>)> =
        sqlx::query_as("SELECT public_key, revoked_at FROM workers WHERE name = ?")
            .bind(BUILT_IN)
            .fetch_optional(&mut *tx)
            .await?;
    let id = sqlx::query_scalar(
        "INSERT INTO workers (name, token_hash, built_in, created_at, public_key) VALUES (?, ?, 1, ?, ?)
         ON CONFLICT (name) DO UPDATE SET token_hash = excluded.token_hash, revoked_at = NULL,
             public_key = excluded.public_key
         RETURNING id",
    )
    .bind(BUILT_IN)
    .bind(sha256_hex(&token))
    .bind(now)
    .bind(public_key)
    .fetch_one(&mut *tx)
    .await?;
    // The log learns the key when it is new to it (a new token alone changes nothing).
    if before != Some((Some(public_key.to_owned()), None)) {
        let registered = Event::WorkerRegistered {
            worker: id,
            name: BUILT_IN.to_owned(),
            public_key: public_key.to_owned(),
        };
        public_log::append(&mut tx, &registered, now).await?;
    }
    tx.commit().await?;
    Ok((id, token))
}

/// The kind of attestation a worker has, if any.
pub async fn attestation(pool: &SqlitePool, worker_id: i64) -> Result<Option<TeeKind>> {
    let kind: Option<Option<String>> =
        sqlx::query_scalar("SELECT attestation FROM workers WHERE id = ?")
            .bind(worker_id)
            .fetch_optional(pool)
            .await?;
    Ok(kind.flatten().as_deref().and_then(TeeKind::parse))
}

/// Revokes a worker by id. Its leases lapse; its late results are refused.
/// Revokes a worker, by organizer `by` (`None`: the admin command line).
pub async fn revoke(pool: &SqlitePool, worker_id: i64, by: Option<i64>, now: i64) -> Result<()> {
    let mut tx = crate::write(pool).await?;
    let name: Option<String> = sqlx::query_scalar(
        "UPDATE workers SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL RETURNING name",
    )
    .bind(now)
    .bind(worker_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(name) = name else {
        return Err(StoreError::NotFound("no such active worker".into()));
    };
    public_log::append(&mut tx, &Event::WorkerRevoked { worker: worker_id }, now).await?;
    crate::audit::record(
        &mut tx,
        crate::audit::Change {
            actor: by,
            action: "worker revoked",
            subject: format!("worker {worker_id} ({name})"),
            reason: "",
            detail: serde_json::json!({}),
            at: now,
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(worker_id, "worker revoked");
    Ok(())
}

/// The worker a live token belongs to, noting that it was seen.
pub async fn authenticate(pool: &SqlitePool, token: &str, now: i64) -> Result<Option<i64>> {
    if !token.starts_with(WORKER_TOKEN_PREFIX) {
        return Ok(None);
    }
    Ok(sqlx::query_scalar(
        "UPDATE workers SET last_seen_at = ? WHERE token_hash = ? AND revoked_at IS NULL RETURNING id",
    )
    .bind(now)
    .bind(sha256_hex(token))
    .fetch_optional(pool)
    .await?)
}

/// The public half of a worker's signing key, as registered.
pub async fn public_key(pool: &SqlitePool, worker_id: i64) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT public_key FROM workers WHERE id = ?")
            .bind(worker_id)
            .fetch_optional(pool)
            .await?
            .flatten(),
    )
}

/// Notes what a worker runs on (from its claim requests).
pub async fn describe(
    pool: &SqlitePool,
    worker_id: i64,
    device: &str,
    version: &str,
) -> Result<()> {
    sqlx::query("UPDATE workers SET device = ?, evaluator_version = ? WHERE id = ?")
        .bind(device.chars().take(40).collect::<String>())
        .bind(version.chars().take(40).collect::<String>())
        .bind(worker_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Every worker, active first, with the job it holds.
pub async fn list(pool: &SqlitePool, now: i64) -> Result<Vec<WorkerInfo>> {
    Ok(sqlx::query_as(
        "SELECT w.id, w.name, w.built_in, w.created_at, w.revoked_at, w.last_seen_at, w.device,
                w.evaluator_version, w.attestation,
                (SELECT j.submission_id FROM jobs j
                 WHERE j.worker_id = w.id AND j.finished_at IS NULL AND j.lease_expires_at >= ?
                 LIMIT 1) AS current_submission
         FROM workers w ORDER BY w.revoked_at IS NOT NULL, w.name",
    )
    .bind(now)
    .fetch_all(pool)
    .await?)
}
