//! `ascent-eval submit` as a library: send a checkpoint directory through the resumable
//! upload API, finish it into a submission, and optionally wait for its score.
//!
//! The server keeps what arrived, so the client never needs state of its own: the
//! directory's [`fingerprint`] finds an unfinished upload again, and after any failure
//! the server's `received` (or a 409's `Upload-Offset`) says where to go on.

mod files;
mod sealed;

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use ascent_domain::protocol::{
    NewUpload, SubmissionCreated, SubmissionReport, UploadFile, UploadStatus, UPLOAD_OFFSET_HEADER,
};
use ureq::http::Method;
use ureq::SendBody;

pub use files::{checkpoint_files, fingerprint, LocalFile};
pub use sealed::{evaluation_key, seal, SEALED_DIR};

use crate::client::{header_u64, segment, Client, ClientError};

/// Bytes per `PATCH`: a broken request loses at most this much.
pub const CHUNK_BYTES: u64 = 8 << 20;

/// Why a submission did not go through.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The directory is not a checkpoint we can send (exit 2).
    #[error("{0}")]
    Invalid(String),
    /// The server refused (4xx, exit 2) or could not be reached (exit 1).
    #[error(transparent)]
    Client(#[from] ClientError),
}

impl SubmitError {
    /// 2 for anything the user must fix (the directory, a refusal), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            SubmitError::Invalid(_) => 2,
            SubmitError::Client(e) => e.exit_code(),
        }
    }
}

/// Whether and how `upload` encrypts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption<'a> {
    /// Plain files.
    None,
    /// Every file encrypted to the phase's evaluation key ([`seal`]), as the server
    /// announces it; with `Some(key)`, only if that is the key (a contributor who got
    /// the key from the organizers another way need not trust the server for it).
    ToPhaseKey(Option<&'a str>),
}

/// Uploads the checkpoint in `dir` to `phase` and finishes it into a queued submission,
/// encrypted or not. `progress(sent, total)` follows the bytes the server holds.
pub fn upload(
    client: &Client,
    phase: u8,
    dir: &Path,
    encryption: Encryption<'_>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<SubmissionCreated, SubmitError> {
    let mut files = checkpoint_files(dir)?;
    let mut encrypted_to = None;
    if let Encryption::ToPhaseKey(pinned) = encryption {
        let key = evaluation_key(client, phase)?;
        if let Some(pinned) = pinned.filter(|p| *p != key) {
            return Err(SubmitError::Invalid(format!(
                "the server gives {key} as phase {phase}'s evaluation key, not the {pinned} you expect; nothing was sent"
            )));
        }
        tracing::info!(%key, "encrypting to the phase's evaluation key");
        files = seal(dir, &files, &key)?;
        encrypted_to = Some(key);
    }
    let request = NewUpload {
        phase,
        files: files
            .iter()
            .map(|f| UploadFile {
                name: f.name.clone(),
                bytes: f.bytes,
            })
            .collect(),
        fingerprint: fingerprint(&files),
        encrypted_to,
    };
    let status: UploadStatus = client
        .post_json("/api/uploads", &request)?
        .ok_or_else(|| unexpected(client, "/api/uploads", "no upload in the answer"))?;
    let mut received = received_offsets(client, &status, &files)?;
    let total: u64 = files.iter().map(|f| f.bytes).sum();
    let id = segment(&status.id);
    tracing::info!(upload = %status.id, total, already = received.iter().sum::<u64>(), "uploading");
    for (i, file) in files.iter().enumerate() {
        let before: u64 = files[..i].iter().map(|f| f.bytes).sum();
        send_file(client, &id, file, &mut received, i, &files, &mut |offset| {
            progress(before + offset, total)
        })?;
        if !file.unchanged() {
            return Err(SubmitError::Invalid(format!(
                "{}: changed while it was being uploaded; run the command again",
                file.path.display()
            )));
        }
    }
    progress(total, total);
    let path = format!("/api/uploads/{id}/finish");
    let created: SubmissionCreated = client
        .send_json(Method::POST, &path, &serde_json::json!({}))?
        .ok_or_else(|| unexpected(client, &path, "no submission in the answer"))?;
    Ok(created)
}

/// How much of each of `files` the server holds, checking that the upload it describes
/// is the one we asked for.
fn received_offsets(
    client: &Client,
    status: &UploadStatus,
    files: &[LocalFile],
) -> Result<Vec<u64>, ClientError> {
    let path = format!("/api/uploads/{}", segment(&status.id));
    files
        .iter()
        .map(|f| {
            let theirs = status
                .files
                .iter()
                .find(|s| s.name == f.name)
                .ok_or_else(|| {
                    unexpected(client, &path, &format!("{} is not in the upload", f.name))
                })?;
            if theirs.bytes != f.bytes || theirs.received > f.bytes {
                return Err(unexpected(
                    client,
                    &path,
                    &format!(
                        "{}: the server expects {} bytes and holds {}, the file has {}",
                        f.name, theirs.bytes, theirs.received, f.bytes
                    ),
                ));
            }
            Ok(theirs.received)
        })
        .collect()
}

