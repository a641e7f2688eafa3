//! What a checkpoint may be in a phase: architecture, vocabulary, size and context.

use serde::{Deserialize, Serialize};

/// The model limits of a phase. A checkpoint's config is checked against these
/// before any weight is read, so a hostile config cannot make anyone allocate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelLimits {
    /// Architecture family, as Hugging Face's `model_type` spells it (`llama`).
    pub architecture: String,
    /// Exact vocabulary size every checkpoint of the phase must have.
    pub vocab_size: u32,
    /// Largest parameter count allowed (tied embeddings counted once).
    pub max_parameters: u64,
    /// Smallest `max_position_embeddings` a checkpoint must support.
    pub min_context: u32,
}
