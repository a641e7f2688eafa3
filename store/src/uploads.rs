//! Resumable uploads and the submissions made from them.
//!
//! An upload is a set of checkpoint files for one phase; the server writes each file's
//! bytes as they arrive and records how many it holds. When every file is complete,
//! [`finish`] turns the upload into a queued submission and its job, in one transaction
//! that re-applies the rules of the door.

use ascent_domain::encryption::{all_encrypted, plain_name};
use ascent_domain::entry::{check_entry, quota_day, EntryFacts, Refusal};
use ascent_domain::protocol::{
    check_file_name, NewUpload, SubmissionCreated, UploadFileStatus, UploadStatus,
    MAX_CHECKPOINT_FILES,
};
use ascent_domain::PhaseState;
use sqlx::{SqliteConnection, SqlitePool};

use crate::{public_log, random_token, unsigned, Result, StoreError};

/// How long an unfinished upload lives after its last byte.
pub const UPLOAD_TTL_SECONDS: i64 = 24 * 60 * 60;

/// Gathers what the rules of the door need about `user_id` entering `phase` now.
pub async fn entry_facts(
    conn: &mut SqliteConnection,
    phase: u8,
    user_id: i64,
    bytes: u64,
    now: i64,
) -> Result<EntryFacts> {
    let (day_start, _) = quota_day(now);
    #[allow(clippy::type_complexity)]
    let row: Option<(String, i64, i64, i64, i64, bool, bool, i64)> = sqlx::query_as(
        "SELECT p.state, p.opens_at, p.closes_at, p.per_day, p.max_bytes, p.data_sha256 IS NOT NULL,
                EXISTS (SELECT 1 FROM phase_entrants e WHERE e.phase = p.number AND e.user_id = ?),
                (SELECT COUNT(*) FROM submissions s
                 WHERE s.phase = p.number AND s.user_id = ? AND s.created_at >= ? AND s.counts_toward_quota = 1)
         FROM phases p WHERE p.number = ?",
    )
    .bind(user_id)
    .bind(user_id)
    .bind(day_start)
    .bind(i64::from(phase))
    .fetch_optional(&mut *conn)
    .await?;
    let Some((state, opens_at, closes_at, per_day, max_bytes, has_data, is_entrant, used_today)) =
        row
    else {
        return Err(StoreError::NotFound(format!("there is no phase {phase}")));
    };
    let stored = PhaseState::ALL
        .into_iter()
        .find(|s| s.as_str() == state)
        .ok_or_else(|| StoreError::Corrupt(format!("phase state {state:?}")))?;
    Ok(EntryFacts {
        phase,
        state: stored.at_the_door(now, opens_at, closes_at),
        is_entrant,
        has_data,
        per_day: unsigned(per_day, "per_day")?,
        used_today: unsigned(used_today, "submission count")?,
        max_bytes: unsigned(max_bytes, "max_bytes")?,
        bytes,
        now,
    })
}

/// The facts of the door for `user_id` and `phase` now, before any file is chosen (the
/// submit page shows the quota and whether the contributor may enter): `bytes` is 0.
pub async fn entry_facts_now(
    pool: &SqlitePool,
    phase: u8,
    user_id: i64,
    now: i64,
) -> Result<EntryFacts> {
    let mut conn = pool.acquire().await?;
    entry_facts(&mut conn, phase, user_id, 0, now).await
}

