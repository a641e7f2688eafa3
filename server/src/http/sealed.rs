//! Opening sealed winners over the worker API (see `ascent_store::opened`).
//!
//! - `POST /api/worker/sealed` lists the promoted encrypted checkpoints, encrypted to one
//!   of the keys the worker names, that wait to be opened: for each file, its age header
//!   only (never payload bytes).
//! - `POST /api/worker/sealed/{submission}` takes each file's age file key, which the
//!   worker unwrapped with the phase's evaluation key. The server decrypts the stored
//!   ciphertext with them (every chunk authenticated), checks the plaintext is a valid
//!   checkpoint whose tensors hash to the weights that were scored and signed, and only
//!   then publishes it as the submission's open weights. The evaluation key itself never
//!   reaches the server, and a wrong or made-up key opens nothing.

use std::io::Read;
use std::path::{Path as FsPath, PathBuf};

use ascent_domain::encryption::{parse_file_key, plain_name, FILE_KEY_BYTES};
use ascent_domain::protocol::{OpenRequest, SealedCheckpoint, SealedFile, SealedRequest};
use ascent_domain::public_log::OpenedFile;
use ascent_evaluator::checkpoint;
use ascent_evaluator::client::sha256_file;
use ascent_evaluator::encryption::{
    header_len, open_file, EncryptionError, MAX_HEADER_BYTES, NONCE_BYTES,
};
use ascent_store::opened::{self, Sealed};
use axum::extract::{Path, State};
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
    if request.evaluation_keys.len() > 64 {
        return Err(ApiError::BadRequest(
            "a worker names at most 64 evaluation keys".into(),
        ));
    }
    let sealed = opened::waiting(&state.pool, &request.evaluation_keys).await?;
    tracing::debug!(worker = worker_id, waiting = sealed.len(), "sealed winners");
    let storage = state.storage.clone();
    let listed = tokio::task::spawn_blocking(move || {
        sealed
            .into_iter()
            .filter_map(|s| describe(&storage, s))
            .collect()
    })
    .await
    .map_err(|e| ApiError::Internal(format!("reading age headers: {e}")))?;
    Ok(Json(listed))
}

/// A sealed winner with each file's header; `None` (logged) if a stored file cannot be
/// read as an age file, which the worker could not open either.
fn describe(storage: &Storage, sealed: Sealed) -> Option<SealedCheckpoint> {
    let mut files = Vec::with_capacity(sealed.files.len());
    for (name, _) in &sealed.files {
        let path = storage.checkpoint_file(&sealed.upload_id, name);
        match read_header(&path) {
            Ok(header) => files.push(SealedFile {
                name: name.clone(),
                header: hex::encode(header),
            }),
            Err(error) => {
                tracing::warn!(submission = sealed.submission_id, file = %path.display(), %error, "cannot read a sealed file's age header");
                return None;
            }
        }
    }
    Some(SealedCheckpoint {
        submission_id: sealed.submission_id,
        phase: sealed.phase,
        encrypted_to: sealed.encrypted_to,
        files,
    })
}

