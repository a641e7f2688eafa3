//! A worker's signing key on disk: 64 hex digits of secret, readable by its owner only.
//! `ascent-eval key` creates it and prints the public half for an organizer to register
//! with the worker's token.

use std::io::Write;
use std::path::Path;

use ascent_domain::statement::WorkerKey;

use crate::error::EvalError;

/// Reads the key at `path`, creating it (from the OS's randomness) if there is none.
/// Returns the key and whether it was created.
pub fn load_or_create(path: &Path) -> Result<(WorkerKey, bool), EvalError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let secret: [u8; 32] = hex::decode(text.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| {
                    EvalError::Unavailable(format!(
                        "{} is not a worker key (64 hex digits)",
                        path.display()
                    ))
                })?;
            Ok((WorkerKey::from_secret(secret), false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((create(path)?, true)),
        Err(e) => Err(EvalError::Unavailable(format!(
            "cannot read the worker key {}: {e}",
            path.display()
        ))),
    }
}

/// A fresh random key.
pub fn generate() -> Result<WorkerKey, EvalError> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)
        .map_err(|e| EvalError::Unavailable(format!("no randomness for a key: {e}")))?;
    Ok(WorkerKey::from_secret(secret))
}

fn create(path: &Path) -> Result<WorkerKey, EvalError> {
    let key = generate()?;
    let fail = |e: std::io::Error| {
        EvalError::Unavailable(format!(
            "cannot write the worker key {}: {e}",
            path.display()
        ))
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let partial = path.with_extension("partial");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&partial).map_err(fail)?;
    writeln!(file, "{}", key.secret_hex()).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    std::fs::rename(&partial, path).map_err(fail)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_created_once_and_read_back() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("keys/worker.key");
        let (first, created) = load_or_create(&path)?;
        assert!(created);
        let (again, created) = load_or_create(&path)?;
        assert!(!created);
        assert_eq!(first.public_hex(), again.public_hex());
        std::fs::write(&path, "not a key")?;
        assert!(load_or_create(&path).is_err());
        Ok(())
    }
}
