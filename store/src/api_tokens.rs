//! Contributors' API tokens, for `ascent-eval submit` and other programs. A token is
//! shown once when created; only its SHA-256 is stored.

use ascent_domain::protocol::API_TOKEN_PREFIX;
use ascent_domain::views::Viewer;
use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;

use crate::accounts::user_by_id;
use crate::{random_token, sha256_hex, Result, StoreError};

/// A token as its owner sees it in the list (never the secret itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct ApiTokenInfo {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// Creates a token named `name` for `user_id`; returns it, to be shown once.
pub async fn create(pool: &SqlitePool, user_id: i64, name: &str, now: i64) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 60 {
        return Err(StoreError::Conflict(
            "a token needs a name of 1 to 60 characters, e.g. the machine it is for".into(),
        ));
    }
    let token = format!("{API_TOKEN_PREFIX}{}", random_token()?);
    sqlx::query(
        "INSERT INTO api_tokens (user_id, name, token_hash, created_at) VALUES (?, ?, ?, ?)",
    )
    .bind(user_id)
    .bind(name)
    .bind(sha256_hex(&token))
    .bind(now)
    .execute(pool)
    .await?;
    tracing::info!(user_id, name, "API token created");
    Ok(token)
}

/// The user's tokens that still work, newest first.
pub async fn list(pool: &SqlitePool, user_id: i64) -> Result<Vec<ApiTokenInfo>> {
    Ok(sqlx::query_as(
        "SELECT id, name, created_at, last_used_at FROM api_tokens
         WHERE user_id = ? AND revoked_at IS NULL ORDER BY created_at DESC, id DESC",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?)
}

/// Revokes one of the user's tokens; another user's token is "not found".
pub async fn revoke(pool: &SqlitePool, user_id: i64, token_id: i64, now: i64) -> Result<()> {
    let done = sqlx::query(
        "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(token_id)
    .bind(user_id)
    .execute(pool)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound("no such token".into()));
    }
    tracing::info!(user_id, token_id, "API token revoked");
    Ok(())
}

/// The user a working token belongs to, noting its use.
pub async fn viewer(pool: &SqlitePool, token: &str, now: i64) -> Result<Option<Viewer>> {
    if !token.starts_with(API_TOKEN_PREFIX) {
        return Ok(None);
    }
    let user_id: Option<i64> = sqlx::query_scalar(
        "UPDATE api_tokens SET last_used_at = ? WHERE token_hash = ? AND revoked_at IS NULL
         RETURNING user_id",
    )
    .bind(now)
    .bind(sha256_hex(token))
    .fetch_optional(pool)
    .await?;
    match user_id {
        Some(id) => user_by_id(pool, id).await,
        None => Ok(None),
    }
}
