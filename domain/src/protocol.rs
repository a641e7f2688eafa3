//! The wire protocol between Ascent's server and its clients: the resumable upload API
//! (browser and `ascent-eval submit`), the worker API (`ascent-eval worker` and the
//! server's own in-process worker), and the submission status both follow.
//!
//! One definition, serialized with serde, shared by the server and the evaluator so the
//! two cannot drift apart.
//!
//! ## Uploads (contributor: session cookie + CSRF header, or `Authorization: Bearer` API token)
//! - `POST /api/uploads` with [`NewUpload`] → `201` [`UploadStatus`]. The phase's rules
//!   (open, eligible, daily quota, size) are checked here, before any byte is sent. An
//!   unfinished upload of the same phase with the same `fingerprint` is returned instead
//!   of a new one, so a client that lost its state resumes.
//! - `GET /api/uploads/{id}` → [`UploadStatus`] (how much of each file the server holds).
//! - `PATCH /api/uploads/{id}/files/{name}` with header `Upload-Offset: N` and the bytes
//!   from N on as the body → `204` with `Upload-Offset` set to the new length. A wrong
//!   offset answers `409` with the right one in `Upload-Offset`. Any number of PATCHes
//!   may send one file; a broken request keeps what arrived.
//! - `POST /api/uploads/{id}/finish` → `201` [`SubmissionCreated`] once every file is
//!   complete: the submission is queued in the same transaction.
//! - `DELETE /api/uploads/{id}` abandons it.
//!
//! ## Workers (`Authorization: Bearer` worker token)
//! - `POST /api/worker/claim` with [`ClaimRequest`] → `200` [`JobAssignment`], or `204`
//!   when nothing is queued.
//! - `POST /api/worker/jobs/{job}/heartbeat` with [`Heartbeat`] → `200` [`LeaseRenewal`];
//!   `409` when the lease was lost (the worker must stop that job).
//! - `GET /api/worker/jobs/{job}/files/{name}` with header `X-Ascent-Lease` → the file;
//!   `Range: bytes=N-` resumes.
//! - `GET /api/worker/data/{sha256}` with header `X-Ascent-Lease` → the held-out shard of
//!   the leased job; `Range` resumes.
//! - `POST /api/worker/jobs/{job}/result` with [`JobResult`] → `200`; `409` when the
//!   lease expired or the job already has an outcome (the result is not recorded).
//!
//! ## Submissions (anyone; some fields only for the owner and organizers)
//! - `GET /api/submissions/{id}` → [`SubmissionReport`]; `GET /api/submissions/{id}/events`
//!   streams it (server-sent events) on every change until it is final.
//!
//! Errors are JSON `{"error": "…"}` with a status saying whose fault it is.

use serde::{Deserialize, Serialize};

use crate::limits::ModelLimits;

/// Header carrying a byte offset in the upload API (as in the tus protocol).
pub const UPLOAD_OFFSET_HEADER: &str = "upload-offset";
/// Header carrying a worker's lease on a job when it downloads the job's files.
pub const LEASE_HEADER: &str = "x-ascent-lease";
/// Prefix of contributors' API tokens (`ascent-eval submit`).
pub const API_TOKEN_PREFIX: &str = "asc_";
/// Prefix of worker tokens.
pub const WORKER_TOKEN_PREFIX: &str = "ascw_";
/// Prefix of password reset tokens (the secret of a reset link).
pub const RESET_TOKEN_PREFIX: &str = "ascr_";
/// Most files one checkpoint may have (config, index and shards).
pub const MAX_CHECKPOINT_FILES: usize = 64;

/// A file the client is about to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadFile {
    pub name: String,
    pub bytes: u64,
}

/// `POST /api/uploads`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUpload {
    pub phase: u8,
    pub files: Vec<UploadFile>,
    /// Client-chosen identity of this set of files (e.g. names, sizes and modification
    /// times), so an upload can be found again after a reload or a crash.
    pub fingerprint: String,
    /// For encrypted files (`NAME.age`), the evaluation key they are encrypted to; it
    /// must be the phase's when the upload starts and when it finishes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_to: Option<String>,
}

/// A file of an upload and how much of it the server holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadFileStatus {
    pub name: String,
    pub bytes: u64,
    pub received: u64,
}

/// The state of an upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadStatus {
    pub id: String,
    pub phase: u8,
    pub files: Vec<UploadFileStatus>,
    /// Unix seconds after which an unfinished upload is deleted.
    pub expires_at: i64,
}

impl UploadStatus {
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
    pub fn received_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.received).sum()
    }
}

