//! Opening sealed winners: a worker holding a phase's evaluation key unwraps the age file
//! key of each file of the encrypted checkpoints that phase promoted (from their headers
//! alone) and gives those keys, never the evaluation key, to the server, which then
//! decrypts and publishes them as the phase's rules say (`server::http::sealed`).

use ascent_domain::protocol::{OpenRequest, SealedCheckpoint, SealedRequest};
use ascent_domain::public_log::OpenedFile;

use crate::client::{segment, Client, ClientError};
use crate::encryption::{unwrap_file_key, EncryptionError, EvaluationKey};

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenSummary {
    /// Checkpoints the server opened and published.
    pub opened: u32,
    /// Checkpoints that could not be opened (logged): a file for another key, or a
    /// refusal by the server.
    pub failed: u32,
}

/// Asks the server which promoted checkpoints encrypted to `keys` wait to be opened and
/// opens each. Only a failure to ask at all is an error.
pub fn open_sealed(client: &Client, keys: &[EvaluationKey]) -> Result<OpenSummary, ClientError> {
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
    for sealed in waiting {
        let _span = tracing::info_span!("open", submission = sealed.submission_id).entered();
        let Some(key) = keys.iter().find(|k| k.recipient() == sealed.encrypted_to) else {
            continue;
        };
        let opened = file_keys(&sealed, key)
            .map_err(|e| e.to_string())
            .and_then(|file_keys| {
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
                tracing::warn!(%error, "cannot open a promoted encrypted checkpoint");
            }
        }
    }
    Ok(summary)
}

/// Each file's file key, hex, by file name.
fn file_keys(
    sealed: &SealedCheckpoint,
    key: &EvaluationKey,
) -> Result<std::collections::BTreeMap<String, String>, EncryptionError> {
    sealed
        .files
        .iter()
        .map(|file| {
            let header = hex::decode(&file.header).map_err(|e| EncryptionError::Corrupt {
                name: file.name.clone(),
                message: format!("the server sent a header that is not hex: {e}"),
            })?;
            let file_key = unwrap_file_key(&header, &file.name, key)?;
            Ok((file.name.clone(), hex::encode(file_key)))
        })
        .collect()
}
