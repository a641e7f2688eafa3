//! Ascent's persistence layer: every SQL query lives here, behind functions named
//! for what they do in the domain. SQLite (WAL) is the embedded default; queries stay
//! within the SQL that PostgreSQL also speaks.

pub mod accounts;
pub mod api_tokens;
pub mod audit;
pub mod console;
pub mod copies;
pub mod datasets;
pub mod entrants;
pub mod jobs;
pub mod lifecycle;
pub mod moderation;
pub mod notifications;
pub mod opened;
pub mod phases;
pub mod profiles;
pub mod public_log;
pub mod resets;
pub mod rewards;
pub mod sessions;
pub mod standings;
pub mod submissions;
pub mod uploads;
pub mod workers;

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
pub use sqlx::SqlitePool;

/// The migrations in `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// The one error type of the store's boundary.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The request conflicts with what exists (an email already registered, say).
    #[error("{0}")]
    Conflict(String),
    /// The rules refuse it (a closed phase, a spent quota, a copy): the message says why.
    #[error("{0}")]
    Refused(String),
    /// Something the caller asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A stored value cannot be read back (a bug or a hand-edited database).
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Opens (creating if needed) the database at `url` with the settings Ascent relies on.
pub async fn connect(url: &str) -> Result<SqlitePool> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// Brings the schema up to date; safe to run at every start.
pub async fn migrate(pool: &SqlitePool) -> Result<()> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// Starts a transaction that writes. `BEGIN IMMEDIATE` takes the write lock up front
/// (waiting out other writers with the busy timeout), so a transaction that reads
/// before it writes cannot fail with `SQLITE_BUSY_SNAPSHOT` when another connection
/// (a worker's claim, a heartbeat) committed in between.
pub(crate) async fn write(pool: &SqlitePool) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
    Ok(pool.begin_with("BEGIN IMMEDIATE").await?)
}

/// Current time in unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// 32 random bytes as hex: session tokens, CSRF tokens.
pub fn random_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Hashing(format!("no randomness: {e}")))?;
    Ok(hex::encode(bytes))
}

pub(crate) fn sha256_hex(value: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(value.as_bytes()))
}

/// Reads an integer column that must be non-negative into an unsigned type.
pub(crate) fn unsigned<T: TryFrom<i64>>(value: i64, what: &str) -> Result<T> {
    T::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} is {value}")))
}