/// `POST /api/uploads/{id}/finish`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmissionCreated {
    pub id: i64,
    /// Path of the submission's page, e.g. `/submissions/42`.
    pub url: String,
}

/// Where a submission is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubmissionState {
    Queued,
    Validating,
    Scoring,
    Scored,
    Failed,
}

impl SubmissionState {
    /// Every state, in pipeline order.
    pub const ALL: [SubmissionState; 5] = [
        SubmissionState::Queued,
        SubmissionState::Validating,
        SubmissionState::Scoring,
        SubmissionState::Scored,
        SubmissionState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SubmissionState::Queued => "queued",
            SubmissionState::Validating => "validating",
            SubmissionState::Scoring => "scoring",
            SubmissionState::Scored => "scored",
            SubmissionState::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<SubmissionState> {
        Some(match text {
            "queued" => SubmissionState::Queued,
            "validating" => SubmissionState::Validating,
            "scoring" => SubmissionState::Scoring,
            "scored" => SubmissionState::Scored,
            "failed" => SubmissionState::Failed,
            _ => return None,
        })
    }

    /// Scored or failed: nothing more will happen to it.
    pub fn is_final(self) -> bool {
        matches!(self, SubmissionState::Scored | SubmissionState::Failed)
    }
}

/// What a submission's worker is doing now, while it is validated or scored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobProgress {
    pub stage: JobStage,
    pub done: u64,
    pub total: u64,
}

/// `GET /api/submissions/{id}`, and each event of `GET /api/submissions/{id}/events`
/// (server-sent events, `data:` one of these as JSON, sent on every change).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubmissionReport {
    pub id: i64,
    pub phase: u8,
    pub contributor: String,
    pub state: SubmissionState,
    /// Unix seconds.
    pub created_at: i64,
    pub scored_at: Option<i64>,
    /// SHA-256 of the uploaded weights file(s), as received.
    pub sha256: Option<String>,
    pub bytes: Option<u64>,
    pub parameters: Option<u64>,
    /// Mean cross-entropy in nats over all windows (shown once the phase is closed, or
    /// to organizers).
    pub loss: Option<f64>,
    /// The public part: what the open phase's leaderboard ranks by.
    pub public_loss: Option<f64>,
    /// The private part: decides the final ranking; hidden while the phase is open.
    pub private_loss: Option<f64>,
    /// Why it failed, in words the contributor can act on (owner and organizers only).
    pub error: Option<String>,
    pub progress: Option<JobProgress>,
    /// Attempts so far (a worker lost on our side is retried).
    pub attempts: u32,
    /// Path of its page.
    pub url: String,
    /// What the scoring worker signed (hidden with the whole loss while the phase is
    /// open: its window losses would give the private part away to anyone with the
    /// phase's secret, and its whole loss with the public part).
    pub signed: Option<SignedScore>,
    /// The kind of TEE attestation of the worker that scored it, if it had one.
    #[serde(default)]
    pub worker_attestation: Option<crate::attestation::TeeKind>,
    /// Whether the checkpoint was submitted encrypted to the phase's evaluation key (the
    /// server holds only ciphertext; such weights are never published).
    #[serde(default)]
    pub encrypted: bool,
}

/// A worker's signed statement of a score, as kept by the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedScore {
    /// The canonical JSON of the `statement::ScoreStatement` that was signed.
    pub statement: String,
    /// Ed25519 signature, hex.
    pub signature: String,
    /// The worker's registered public key, hex.
    pub public_key: String,
    /// The worker's name.
    pub worker: String,
}

impl SubmissionReport {
    /// What `viewer` may see of this report. While a phase is open only organizers see
    /// the private part and the whole loss (the final ranking must stay hidden), and
    /// only the owner and organizers see why a submission failed.
    pub fn redacted(mut self, owner: bool, organizer: bool, phase_open: bool) -> SubmissionReport {
        if phase_open && !organizer {
            self.loss = None;
            self.private_loss = None;
            self.signed = None;
        }
        if !owner && !organizer {
            self.error = self.error.map(|_| "failed".to_owned());
        }
        self
    }
}

/// `POST /api/worker/claim`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimRequest {
    /// The worker's `ascent-eval` version.
    pub evaluator_version: String,
    /// `cpu`, `cuda`, or `cuda ×N` for a worker that splits models across N GPUs
    /// (every GPU it opened; a report names those that held weights).
    pub device: String,
    /// The evaluation keys (age recipients) whose private halves this worker holds: it is
    /// given encrypted submissions only of phases whose key is among them.
    #[serde(default)]
    pub evaluation_keys: Vec<String>,
}

