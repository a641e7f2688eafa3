//! The files of a local checkpoint directory that an upload sends, and the fingerprint
//! that lets the server find an unfinished upload of the same files again.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use ascent_domain::protocol::{check_file_name, FileNameError, MAX_CHECKPOINT_FILES};
use sha2::{Digest, Sha256};

use super::SubmitError;
use crate::checkpoint::{CONFIG_FILE, INDEX_FILE, SINGLE_FILE};

/// One file to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    /// The name on the server (the file name in the directory).
    pub name: String,
    pub path: PathBuf,
    pub bytes: u64,
    pub modified: SystemTime,
}

impl LocalFile {
    pub(super) fn read(dir: &Path, name: &str) -> Result<LocalFile, SubmitError> {
        check_file_name(name).map_err(|e| SubmitError::Invalid(e.to_string()))?;
        let path = dir.join(name);
        let meta = std::fs::metadata(&path)
            .map_err(|e| SubmitError::Invalid(format!("{}: {e}", path.display())))?;
        if !meta.is_file() {
            return Err(SubmitError::Invalid(format!(
                "{}: not a file",
                path.display()
            )));
        }
        Ok(LocalFile {
            name: name.to_owned(),
            bytes: meta.len(),
            modified: meta.modified().unwrap_or(UNIX_EPOCH),
            path,
        })
    }

    /// Whether the file on disk is still the one listed (size and modification time).
    pub fn unchanged(&self) -> bool {
        std::fs::metadata(&self.path).is_ok_and(|m| {
            m.len() == self.bytes && m.modified().unwrap_or(UNIX_EPOCH) == self.modified
        })
    }
}

/// Lists what to send from `dir`: `config.json`, then `model.safetensors` or
/// `model.safetensors.index.json` and the shards it names. A directory holding any
/// pickle file is refused, and so is a checkpoint the evaluator would refuse on its
/// headers alone (checked here, before anything is sent). Other files (tokenizer,
/// README…) are not sent.
pub fn checkpoint_files(dir: &Path) -> Result<Vec<LocalFile>, SubmitError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| SubmitError::Invalid(format!("{}: {e}", dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(|e| SubmitError::Invalid(format!("{}: {e}", dir.display())))?;
        let name = entry.file_name();
        if let Err(e @ FileNameError::Pickle(_)) = check_file_name(&name.to_string_lossy()) {
            return Err(SubmitError::Invalid(format!(
                "{}: {e}; remove it from the directory",
                dir.display()
            )));
        }
    }
    // Everything the evaluator checks without reading the weights: config, headers,
    // tensor names and shapes, disguised pickles.
    crate::checkpoint::validate_only(dir, None).map_err(|e| SubmitError::Invalid(e.to_string()))?;

    let mut files = vec![LocalFile::read(dir, CONFIG_FILE)?];
    if dir.join(SINGLE_FILE).is_file() {
        files.push(LocalFile::read(dir, SINGLE_FILE)?);
    } else {
        let index = dir.join(INDEX_FILE);
        files.push(LocalFile::read(dir, INDEX_FILE)?);
        let shards = crate::safetensors::read_index(&index, dir)
            .map_err(|e| SubmitError::Invalid(e.to_string()))?;
        let mut names: Vec<String> = shards
            .values()
            .filter_map(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        names.sort();
        names.dedup();
        for name in names {
            files.push(LocalFile::read(dir, &name)?);
        }
    }
    if files.len() > MAX_CHECKPOINT_FILES {
        return Err(SubmitError::Invalid(format!(
            "{} files; a checkpoint may have at most {MAX_CHECKPOINT_FILES} (use larger shards)",
            files.len()
        )));
    }
    Ok(files)
}

/// Hex SHA-256 over each file's name, size and modification time: the same files,
/// untouched, give the same fingerprint, so an interrupted upload is found again.
pub fn fingerprint(files: &[LocalFile]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"ascent-upload-v1");
    for f in files {
        hasher.update((f.name.len() as u64).to_le_bytes());
        hasher.update(f.name.as_bytes());
        hasher.update(f.bytes.to_le_bytes());
        let nanos = f
            .modified
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        hasher.update(nanos.to_le_bytes());
    }
    hex::encode(hasher.finalize())
}
