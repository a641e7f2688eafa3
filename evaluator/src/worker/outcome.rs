//! How a job's end becomes a [`JobOutcome`]: whose fault it was (the contributor's:
//! `Invalid`, final; ours: `Error`, retried elsewhere) and a message a contributor can
//! read, without the worker's local paths.

use std::path::Path;

use ascent_domain::protocol::JobOutcome;

use crate::client::ClientError;
use crate::error::EvalError;

/// Why a job did not produce a score.
#[derive(Debug)]
pub enum Failure {
    /// Validation or scoring refused or failed.
    Eval(EvalError),
    /// A download or the job's files on our side (network, disk, a wrong hash).
    Transfer(ClientError),
    /// The server's assignment itself is unusable (a file name, a hash).
    Assignment(String),
    /// Scoring panicked: a bug.
    Panic(String),
    /// Decrypting an encrypted checkpoint failed.
    Decrypt(crate::encryption::EncryptionError),
}

/// Where the job's files are, to strip them from messages.
pub struct JobPaths<'a> {
    pub model_dir: &'a Path,
    pub data: &'a Path,
}

/// The outcome to report for a failure.
pub fn outcome(failure: &Failure, paths: &JobPaths<'_>) -> JobOutcome {
    match failure {
        Failure::Eval(e) => eval_outcome(e, paths),
        Failure::Transfer(e) => JobOutcome::Error {
            message: format!("download failed: {e}"),
        },
        Failure::Assignment(message) => JobOutcome::Error {
            message: format!("unusable job assignment: {message}"),
        },
        Failure::Panic(message) => JobOutcome::Error {
            message: format!("the evaluator panicked (a bug): {message}"),
        },
        Failure::Decrypt(e) if e.is_contributors() => JobOutcome::Invalid {
            message: e.to_string(),
        },
        Failure::Decrypt(e) => JobOutcome::Error {
            message: format!(
                "decryption failed on this worker: {}",
                contributor_message(&e.to_string(), paths.model_dir)
            ),
        },
    }
}

fn eval_outcome(e: &EvalError, paths: &JobPaths<'_>) -> JobOutcome {
    let about_data = e.path().is_some_and(|p| p == paths.data);
    let ours = matches!(
        e,
        EvalError::Unavailable(_)
            | EvalError::Candle(_)
            | EvalError::Internal(_)
            | EvalError::Cancelled
    );
    if about_data || ours || !e.is_invalid_input() {
        // The held-out data, the device and the evaluator are ours, not the contributor's.
        return JobOutcome::Error {
            message: e.to_string(),
        };
    }
    JobOutcome::Invalid {
        message: contributor_message(&e.to_string(), paths.model_dir),
    }
}

/// `message` with the checkpoint directory's path removed, so that files are named as
/// the contributor named them (`model.safetensors: …`).
pub fn contributor_message(message: &str, model_dir: &Path) -> String {
    let mut dirs = vec![model_dir.to_path_buf()];
    if let Ok(canonical) = model_dir.canonicalize() {
        if canonical != model_dir {
            dirs.push(canonical);
        }
    }
    // Longest first, so a prefix of another never leaves half a path behind.
    dirs.sort_by_key(|d| std::cmp::Reverse(d.as_os_str().len()));
    let mut text = message.to_owned();
    for dir in &dirs {
        let dir = dir.display().to_string();
        if dir.is_empty() {
            continue;
        }
        text = text.replace(&format!("{dir}/"), "");
        text = text.replace(&dir, "the checkpoint");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn paths() -> (PathBuf, PathBuf) {
        (
            PathBuf::from("/var/cache/ascent/jobs/7/model"),
            PathBuf::from("/var/cache/ascent/data/abc.bin"),
        )
    }

    #[test]
    fn contributor_errors_name_files_not_worker_paths() {
        let (model_dir, data) = paths();
        let e = EvalError::MissingTensor {
            path: model_dir.join("model.safetensors"),
            tensor: "lm_head.weight".into(),
        };
        let out = outcome(
            &Failure::Eval(e),
            &JobPaths {
                model_dir: &model_dir,
                data: &data,
            },
        );
        assert_eq!(
            out,
            JobOutcome::Invalid {
                message: "model.safetensors: missing tensor `lm_head.weight`".into()
            }
        );
        let e = EvalError::MissingWeights {
            dir: model_dir.clone(),
        };
        let JobOutcome::Invalid { message } = outcome(
            &Failure::Eval(e),
            &JobPaths {
                model_dir: &model_dir,
                data: &data,
            },
        ) else {
            panic!("invalid input")
        };
        assert!(!message.contains("/var/cache"), "{message}");
        assert!(
            message.starts_with("the checkpoint: no weights found"),
            "{message}"
        );
    }

    #[test]
    fn our_data_our_device_and_our_bugs_are_errors() {
        let (model_dir, data) = paths();
        let p = JobPaths {
            model_dir: &model_dir,
            data: &data,
        };
        let bad_data = EvalError::TokenOutOfRange {
            path: data.clone(),
            position: 3,
            token: 99,
            vocab_size: 10,
        };
        assert!(matches!(
            outcome(&Failure::Eval(bad_data), &p),
            JobOutcome::Error { .. }
        ));
        let device = EvalError::Unavailable("no cuda".into());
        assert!(matches!(
            outcome(&Failure::Eval(device), &p),
            JobOutcome::Error { .. }
        ));
        let bug = EvalError::Internal("x".into());
        assert!(matches!(
            outcome(&Failure::Eval(bug), &p),
            JobOutcome::Error { .. }
        ));
        let panic = Failure::Panic("index out of bounds".into());
        assert!(matches!(outcome(&panic, &p), JobOutcome::Error { .. }));
        let nan = EvalError::NonFiniteLoss {
            dtype: "f32".into(),
            window: 0,
        };
        assert!(matches!(
            outcome(&Failure::Eval(nan), &p),
            JobOutcome::Invalid { .. }
        ));
    }
}
