//! Signed scores. A worker that scores a checkpoint signs a statement of what it
//! measured with its ed25519 key; the server verifies it against the key an organizer
//! registered for that worker before it accepts the score, and keeps both, so anyone
//! can check later that a score is what a known machine measured.
//!
//! The statement carries the per-window losses rather than the public and private
//! means: workers never hold the phase's split secret, and the two means follow from
//! the windows and the secret (published once the phase is finalized; see
//! `split::window_parts`). Its canonical form is its JSON with the fields in declaration
//! order and floats in serde_json's shortest round-trip form.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::protocol::ScoredCheckpoint;

/// Version of the statement's layout.
pub const STATEMENT_VERSION: u32 = 1;

/// What a worker signs about one scored submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreStatement {
    pub version: u32,
    pub submission_id: i64,
    /// Canonical hash of the tensor bytes.
    pub weights_sha256: String,
    /// Hash of the held-out token shard.
    pub data_sha256: String,
    /// Hash of the evaluation the worker was asked for ([`spec_sha256`]).
    pub spec_sha256: String,
    pub evaluator_version: String,
    pub seq_len: u32,
    /// Summed cross-entropy (nats) over each window's predicted tokens, in order.
    pub window_nll: Vec<f64>,
    /// Mean loss per predicted token over all windows.
    pub loss: f64,
    /// Tokens predicted in all: windows × (seq_len − 1).
    pub tokens: u64,
    pub parameters: u64,
    pub device: String,
    /// When the worker finished (unix seconds).
    pub scored_at: i64,
}

/// Hash of an evaluation request: window length, windows, data and parameter cap.
pub fn spec_sha256(seq_len: u32, windows: u32, data_sha256: &str, max_parameters: u64) -> String {
    let text = format!("ascent-eval-spec-v1\nseq_len={seq_len}\nwindows={windows}\ndata={data_sha256}\nmax_parameters={max_parameters}\n");
    hex::encode(Sha256::digest(text.as_bytes()))
}

impl ScoreStatement {
    /// The statement of `scored`, the measurements a worker reports for `submission_id`
    /// under the evaluation hashed as `spec_sha256`.
    pub fn of(submission_id: i64, spec_sha256: &str, scored: &ScoredCheckpoint) -> ScoreStatement {
        let predicted = u64::from(scored.seq_len.saturating_sub(1));
        let tokens = predicted * scored.window_nll.len() as u64;
        let total: f64 = scored.window_nll.iter().sum();
        ScoreStatement {
            version: STATEMENT_VERSION,
            submission_id,
            weights_sha256: scored.weights_sha256.clone(),
            data_sha256: scored.data_sha256.clone(),
            spec_sha256: spec_sha256.to_owned(),
            evaluator_version: scored.evaluator_version.clone(),
            seq_len: scored.seq_len,
            window_nll: scored.window_nll.clone(),
            loss: if tokens == 0 {
                f64::NAN
            } else {
                total / tokens as f64
            },
            tokens,
            parameters: scored.parameters,
            device: scored.device.clone(),
            scored_at: scored.scored_at,
        }
    }

    /// The bytes that are signed.
    pub fn canonical(&self) -> String {
        // A struct of plain fields always serializes; NaN (no windows) becomes null.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Why a signature does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the public key is not 32 bytes of hex")]
    BadKey,
    #[error("the signature is not 64 bytes of hex")]
    BadSignature,
    #[error("the signature does not match the statement and the worker's key")]
    Mismatch,
}

/// A worker's key pair (the secret half stays on the worker).
#[derive(Clone)]
pub struct WorkerKey(SigningKey);

impl std::fmt::Debug for WorkerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WorkerKey(public {})", self.public_hex())
    }
}

impl WorkerKey {
    /// From 32 secret bytes (random, kept in the worker's key file).
    pub fn from_secret(secret: [u8; 32]) -> WorkerKey {
        WorkerKey(SigningKey::from_bytes(&secret))
    }

    pub fn secret_hex(&self) -> String {
        hex::encode(self.0.to_bytes())
    }

    /// The public key as organizers register it: 64 hex digits.
    pub fn public_hex(&self) -> String {
        hex::encode(self.0.verifying_key().to_bytes())
    }

