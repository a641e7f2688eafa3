//! Opening sealed winners (see `ascent_store::opened`).
//!
//! - `POST /api/worker/sealed` lists, for a worker, the promoted encrypted checkpoints
//!   encrypted to one of the keys it names that wait to be opened.
//! - `GET /api/submissions/{id}/sealed/{name}` serves such a checkpoint's ciphertext to
//!   anyone, opened or not: its phase is finalized and its rules publish it, and once it
//!   is opened the public log holds the file keys, so anyone can check them against it.
//!   The worker downloads it from here and checks it against the log before unwrapping.
//! - `POST /api/worker/sealed/{submission}` takes each file's age file key, which the
//!   worker unwrapped with the phase's evaluation key. The server decrypts the stored
//!   ciphertext with them (every chunk authenticated), checks the plaintext is a valid
//!   checkpoint whose tensors hash to the weights that were scored and signed, and only
//!   then publishes it as the submission's open weights. The evaluation key itself never
//!   reaches the server, and a wrong or made-up key opens nothing.

use std::path::{Path as FsPath, PathBuf};

use ascent_domain::encryption::{parse_file_key, plain_name, FILE_KEY_BYTES};
use ascent_domain::protocol::{OpenRequest, SealedCheckpoint, SealedFile, SealedRequest};
use ascent_domain::public_log::OpenedFile;
use ascent_evaluator::checkpoint;
use ascent_evaluator::client::sha256_file;
use ascent_evaluator::encryption::{open_file, EncryptionError};
use ascent_store::opened::{self, Sealed};
use axum::extract::{Path, Request, State};
use axum::response::Response;
use axum::Json;

use crate::http::api::ApiError;
use crate::http::auth::Worker;
use crate::state::AppState;
use crate::storage::Storage;

/// One checkpoint is decrypted at a time: each writes a whole plaintext copy to disk.
static OPENING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

pub async fn waiting(
    State(state): State<AppState>,
    Worker(worker_id): Worker,
    Json(request): Json<SealedRequest>,
) -> Result<Json<Vec<SealedCheckpoint>>, ApiError> {
    crate::http::worker_api::check_key_count(&request.evaluation_keys)?;
    let sealed = opened::waiting(&state.pool, &request.evaluation_keys).await?;
    tracing::debug!(worker = worker_id, waiting = sealed.len(), "sealed winners");
    Ok(Json(
        sealed
            .into_iter()
            .map(|s| SealedCheckpoint {
                submission_id: s.submission_id,
                phase: s.phase,
                encrypted_to: s.encrypted_to,
                files: s
                    .files
                    .into_iter()
                    .map(|(name, bytes, sha256)| SealedFile {
                        name,
                        bytes,
                        sha256,
                    })
                    .collect(),
            })
            .collect(),
    ))
}

