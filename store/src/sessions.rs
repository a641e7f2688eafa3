//! Sessions: a random token in the browser's cookie, its SHA-256 in the database.

use ascent_domain::views::Viewer;
use sqlx::{SqliteConnection, SqlitePool};

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

/// Ends every session of user `user_id` but the one with token `keep`; returns how many.
pub async fn end_others(pool: &SqlitePool, user_id: i64, keep: Option<&str>) -> Result<u64> {
    let mut conn = pool.acquire().await?;
    end_others_in(&mut conn, user_id, keep).await
}

pub(crate) async fn end_others_in(
    conn: &mut SqliteConnection,
    user_id: i64,
    keep: Option<&str>,
) -> Result<u64> {
    // Expired sessions go too, but only live ones are counted.
    let ended: Vec<i64> = sqlx::query_scalar(
        "DELETE FROM sessions WHERE user_id = ? AND token_hash IS NOT ? RETURNING expires_at",
    )
    .bind(user_id)
    .bind(keep.map(sha256_hex))
    .fetch_all(conn)
    .await?;
    let at = now();
    Ok(ended.into_iter().filter(|&expires| expires > at).count() as u64)
}

/// How many live sessions user `user_id` has besides the one with token `keep`.
pub async fn count_others(pool: &SqlitePool, user_id: i64, keep: Option<&str>) -> Result<u64> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sessions WHERE user_id = ? AND expires_at > ? AND token_hash IS NOT ?",
    )
    .bind(user_id)
    .bind(now())
    .bind(keep.map(sha256_hex))
    .fetch_one(pool)
    .await?;
    crate::unsigned(n, "session count")
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
    async fn a_password_change_keeps_this_session_and_ends_the_others(
        pool: SqlitePool,
    ) -> Result<()> {
        let password = Password::parse("correct horse battery").expect("password");
        let register = |email: &'static str, handle: &'static str| {
            let (pool, password) = (pool.clone(), password.clone());
            async move {
                crate::accounts::register(
                    &pool,
                    &Email::parse(email).expect("email"),
                    &Handle::parse(handle).expect("handle"),
                    &password,
                    Role::Contributor,
                )
                .await
            }
        };
        let ada = register("ada@example.org", "ada").await?;
        let bob = register("bob@example.org", "bob").await?;
        let (here, laptop, phone) = (
            start(&pool, ada.id).await?,
            start(&pool, ada.id).await?,
            start(&pool, ada.id).await?,
        );
        let bobs = start(&pool, bob.id).await?;
        assert_eq!(count_others(&pool, ada.id, Some(&here)).await?, 2);
        assert_eq!(count_others(&pool, ada.id, None).await?, 3);

        let new = Password::parse("a new and longer one").expect("password");
        let wrong =
            crate::accounts::change_password(&pool, ada.id, "not it", &new, Some(&here)).await?;
        assert!(!wrong, "a wrong current password changes nothing");
        assert_eq!(count_others(&pool, ada.id, Some(&here)).await?, 2);

        let changed = crate::accounts::change_password(
            &pool,
            ada.id,
            "correct horse battery",
            &new,
            Some(&here),
        )
        .await?;
        assert!(changed);
        assert!(viewer(&pool, &here).await?.is_some(), "this session stays");
        assert_eq!(viewer(&pool, &laptop).await?, None);
        assert_eq!(viewer(&pool, &phone).await?, None);
        assert!(
            viewer(&pool, &bobs).await?.is_some(),
            "another user's stays"
        );
        let email = Email::parse("ada@example.org").expect("email");
        assert!(
            crate::accounts::authenticate(&pool, &email, "a new and longer one")
                .await?
                .is_some()
        );
        assert!(
            crate::accounts::authenticate(&pool, &email, "correct horse battery")
                .await?
                .is_none()
        );

        let _again = start(&pool, ada.id).await?;
        assert_eq!(end_others(&pool, ada.id, Some(&here)).await?, 1);
        assert!(viewer(&pool, &here).await?.is_some());
        assert_eq!(end_others(&pool, ada.id, None).await?, 1);
        assert_eq!(viewer(&pool, &here).await?, None);
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
