//! Sessions: a random token in the browser's cookie, its SHA-256 in the database.

use ascent_domain::views::Viewer;
use sqlx::SqlitePool;

use crate::accounts::user_by_id;
use crate::{now, random_token, sha256_hex, Result};

/// How long a session lasts without a new login.
pub const SESSION_SECS: i64 = 30 * 24 * 3600;

/// Starts a session for a user and returns the token for the cookie.
pub async fn start(pool: &SqlitePool, user_id: i64) -> Result<String> {
    let token = random_token()?;
    let at = now();
    sqlx::query(
        "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
    )
    .bind(sha256_hex(&token))
    .bind(user_id)
    .bind(at)
    .bind(at + SESSION_SECS)
    .execute(pool)
    .await?;
    Ok(token)
}

/// The signed-in user of a live session token.
pub async fn viewer(pool: &SqlitePool, token: &str) -> Result<Option<Viewer>> {
    let user_id: Option<i64> =
        sqlx::query_scalar("SELECT user_id FROM sessions WHERE token_hash = ? AND expires_at > ?")
            .bind(sha256_hex(token))
            .bind(now())
            .fetch_optional(pool)
            .await?;
    match user_id {
        Some(id) => user_by_id(pool, id).await,
        None => Ok(None),
    }
}

/// Ends a session; ending an unknown one is not an error.
pub async fn end(pool: &SqlitePool, token: &str) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = ?")
        .bind(sha256_hex(token))
        .execute(pool)
        .await?;
    Ok(())
}

/// Deletes expired sessions; returns how many.
pub async fn purge_expired(pool: &SqlitePool) -> Result<u64> {
    let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= ?")
        .bind(now())
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ascent_domain::account::{Email, Handle, Password};
    use ascent_domain::views::Role;

    #[sqlx::test(migrations = "../migrations")]
    async fn a_session_identifies_its_user_until_ended(pool: SqlitePool) -> Result<()> {
        let ada = crate::accounts::register(
            &pool,
            &Email::parse("ada@example.org").expect("email"),
            &Handle::parse("ada").expect("handle"),
            &Password::parse("correct horse battery").expect("password"),
            Role::Contributor,
        )
        .await?;
        let token = start(&pool, ada.id).await?;
        let stored: String = sqlx::query_scalar("SELECT token_hash FROM sessions")
            .fetch_one(&pool)
            .await?;
        assert_ne!(stored, token, "only the hash is stored");
        assert_eq!(viewer(&pool, &token).await?, Some(ada));
        assert_eq!(viewer(&pool, "forged").await?, None);
        end(&pool, &token).await?;
        assert_eq!(viewer(&pool, &token).await?, None);
        Ok(())
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn expired_sessions_do_not_count(pool: SqlitePool) -> Result<()> {
        sqlx::query("INSERT INTO users (email, handle, password_hash, created_at) VALUES ('a@b.co', 'abc', 'x', 0)")
            .execute(&pool)
            .await?;
        let token = start(&pool, 1).await?;
        sqlx::query("UPDATE sessions SET expires_at = 1")
            .execute(&pool)
            .await?;
        assert_eq!(viewer(&pool, &token).await?, None);
        assert_eq!(purge_expired(&pool).await?, 1);
        Ok(())
    }
}
