//! Accounts: registration, password checks (argon2id) and the login throttle's memory.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use ascent_domain::account::{Email, Handle, Password};
use ascent_domain::throttle::FailureRecord;
use ascent_domain::views::{Role, Viewer};
use sqlx::SqlitePool;

use crate::{now, Result, StoreError};

/// Hashes a password with argon2id and a random salt, off the async runtime.
pub async fn hash_password(password: &Password) -> Result<String> {
    let password = password.expose().to_owned();
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| StoreError::Hashing(e.to_string()))?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| StoreError::Hashing(e.to_string()))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| StoreError::Hashing(e.to_string()))
    })
    .await
    .map_err(|e| StoreError::Hashing(e.to_string()))?
}

/// Checks a password against a stored hash, off the async runtime.
async fn password_matches(password: String, stored: String) -> Result<bool> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&stored).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .map_err(|e| StoreError::Hashing(e.to_string()))?
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: i64,
    email: String,
    handle: String,
    role: String,
}

impl TryFrom<UserRow> for Viewer {
    type Error = StoreError;
    fn try_from(row: UserRow) -> Result<Viewer> {
        let role = Role::parse(&row.role).ok_or_else(|| {
            StoreError::Corrupt(format!("user {} has role {:?}", row.id, row.role))
        })?;
        Ok(Viewer {
            id: row.id,
            handle: row.handle,
            email: row.email,
            role,
        })
    }
}