/// A stored age file's header through its payload nonce.
fn read_header(path: &FsPath) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    std::fs::File::open(path)?
        .take((MAX_HEADER_BYTES + NONCE_BYTES) as u64)
        .read_to_end(&mut head)?;
    let len = header_len(&head).ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, "no whole age header")
    })?;
    head.truncate(len);
    Ok(head)
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
    let sealed = opened::sealed(&state.pool, id).await?.ok_or_else(|| {
        ApiError::NotFound(format!(
            "submission {id} is not a sealed checkpoint waiting to be opened: only encrypted checkpoints that a finalized phase promoted, where its rules open the weights, are opened, and each once"
        ))
    })?;
    let keys = file_keys(&sealed, &request)?;
    // Decrypting, checking and recording run to the end even if the worker goes away.
    let task = tokio::spawn(async move {
        let _turn = turn;
        let storage = state.storage.clone();
        let (staged, dir) = (sealed.clone(), storage.opened_dir(&sealed.upload_id));
        let files = tokio::task::spawn_blocking(move || decrypt_all(&storage, &staged, &keys))
            .await
            .map_err(|e| ApiError::Internal(format!("opening submission {id}: {e}")))??;
        let recorded = opened::record(
            &state.pool,
            id,
            &sealed.weights_sha256,
            files.clone(),
            ascent_store::now(),
        )
        .await;
        if let Err(e) = recorded {
            let _ = tokio::fs::remove_dir_all(&dir).await;
            return Err(ApiError::from(e));
        }
        state.changes.notify();
        tracing::info!(
            submission = id,
            worker = worker_id,
            files = files.len(),
            "sealed checkpoint opened and published"
        );
        Ok(files)
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
        let expected: Vec<&str> = sealed.files.iter().map(|(n, _)| n.as_str()).collect();
        return Err(ApiError::BadRequest(format!(
            "submission {} needs one file key for each of its files: {}",
            sealed.submission_id,
            expected.join(", ")
        )));
    }
    sealed
        .files
        .iter()
        .map(|(name, sha256)| {
            let hex_key = &request.file_keys[name];
            let key = parse_file_key(hex_key)
                .map_err(|e| ApiError::BadRequest(format!("{name}: {e}")))?;
            Ok((name.clone(), sha256.clone(), key))
        })
        .collect()
}

/// A folder removed when dropped unless kept.
struct Staging(Option<PathBuf>);

impl Drop for Staging {
    fn drop(&mut self) {
        if let Some(dir) = &self.0 {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Decrypts every file into a staging folder, checks the result is the checkpoint that
/// was scored, and moves it to the upload's `open/` folder.
fn decrypt_all(
    storage: &Storage,
    sealed: &Sealed,
    keys: &[(String, String, [u8; FILE_KEY_BYTES])],
) -> Result<Vec<OpenedFile>, ApiError> {
    let internal = |what: &str, path: &FsPath, e: &dyn std::fmt::Display| {
        ApiError::Internal(format!("{what} {}: {e}", path.display()))
    };
    let token = ascent_store::random_token()?;
    let staging = Staging(Some(
        storage
            .checkpoint_dir(&sealed.upload_id)
            .join(format!("opening-{}", &token[..16])),
    ));
    let dir = staging.0.clone().unwrap_or_default();
    std::fs::create_dir_all(&dir).map_err(|e| internal("cannot create", &dir, &e))?;
    let mut files = Vec::with_capacity(keys.len());
    for (name, sealed_sha256, key) in keys {
        let Some(plain) = plain_name(name) else {
            return Err(ApiError::Internal(format!(
                "stored file {name} of an encrypted submission has no .age suffix"
            )));
        };
        let src = storage.checkpoint_file(&sealed.upload_id, name);
        let dst = dir.join(plain);
        open_file(&src, &dst, name, key).map_err(|e| match e {
            EncryptionError::Corrupt { message, .. } => ApiError::BadRequest(format!(
                "the file key given for {name} does not open it ({message})"
            )),
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
    let (_, inspection) = checkpoint::inspect(&dir, None).map_err(|e| {
        ApiError::BadRequest(format!("the opened files are not a valid checkpoint: {e}"))
    })?;
    if inspection.weights_sha256 != sealed.weights_sha256 {
        return Err(ApiError::BadRequest(format!(
            "the opened checkpoint's tensors hash to {}, not the {} that was scored",
            inspection.weights_sha256, sealed.weights_sha256
        )));
    }
    let open = storage.opened_dir(&sealed.upload_id);
    match std::fs::remove_dir_all(&open) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(internal("cannot clear", &open, &e))
        }
        _ => {}
    }
    std::fs::rename(&dir, &open).map_err(|e| internal("cannot move to", &open, &e))?;
    let mut staging = staging;
    staging.0 = None;
    Ok(files)
}