/// Checks the file list of a new upload: plain checkpoint names, no repeats, a config
/// and weights, all encrypted (`NAME.age`) or none. Returns the total size and whether
/// the checkpoint is encrypted.
fn check_files(new: &NewUpload) -> Result<(u64, bool)> {
    if new.files.is_empty() || new.files.len() > MAX_CHECKPOINT_FILES {
        return Err(StoreError::Conflict(format!(
            "a checkpoint is 2 to {MAX_CHECKPOINT_FILES} files: config.json and its safetensors weights"
        )));
    }
    let mut names: Vec<&str> = Vec::with_capacity(new.files.len());
    let mut total: u64 = 0;
    for f in &new.files {
        check_file_name(&f.name).map_err(|e| StoreError::Conflict(e.to_string()))?;
        if names.contains(&f.name.as_str()) {
            return Err(StoreError::Conflict(format!(
                "{:?} is listed twice",
                f.name
            )));
        }
        if f.bytes == 0 {
            return Err(StoreError::Conflict(format!("{:?} is empty", f.name)));
        }
        names.push(&f.name);
        total = total.saturating_add(f.bytes);
    }
    let encrypted = all_encrypted(names.iter().copied()).ok_or_else(|| {
        StoreError::Conflict(
            "a checkpoint is encrypted whole: either every file is NAME.age or none is".into(),
        )
    })?;
    let plain: Vec<&str> = names.iter().map(|n| plain_name(n).unwrap_or(n)).collect();
    if !plain.contains(&"config.json") {
        return Err(StoreError::Conflict(
            "config.json is missing: a checkpoint needs its Hugging Face config".into(),
        ));
    }
    if !plain.iter().any(|n| n.ends_with(".safetensors")) {
        return Err(StoreError::Conflict(
            "no .safetensors weights: send model.safetensors (or the index and its shards)".into(),
        ));
    }
    Ok((total, encrypted))
}

/// Checks the key encrypted files say they are encrypted to (`encrypted_to`) against the
/// phase's evaluation key now: a phase without one takes no encrypted checkpoint (nobody
/// could decrypt it), and files encrypted to a key the phase no longer has are refused
/// before they can fail as the contributor's fault.
async fn check_encryption(
    conn: &mut SqliteConnection,
    phase: u8,
    encrypted: bool,
    encrypted_to: Option<&str>,
) -> Result<()> {
    let to = match (encrypted, encrypted_to) {
        (false, None) => return Ok(()),
        (false, Some(_)) => {
            return Err(StoreError::Conflict(
                "encrypted_to is only for encrypted files (NAME.age)".into(),
            ))
        }
        (true, None) => {
            return Err(StoreError::Conflict(
                "encrypted files need encrypted_to: the evaluation key they are encrypted to"
                    .into(),
            ))
        }
        (true, Some(to)) => to,
    };
    let key: Option<String> =
        sqlx::query_scalar("SELECT evaluation_key FROM phases WHERE number = ?")
            .bind(i64::from(phase))
            .fetch_optional(&mut *conn)
            .await?
            .flatten();
    match key {
        Some(key) if key == to => Ok(()),
        Some(key) => Err(StoreError::Refused(format!(
            "phase {phase}'s evaluation key is {key}, but these files are encrypted to {to}; encrypt them again (ascent-eval submit --encrypt does)"
        ))),
        None => Err(StoreError::Refused(format!(
            "phase {phase} has no evaluation key, so it takes no encrypted checkpoints; send the plain files"
        ))),
    }
}

fn refused(refusal: Refusal) -> StoreError {
    StoreError::Refused(refusal.to_string())
}

/// Starts an upload, or returns the unfinished one with the same fingerprint.
pub async fn start(
    pool: &SqlitePool,
    user_id: i64,
    new: &NewUpload,
    now: i64,
) -> Result<UploadStatus> {
    let (total, encrypted) = check_files(new)?;
    if new.fingerprint.is_empty() || new.fingerprint.len() > 200 {
        return Err(StoreError::Conflict(
            "fingerprint must be 1 to 200 characters".into(),
        ));
    }
    let mut tx = crate::write(pool).await?;
    let facts = entry_facts(&mut tx, new.phase, user_id, total, now).await?;
    check_entry(&facts).map_err(refused)?;
    check_encryption(&mut tx, new.phase, encrypted, new.encrypted_to.as_deref()).await?;
    let existing: Option<String> = sqlx::query_scalar(
        "SELECT id FROM uploads WHERE user_id = ? AND phase = ? AND fingerprint = ? AND submission_id IS NULL",
    )
    .bind(user_id)
    .bind(i64::from(new.phase))
    .bind(&new.fingerprint)
    .fetch_optional(&mut *tx)
    .await?;
    let id = match existing {
        Some(id) => id,
        None => {
            let id = random_token()?[..32].to_owned();
            sqlx::query(
                "INSERT INTO uploads (id, user_id, phase, fingerprint, created_at, expires_at, encrypted_to)
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&id)
            .bind(user_id)
            .bind(i64::from(new.phase))
            .bind(&new.fingerprint)
            .bind(now)
            .bind(now + UPLOAD_TTL_SECONDS)
            .bind(&new.encrypted_to)
            .execute(&mut *tx)
            .await?;
            for f in &new.files {
                sqlx::query("INSERT INTO upload_files (upload_id, name, bytes) VALUES (?, ?, ?)")
                    .bind(&id)
                    .bind(&f.name)
                    .bind(i64::try_from(f.bytes).unwrap_or(i64::MAX))
                    .execute(&mut *tx)
                    .await?;
            }
            tracing::info!(upload = %id, user_id, phase = new.phase, bytes = total, "upload started");
            id
        }
    };
    let status = status_in(&mut tx, &id).await?;
    tx.commit().await?;
    let status = status.ok_or_else(|| StoreError::Corrupt(format!("upload {id} vanished")))?;
    let same_files = status.files.len() == new.files.len()
        && new.files.iter().all(|f| {
            status
                .files
                .iter()
                .any(|s| s.name == f.name && s.bytes == f.bytes)
        });
    if !same_files {
        return Err(StoreError::Conflict(
            "an unfinished upload with this fingerprint has different files; choose another fingerprint".into(),
        ));
    }
    Ok(status)
}

