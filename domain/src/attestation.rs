//! Attested workers: evidence that a worker's signing key lives inside a Trusted
//! Execution Environment, checked when an organizer registers the worker. A phase may
//! then accept scores only from attested workers, and every score shows which kind of
//! worker produced it.
//!
//! Evidence binds the worker's ed25519 public key: the TEE's report carries
//! `report_data = SHA-256("ascent-worker-key-v1\n" + public key hex)`, so a report made
//! for another key, or replayed from another machine, does not verify.
//!
//! Only the development verifier is built in. It checks the binding and nothing else
//! and says so plainly: it is for trying the flow on a laptop, and a server accepts it
//! only when started with `ASCENT_DEV_ATTESTATION=1`. A production verifier for a
//! hardware kind must, in addition:
//! - check the quote's signature chain up to the vendor's root (Intel's DCAP PCK
//!   certificates and collateral for TDX; AMD's ARK → ASK → VCEK chain for SEV-SNP;
//!   NVIDIA's device certificate chain and OCSP for confidential-computing GPUs);
//! - check the TCB status and security versions against the vendor's current
//!   collateral, refusing revoked or out-of-date platforms, and debug mode;
//! - compare the launch measurement (TDX MRTD/RTMRs, SNP MEASUREMENT) with the published
//!   measurement of the released `ascent-eval` worker image;
//! - check `report_data` as above, and the report's freshness.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The kinds of evidence Ascent knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TeeKind {
    IntelTdx,
    AmdSevSnp,
    NvidiaCc,
    /// Not a TEE: the development verifier's kind.
    Development,
}

impl TeeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TeeKind::IntelTdx => "intel-tdx",
            TeeKind::AmdSevSnp => "amd-sev-snp",
            TeeKind::NvidiaCc => "nvidia-cc",
            TeeKind::Development => "development",
        }
    }

    pub fn parse(value: &str) -> Option<TeeKind> {
        [
            TeeKind::IntelTdx,
            TeeKind::AmdSevSnp,
            TeeKind::NvidiaCc,
            TeeKind::Development,
        ]
        .into_iter()
        .find(|k| k.as_str() == value)
    }

    /// How a page names a worker of this kind.
    pub fn label(self) -> &'static str {
        match self {
            TeeKind::IntelTdx => "Intel TDX",
            TeeKind::AmdSevSnp => "AMD SEV-SNP",
            TeeKind::NvidiaCc => "NVIDIA confidential computing",
            TeeKind::Development => "development attestation (not a TEE)",
        }
    }
}

/// What a worker presents: the kind, the `report_data` its report binds, and the
/// report itself (a TDX quote, an SNP report, an NVIDIA attestation; empty for the
/// development kind).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    pub kind: TeeKind,
    /// Hex SHA-256 the report binds; see [`report_data`].
    pub report_data: String,
    #[serde(default)]
    pub report: String,
}

