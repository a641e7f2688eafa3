//! Password reset links: an organizer issues one for a contributor who lost their
//! password (there is no email here to send it by); it sets a new password once, within
//! an hour, and ends every session of the account. Only the token's SHA-256 is stored.

use ascent_domain::account::Password;
use ascent_domain::protocol::RESET_TOKEN_PREFIX;
use ascent_domain::views::Viewer;
use sqlx::SqlitePool;

use crate::accounts::{hash_password, user_by_handle, user_by_id};
use crate::{random_token, sha256_hex, Result, StoreError};

/// How long a reset link works.
pub const RESET_SECS: i64 = 3600;

/// Issues a reset link's token for the account `handle` (case-insensitive), replacing
/// any earlier one of that account, and records it in the audit log with the organizer
/// `actor` (`None`: the server's shell) and their `reason` (required). `NotFound` for no
/// such account.
pub async fn issue(
    pool: &SqlitePool,
    handle: &str,
    actor: Option<i64>,
    reason: &str,
    at: i64,
) -> Result<(Viewer, String)> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(StoreError::Refused(
            "say why the link is issued (e.g. how the contributor proved who they are)".into(),
        ));
    }
    let viewer = user_by_handle(pool, handle)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no account is called {handle:?}")))?;
    let token = format!("{RESET_TOKEN_PREFIX}{}", random_token()?);
    let mut tx = crate::write(pool).await?;
    sqlx::query("DELETE FROM password_resets WHERE user_id = ?")
        .bind(viewer.id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO password_resets (token_hash, user_id, created_at, expires_at)
         VALUES (?, ?, ?, ?)",
    )
    .bind(sha256_hex(&token))
    .bind(viewer.id)
    .bind(at)
    .bind(at + RESET_SECS)
    .execute(&mut *tx)
    .await?;
    crate::audit::record(
        &mut tx,
        crate::audit::Change {
            actor,
            action: "password reset link issued",
            subject: format!("contributor {}", viewer.handle),
            reason,
            detail: serde_json::json!({ "expires_at": at + RESET_SECS }),
            at,
        },
    )
    .await?;
    tx.commit().await?;
    Ok((viewer, token))
}

/// The account a live reset token is for.
pub async fn account_of(pool: &SqlitePool, token: &str, at: i64) -> Result<Option<Viewer>> {
    let id: Option<i64> = sqlx::query_scalar(
        "SELECT user_id FROM password_resets WHERE token_hash = ? AND expires_at > ?",
    )
    .bind(sha256_hex(token))
    .bind(at)
    .fetch_optional(pool)
    .await?;
    match id {
        Some(id) => user_by_id(pool, id).await,
        None => Ok(None),
    }
}

/// Sets the account's new password with a live token, uses the token up, ends every
/// session of the account and revokes its API tokens (a reset recovers an account
/// someone else may hold), and records it in the audit log, in one transaction. `None`
/// if the token is unknown, used or expired (nothing changes then).
pub async fn reset(
    pool: &SqlitePool,
    token: &str,
    new: &Password,
    at: i64,
) -> Result<Option<Viewer>> {
    // Hashed before the transaction: argon2 takes a while, and the write lock should not.
    let hash = hash_password(new).await?;
    let mut tx = crate::write(pool).await?;
    let id: Option<i64> = sqlx::query_scalar(
        "DELETE FROM password_resets WHERE token_hash = ? AND expires_at > ? RETURNING user_id",
    )
    .bind(sha256_hex(token))
    .bind(at)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(id) = id else {
        return Ok(None);
    };
    sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
        .bind(&hash)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM password_resets WHERE user_id = ?")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    crate::sessions::end_others_in(&mut tx, id, None).await?;
    let revoked = sqlx::query(
        "UPDATE api_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
    )
    .bind(at)
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    crate::audit::record(
        &mut tx,
        crate::audit::Change {
            actor: Some(id),
            action: "password reset with a link",
            subject: format!("user {id}"),
            reason: "",
            detail: serde_json::json!({ "api_tokens_revoked": revoked }),
            at,
        },
    )
    .await?;
    tx.commit().await?;
    user_by_id(pool, id).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{accounts, sessions};
    use ascent_domain::account::{Email, Handle};
    use ascent_domain::views::Role;

    #[sqlx::test(migrations = "../migrations")]
    async fn a_reset_link_works_once_within_the_hour_and_ends_every_session(
        pool: SqlitePool,
    ) -> Result<()> {
        let email = Email::parse("grace@example.org").expect("email");
        let grace = accounts::register(
            &pool,
            &email,
            &Handle::parse("grace").expect("handle"),
            &Password::parse("forgotten password").expect("password"),
            Role::Contributor,
        )
        .await?;
        let session = sessions::start(&pool, grace.id).await?;
        let api_token = crate::api_tokens::create(&pool, grace.id, "gpu box", 0).await?;
        let at = 1_000_000;
        let why = "asked from the registered address";
        assert!(matches!(
            issue(&pool, "nobody", None, why, at).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            issue(&pool, "grace", None, " ", at).await,
            Err(StoreError::Refused(_))
        ));
        let (_, first) = issue(&pool, "Grace", None, why, at).await?;
        let (for_whom, token) = issue(&pool, "grace", Some(grace.id), why, at).await?;
        assert!(token.starts_with(RESET_TOKEN_PREFIX));
        let audited: Vec<String> = sqlx::query_scalar(
            "SELECT reason FROM audit_log WHERE action = 'password reset link issued'",
        )
        .fetch_all(&pool)
        .await?;
        assert_eq!(audited, vec![why, why]);
        assert_eq!(for_whom, grace);
        assert_eq!(
            account_of(&pool, &first, at).await?,
            None,
            "replaced by the newer link"
        );
        assert_eq!(account_of(&pool, &token, at).await?, Some(grace.clone()));
        assert_eq!(
            account_of(&pool, &token, at + RESET_SECS).await?,
            None,
            "expired"
        );

        let new = Password::parse("remembered this time").expect("password");
        assert_eq!(
            reset(&pool, &token, &new, at + RESET_SECS).await?,
            None,
            "expired"
        );
        assert_eq!(reset(&pool, "forged", &new, at).await?, None);
        assert!(accounts::authenticate(&pool, &email, "forgotten password")
            .await?
            .is_some());

        assert_eq!(reset(&pool, &token, &new, at + 60).await?, Some(grace));
        assert_eq!(
            sessions::viewer(&pool, &session).await?,
            None,
            "sessions ended"
        );
        assert_eq!(
            crate::api_tokens::viewer(&pool, &api_token, at + 60).await?,
            None,
            "API tokens revoked"
        );
        assert!(
            accounts::authenticate(&pool, &email, "remembered this time")
                .await?
                .is_some()
        );
        assert!(accounts::authenticate(&pool, &email, "forgotten password")
            .await?
            .is_none());
        assert_eq!(reset(&pool, &token, &new, at + 60).await?, None, "used up");
        let stored: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM password_resets")
            .fetch_all(&pool)
            .await?;
        assert!(stored.is_empty());
        Ok(())
    }
}