/// Creates an account. An email or handle already in use is a `Conflict`.
pub async fn register(
    pool: &SqlitePool,
    email: &Email,
    handle: &Handle,
    password: &Password,
    role: Role,
) -> Result<Viewer> {
    let hash = hash_password(password).await?;
    let inserted = sqlx::query_scalar::<_, i64>(
        "INSERT INTO users (email, handle, password_hash, role, created_at)
         VALUES (?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(email.as_str())
    .bind(handle.as_str())
    .bind(&hash)
    .bind(role.as_str())
    .bind(now())
    .fetch_one(pool)
    .await;
    match inserted {
        Ok(id) => Ok(Viewer {
            id,
            handle: handle.as_str().to_owned(),
            email: email.as_str().to_owned(),
            role,
        }),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            let taken = if e.message().contains("users.email") {
                "an account with this email already exists; log in instead"
            } else {
                "this name is taken; choose another"
            };
            Err(StoreError::Conflict(taken.to_owned()))
        }
        Err(e) => Err(e.into()),
    }
}

/// The account with this email and password, if both match. Runs the hash check even
/// for an unknown email so response times do not reveal which emails exist.
pub async fn authenticate(
    pool: &SqlitePool,
    email: &Email,
    password: &str,
) -> Result<Option<Viewer>> {
    let row: Option<(i64, String, String, String, String)> =
        sqlx::query_as("SELECT id, email, handle, role, password_hash FROM users WHERE email = ?")
            .bind(email.as_str())
            .fetch_optional(pool)
            .await?;
    let Some((id, email, handle, role, stored)) = row else {
        let decoy = decoy_hash().await?;
        password_matches(password.to_owned(), decoy).await?;
        return Ok(None);
    };
    if !password_matches(password.to_owned(), stored).await? {
        return Ok(None);
    }
    Viewer::try_from(UserRow {
        id,
        email,
        handle,
        role,
    })
    .map(Some)
}

async fn decoy_hash() -> Result<String> {
    static DECOY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DECOY
        .get_or_try_init(|| async {
            let password = Password::parse("decoy password never used")
                .map_err(|e| StoreError::Hashing(e.to_string()))?;
            hash_password(&password).await
        })
        .await
        .cloned()
}

/// Changes user `user_id`'s password if `current` is their password now, and ends every
/// other session of theirs (the one with token `keep`, if any, stays), in one
/// transaction. Returns whether `current` matched; nothing changes when it did not.
pub async fn change_password(
    pool: &SqlitePool,
    user_id: i64,
    current: &str,
    new: &Password,
    keep: Option<&str>,
) -> Result<bool> {
    let stored: Option<String> = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = ?")
        .bind(user_id)
        .fetch_optional(pool)
        .await?;
    let Some(stored) = stored else {
        return Err(StoreError::NotFound(format!("user {user_id}")));
    };
    if !password_matches(current.to_owned(), stored.clone()).await? {
        return Ok(false);
    }
    let hash = hash_password(new).await?;
    let mut tx = crate::write(pool).await?;
    // Changed meanwhile (another tab, say): the check above was against another hash.
    let updated =
        sqlx::query("UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?")
            .bind(&hash)
            .bind(user_id)
            .bind(&stored)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    if updated == 0 {
        return Err(StoreError::Conflict(
            "the password was changed meanwhile; reload and try again".into(),
        ));
    }
    crate::sessions::end_others_in(&mut tx, user_id, keep).await?;
    tx.commit().await?;
    Ok(true)
}

/// Makes an existing account an organizer, or creates one with this password.
/// Returns whether the account was created.
pub async fn ensure_organizer(
    pool: &SqlitePool,
    email: &Email,
    handle: &Handle,
    password: &Password,
) -> Result<bool> {
    let promoted = sqlx::query("UPDATE users SET role = 'organizer' WHERE email = ?")
        .bind(email.as_str())
        .execute(pool)
        .await?
        .rows_affected();
    if promoted > 0 {
        return Ok(false);
    }
    register(pool, email, handle, password, Role::Organizer).await?;
    Ok(true)
}

pub async fn user_by_id(pool: &SqlitePool, id: i64) -> Result<Option<Viewer>> {
    let row: Option<UserRow> =
        sqlx::query_as("SELECT id, email, handle, role FROM users WHERE id = ?")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    row.map(Viewer::try_from).transpose()
}

/// The account called `handle` (any case: handles are stored lowercase).
pub async fn user_by_handle(pool: &SqlitePool, handle: &str) -> Result<Option<Viewer>> {
    let row: Option<UserRow> =
        sqlx::query_as("SELECT id, email, handle, role FROM users WHERE handle = ?")
            .bind(handle.to_lowercase())
            .fetch_optional(pool)
            .await?;
    row.map(Viewer::try_from).transpose()
}

/// Failed logins recorded for a throttle key.
pub async fn login_failures(pool: &SqlitePool, key: &str) -> Result<Option<FailureRecord>> {
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT failures, last_failure_at FROM login_failures WHERE key = ?")
            .bind(key)
            .fetch_optional(pool)
            .await?;
    row.map(|(failures, last_failure_at)| {
        Ok(FailureRecord {
            failures: crate::unsigned(failures, "login failure count")?,
            last_failure_at,
        })
    })
    .transpose()
}

pub async fn save_login_failures(
    pool: &SqlitePool,
    key: &str,
    record: FailureRecord,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO login_failures (key, failures, last_failure_at) VALUES (?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET failures = excluded.failures,
                                         last_failure_at = excluded.last_failure_at",
    )
    .bind(key)
    .bind(i64::from(record.failures))
    .bind(record.last_failure_at)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn clear_login_failures(pool: &SqlitePool, key: &str) -> Result<()> {
    sqlx::query("DELETE FROM login_failures WHERE key = ?")
        .bind(key)
        .execute(pool)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(email: &str, handle: &str, password: &str) -> (Email, Handle, Password) {
        (
            Email::parse(email).expect("email"),
            Handle::parse(handle).expect("handle"),
            Password::parse(password).expect("password"),
        )
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn register_then_authenticate(pool: SqlitePool) -> Result<()> {
        let (email, handle, password) = parsed("ada@example.org", "ada", "correct horse battery");
        let ada = register(&pool, &email, &handle, &password, Role::Contributor).await?;
        let stored: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = ?")
            .bind(ada.id)
            .fetch_one(&pool)
            .await?;
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert_eq!(
            authenticate(&pool, &email, "correct horse battery").await?,
            Some(ada)
        );
        assert_eq!(
            authenticate(&pool, &email, "wrong horse battery").await?,
            None
        );
        let stranger = Email::parse("bob@example.org").expect("email");
        assert_eq!(
            authenticate(&pool, &stranger, "correct horse battery").await?,
            None
        );
        Ok(())
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn duplicate_email_or_handle_is_a_conflict(pool: SqlitePool) -> Result<()> {
        let (email, handle, password) = parsed("ada@example.org", "ada", "correct horse battery");
        register(&pool, &email, &handle, &password, Role::Contributor).await?;
        let other = Handle::parse("ada2").expect("handle");
        let again = register(&pool, &email, &other, &password, Role::Contributor).await;
        assert!(matches!(again, Err(StoreError::Conflict(m)) if m.contains("email")));
        let other_email = Email::parse("ada2@example.org").expect("email");
        let again = register(&pool, &other_email, &handle, &password, Role::Contributor).await;
        assert!(matches!(again, Err(StoreError::Conflict(m)) if m.contains("name")));
        Ok(())
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn ensure_organizer_promotes_or_creates(pool: SqlitePool) -> Result<()> {
        let (email, handle, password) = parsed("org@example.org", "org", "correct horse battery");
        assert!(ensure_organizer(&pool, &email, &handle, &password).await?);
        assert!(!ensure_organizer(&pool, &email, &handle, &password).await?);
        let who = authenticate(&pool, &email, "correct horse battery").await?;
        assert_eq!(who.map(|v| v.role), Some(Role::Organizer));
        Ok(())
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn login_failures_round_trip(pool: SqlitePool) -> Result<()> {
        assert_eq!(login_failures(&pool, "account:x").await?, None);
        let record = FailureRecord {
            failures: 3,
            last_failure_at: 42,
        };
        save_login_failures(&pool, "account:x", record).await?;
        assert_eq!(login_failures(&pool, "account:x").await?, Some(record));
        clear_login_failures(&pool, "account:x").await?;
        assert_eq!(login_failures(&pool, "account:x").await?, None);
        Ok(())
    }
}