/// The `report_data` that binds `public_key` (64 hex digits).
pub fn report_data(public_key: &str) -> String {
    let text = format!(
        "ascent-worker-key-v1\n{}",
        public_key.trim().to_ascii_lowercase()
    );
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Why evidence is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttestationError {
    #[error("the attestation evidence is not valid JSON of the expected shape: {0}")]
    Malformed(String),
    #[error("the evidence is bound to another key than the worker's")]
    WrongKey,
    #[error("this server has no verifier for {0} evidence")]
    NoVerifier(&'static str),
    #[error("development attestation is switched off on this server (ASCENT_DEV_ATTESTATION)")]
    DevelopmentOff,
    #[error("{0}")]
    Refused(String),
}

/// Checks one kind of evidence.
pub trait Verifier {
    fn kind(&self) -> TeeKind;
    /// Checks `evidence` (already known to bind the worker's key).
    fn verify(&self, evidence: &Evidence) -> Result<(), AttestationError>;
}

/// Accepts evidence of the development kind: the binding is all it checks.
#[derive(Debug, Clone, Copy, Default)]
pub struct DevelopmentVerifier;

impl Verifier for DevelopmentVerifier {
    fn kind(&self) -> TeeKind {
        TeeKind::Development
    }

    fn verify(&self, evidence: &Evidence) -> Result<(), AttestationError> {
        if evidence.report.is_empty() {
            Ok(())
        } else {
            Err(AttestationError::Refused(
                "development evidence carries no report".into(),
            ))
        }
    }
}

/// The verifiers a server runs: none is built in for the hardware kinds yet, and the
/// development one only when `development` is allowed.
pub fn verifiers(development: bool) -> Vec<&'static dyn Verifier> {
    if development {
        vec![&DevelopmentVerifier]
    } else {
        Vec::new()
    }
}

/// Reads evidence (JSON) for the worker with `public_key` and checks it with the
/// verifier of its kind among `verifiers`; the kind attested.
pub fn verify(
    evidence_json: &str,
    public_key: &str,
    verifiers: &[&dyn Verifier],
) -> Result<TeeKind, AttestationError> {
    let evidence: Evidence = serde_json::from_str(evidence_json)
        .map_err(|e| AttestationError::Malformed(e.to_string()))?;
    if !evidence
        .report_data
        .eq_ignore_ascii_case(&report_data(public_key))
    {
        return Err(AttestationError::WrongKey);
    }
    let Some(verifier) = verifiers.iter().find(|v| v.kind() == evidence.kind) else {
        return Err(match evidence.kind {
            TeeKind::Development => AttestationError::DevelopmentOff,
            other => AttestationError::NoVerifier(other.as_str()),
        });
    };
    verifier.verify(&evidence)?;
    Ok(evidence.kind)
}

/// The development evidence for `public_key` (what `ascent-eval attest --development`
/// prints).
pub fn development_evidence(public_key: &str) -> Evidence {
    Evidence {
        kind: TeeKind::Development,
        report_data: report_data(public_key),
        report: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29";
    const OTHER: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

    fn json(e: &Evidence) -> String {
        serde_json::to_string(e).unwrap_or_default()
    }

    #[test]
    fn development_evidence_verifies_only_for_its_key_and_only_when_allowed() {
        let evidence = json(&development_evidence(KEY));
        assert_eq!(
            verify(&evidence, KEY, &[&DevelopmentVerifier]),
            Ok(TeeKind::Development)
        );
        assert_eq!(
            verify(&evidence, OTHER, &[&DevelopmentVerifier]),
            Err(AttestationError::WrongKey)
        );
        assert_eq!(
            verify(&evidence, KEY, &[]),
            Err(AttestationError::DevelopmentOff)
        );
    }

    #[test]
    fn hardware_kinds_need_a_verifier_and_malformed_evidence_is_refused() {
        let tdx = Evidence {
            kind: TeeKind::IntelTdx,
            report_data: report_data(KEY),
            report: "AAAA".into(),
        };
        assert_eq!(
            verify(&json(&tdx), KEY, &[&DevelopmentVerifier]),
            Err(AttestationError::NoVerifier("intel-tdx"))
        );
        assert!(matches!(
            verify("{\"kind\":\"sgx\"}", KEY, &[&DevelopmentVerifier]),
            Err(AttestationError::Malformed(_))
        ));
        assert!(matches!(
            verify("not json", KEY, &[&DevelopmentVerifier]),
            Err(AttestationError::Malformed(_))
        ));
        // A development "report" that pretends to be more is refused.
        let dressed = Evidence {
            report: "quote".into(),
            ..development_evidence(KEY)
        };
        assert!(matches!(
            verify(&json(&dressed), KEY, &[&DevelopmentVerifier]),
            Err(AttestationError::Refused(_))
        ));
    }

    #[test]
    fn kinds_round_trip_and_are_labelled() {
        for kind in [
            TeeKind::IntelTdx,
            TeeKind::AmdSevSnp,
            TeeKind::NvidiaCc,
            TeeKind::Development,
        ] {
            assert_eq!(TeeKind::parse(kind.as_str()), Some(kind));
        }
        assert!(TeeKind::Development.label().contains("not a TEE"));
        assert_eq!(report_data(KEY), report_data(&KEY.to_ascii_uppercase()));
    }
}
