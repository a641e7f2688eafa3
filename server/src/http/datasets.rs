//! `PUT /api/phases/{number}/data?name=FILE`: an organizer sets a phase's held-out data
//! from the console, as `ascent admin data add` does on the server. The body streams to
//! a temporary file in the data directory; then the same path as the CLI
//! ([`crate::admin::store_data`]): a valid token shard within the phase's vocabulary,
//! stored by hash, attached unless the current data scored submissions already, audited
//! under the organizer's name. A refused or cut-off upload leaves nothing behind; a
//! locked phase is refused before the body is read; one upload runs at a time.

use std::path::PathBuf;

use ascent_store::datasets::{self, Dataset};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::Json;
use futures_util::StreamExt;
use http::{header, HeaderMap};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::admin::{store_data, DataError};
use crate::http::api::{phase_number, ApiError};
use crate::http::auth::Contributor;
use crate::state::AppState;

/// The largest valid token shard: the header and `i32::MAX` tokens of 4 bytes.
pub const MAX_DATA_BYTES: u64 = 1024 + 4 * (i32::MAX as u64);

/// One held-out upload at a time: each may write up to [`MAX_DATA_BYTES`] to disk before
/// it is checked.
static UPLOADING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

#[derive(Deserialize)]
pub struct DataName {
    name: String,
}

/// What was attached.
#[derive(Serialize)]
pub struct DataReceipt {
    phase: u8,
    name: String,
    tokens: i64,
    bytes: i64,
    sha256: String,
}

/// A file name as the console shows it: 1–128 of `A-Z a-z 0-9 . _ -`, not hidden.
fn check_name(name: &str) -> Result<(), ApiError> {
    let plain = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if name.is_empty() || name.len() > 128 || name.starts_with('.') || !plain {
        return Err(ApiError::BadRequest(format!(
            "{name:?} is not a usable file name: 1 to 128 letters, digits, '.', '_' or '-', not starting with '.'"
        )));
    }
    Ok(())
}

/// A received file that is removed when dropped, however the request ends (refused,
/// failed, or cut off with the handler dropped); once stored it has been moved away.
struct Incoming(PathBuf);

impl Drop for Incoming {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub async fn upload(
    State(state): State<AppState>,
    Contributor(viewer): Contributor,
    Path(number): Path<String>,
    Query(DataName { name }): Query<DataName>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<DataReceipt>, ApiError> {
    if !viewer.is_organizer() {
        return Err(ApiError::Forbidden(
            "only organizers set held-out data".into(),
        ));
    }
    let phase = phase_number(&number)?;
    check_name(&name)?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_DATA_BYTES) {
        return Err(too_large());
    }
    // What attaching would refuse is refused before a byte is received.
    datasets::check_replaceable(&state.pool, phase).await?;
    let _turn = UPLOADING.try_acquire().map_err(|_| {
        ApiError::Conflict(
            "another held-out data upload is in progress; try again when it ends".into(),
        )
    })?;
    let incoming = Incoming(state.storage.incoming_dataset()?);
    receive(body, &incoming.0).await?;
    // Checking, storing and attaching run to the end even if the client goes away now.
    let task = tokio::spawn(async move {
        let stored = store_data(
            &state.pool,
            &state.storage,
            phase,
            &incoming.0,
            &name,
            Some(viewer.id),
            true,
        )
        .await;
        (stored, incoming, name)
    });
    let (stored, incoming, name) = task
        .await
        .map_err(|e| ApiError::Internal(format!("storing held-out data: {e}")))?;
    let data = stored.map_err(|e| match e {
        // The shard's checks name the file they read: the organizer's name for it, not
        // our temporary path.
        DataError::Invalid(message) => {
            let message = message.replace(&incoming.0.display().to_string(), &name);
            if message.contains(&name) {
                ApiError::BadRequest(message)
            } else {
                ApiError::BadRequest(format!("{name}: {message}"))
            }
        }
        DataError::Store(e) => e.into(),
        DataError::Io(message) => ApiError::Internal(message),
    })?;
    let Dataset {
        name,
        tokens,
        bytes,
        sha256,
        ..
    } = data;
    tracing::info!(phase, organizer = viewer.id, %sha256, tokens, "held-out data uploaded");
    Ok(Json(DataReceipt {
        phase,
        name,
        tokens,
        bytes,
        sha256,
    }))
}

fn too_large() -> ApiError {
    ApiError::TooLarge(format!(
        "a token shard is at most {MAX_DATA_BYTES} bytes (2³¹ − 1 tokens of 4 bytes and the header)"
    ))
}

/// Streams the request body into a new file at `path`, at most [`MAX_DATA_BYTES`].
async fn receive(body: Body, path: &std::path::Path) -> Result<(), ApiError> {
    let internal =
        |e: std::io::Error| ApiError::Internal(format!("writing {}: {e}", path.display()));
    let mut file = tokio::fs::File::create_new(path).await.map_err(internal)?;
    let mut stream = body.into_data_stream();
    let mut written = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("the upload was cut off: {e}")))?;
        written += chunk.len() as u64;
        if written > MAX_DATA_BYTES {
            return Err(too_large());
        }
        file.write_all(&chunk).await.map_err(internal)?;
    }
    file.flush().await.map_err(internal)?;
    file.sync_data().await.map_err(internal)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_name;

    #[test]
    fn file_names_are_plain() {
        assert!(check_name("heldout_v2.bin").is_ok());
        for bad in ["", ".hidden", "a/b", "../x", "with space", &"x".repeat(129)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
