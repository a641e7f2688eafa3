//! Opening sealed winners: a promoted checkpoint that was encrypted to its phase's
//! evaluation key cannot be published by the server, which never holds that key. Once
//! the phase is finalized (and its rules open the weights), a holder of the key reveals
//! each file's age file key; the server decrypts the stored ciphertext with them, checks
//! that the plaintext is the checkpoint that was scored, and records it here and in the
//! public log (`Event::WeightsOpened`) in one transaction.

use ascent_domain::public_log::{Event, OpenedFile};
use sqlx::SqlitePool;

use crate::{notifications, public_log, unsigned, Result, StoreError};

/// A promoted encrypted checkpoint not yet opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub submission_id: i64,
    pub phase: u8,
    pub upload_id: String,
    pub encrypted_to: String,
    /// The tensors' hash the worker signed: the opened checkpoint must have it.
    pub weights_sha256: String,
    /// Its stored files: (encrypted name, bytes, sha256 of the ciphertext).
    pub files: Vec<(String, u64, String)>,
}

/// Submissions promoted by a finalized phase that opens weights, encrypted, scored and
/// stored here: their ciphertext is public (its keys will be), opened or not.
const PROMOTED_SEALED: &str = "SELECT s.id, s.phase, s.upload_id, s.encrypted_to, s.weights_sha256
     FROM final_standings f
     JOIN submissions s ON s.id = f.submission_id
     JOIN phases p ON p.number = f.phase
     WHERE f.advanced = 1 AND p.state = 'finalized' AND p.open_weights = 1
       AND s.encrypted_to IS NOT NULL AND s.upload_id IS NOT NULL
       AND s.weights_sha256 IS NOT NULL";

/// Those of [`PROMOTED_SEALED`] not opened yet.
const NOT_OPENED: &str = "NOT EXISTS (SELECT 1 FROM opened_files o WHERE o.submission_id = s.id)";

type Row = (i64, i64, String, String, String);

async fn with_files(conn: &mut sqlx::SqliteConnection, row: Row) -> Result<Sealed> {
    let (submission_id, phase, upload_id, encrypted_to, weights_sha256) = row;
    let files = crate::uploads::stored_files(conn, &upload_id).await?;
    Ok(Sealed {
        submission_id,
        phase: unsigned(phase, "phase")?,
        upload_id,
        encrypted_to,
        weights_sha256,
        files,
    })
}

/// The sealed winners encrypted to one of `keys`, oldest submission first.
pub async fn waiting(pool: &SqlitePool, keys: &[String]) -> Result<Vec<Sealed>> {
    let mut conn = pool.acquire().await?;
    let rows: Vec<Row> =
        sqlx::query_as(&format!("{PROMOTED_SEALED} AND {NOT_OPENED} ORDER BY s.id"))
            .fetch_all(&mut *conn)
            .await?;
    let mut sealed = Vec::new();
    for row in rows.into_iter().filter(|r| keys.contains(&r.3)) {
        sealed.push(with_files(&mut conn, row).await?);
    }
    Ok(sealed)
}

/// Submission `id`, if it is a sealed winner waiting to be opened (`waiting`), or one
/// opened or not (`!waiting`, whose ciphertext is public).
pub async fn sealed(pool: &SqlitePool, id: i64, waiting: bool) -> Result<Option<Sealed>> {
    let mut conn = pool.acquire().await?;
    let filter = if waiting { NOT_OPENED } else { "1 = 1" };
    let row: Option<Row> = sqlx::query_as(&format!("{PROMOTED_SEALED} AND {filter} AND s.id = ?"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        Some(row) => Ok(Some(with_files(&mut conn, row).await?)),
        None => Ok(None),
    }
}

/// Records submission `id` as opened: its plaintext files, stored in `dir` beside the
/// ciphertext, become its open weights. Refused unless it is still a sealed winner whose
/// files are exactly the `sealed` names and hashes of `files`.
pub async fn record(
    pool: &SqlitePool,
    id: i64,
    weights_sha256: &str,
    dir: &str,
    files: Vec<OpenedFile>,
    now: i64,
) -> Result<()> {
    let mut tx = crate::write(pool).await?;
    let row: Option<Row> =
        sqlx::query_as(&format!("{PROMOTED_SEALED} AND {NOT_OPENED} AND s.id = ?"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(row) = row else {
        return Err(StoreError::Refused(format!(
            "submission {id} is not a sealed checkpoint waiting to be opened"
        )));
    };
    let sealed = with_files(&mut tx, row).await?;
    let mut opened: Vec<(&str, &str)> = files
        .iter()
        .map(|f| (f.sealed.as_str(), f.sealed_sha256.as_str()))
        .collect();
    opened.sort_unstable();
    let stored: Vec<(&str, &str)> = sealed
        .files
        .iter()
        .map(|(n, _, sha)| (n.as_str(), sha.as_str()))
        .collect();
    if opened != stored {
        return Err(StoreError::Refused(format!(
            "submission {id}'s files are not the ones opened"
        )));
    }
    if weights_sha256 != sealed.weights_sha256 {
        return Err(StoreError::Refused(format!(
            "submission {id}'s opened weights hash to {weights_sha256}, not the scored {}",
            sealed.weights_sha256
        )));
    }
    for f in &files {
        sqlx::query(
            "INSERT INTO opened_files (submission_id, dir, sealed, file_key, name, bytes, sha256)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(dir)
        .bind(&f.sealed)
        .bind(&f.file_key)
        .bind(&f.name)
        .bind(i64::try_from(f.bytes).unwrap_or(i64::MAX))
        .bind(&f.sha256)
        .execute(&mut *tx)
        .await?;
    }
    let owner: i64 = sqlx::query_scalar("SELECT user_id FROM submissions WHERE id = ?")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    let event = Event::WeightsOpened {
        submission: id,
        weights_sha256: weights_sha256.to_owned(),
        files,
    };
    public_log::append(&mut tx, &event, now).await?;
    notifications::send(
        &mut tx,
        owner,
        &format!(
            "Your encrypted checkpoint, promoted in phase {}, was opened and is now published as open weights, as the phase's rules say.",
            sealed.phase
        ),
        &format!("/submissions/{id}"),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Where submission `id`'s opened plaintext is (the folder in its upload's directory) and
/// its files (name, bytes, sha256) by name; `None` unless it was opened.
pub async fn files(
    pool: &SqlitePool,
    id: i64,
) -> Result<Option<(String, Vec<(String, u64, String)>)>> {
    let rows: Vec<(String, String, i64, String)> = sqlx::query_as(
        "SELECT dir, name, bytes, sha256 FROM opened_files WHERE submission_id = ? ORDER BY name",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    let Some(dir) = rows.first().map(|r| r.0.clone()) else {
        return Ok(None);
    };
    let files = rows
        .into_iter()
        .map(|(_, name, bytes, sha)| Ok((name, unsigned(bytes, "bytes")?, sha)))
        .collect::<Result<_>>()?;
    Ok(Some((dir, files)))
}