async fn status_in(conn: &mut SqliteConnection, id: &str) -> Result<Option<UploadStatus>> {
    let head: Option<(i64, i64)> =
        sqlx::query_as("SELECT phase, expires_at FROM uploads WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some((phase, expires_at)) = head else {
        return Ok(None);
    };
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT name, bytes, received FROM upload_files WHERE upload_id = ? ORDER BY name",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let files = rows
        .into_iter()
        .map(|(name, bytes, received)| {
            Ok(UploadFileStatus {
                name,
                bytes: unsigned(bytes, "bytes")?,
                received: unsigned(received, "received")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(UploadStatus {
        id: id.to_owned(),
        phase: unsigned(phase, "phase")?,
        files,
        expires_at,
    }))
}

/// An unfinished upload of `user_id`; `None` if there is none with this id for them.
pub async fn status(pool: &SqlitePool, id: &str, user_id: i64) -> Result<Option<UploadStatus>> {
    let mut conn = pool.acquire().await?;
    let owned: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM uploads WHERE id = ? AND user_id = ? AND submission_id IS NULL)",
    )
    .bind(id)
    .bind(user_id)
    .fetch_one(&mut *conn)
    .await?;
    if !owned {
        return Ok(None);
    }
    status_in(&mut conn, id).await
}

/// Records how many bytes of a file the server holds (and its SHA-256 once complete),
/// and keeps the upload alive.
pub async fn record_received(
    pool: &SqlitePool,
    id: &str,
    name: &str,
    received: u64,
    sha256: Option<&str>,
    now: i64,
) -> Result<()> {
    let mut tx = crate::write(pool).await?;
    sqlx::query(
        "UPDATE upload_files SET received = ?, sha256 = ? WHERE upload_id = ? AND name = ?",
    )
    .bind(i64::try_from(received).unwrap_or(i64::MAX))
    .bind(sha256)
    .bind(id)
    .bind(name)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE uploads SET expires_at = ? WHERE id = ?")
        .bind(now + UPLOAD_TTL_SECONDS)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

pub use ascent_domain::protocol::files_sha256;

/// An upload's stored files as (name, bytes, sha256; empty while unfinished), by name.
pub(crate) async fn stored_files(
    conn: &mut SqliteConnection,
    upload_id: &str,
) -> Result<Vec<(String, u64, String)>> {
    let files: Vec<(String, i64, Option<String>)> = sqlx::query_as(
        "SELECT name, bytes, sha256 FROM upload_files WHERE upload_id = ? ORDER BY name",
    )
    .bind(upload_id)
    .fetch_all(&mut *conn)
    .await?;
    files
        .into_iter()
        .map(|(name, bytes, sha)| Ok((name, unsigned(bytes, "bytes")?, sha.unwrap_or_default())))
        .collect()
}

/// Turns a complete upload into a queued submission and its job. Finishing an upload
/// twice returns the same submission.
pub async fn finish(
    pool: &SqlitePool,
    id: &str,
    user_id: i64,
    now: i64,
) -> Result<SubmissionCreated> {
    let mut tx = crate::write(pool).await?;
    // Write first, so this transaction holds SQLite's write lock from here on and two
    // finishes of one contributor cannot both pass the quota.
    let row: Option<(i64, Option<i64>, Option<String>)> = sqlx::query_as(
        "UPDATE uploads SET expires_at = expires_at WHERE id = ? AND user_id = ?
         RETURNING phase, submission_id, encrypted_to",
    )
    .bind(id)
    .bind(user_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((phase, done, encrypted_to)) = row else {
        return Err(StoreError::NotFound("no such upload".into()));
    };
    if let Some(submission) = done {
        return Ok(created(submission));
    }
    let phase: u8 = unsigned(phase, "phase")?;
    let files: Vec<(String, i64, i64, Option<String>)> = sqlx::query_as(
        "SELECT name, bytes, received, sha256 FROM upload_files WHERE upload_id = ? ORDER BY name",
    )
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    let mut hashed = Vec::with_capacity(files.len());
    let mut total: u64 = 0;
    for (name, bytes, received, sha) in files {
        match sha {
            Some(sha) if received == bytes => hashed.push((name, sha)),
            _ => {
                return Err(StoreError::Conflict(format!(
                    "{name} is not complete: the server holds {received} of its {bytes} bytes"
                )))
            }
        }
        total += unsigned::<u64>(bytes, "bytes")?;
    }
    let facts = entry_facts(&mut tx, phase, user_id, total, now).await?;
    check_entry(&facts).map_err(refused)?;
    let encrypted = all_encrypted(hashed.iter().map(|(name, _)| name.as_str())).unwrap_or(false);
    check_encryption(&mut tx, phase, encrypted, encrypted_to.as_deref()).await?;
    let checkpoint = files_sha256(&hashed);
    let copy: Option<(i64, String)> = sqlx::query_as(
        "SELECT s.id, u.handle FROM submissions s JOIN users u ON u.id = s.user_id
         WHERE s.files_sha256 = ? AND s.user_id != ? ORDER BY s.id LIMIT 1",
    )
    .bind(&checkpoint)
    .bind(user_id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((other, handle)) = copy {
        return Err(StoreError::Refused(format!(
            "these files are identical to submission {other} by {handle}; submit weights you trained yourself"
        )));
    }
    let submission: i64 = sqlx::query_scalar(
        "INSERT INTO submissions (phase, user_id, state, created_at, bytes, upload_id, files_sha256, encrypted_to)
         VALUES (?, ?, 'queued', ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(i64::from(phase))
    .bind(user_id)
    .bind(now)
    .bind(i64::try_from(total).unwrap_or(i64::MAX))
    .bind(id)
    .bind(&checkpoint)
    .bind(&encrypted_to)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO jobs (submission_id, available_at) VALUES (?, ?)")
        .bind(submission)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE phases SET submission_count = submission_count + 1 WHERE number = ?")
        .bind(i64::from(phase))
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE uploads SET submission_id = ? WHERE id = ?")
        .bind(submission)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    public_log::log_received(&mut tx, submission, phase, user_id, &checkpoint, now).await?;
    tx.commit().await?;
    tracing::info!(submission, upload = %id, user_id, phase, "submission queued");
    Ok(created(submission))
}

fn created(id: i64) -> SubmissionCreated {
    SubmissionCreated {
        id,
        url: format!("/submissions/{id}"),
    }
}

/// Abandons an unfinished upload of `user_id`; returns whether there was one.
pub async fn abandon(pool: &SqlitePool, id: &str, user_id: i64) -> Result<bool> {
    let done =
        sqlx::query("DELETE FROM uploads WHERE id = ? AND user_id = ? AND submission_id IS NULL")
            .bind(id)
            .bind(user_id)
            .execute(pool)
            .await?;
    Ok(done.rows_affected() > 0)
}

/// Deletes unfinished uploads that expired; returns their ids so their files can go.
pub async fn purge_expired(pool: &SqlitePool, now: i64) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "DELETE FROM uploads WHERE submission_id IS NULL AND expires_at <= ? RETURNING id",
    )
    .bind(now)
    .fetch_all(pool)
    .await?)
}
