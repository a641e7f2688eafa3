//! The one error type at the evaluator's boundary.
//!
//! Every way a hostile or broken input can be refused has its own variant, naming the
//! file and what is wrong, so that a contributor reading the message knows what to fix.
//! [`EvalError::is_invalid_input`] separates those (exit status 2) from failures of the
//! evaluator itself (exit status 1).

use std::path::{Path, PathBuf};

/// Result alias for the evaluator.
pub type Result<T, E = EvalError> = std::result::Result<T, E>;

/// Everything that can stop a validation or a scoring run.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A file could not be opened or read.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A pickle (or other code-executing) file was found where weights were expected.
    #[error("{}: pickle files are refused (loading them executes code); provide safetensors weights and remove this file", path.display())]
    PickleRefused { path: PathBuf },

    /// The model directory holds neither `model.safetensors` nor an index.
    #[error("{}: no weights found: expected model.safetensors or model.safetensors.index.json", dir.display())]
    MissingWeights { dir: PathBuf },

    /// `config.json` is malformed, out of bounds, or asks for something we do not compute.
    #[error("{}: {message}", path.display())]
    Config { path: PathBuf, message: String },

    /// The config is well-formed but outside the phase's model limits.
    #[error("{}: outside the phase limits: {message}", path.display())]
    Limits { path: PathBuf, message: String },

    /// The file ends before its declared structure does.
    #[error("{}: truncated: {message}", path.display())]
    Truncated { path: PathBuf, message: String },

    /// The safetensors header length is larger than we accept.
    #[error("{}: safetensors header of {len} bytes exceeds the limit of {max} bytes", path.display())]
    HeaderTooLarge { path: PathBuf, len: u64, max: u64 },

    /// A JSON document (safetensors header, index) is not well-formed or has the wrong shape.
    #[error("{}: malformed JSON: {message}", path.display())]
    Json { path: PathBuf, message: String },

    /// A JSON object names the same key twice (serde_json would silently keep the last).
    #[error("{}: duplicate key `{key}` in JSON object", path.display())]
    DuplicateKey { path: PathBuf, key: String },

    /// A tensor entry in a safetensors header is inconsistent (dtype, shape, sizes, offsets).
    #[error("{}: tensor `{tensor}`: {message}", path.display())]
    TensorEntry {
        path: PathBuf,
        tensor: String,
        message: String,
    },

    /// Two tensors share bytes in a safetensors file.
    #[error("{}: tensors `{first}` and `{second}` overlap in the data section", path.display())]
    OverlappingTensors {
        path: PathBuf,
        first: String,
        second: String,
    },

    /// The data section has holes or bytes that belong to no tensor.
    #[error("{}: data section is not contiguous: {message}", path.display())]
    NonContiguous { path: PathBuf, message: String },

    /// A shard named in an index is not a plain file inside the checkpoint directory.
    #[error("{}: shard `{shard}` is not a safetensors file inside the checkpoint directory", path.display())]
    ShardEscape { path: PathBuf, shard: String },

    /// A tensor the config requires is absent.
    #[error("{}: missing tensor `{tensor}`", path.display())]
    MissingTensor { path: PathBuf, tensor: String },

    /// A tensor the config does not call for is present.
    #[error("{}: unexpected tensor `{tensor}` (not part of the Llama architecture this config describes)", path.display())]
    UnexpectedTensor { path: PathBuf, tensor: String },

    /// A tensor has a shape other than the one the config implies.
    #[error("{}: tensor `{tensor}` has shape {found:?}, the config implies {expected:?}", path.display())]
    ShapeMismatch {
        path: PathBuf,
        tensor: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },

    /// A weight is stored in a dtype we do not score (only F32, BF16, F16).
    #[error("{}: tensor `{tensor}` is stored as {dtype}; weights must be F32, BF16 or F16", path.display())]
    UnsupportedDtype {
        path: PathBuf,
        tensor: String,
        dtype: String,
    },

    /// A weight holds NaN or infinity.
    #[error("{}: tensor `{tensor}` contains NaN or infinite values (first at element {index})", path.display())]
    NonFinite {
        path: PathBuf,
        tensor: String,
        index: usize,
    },

    /// A token shard has the wrong magic number.
    #[error("{}: not a token shard: magic number is {found}, expected 20240520", path.display())]
    BadMagic { path: PathBuf, found: i32 },

    /// A token shard has an unknown version.
    #[error("{}: unsupported token shard version {found} (1 = u16 tokens, 2 = u32 tokens)", path.display())]
    BadVersion { path: PathBuf, found: i32 },

    /// A token shard's length disagrees with its declared token count.
    #[error("{}: {message}", path.display())]
    ShardLength { path: PathBuf, message: String },

    /// A token id is not below the model's vocabulary size.
    #[error("{}: token {token} at position {position} is out of range for a vocabulary of {vocab_size}", path.display())]
    TokenOutOfRange {
        path: PathBuf,
        position: u64,
        token: u32,
        vocab_size: u32,
    },

    /// A scoring request does not fit the model or the data (sequence length, windows, batch).
    #[error("{}: {message}", path.display())]
    Protocol { path: PathBuf, message: String },

    /// The forward pass produced NaN or infinity (e.g. activations overflowing f16).
    #[error("the model's loss is not finite when computed in {dtype} (window {window}); the weights produce overflowing activations — score in f32, or fix the checkpoint")]
    NonFiniteLoss { dtype: String, window: usize },

    /// The requested device or dtype is not available in this build.
    #[error("{0}")]
    Unavailable(String),

    /// A failure inside the tensor library; a bug or resource exhaustion, not the input.
    #[error("internal tensor error: {0}")]
    Candle(#[from] candle_core::Error),

    /// Any other failure of the evaluator itself.
    #[error("internal error: {0}")]
    Internal(String),

    /// The run was stopped from outside (a lost lease, a time limit, a shutdown) before
    /// it finished; nothing is wrong with the input.
    #[error("cancelled before the evaluation finished")]
    Cancelled,
}

