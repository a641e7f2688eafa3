//! `PUT /api/phases/{number}/data?name=FILE`: an organizer sets a phase's held-out data
//! from the console, as `ascent admin data add` does on the server. The body streams to
//! a temporary file in the data directory; then the same path as the CLI
//! ([`crate::admin::store_data`]): a valid token shard within the phase's vocabulary,
//! stored by hash, attached unless the current data scored submissions already, audited
//! under the organizer's name. A refused or cut-off upload leaves nothing behind.

use ascent_store::datasets::Dataset;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::Json;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::admin::{store_data, DataError};
use crate::http::api::{phase_number, ApiError};
use crate::http::auth::Contributor;
use crate::state::AppState;

/// Larger held-out sets go through `ascent admin data add` on the server.
pub const MAX_DATA_BYTES: u64 = 64 << 30;

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

pub async fn upload(
    State(state): State<AppState>,
    Contributor(viewer): Contributor,
    Path(number): Path<String>,
    Query(DataName { name }): Query<DataName>,
    body: Body,
) -> Result<Json<DataReceipt>, ApiError> {
    if !viewer.is_organizer() {
        return Err(ApiError::Forbidden(
            "only organizers set held-out data".into(),
        ));
    }
    let phase = phase_number(&number)?;
    check_name(&name)?;
    let temporary = state.storage.incoming_dataset()?;
    let stored = receive(body, &temporary).await;
    let result = match stored {
        Ok(()) => store_data(
            &state.pool,
            &state.storage,
            phase,
            &temporary,
            &name,
            Some(viewer.id),
            true,
        )
        .await
        .map_err(|e| match e {
            // The shard's checks name the file they read: the organizer's name for it,
            // not our temporary path.
            DataError::Invalid(message) => {
                let message = message.replace(&temporary.display().to_string(), &name);
                if message.contains(&name) {
                    ApiError::BadRequest(message)
                } else {
                    ApiError::BadRequest(format!("{name}: {message}"))
                }
            }
            DataError::Store(e) => e.into(),
            DataError::Io(message) => ApiError::Internal(message),
        }),
        Err(e) => Err(e),
    };
    // Moved into place on success; removed otherwise.
    let _ = tokio::fs::remove_file(&temporary).await;
    let Dataset {
        name,
        tokens,
        bytes,
        sha256,
        ..
    } = result?;
    tracing::info!(phase, organizer = viewer.id, %sha256, tokens, "held-out data uploaded");
    Ok(Json(DataReceipt {
        phase,
        name,
        tokens,
        bytes,
        sha256,
    }))
}

/// Streams the request body into `path`, at most [`MAX_DATA_BYTES`].
async fn receive(body: Body, path: &std::path::Path) -> Result<(), ApiError> {
    let internal =
        |e: std::io::Error| ApiError::Internal(format!("writing {}: {e}", path.display()));
    let mut file = tokio::fs::File::create(path).await.map_err(internal)?;
    let mut stream = body.into_data_stream();
    let mut written = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("the upload was cut off: {e}")))?;
        written += chunk.len() as u64;
        if written > MAX_DATA_BYTES {
            return Err(ApiError::TooLarge(format!(
                "held-out data over {} GiB goes through `ascent admin data add` on the server",
                MAX_DATA_BYTES >> 30
            )));
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
