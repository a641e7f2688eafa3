//! Where checkpoint files and held-out data live: a local directory today, behind this
//! one interface so an object store can take its place.
//!
//! - `<root>/checkpoints/<upload id>/<file>`: an upload's files, written as they arrive
//!   and read by workers once it is a submission (finishing moves nothing); an encrypted
//!   winner's plaintext, once opened, in a folder `open-<random>/` of its own there.
//! - `<root>/datasets/<sha256>.bin`: held-out shards, by content hash.
//!
//! Each file being uploaded has a running SHA-256 kept in memory, so the hash is ready
//! when the last byte lands. After a restart the hash of what is already on disk is
//! recomputed once, then the upload continues.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

/// The running hash of one file being received.
#[derive(Debug, Clone, Default)]
pub struct RunningHash {
    /// Bytes hashed so far.
    pub offset: u64,
    pub hasher: Sha256,
}

/// One writer at a time per file being received, with its running hash.
type FileLock = Arc<tokio::sync::Mutex<RunningHash>>;

/// The local-directory storage.
#[derive(Debug, Clone)]
pub struct Storage {
    root: PathBuf,
    running: Arc<Mutex<HashMap<(String, String), FileLock>>>,
}

impl Storage {
    pub fn new(root: impl Into<PathBuf>) -> Storage {
        Storage {
            root: root.into(),
            running: Arc::default(),
        }
    }

    pub fn checkpoint_dir(&self, upload_id: &str) -> PathBuf {
        self.root.join("checkpoints").join(upload_id)
    }

    /// Path of a file of an upload. Both parts were validated (a random hex id and a
    /// plain checkpoint file name), so they cannot leave the directory.
    pub fn checkpoint_file(&self, upload_id: &str, name: &str) -> PathBuf {
        self.checkpoint_dir(upload_id).join(name)
    }

    pub fn dataset_file(&self, sha256: &str) -> PathBuf {
        self.root.join("datasets").join(format!("{sha256}.bin"))
    }

    /// Removes held-out data left half-received (`incoming-*`) by a process that died.
    pub fn remove_incoming_datasets(&self) {
        let Ok(entries) = std::fs::read_dir(self.root.join("datasets")) else {
            return;
        };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with("incoming-") {
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => {
                        tracing::info!(file = %entry.path().display(), "half-received held-out data removed")
                    }
                    Err(error) => {
                        tracing::warn!(file = %entry.path().display(), %error, "cannot remove half-received held-out data")
                    }
                }
            }
        }
    }

    /// A fresh path for held-out data being received (beside the stored files, so that
    /// storing it is a rename), its folder created.
    pub fn incoming_dataset(&self) -> Result<PathBuf, crate::http::api::ApiError> {
        let dir = self.root.join("datasets");
        std::fs::create_dir_all(&dir).map_err(|e| {
            crate::http::api::ApiError::Internal(format!("cannot create {}: {e}", dir.display()))
        })?;
        let token = ascent_store::random_token()?;
        Ok(dir.join(format!("incoming-{}.partial", &token[..16])))
    }

    /// The running hash of a file, locked for the caller: one request at a time writes
    /// a given file.
    pub fn running_hash(
        &self,
        upload_id: &str,
        name: &str,
    ) -> Arc<tokio::sync::Mutex<RunningHash>> {
        let mut map = self.running.lock().unwrap_or_else(|p| p.into_inner());
        map.entry((upload_id.to_owned(), name.to_owned()))
            .or_default()
            .clone()
    }

    /// Forgets a file's running hash (it is complete, or the upload is gone).
    pub fn forget_hash(&self, upload_id: &str, name: &str) {
        let mut map = self.running.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&(upload_id.to_owned(), name.to_owned()));
    }

    /// Deletes an upload's files.
    pub async fn remove_upload(&self, upload_id: &str) -> io::Result<()> {
        {
            let mut map = self.running.lock().unwrap_or_else(|p| p.into_inner());
            map.retain(|(id, _), _| id != upload_id);
        }
        match tokio::fs::remove_dir_all(self.checkpoint_dir(upload_id)).await {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
}

/// Hashes the first `len` bytes of `path` (to resume a running hash after a restart).
pub async fn hash_prefix(path: &Path, len: u64) -> io::Result<Sha256> {
    let file = tokio::fs::File::open(path).await?;
    let mut reader = file.take(len);
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher)
}

/// SHA-256 and length of a whole file, streamed.
pub async fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    let len = tokio::fs::metadata(path).await?.len();
    let hasher = hash_prefix(path, len).await?;
    Ok((hex::encode(hasher.finalize()), len))
}