/// The combined hash of a checkpoint's files: SHA-256 over the sorted lines
/// `"<sha256>  <name>\n"` (what `sha256sum` prints for them), given (name, sha256) pairs.
pub fn files_sha256(files: &[(String, String)]) -> String {
    use sha2::{Digest, Sha256};
    let mut lines: Vec<String> = files
        .iter()
        .map(|(name, sha)| format!("{sha}  {name}\n"))
        .collect();
    lines.sort();
    hex::encode(Sha256::digest(lines.concat().as_bytes()))
}

/// `POST /api/worker/sealed`: which promoted encrypted checkpoints wait to be opened by a
/// holder of one of these evaluation keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedRequest {
    pub evaluation_keys: Vec<String>,
}

/// An encrypted checkpoint that its finalized phase promoted and whose rules open the
/// weights: the server cannot publish it until someone reveals each file's age file key
/// (which a holder of the phase's evaluation key unwraps from the file's header).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedCheckpoint {
    pub submission_id: i64,
    pub phase: u8,
    /// The evaluation key its files are encrypted to.
    pub encrypted_to: String,
    pub files: Vec<SealedFile>,
}

/// One encrypted file, as stored: the worker downloads it from
/// `GET /api/submissions/{id}/sealed/{name}` and checks it against the hash of the files
/// the public log says the submission was received with before it unwraps anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedFile {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

/// `POST /api/worker/sealed/{submission}`: the age file key of each of its files (by
/// encrypted file name, hex). The server opens the stored ciphertext with them and
/// publishes the plaintext only if it is exactly the checkpoint that was scored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenRequest {
    pub file_keys: std::collections::BTreeMap<String, String>,
}

/// A checkpoint file of a job, as the worker must download and verify it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFile {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

/// The held-out data of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobData {
    pub sha256: String,
    pub bytes: u64,
}

/// A job handed to a worker, under a lease it must renew by heartbeats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobAssignment {
    pub job_id: i64,
    pub submission_id: i64,
    pub phase: u8,
    /// Secret proving this worker holds the job; sent with every call about it.
    pub lease: String,
    /// The lease lapses this many seconds after the last heartbeat.
    pub lease_seconds: u64,
    /// The phase's time limit for the whole job.
    pub time_limit_seconds: u64,
    pub files: Vec<JobFile>,
    pub data: JobData,
    /// Window length N.
    pub seq_len: u32,
    /// Windows to score from token 0.
    pub windows: u32,
    pub limits: ModelLimits,
    /// For an encrypted submission (every file `NAME.age`), the phase's evaluation key
    /// the files are encrypted to; the worker decrypts them with its private half.
    #[serde(default)]
    pub encrypted_to: Option<String>,
}

/// What a worker is doing with a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStage {
    /// Downloading, checking the files and loading the weights.
    Validating,
    /// Running the model over the windows.
    Scoring,
}

/// `POST /api/worker/jobs/{job}/heartbeat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub lease: String,
    pub stage: JobStage,
    /// Units done of `total` in this stage (bytes while downloading, windows while scoring).
    pub done: u64,
    pub total: u64,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRenewal {
    /// Seconds until the lease lapses without another heartbeat.
    pub lease_seconds: u64,
}

/// `POST /api/worker/jobs/{job}/result`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    pub lease: String,
    pub outcome: JobOutcome,
}

/// How a job ended on the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobOutcome {
    /// The checkpoint was scored.
    Scored(ScoredCheckpoint),
    /// The checkpoint (or its files) is invalid: the contributor's to fix; final.
    Invalid { message: String },
    /// Something on the worker's side went wrong (disk, download, bug): the job is
    /// retried elsewhere and does not count against the contributor.
    Error { message: String },
}

/// A worker's measurements of a checkpoint. The server splits the windows into the
/// public and private parts itself (workers never see the phase secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredCheckpoint {
    /// Sum of the cross-entropy (nats) over the N−1 predicted tokens of each window,
    /// in window order.
    pub window_nll: Vec<f64>,
    pub seq_len: u32,
    pub parameters: u64,
    /// Canonical hash of the tensor bytes (duplicate detection).
    pub weights_sha256: String,
    pub data_sha256: String,
    pub evaluator_version: String,
    pub device: String,
    pub dtype: String,
    /// Wall time of validation, loading and scoring on the worker.
    pub seconds: f64,
    /// When the worker finished (unix seconds).
    pub scored_at: i64,
    /// The worker's ed25519 signature (hex) over the `statement::ScoreStatement` of
    /// these measurements.
    pub signature: String,
    /// Near-copy fingerprint of the weights (`fingerprint`); not part of the signed
    /// statement, since it decides no score, only what organizers review.
    #[serde(default)]
    pub fingerprint: Vec<f32>,
}

