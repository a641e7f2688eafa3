//! `ascent-eval verify`: checks a server's public log from the outside. It downloads
//! the whole log, checks the hash chain and every revealed signature, replays the
//! events into standings (`domain::public_log::Replay`), recomputes the public loss of
//! every score of a finalized phase from the worker's signed per-window losses and the
//! published split secret, and compares each phase's leaderboard as the API serves it
//! with the one the log implies. The first discrepancy ends the check.

use ascent_domain::public_log::{self, BoardRow, Discrepancy, Entry, Replay, GENESIS};
use serde::Deserialize;

use crate::client::{Client, ClientError};
use crate::score::{summarize, SplitSpec};

/// Why a log did not verify.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The server could not be read.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The log contradicts itself or the standings served.
    #[error("{0}")]
    Discrepancy(String),
}

impl From<Discrepancy> for VerifyError {
    fn from(d: Discrepancy) -> VerifyError {
        VerifyError::Discrepancy(d.to_string())
    }
}

fn discrepancy<T>(message: String) -> Result<T, VerifyError> {
    Err(VerifyError::Discrepancy(message))
}

/// What a clean check covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub entries: u64,
    pub head: String,
    pub signatures: u64,
    /// Scores whose public loss was recomputed from the signed windows.
    pub recomputed: u64,
    /// Scores still sealed because their phase is open.
    pub sealed: u64,
    pub phases: u64,
    pub rows: u64,
    /// Reward points granted, all phases together.
    pub points: u64,
}

#[derive(Deserialize)]
struct LogHead {
    seq: u64,
    hash: String,
}

#[derive(Deserialize)]
struct LogPage {
    head: Option<LogHead>,
    entries: Vec<Entry>,
    next_after: Option<u64>,
}

#[derive(Deserialize)]
struct PhaseRow {
    number: u8,
}

#[derive(Deserialize)]
struct ApiRow {
    rank: u64,
    contributor: String,
    best_loss: f64,
    submission_id: i64,
}

#[derive(Deserialize)]
struct ApiBoard {
    total: u64,
    rows: Vec<ApiRow>,
}

const PAGE: u64 = 1000;

/// Runs every check against the server `client` talks to.
pub fn verify(client: &Client) -> Result<Verified, VerifyError> {
    let (replay, seq, hash) = replay(client)?;
    let (recomputed, sealed) = check_scores(&replay)?;
    let phases: Vec<PhaseRow> = client.get_json("/api/phases")?;
    let mut rows = 0;
    for phase in &phases {
        rows += compare_board(client, phase.number, &replay.board(phase.number))?;
    }
    Ok(Verified {
        entries: seq,
        head: hash,
        signatures: replay.signatures_checked,
        recomputed,
        sealed,
        phases: phases.len() as u64,
        rows,
        points: replay.points.values().sum(),
    })
}

/// Downloads the whole log, checks its chain and replays it (which checks every
/// revealed signature); the replay, and the last entry's number and hash.
pub fn replay(client: &Client) -> Result<(Replay, u64, String), VerifyError> {
    let mut replay = Replay::default();
    let (mut seq, mut hash) = (0u64, GENESIS.to_owned());
    loop {
        let page: LogPage = client.get_json(&format!("/api/log?after={seq}&limit={PAGE}"))?;
        let events = public_log::check_chain((seq, &hash), &page.entries)?;
        for (entry, event) in page.entries.iter().zip(events) {
            replay.apply(entry.seq, event)?;
        }
        // The head the server announces must be an entry of the chain it serves.
        if let Some(head) = &page.head {
            let announced = page.entries.iter().find(|e| e.seq == head.seq);
            let known = announced.map_or(head.seq == seq && head.hash == hash, |e| {
                e.hash == head.hash
            });
            if !known && (head.seq <= seq || page.next_after.is_none()) {
                return discrepancy(format!(
                    "the log announces head entry {} ({}), which is not in the chain it serves",
                    head.seq, head.hash
                ));
            }
        }
        if let Some(last) = page.entries.last() {
            seq = last.seq;
            hash.clone_from(&last.hash);
        }
        if page.next_after.is_none() || page.entries.is_empty() {
            break;
        }
    }
    Ok((replay, seq, hash))
}

/// Every score must be signed; once its phase has closed its statement must be
/// revealed; once finalized, its public loss must follow from the signed windows and
/// the published secret. Returns (recomputed, still sealed).
fn check_scores(replay: &Replay) -> Result<(u64, u64), VerifyError> {
    let (mut recomputed, mut sealed) = (0, 0);
    for (id, s) in &replay.submissions {
        let Some(public_loss) = s.public_loss else {
            continue;
        };
        if s.signature.is_none() {
            return discrepancy(format!(
                "submission {id}'s score is not signed by any worker"
            ));
        }
        let phase = replay.phases.get(&s.phase).cloned().unwrap_or_default();
        let Some(statement) = &s.statement else {
            if matches!(phase.state.as_deref(), Some("closed" | "finalized")) {
                return discrepancy(format!(
                    "phase {} has closed but the signed statement behind submission {id}'s score was never revealed",
                    s.phase
                ));
            }
            sealed += 1;
            continue;
        };
        let Some(secret) = &phase.split_secret else {
            continue;
        };
        let split = SplitSpec {
            secret: secret.as_bytes().to_vec(),
            public_share: phase.public_share,
        };
        let score = summarize(&statement.window_nll, phase.seq_len as usize, Some(&split));
        match score.public {
            Some(p) if p.loss == public_loss => recomputed += 1,
            Some(p) => {
                return discrepancy(format!(
                    "submission {id}: the log says public loss {public_loss}, but the signed windows give {}",
                    p.loss
                ))
            }
            None => {
                return discrepancy(format!("submission {id}: the published split leaves no public window"))
            }
        }
    }
    Ok((recomputed, sealed))
}

/// Compares the leaderboard the server serves for `phase` with `expected`, row by row;
/// the number of rows compared.
fn compare_board(client: &Client, phase: u8, expected: &[BoardRow]) -> Result<u64, VerifyError> {
    let mut served = Vec::new();
    loop {
        let page: ApiBoard = client.get_json(&format!(
            "/api/phases/{phase}/leaderboard?offset={}&limit={PAGE}",
            served.len()
        ))?;
        let done =
            page.rows.is_empty() || served.len() as u64 + page.rows.len() as u64 >= page.total;
        served.extend(page.rows);
        if done {
            break;
        }
    }
    for (i, want) in expected.iter().enumerate() {
        let Some(got) = served.get(i) else {
            return discrepancy(format!(
                "phase {phase}: the log ranks {} #{} (submission {}, loss {}), but the leaderboard ends after {} rows",
                want.contributor, want.rank, want.submission, want.loss, served.len()
            ));
        };
        if (got.rank, got.contributor.as_str(), got.submission_id)
            != (want.rank, want.contributor.as_str(), want.submission)
            || got.best_loss != want.loss
        {
            return discrepancy(format!(
                "phase {phase}, row {}: the leaderboard shows #{} {} (submission {}, loss {}), the log gives #{} {} (submission {}, loss {})",
                i + 1,
                got.rank,
                got.contributor,
                got.submission_id,
                got.best_loss,
                want.rank,
                want.contributor,
                want.submission,
                want.loss
            ));
        }
    }
    if served.len() > expected.len() {
        let extra = &served[expected.len()];
        return discrepancy(format!(
            "phase {phase}: the leaderboard shows #{} {} (submission {}), which the log does not rank",
            extra.rank, extra.contributor, extra.submission_id
        ));
    }
    Ok(served.len() as u64)
}