/// Sends `files[i]` from the offset the server holds, in chunks, resynchronising with
/// the server after every failure.
fn send_file(
    client: &Client,
    id: &str,
    file: &LocalFile,
    received: &mut [u64],
    i: usize,
    files: &[LocalFile],
    progress: &mut dyn FnMut(u64),
) -> Result<(), SubmitError> {
    let path = format!("/api/uploads/{id}/files/{}", segment(&file.name));
    let mut failures = 0u32;
    progress(received[i]);
    while received[i] < file.bytes {
        let offset = received[i];
        let failure = match send_chunk(client, &path, file, offset) {
            Ok(Sent::Accepted(next)) if next > offset && next <= file.bytes => {
                received[i] = next;
                failures = 0;
                progress(next);
                continue;
            }
            Ok(Sent::Accepted(next)) => {
                return Err(unexpected(
                    client,
                    &path,
                    &format!("offset {next} after sending from {offset}"),
                )
                .into())
            }
            Ok(Sent::Conflict(Some(right))) if right <= file.bytes => {
                // The server holds a different amount than we thought: go on from there.
                tracing::info!(file = %file.name, offset, right, "offset corrected by the server");
                received[i] = right;
                failures += 1;
                if failures > client.backoff().retries {
                    return Err(unexpected(client, &path, "the offset keeps conflicting").into());
                }
                continue;
            }
            Ok(Sent::Conflict(_)) => {
                return Err(unexpected(client, &path, "409 without a usable Upload-Offset").into())
            }
            Err(e) if e.is_retryable() => e,
            Err(e) => return Err(e.into()),
        };
        let Some(wait) = client.backoff().delay(failures) else {
            return Err(failure.into());
        };
        tracing::warn!(error = %failure, retry = failures + 1, ?wait, "upload interrupted; resuming");
        std::thread::sleep(wait);
        failures += 1;
        let status: UploadStatus = client.get_json(&format!("/api/uploads/{id}"))?;
        received.copy_from_slice(&received_offsets(client, &status, files)?);
        progress(received[i]);
    }
    Ok(())
}

enum Sent {
    /// `2xx`: the server now holds this many bytes.
    Accepted(u64),
    /// `409`: the server holds this many bytes (if it said).
    Conflict(Option<u64>),
}

/// One `PATCH` with the bytes of `file` from `offset` on, at most [`CHUNK_BYTES`],
/// streamed from the file.
fn send_chunk(
    client: &Client,
    path: &str,
    file: &LocalFile,
    offset: u64,
) -> Result<Sent, ClientError> {
    let len = CHUNK_BYTES.min(file.bytes - offset);
    let mut reader = std::fs::File::open(&file.path).map_err(|e| ClientError::io(&file.path, e))?;
    reader
        .seek(SeekFrom::Start(offset))
        .map_err(|e| ClientError::io(&file.path, e))?;
    let mut body = reader.take(len);
    let offset_text = offset.to_string();
    let len_text = len.to_string();
    let response = client.send(
        Method::PATCH,
        path,
        &[
            (UPLOAD_OFFSET_HEADER, &offset_text),
            ("content-type", "application/octet-stream"),
            ("content-length", &len_text),
        ],
        SendBody::from_reader(&mut body),
    )?;
    let status = response.status().as_u16();
    if status == 409 {
        return Ok(Sent::Conflict(header_u64(&response, UPLOAD_OFFSET_HEADER)));
    }
    let response = client.success(path, response)?;
    Ok(Sent::Accepted(
        header_u64(&response, UPLOAD_OFFSET_HEADER).unwrap_or(offset + len),
    ))
}

/// Polls `GET /api/submissions/{id}` every `interval` until the submission is scored or
/// failed (its final report is returned either way), calling `on_update` with every
/// report.
pub fn wait(
    client: &Client,
    id: i64,
    interval: Duration,
    on_update: &mut dyn FnMut(&SubmissionReport),
) -> Result<SubmissionReport, SubmitError> {
    let path = format!("/api/submissions/{id}");
    loop {
        let report: SubmissionReport = client.get_json(&path)?;
        on_update(&report);
        if report.state.is_final() {
            return Ok(report);
        }
        std::thread::sleep(interval);
    }
}

fn unexpected(client: &Client, path: &str, message: &str) -> ClientError {
    ClientError::Decode {
        url: client.url(path),
        message: message.to_owned(),
    }
}
