//! Opening sealed winners: a worker holding a phase's evaluation key unwraps the age file
//! key of each file of the encrypted checkpoints that phase promoted and gives those
//! keys, never the evaluation key, to the server, which then decrypts and publishes them
//! as the phase's rules say (`server::http::sealed`).
//!
//! The server is not trusted with the choice: before unwrapping anything the worker
//! replays the public log and requires that it shows the phase finalized under rules that
//! open the weights and promoting this very submission (`Replay::may_open`), and that the
//! files it downloads are the ones the submission was received with (their combined hash
//! is in the log). A server asking for the keys of anything else gets nothing.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use ascent_domain::protocol::{files_sha256, OpenRequest, SealedCheckpoint, SealedRequest};
use ascent_domain::public_log::{OpenedFile, Replay};

use crate::client::{download, segment, Client, ClientError, Expected};
use crate::encryption::{
    header_len, unwrap_file_key, EvaluationKey, MAX_HEADER_BYTES, NONCE_BYTES,
};
use crate::verify::{self, VerifyError};

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenSummary {
    /// Checkpoints the server opened and published.
    pub opened: u32,
    /// Checkpoints this worker would not or could not open (logged): the log does not
    /// show them due, their files are not the logged ones, or the server refused.
    pub failed: u32,
}

/// Asks the server which promoted checkpoints encrypted to `keys` wait to be opened and
/// opens those the public log shows are due, downloading their ciphertext under
/// `scratch` (removed after each). Only failing to ask at all, or a log that does not
/// verify, is an error.
pub fn open_sealed(
    client: &Client,
    keys: &[EvaluationKey],
    scratch: &Path,
    cancel: &AtomicBool,
) -> Result<OpenSummary, ClientError> {
    let mut summary = OpenSummary::default();
    if keys.is_empty() {
        return Ok(summary);
    }
    let request = SealedRequest {
        evaluation_keys: keys.iter().map(|k| k.recipient().to_owned()).collect(),
    };
    let waiting: Vec<SealedCheckpoint> = client
        .post_json("/api/worker/sealed", &request)?
        .unwrap_or_default();
    if waiting.is_empty() {
        return Ok(summary);
    }
    let replay = match verify::replay(client) {
        Ok((replay, _, _)) => replay,
        Err(VerifyError::Client(e)) => return Err(e),
        Err(VerifyError::Discrepancy(problem)) => {
            tracing::error!(%problem, "the public log does not verify; opening nothing");
            summary.failed = u32::try_from(waiting.len()).unwrap_or(u32::MAX);
            return Ok(summary);
        }
    };
    for sealed in waiting {
        let _span = tracing::info_span!("open", submission = sealed.submission_id).entered();
        let Some(key) = keys.iter().find(|k| k.recipient() == sealed.encrypted_to) else {
            continue;
        };
        let dir = scratch.join(sealed.submission_id.to_string());
        let keys = file_keys(client, &replay, &sealed, key, &dir, cancel);
        let _ = std::fs::remove_dir_all(&dir);
        let opened = keys.and_then(|file_keys| {
            let path = format!(
                "/api/worker/sealed/{}",
                segment(&sealed.submission_id.to_string())
            );
            client
                .post_json::<_, Vec<OpenedFile>>(&path, &OpenRequest { file_keys })
                .map_err(|e| e.to_string())
        });
        match opened {
            Ok(files) => {
                summary.opened += 1;
                tracing::info!(
                    files = files.map_or(0, |f| f.len()),
                    "opened: the server published the promoted checkpoint"
                );
            }
            Err(error) => {
                summary.failed += 1;
                tracing::warn!(%error, "not opening a promoted encrypted checkpoint");
            }
        }
    }
    Ok(summary)
}

/// Each file's file key (hex, by file name), once the log shows the checkpoint is due
/// and its downloaded files are the ones it was received with; otherwise why not.
fn file_keys(
    client: &Client,
    replay: &Replay,
    sealed: &SealedCheckpoint,
    key: &EvaluationKey,
    dir: &Path,
    cancel: &AtomicBool,
) -> Result<BTreeMap<String, String>, String> {
    let logged = replay.may_open(sealed.submission_id)?;
    let listed: Vec<(String, String)> = sealed
        .files
        .iter()
        .map(|f| (f.name.clone(), f.sha256.clone()))
        .collect();
    if files_sha256(&listed) != logged.files_sha256 {
        return Err("its files are not the ones the public log says it was received with".into());
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut keys = BTreeMap::new();
    for file in &sealed.files {
        let path = format!(
            "/api/submissions/{}/sealed/{}",
            segment(&sealed.submission_id.to_string()),
            segment(&file.name)
        );
        let dest = dir.join(&file.name);
        let expected = Expected {
            name: &file.name,
            bytes: file.bytes,
            sha256: &file.sha256,
        };
        // Verified against the listed hash, which the log's combined hash covers.
        download(client, &path, &[], &dest, expected, cancel, &mut |_| {})
            .map_err(|e| e.to_string())?;
        let mut head = Vec::new();
        std::fs::File::open(&dest)
            .and_then(|f| {
                f.take((MAX_HEADER_BYTES + NONCE_BYTES) as u64)
                    .read_to_end(&mut head)
            })
            .map_err(|e| format!("{}: {e}", dest.display()))?;
        let len = header_len(&head).ok_or_else(|| format!("{}: no whole age header", file.name))?;
        let file_key = unwrap_file_key(&head[..len], &file.name, key).map_err(|e| e.to_string())?;
        keys.insert(file.name.clone(), hex::encode(file_key));
    }
    Ok(keys)
}
