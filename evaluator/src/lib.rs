//! Checkpoint validation and scoring for Ascent (issue 4).
//!
//! The path of a checkpoint through this crate: [`checkpoint::load`] refuses pickles,
//! reads the [`config`], validates every [`safetensors`] header and the tensor set
//! against the config and the phase limits, then maps and converts the weights;
//! [`model::Llama`] runs the forward pass; [`score::score`] cuts a validated
//! [`shard::TokenShard`] into windows and sums the chunked cross-entropy of [`loss`];
//! [`split`] decides which windows are public; [`evaluate`] runs all of it in order, as
//! the CLI and the workers do. Every refusal is an [`error::EvalError`].
//!
//! Talking to a server: [`client`] (blocking HTTP, retries, verified resumable
//! downloads), [`worker`] (claim, score, report), [`submit`] (resumable upload).

pub mod causal_softmax;
pub mod checkpoint;
pub mod client;
pub mod config;
pub mod cpu_attention;
#[cfg(test)]
mod cuda_emulation;
#[cfg(feature = "cuda")]
pub mod cuda_kernels;
pub mod encryption;
pub mod error;
pub mod evaluate;
pub mod flash_attention;
pub mod json;
#[cfg(any(test, feature = "cuda"))]
mod kernel_checks;
pub mod loss;
pub mod mapped;
pub mod model;
pub mod placement;
pub mod safetensors;
pub mod score;
pub mod shard;
pub use ascent_domain::split;
pub mod submit;
pub mod swiglu;
pub mod verify;
pub mod vmath;
pub mod worker;

pub use error::{EvalError, Result};