/// `GET /api/submissions/{id}/sealed/{name}` (Range supported).
pub async fn ciphertext(
    State(state): State<AppState>,
    Path((id, name)): Path<(i64, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    let sealed = opened::sealed(&state.pool, id, false).await?.ok_or_else(|| {
        ApiError::NotFound(format!(
            "submission {id} has no public ciphertext: only encrypted checkpoints that a finalized phase promoted, where its rules open the weights, have"
        ))
    })?;
    if !sealed.files.iter().any(|(file, _, _)| *file == name) {
        return Err(ApiError::NotFound(format!(
            "submission {id} has no file {name:?}"
        )));
    }
    crate::http::worker_api::serve_file(
        state.storage.checkpoint_file(&sealed.upload_id, &name),
        request,
    )
    .await
}

pub async fn open(
    State(state): State<AppState>,
    Worker(worker_id): Worker,
    Path(id): Path<i64>,
    Json(request): Json<OpenRequest>,
) -> Result<Json<Vec<OpenedFile>>, ApiError> {
    let turn = OPENING.try_acquire().map_err(|_| {
        ApiError::Conflict("another checkpoint is being opened; try again when it ends".into())
    })?;
    let sealed = opened::sealed(&state.pool, id, true).await?.ok_or_else(|| {
        ApiError::NotFound(format!(
            "submission {id} is not a sealed checkpoint waiting to be opened: only encrypted checkpoints that a finalized phase promoted, where its rules open the weights, are opened, and each once"
        ))
    })?;
    let keys = file_keys(&sealed, &request)?;
    // Decrypting, checking and recording run to the end even if the worker goes away.
    let task = tokio::spawn(async move {
        let _turn = turn;
        let storage = state.storage.clone();
        let token = ascent_store::random_token()?;
        let folder = format!("open-{}", &token[..16]);
        let dir = storage.checkpoint_dir(&sealed.upload_id).join(&folder);
        let (staged, target) = (sealed.clone(), dir.clone());
        let opening = tokio::task::spawn_blocking(move || {
            let written = Written(Some(target.clone()));
            decrypt_all(&storage, &staged, &keys, &target).map(|files| (files, written))
        });
        let (files, written) = opening
            .await
            .map_err(|e| ApiError::Internal(format!("opening submission {id}: {e}")))??;
        // A failed record drops `written`, which removes this attempt's folder (its own:
        // a racing attempt, say on another server process, writes another).
        opened::record(
            &state.pool,
            id,
            &sealed.weights_sha256,
            &folder,
            files.clone(),
            ascent_store::now(),
        )
        .await?;
        written.keep();
        state.changes.notify();
        tracing::info!(
            submission = id,
            worker = worker_id,
            files = files.len(),
            "sealed checkpoint opened and published"
        );
        Ok::<_, ApiError>(files)
    });
    let files = task
        .await
        .map_err(|e| ApiError::Internal(format!("opening submission {id}: {e}")))??;
    Ok(Json(files))
}

/// The request's keys, one for each stored file and parsed; refused otherwise.
fn file_keys(
    sealed: &Sealed,
    request: &OpenRequest,
) -> Result<Vec<(String, String, [u8; FILE_KEY_BYTES])>, ApiError> {
    let names: Vec<&String> = request.file_keys.keys().collect();
    if names.len() != sealed.files.len() || sealed.files.iter().zip(&names).any(|(f, n)| &f.0 != *n)
    {
        let expected: Vec<&str> = sealed.files.iter().map(|(n, _, _)| n.as_str()).collect();
        return Err(ApiError::BadRequest(format!(
            "submission {} needs one file key for each of its files: {}",
            sealed.submission_id,
            expected.join(", ")
        )));
    }
    sealed
        .files
        .iter()
        .map(|(name, _, sha256)| {
            let hex_key = &request.file_keys[name];
            let key = parse_file_key(hex_key)
                .map_err(|e| ApiError::BadRequest(format!("{name}: {e}")))?;
            Ok((name.clone(), sha256.clone(), key))
        })
        .collect()
}

/// A folder removed when dropped, unless kept.
struct Written(Option<PathBuf>);

impl Written {
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for Written {
    fn drop(&mut self) {
        if let Some(dir) = &self.0 {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Decrypts every file into `dir` (new), checking each ciphertext is still the one
/// stored, then checks the result is the checkpoint that was scored.
fn decrypt_all(
    storage: &Storage,
    sealed: &Sealed,
    keys: &[(String, String, [u8; FILE_KEY_BYTES])],
    dir: &FsPath,
) -> Result<Vec<OpenedFile>, ApiError> {
    let internal = |what: &str, path: &FsPath, e: &dyn std::fmt::Display| {
        ApiError::Internal(format!("{what} {}: {e}", path.display()))
    };
    std::fs::create_dir(dir).map_err(|e| internal("cannot create", dir, &e))?;
    let mut files = Vec::with_capacity(keys.len());
    for (name, sealed_sha256, key) in keys {
        let Some(plain) = plain_name(name) else {
            return Err(ApiError::Internal(format!(
                "stored file {name} of an encrypted submission has no .age suffix"
            )));
        };
        let src = storage.checkpoint_file(&sealed.upload_id, name);
        let (_, stored) = sha256_file(&src).map_err(|e| internal("cannot hash", &src, &e))?;
        if stored != *sealed_sha256 {
            return Err(ApiError::Internal(format!(
                "{} no longer has the SHA-256 it was received with",
                src.display()
            )));
        }
        let dst = dir.join(plain);
        open_file(&src, &dst, name, key).map_err(|e| match e {
            EncryptionError::WrongFileKey { .. } => ApiError::BadRequest(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        })?;
        let (bytes, sha256) = sha256_file(&dst).map_err(|e| internal("cannot hash", &dst, &e))?;
        files.push(OpenedFile {
            sealed: name.clone(),
            sealed_sha256: sealed_sha256.clone(),
            file_key: hex::encode(key),
            name: plain.to_owned(),
            bytes,
            sha256,
        });
    }
    // The same checks as before scoring; the tensors must be the ones the worker signed.
    let (_, inspection) = checkpoint::inspect(dir, None).map_err(|e| {
        ApiError::BadRequest(format!("the opened files are not a valid checkpoint: {e}"))
    })?;
    if inspection.weights_sha256 != sealed.weights_sha256 {
        return Err(ApiError::BadRequest(format!(
            "the opened checkpoint's tensors hash to {}, not the {} that was scored",
            inspection.weights_sha256, sealed.weights_sha256
        )));
    }
    Ok(files)
}
