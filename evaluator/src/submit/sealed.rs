//! `ascent-eval submit --encrypt`: the checkpoint's files encrypted to the phase's
//! evaluation key before anything is sent, so the server only ever holds ciphertext.
//!
//! The ciphertext is kept in `DIR/.ascent-encrypted/` with a stamp naming the key and the
//! plain files it was made from. age encryption is randomised, so an interrupted upload
//! must resume with the very same ciphertext: a later run with the same key and unchanged
//! files reuses it.

use std::path::Path;

use serde::Deserialize;

use super::files::{fingerprint, LocalFile};
use super::SubmitError;
use crate::client::Client;
use crate::encryption::{encrypt_file, parse_recipient};

/// Folder inside the checkpoint directory holding the encrypted files.
pub const SEALED_DIR: &str = ".ascent-encrypted";
const STAMP: &str = "stamp";

#[derive(Deserialize)]
struct PhaseRules {
    rules: Rules,
}

#[derive(Deserialize)]
struct Rules {
    #[serde(default)]
    evaluation_key: Option<String>,
}

/// The phase's evaluation key, from `GET /api/phases/{phase}`.
pub fn evaluation_key(client: &Client, phase: u8) -> Result<String, SubmitError> {
    let detail: PhaseRules = client.get_json(&format!("/api/phases/{phase}"))?;
    detail.rules.evaluation_key.ok_or_else(|| {
        SubmitError::Invalid(format!(
            "phase {phase} has no evaluation key, so it takes no encrypted checkpoints; submit without --encrypt"
        ))
    })
}

/// `files` (from `dir`) encrypted to `recipient`: the files to upload instead.
pub fn seal(
    dir: &Path,
    files: &[LocalFile],
    recipient: &str,
) -> Result<Vec<LocalFile>, SubmitError> {
    let key = parse_recipient(recipient).map_err(|e| SubmitError::Invalid(e.to_string()))?;
    let out = dir.join(SEALED_DIR);
    let stamp = format!("{recipient}\n{}\n", fingerprint(files));
    let sealed_names: Vec<String> = files.iter().map(|f| format!("{}.age", f.name)).collect();
    let reusable = std::fs::read_to_string(out.join(STAMP)).is_ok_and(|s| s == stamp)
        && sealed_names.iter().all(|n| out.join(n).is_file());
    if reusable {
        tracing::info!(dir = %out.display(), "reusing the files encrypted earlier");
    } else {
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out)
            .map_err(|e| SubmitError::Invalid(format!("{}: {e}", out.display())))?;
        for (file, name) in files.iter().zip(&sealed_names) {
            encrypt_file(&file.path, &out.join(name), &key)
                .map_err(|e| SubmitError::Invalid(e.to_string()))?;
            if !file.unchanged() {
                return Err(SubmitError::Invalid(format!(
                    "{}: changed while it was being encrypted; run the command again",
                    file.path.display()
                )));
            }
        }
        std::fs::write(out.join(STAMP), &stamp)
            .map_err(|e| SubmitError::Invalid(format!("{}: {e}", out.display())))?;
        tracing::info!(files = files.len(), dir = %out.display(), "encrypted to the phase's evaluation key");
    }
    sealed_names
        .iter()
        .map(|name| LocalFile::read(&out, name))
        .collect()
}
