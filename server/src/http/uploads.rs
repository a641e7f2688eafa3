//! The resumable upload API (see `ascent_domain::protocol`): start, status, append
//! bytes at an offset, finish into a queued submission, abandon.
//!
//! Bytes are streamed to disk as they arrive, so memory stays flat whatever the size;
//! a request cut off midway keeps what arrived, and the client continues from the
//! offset the server reports.

use ascent_domain::protocol::{check_file_name, NewUpload, UPLOAD_OFFSET_HEADER};
use ascent_store::{now, uploads};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use http::{HeaderMap, HeaderValue, StatusCode};
use sha2::Digest;
use tokio::io::AsyncWriteExt;

use crate::http::api::ApiError;
use crate::http::auth::Contributor;
use crate::state::AppState;
use crate::storage::hash_prefix;

fn upload_id(raw: &str) -> Result<&str, ApiError> {
    if raw.len() == 32 && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(raw)
    } else {
        Err(ApiError::NotFound("no such upload".into()))
    }
}

pub async fn start(
    State(state): State<AppState>,
    Contributor(viewer): Contributor,
    Json(new): Json<NewUpload>,
) -> Result<Response, ApiError> {
    let status = uploads::start(&state.pool, viewer.id, &new, now()).await?;
    tokio::fs::create_dir_all(state.storage.checkpoint_dir(&status.id))
        .await
        .map_err(|e| ApiError::Internal(format!("creating the upload directory: {e}")))?;
    Ok((StatusCode::CREATED, Json(status)).into_response())
}

pub async fn status(
    State(state): State<AppState>,
    Contributor(viewer): Contributor,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = upload_id(&id)?;
    match uploads::status(&state.pool, id, viewer.id).await? {
        Some(status) => Ok(Json(status).into_response()),
        None => Err(ApiError::NotFound("no such unfinished upload".into())),
    }
}

fn offset_response(status: StatusCode, offset: u64) -> Response {
    let mut response = status.into_response();
    response
        .headers_mut()
        .insert(UPLOAD_OFFSET_HEADER, HeaderValue::from(offset));
    response
}

/// `PATCH /api/uploads/{id}/files/{name}`: appends the body at `Upload-Offset`.
pub async fn append(
    State(state): State<AppState>,
    Contributor(viewer): Contributor,
    Path((id, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let id = upload_id(&id)?;
    check_file_name(&name).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let offset: u64 = headers
        .get(UPLOAD_OFFSET_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            ApiError::BadRequest(
                "send the byte offset of this chunk in the Upload-Offset header".into(),
            )
        })?;
    let status = uploads::status(&state.pool, id, viewer.id)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such unfinished upload".into()))?;
    let declared = status
        .files
        .iter()
        .find(|f| f.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("{name} is not one of this upload's files")))?
        .bytes;

    // One writer per file; a retry waits for a cut-off request to notice its end.
    let running = state.storage.running_hash(id, &name);
    let mut running = running.lock().await;
    let path = state.storage.checkpoint_file(id, &name);
    let held = match tokio::fs::metadata(&path).await {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => {
            return Err(ApiError::Internal(format!(
                "reading {}: {e}",
                path.display()
            )))
        }
    };
    if offset != held {
        return Ok(offset_response(StatusCode::CONFLICT, held));
    }
    if running.offset != held {
        running.hasher = hash_prefix(&path, held)
            .await
            .or_else(|e| {
                if held == 0 {
                    Ok(sha2::Sha256::new())
                } else {
                    Err(e)
                }
            })
            .map_err(|e| ApiError::Internal(format!("rehashing {}: {e}", path.display())))?;
        running.offset = held;
    }
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .await
        .map_err(|e| ApiError::Internal(format!("opening {}: {e}", path.display())))?;

    let mut stream = body.into_data_stream();
    let mut written = held;
    let mut cut_off = None;
    let mut too_long = false;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                cut_off = Some(e.to_string());
                break;
            }
        };
        let room = declared.saturating_sub(written);
        let take = usize::try_from(room).unwrap_or(usize::MAX).min(chunk.len());
        if let Err(e) = file.write_all(&chunk[..take]).await {
            return Err(ApiError::Internal(format!(
                "writing {}: {e}",
                path.display()
            )));
        }
        running.hasher.update(&chunk[..take]);
        written += take as u64;
        running.offset = written;
        if take < chunk.len() {
            too_long = true;
            break;
        }
    }
    file.flush()
        .await
        .map_err(|e| ApiError::Internal(format!("writing {}: {e}", path.display())))?;
    file.sync_data()
        .await
        .map_err(|e| ApiError::Internal(format!("syncing {}: {e}", path.display())))?;
    drop(file);
    let sha256 = (written == declared).then(|| hex::encode(running.hasher.clone().finalize()));
    uploads::record_received(&state.pool, id, &name, written, sha256.as_deref(), now()).await?;
    drop(running);
    if sha256.is_some() {
        state.storage.forget_hash(id, &name);
    }
    if let Some(error) = cut_off {
        tracing::info!(upload = %id, file = %name, written, %error, "upload request cut off; the bytes so far are kept");
    }
    if too_long {
        return Err(ApiError::TooLarge(format!(
            "{name} was declared as {declared} bytes; the extra bytes were dropped"
        )));
    }
    Ok(offset_response(StatusCode::NO_CONTENT, written))
}

pub async fn finish(
    State(state): State<AppState>,
    Contributor(viewer): Contributor,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = upload_id(&id)?;
    let created = uploads::finish(&state.pool, id, viewer.id, now()).await?;
    state.changes.notify();
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

pub async fn abandon(
    State(state): State<AppState>,
    Contributor(viewer): Contributor,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = upload_id(&id)?;
    if !uploads::abandon(&state.pool, id, viewer.id).await? {
        return Err(ApiError::NotFound("no such unfinished upload".into()));
    }
    state
        .storage
        .remove_upload(id)
        .await
        .map_err(|e| ApiError::Internal(format!("deleting upload {id}: {e}")))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