/// Why a checkpoint file name is refused at the door.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileNameError {
    #[error("{0:?} is a pickle file; pickles run code when loaded, so only safetensors weights are accepted (convert with `safetensors.torch.save_file`)")]
    Pickle(String),
    #[error("{0:?} is not a checkpoint file: send config.json, model.safetensors or model.safetensors.index.json with its *.safetensors shards")]
    NotCheckpoint(String),
}

/// Checks one checkpoint file name: a plain name (no directory), ASCII letters,
/// digits, `.`, `-` and `_`, ending in `.json` or `.safetensors`.
/// An encrypted file (`NAME.age`, see [`crate::encryption`]) is checked by the name it
/// decrypts to.
pub fn check_file_name(name: &str) -> Result<(), FileNameError> {
    let name = crate::encryption::plain_name(name).unwrap_or(name);
    let lower = name.to_ascii_lowercase();
    if [".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"]
        .iter()
        .any(|ext| lower.ends_with(ext))
    {
        return Err(FileNameError::Pickle(name.to_owned()));
    }
    let plain = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    let known = name == "config.json"
        || name == "model.safetensors.index.json"
        || name.ends_with(".safetensors");
    if plain && known {
        Ok(())
    } else {
        Err(FileNameError::NotCheckpoint(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_file_names() {
        for ok in [
            "config.json",
            "model.safetensors",
            "model.safetensors.index.json",
            "model-00001-of-00002.safetensors",
        ] {
            assert_eq!(check_file_name(ok), Ok(()), "{ok}");
        }
        assert!(matches!(
            check_file_name("pytorch_model.bin"),
            Err(FileNameError::Pickle(_))
        ));
        assert!(matches!(
            check_file_name("model.PT"),
            Err(FileNameError::Pickle(_))
        ));
        for bad in [
            "",
            "../config.json",
            "a/model.safetensors",
            ".safetensors",
            "tokenizer.json",
            "model safetensors.safetensors",
        ] {
            assert!(
                matches!(check_file_name(bad), Err(FileNameError::NotCheckpoint(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn reports_hide_the_private_part_while_open() {
        let report = SubmissionReport {
            id: 1,
            phase: 1,
            contributor: "ada".into(),
            state: SubmissionState::Failed,
            created_at: 0,
            scored_at: None,
            sha256: None,
            bytes: None,
            parameters: None,
            loss: Some(2.0),
            public_loss: Some(2.1),
            private_loss: Some(1.9),
            error: Some("model.safetensors: NaN in layers.0".into()),
            progress: None,
            attempts: 1,
            url: "/submissions/1".into(),
            worker_attestation: None,
            encrypted: false,
            signed: Some(SignedScore {
                statement: "{}".into(),
                signature: "00".into(),
                public_key: "11".into(),
                worker: "gpu-1".into(),
            }),
        };
        let public = report.clone().redacted(false, false, true);
        assert_eq!((public.loss, public.private_loss), (None, None));
        assert_eq!(public.signed, None);
        assert!(report
            .clone()
            .redacted(false, false, false)
            .signed
            .is_some());
        assert_eq!(public.public_loss, Some(2.1));
        assert_eq!(public.error.as_deref(), Some("failed"));
        let owner = report.clone().redacted(true, false, true);
        assert_eq!(owner.private_loss, None);
        assert_eq!(owner.error, report.error);
        assert_eq!(report.clone().redacted(false, true, true), report);
        let closed = report.clone().redacted(false, false, false);
        assert_eq!(closed.private_loss, Some(1.9));
    }

    #[test]
    fn outcomes_are_tagged_json() {
        let result = JobResult {
            lease: "l".into(),
            outcome: JobOutcome::Invalid {
                message: "bad".into(),
            },
        };
        let text = serde_json::to_string(&result).expect("serializes");
        assert_eq!(
            text,
            r#"{"lease":"l","outcome":{"kind":"invalid","message":"bad"}}"#
        );
        let back: JobResult = serde_json::from_str(&text).expect("parses");
        assert_eq!(back, result);
        assert_eq!(
            SubmissionState::parse(SubmissionState::Scoring.as_str()),
            Some(SubmissionState::Scoring)
        );
    }
}