impl EvalError {
    /// Whether the error is the input's fault (exit status 2) rather than ours (exit 1).
    pub fn is_invalid_input(&self) -> bool {
        match self {
            EvalError::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::PermissionDenied
                    | std::io::ErrorKind::IsADirectory
                    | std::io::ErrorKind::NotADirectory
                    | std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::InvalidData
                    | std::io::ErrorKind::InvalidInput
            ),
            EvalError::Candle(_) | EvalError::Internal(_) | EvalError::Cancelled => false,
            _ => true,
        }
    }

    /// The process exit status this error maps to: 2 for invalid input, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        if self.is_invalid_input() {
            2
        } else {
            1
        }
    }

    /// The file or directory the error is about, where it names one.
    pub fn path(&self) -> Option<&Path> {
        use EvalError::*;
        match self {
            Io { path, .. }
            | PickleRefused { path }
            | Config { path, .. }
            | Limits { path, .. }
            | Truncated { path, .. }
            | HeaderTooLarge { path, .. }
            | Json { path, .. }
            | DuplicateKey { path, .. }
            | TensorEntry { path, .. }
            | OverlappingTensors { path, .. }
            | NonContiguous { path, .. }
            | ShardEscape { path, .. }
            | MissingTensor { path, .. }
            | UnexpectedTensor { path, .. }
            | ShapeMismatch { path, .. }
            | UnsupportedDtype { path, .. }
            | NonFinite { path, .. }
            | BadMagic { path, .. }
            | BadVersion { path, .. }
            | ShardLength { path, .. }
            | TokenOutOfRange { path, .. }
            | Protocol { path, .. } => Some(path),
            MissingWeights { dir } => Some(dir),
            NonFiniteLoss { .. } | Unavailable(_) | Candle(_) | Internal(_) | Cancelled => None,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EvalError::Io {
            path: path.into(),
            source,
        }
    }
}
