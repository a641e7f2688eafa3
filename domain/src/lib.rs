//! Ascent's domain: the types and rules of the competition, as pure functions.
//!
//! Everything here is free of I/O so the UI, the server, the CLI and the evaluator
//! share one definition of each rule, and each rule is unit-tested in isolation.

pub mod account;
pub mod attestation;
pub mod encryption;
pub mod entry;
pub mod fingerprint;
pub mod format;
pub mod limits;
pub mod model_card;
pub mod phase;
pub mod preset;
pub mod protocol;
pub mod public_log;
pub mod ranking;
pub mod rewards;
pub mod settings;
pub mod split;
pub mod statement;
pub mod throttle;
pub mod views;

pub use limits::ModelLimits;
pub use phase::{AdvancementRule, EvalSpec, PhaseSpec, PhaseState, SubmissionLimits};
