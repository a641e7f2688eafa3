//! Open weights: once a phase is finalized and its rules say so, the checkpoints it
//! promoted are public downloads, each with a generated model card (an encrypted one
//! once it was opened: `http::sealed`). Every other checkpoint stays readable only by
//! the workers that score it.

use ascent_domain::model_card;
use ascent_store::lifecycle::{self, OpenCheckpoint};
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use http::header;

use crate::http::api::ApiError;
use crate::http::worker_api::serve_file;
use crate::state::AppState;

async fn open(state: &AppState, id: i64) -> Result<OpenCheckpoint, ApiError> {
    lifecycle::open_checkpoint(&state.pool, id).await?.ok_or_else(|| {
        ApiError::NotFound(format!(
            "submission {id} is not an open checkpoint: only the checkpoints a finalized phase promoted are published, and only where the phase's rules open the weights"
        ))
    })
}

/// `GET /api/submissions/{id}/files/{name}` (Range supported).
pub async fn file(
    State(state): State<AppState>,
    Path((id, name)): Path<(i64, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    let checkpoint = open(&state, id).await?;
    if !checkpoint
        .card
        .files
        .iter()
        .any(|(file, _, _)| *file == name)
    {
        return Err(ApiError::NotFound(format!(
            "submission {id} has no file {name:?}"
        )));
    }
    let path = match &checkpoint.opened_dir {
        Some(dir) => state
            .storage
            .checkpoint_dir(&checkpoint.upload_id)
            .join(dir)
            .join(&name),
        None => state.storage.checkpoint_file(&checkpoint.upload_id, &name),
    };
    let mut response = serve_file(path, request).await?;
    if let Ok(value) = format!("attachment; filename=\"{name}\"").parse() {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// `GET /api/submissions/{id}/model-card.md`.
pub async fn card(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let checkpoint = open(&state, id).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
        model_card::render(&checkpoint.card),
    )
        .into_response())
}