    /// Signs a statement's canonical form; the signature as 128 hex digits.
    pub fn sign(&self, statement: &ScoreStatement) -> String {
        hex::encode(self.0.sign(statement.canonical().as_bytes()).to_bytes())
    }
}

/// Checks a signature over a canonical statement with a worker's public key.
pub fn verify(
    canonical: &str,
    signature_hex: &str,
    public_key_hex: &str,
) -> Result<(), SignatureError> {
    let key: [u8; 32] = hex::decode(public_key_hex.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(SignatureError::BadKey)?;
    let key = VerifyingKey::from_bytes(&key).map_err(|_| SignatureError::BadKey)?;
    let signature: [u8; 64] = hex::decode(signature_hex.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(SignatureError::BadSignature)?;
    key.verify_strict(canonical.as_bytes(), &Signature::from_bytes(&signature))
        .map_err(|_| SignatureError::Mismatch)
}

/// Whether `value` reads as a public key (64 hex digits of a valid curve point).
pub fn check_public_key(value: &str) -> Result<String, SignatureError> {
    let key: [u8; 32] = hex::decode(value.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(SignatureError::BadKey)?;
    VerifyingKey::from_bytes(&key).map_err(|_| SignatureError::BadKey)?;
    Ok(hex::encode(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored() -> ScoredCheckpoint {
        ScoredCheckpoint {
            window_nll: vec![130.5, 127.25, 140.0],
            seq_len: 65,
            parameters: 98_624,
            weights_sha256: "ab".repeat(32),
            data_sha256: "cd".repeat(32),
            evaluator_version: "0.1.0".into(),
            device: "cpu".into(),
            dtype: "f32".into(),
            seconds: 1.5,
            scored_at: 1_800_000_000,
            signature: String::new(),
            fingerprint: Vec::new(),
        }
    }

    #[test]
    fn a_statement_summarizes_the_windows() {
        let s = ScoreStatement::of(7, "spec", &scored());
        assert_eq!(s.tokens, 3 * 64);
        assert!((s.loss - (130.5 + 127.25 + 140.0) / 192.0).abs() < 1e-12);
        assert!(s
            .canonical()
            .starts_with(r#"{"version":1,"submission_id":7,"#));
    }

    #[test]
    fn signatures_hold_only_for_the_same_statement_and_key() {
        let key = WorkerKey::from_secret([7; 32]);
        let statement = ScoreStatement::of(7, "spec", &scored());
        let signature = key.sign(&statement);
        assert_eq!(
            verify(&statement.canonical(), &signature, &key.public_hex()),
            Ok(())
        );

        let mut altered = statement.clone();
        altered.window_nll[1] -= 1.0;
        assert_eq!(
            verify(&altered.canonical(), &signature, &key.public_hex()),
            Err(SignatureError::Mismatch)
        );
        let other = WorkerKey::from_secret([8; 32]);
        assert_eq!(
            verify(&statement.canonical(), &signature, &other.public_hex()),
            Err(SignatureError::Mismatch)
        );
        let mut forged = signature.clone();
        forged.replace_range(0..2, if &signature[0..2] == "00" { "01" } else { "00" });
        assert_eq!(
            verify(&statement.canonical(), &forged, &key.public_hex()),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&statement.canonical(), "zz", &key.public_hex()),
            Err(SignatureError::BadSignature)
        );
        assert_eq!(
            verify(&statement.canonical(), &signature, "abc"),
            Err(SignatureError::BadKey)
        );
    }

    #[test]
    fn the_spec_hash_changes_with_any_part() {
        let base = spec_sha256(64, 64, "d", 100);
        assert_eq!(base.len(), 64);
        for other in [
            spec_sha256(65, 64, "d", 100),
            spec_sha256(64, 63, "d", 100),
            spec_sha256(64, 64, "e", 100),
            spec_sha256(64, 64, "d", 101),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn public_keys_are_checked() {
        let key = WorkerKey::from_secret([9; 32]);
        assert_eq!(
            check_public_key(&format!(" {} ", key.public_hex())),
            Ok(key.public_hex())
        );
        assert!(check_public_key("00").is_err());
        assert!(check_public_key(&"zz".repeat(32)).is_err());
    }
}
