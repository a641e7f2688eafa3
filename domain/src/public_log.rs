//! The public log: every event that moves standings, in order, each entry committing
//! to the hash of the entry before it, so that anyone holding a copy can tell whether
//! the history they are shown later is the one they saw.
//!
//! An entry's hash covers its sequence number, time, the previous hash and its body,
//! the event's JSON exactly as stored and served (`entry_hash`). Scores are committed
//! while a phase is open by their public loss and the hash of the worker's signed
//! statement; the statement itself (which would reveal the private loss) is published
//! in the log when the phase closes, and the split secret when it is finalized, so the
//! public and private losses can then be recomputed from what the worker signed.
//!
//! [`Replay`] folds a checked chain into the standings it implies; `ascent-eval verify`
//! compares them with what the leaderboard API serves.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ranking::{self, Scored};
use crate::statement::{self, ScoreStatement};

/// The `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One event. Contributors are named by handle, submissions by id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A phase's scoring rules, when it is created and whenever organizers edit them.
    PhaseSettings {
        phase: u8,
        epsilon: f64,
        public_share: f64,
        seq_len: u32,
        windows: u32,
        max_parameters: u64,
        /// The key encrypted submissions are encrypted to (`encryption`), so contributors
        /// can check the one the server gives them against the log.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        evaluation_key: Option<String>,
        /// Whether the checkpoints it promotes are published once it is finalized (logged
        /// only when they are, so older entries read the same).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        open_weights: bool,
    },
    PhaseMoved {
        phase: u8,
        from: String,
        to: String,
        reason: String,
    },
    /// A worker whose signatures count from now on.
    WorkerRegistered {
        worker: i64,
        name: String,
        public_key: String,
    },
    WorkerRevoked {
        worker: i64,
    },
    /// TEE evidence for a worker's key was verified (`attestation`).
    WorkerAttested {
        worker: i64,
        tee: String,
    },
    SubmissionReceived {
        submission: i64,
        phase: u8,
        contributor: String,
        /// Hash of the files received (of the tensors, for a checkpoint handed over
        /// directly rather than uploaded).
        sha256: String,
        at: i64,
    },
    /// A score as the leaderboard ranks it, and the commitment to what the worker signed.
    ScoreRecorded {
        submission: i64,
        public_loss: f64,
        statement_sha256: Option<String>,
        signature: Option<String>,
        public_key: Option<String>,
    },
    /// The signed statement of a score, published when its phase closes.
    ScoreRevealed {
        submission: i64,
        statement: ScoreStatement,
    },
    /// The score is withdrawn and the submission scored again.
    Rerun {
        submission: i64,
        reason: String,
    },
    Disqualified {
        submission: i64,
        reason: String,
    },
    /// The phase's held-out data, by hash, whenever it is attached: published before any
    /// submission can be scored on it (it is locked from the first submission on), so the
    /// data every score was computed on was fixed before anyone entered. Each revealed
    /// statement names the hash it was scored on, and replay checks it against this.
    HeldOutData {
        phase: u8,
        sha256: String,
        tokens: u64,
    },
    /// An organizer let a contributor enter a phase they did not advance to.
    Invited {
        phase: u8,
        contributor: String,
        reason: String,
    },
    /// The phase's final order is settled: its split secret and who advanced.
    PhaseFinalized {
        phase: u8,
        split_secret: String,
        advanced: Vec<String>,
        /// The submission behind each of `advanced`, in the same order (absent from logs
        /// written before it was added).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        promoted: Vec<i64>,
    },
    /// The phase's points budget shared at finalization (`domain::rewards`).
    RewardsGranted {
        phase: u8,
        budget: u64,
        rule: String,
        awards: Vec<Award>,
    },
    /// A promoted encrypted checkpoint opened after its phase was finalized (its rules
    /// open the weights): each file's age file key, with which anyone holding the
    /// ciphertext (whose hash the submission logged) can decrypt it, and the plaintext
    /// the server published, whose tensors hash to the weights the worker signed.
    WeightsOpened {
        submission: i64,
        weights_sha256: String,
        files: Vec<OpenedFile>,
    },
}

/// One file of an opened checkpoint: the encrypted file, its key, and what it decrypts to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenedFile {
    pub sealed: String,
    pub sealed_sha256: String,
    pub file_key: String,
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

/// Points granted to one contributor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Award {
    pub contributor: String,
    pub rank: u64,
    pub points: u64,
}

impl Event {
    /// The event's name, as stored in the entry's `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::PhaseSettings { .. } => "phase_settings",
            Event::PhaseMoved { .. } => "phase_moved",
            Event::WorkerRegistered { .. } => "worker_registered",
            Event::WorkerRevoked { .. } => "worker_revoked",
            Event::WorkerAttested { .. } => "worker_attested",
            Event::SubmissionReceived { .. } => "submission_received",
            Event::ScoreRecorded { .. } => "score_recorded",
            Event::ScoreRevealed { .. } => "score_revealed",
            Event::Rerun { .. } => "rerun",
            Event::Disqualified { .. } => "disqualified",
            Event::HeldOutData { .. } => "held_out_data",
            Event::Invited { .. } => "invited",
            Event::PhaseFinalized { .. } => "phase_finalized",
            Event::RewardsGranted { .. } => "rewards_granted",
            Event::WeightsOpened { .. } => "weights_opened",
        }
    }

    /// The body an entry stores and hashes.
    pub fn body(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// One entry as stored and served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub at: i64,
    /// The previous entry's hash ([`GENESIS`] for the first).
    pub prev: String,
    pub hash: String,
    /// The event's JSON, byte for byte as hashed.
    pub body: String,
}

/// The hash an entry must carry.
pub fn entry_hash(seq: u64, at: i64, prev: &str, body: &str) -> String {
    let text = format!("ascent-log-v1\n{seq}\n{at}\n{prev}\n{body}");
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The first thing wrong with a log, at the entry where it shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("log entry {seq}: {problem}")]
pub struct Discrepancy {
    pub seq: u64,
    pub problem: String,
}

fn discrepancy<T>(seq: u64, problem: impl Into<String>) -> Result<T, Discrepancy> {
    Err(Discrepancy {
        seq,
        problem: problem.into(),
    })
}

/// Checks that `entries` continue a chain whose last entry was `after` (its sequence
/// number and hash; `(0, GENESIS)` at the start): contiguous numbers, each entry linked
/// to the one before, each hash right. Returns the events.
pub fn check_chain(after: (u64, &str), entries: &[Entry]) -> Result<Vec<Event>, Discrepancy> {
    let (mut seq, mut prev) = (after.0, after.1.to_owned());
    let mut events = Vec::with_capacity(entries.len());
    for entry in entries {
        if entry.seq != seq + 1 {
            return discrepancy(
                entry.seq,
                format!("follows entry {seq}: entries are missing or out of order"),
            );
        }
        if entry.prev != prev {
            return discrepancy(entry.seq, "does not link to the previous entry's hash");
        }
        if entry.hash != entry_hash(entry.seq, entry.at, &entry.prev, &entry.body) {
            return discrepancy(
                entry.seq,
                "its hash does not match its contents (the entry was altered)",
            );
        }
        match serde_json::from_str::<Event>(&entry.body) {
            Ok(event) => events.push(event),
            Err(e) => return discrepancy(entry.seq, format!("unreadable event: {e}")),
        }
        seq = entry.seq;
        prev.clone_from(&entry.hash);
    }
    Ok(events)
}

/// A submission as the log tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedSubmission {
    pub phase: u8,
    pub contributor: String,
    pub at: i64,
    pub public_loss: Option<f64>,
    pub statement_sha256: Option<String>,
    pub signature: Option<String>,
    pub public_key: Option<String>,
    /// The signed statement, once revealed (checked against the commitment).
    pub statement: Option<ScoreStatement>,
    pub disqualified: bool,
    /// Whether its encrypted weights were opened (`Event::WeightsOpened`).
    pub opened: bool,
    /// The hash of its files as received (`protocol::files_sha256`).
    pub files_sha256: String,
}

/// A phase's rules and outcome as the log tells them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoggedPhase {
    pub epsilon: f64,
    pub public_share: f64,
    pub seq_len: u32,
    pub windows: u32,
    pub state: Option<String>,
    pub split_secret: Option<String>,
    pub advanced: Vec<String>,
    /// Contributors invited into the phase, in the order the log names them.
    pub invited: Vec<String>,
    /// The hash of its held-out data, if the log published one (logs written before this
    /// event existed do not).
    pub data_sha256: Option<String>,
    /// Whether its rules publish the checkpoints it promotes.
    pub open_weights: bool,
    /// The submissions it promoted, once finalized (empty in older logs, which name only
    /// the contributors).
    pub promoted: Vec<i64>,
}

/// One row of a leaderboard the log implies.
#[derive(Debug, Clone, PartialEq)]
pub struct BoardRow {
    pub rank: u64,
    pub contributor: String,
    pub loss: f64,
    pub submission: i64,
}

/// The state the log's events build, checked event by event.
#[derive(Debug, Clone, Default)]
pub struct Replay {
    pub phases: BTreeMap<u8, LoggedPhase>,
    pub submissions: BTreeMap<i64, LoggedSubmission>,
    /// Registered worker keys, and whether each is still valid.
    keys: HashMap<i64, (String, bool)>,
    /// Signatures checked so far.
    pub signatures_checked: u64,
    /// Points granted so far, by contributor.
    pub points: BTreeMap<String, u64>,
}

impl Replay {
    /// Applies one event; an event that contradicts the history before it is a
    /// discrepancy (a score for an unknown submission, a signature from no registered
    /// worker, a revealed statement that is not the one committed to...).
    pub fn apply(&mut self, seq: u64, event: Event) -> Result<(), Discrepancy> {
        match event {
            Event::PhaseSettings {
                phase,
                epsilon,
                public_share,
                seq_len,
                windows,
                open_weights,
                ..
            } => {
                let p = self.phases.entry(phase).or_default();
                p.epsilon = epsilon;
                p.public_share = public_share;
                p.seq_len = seq_len;
                p.windows = windows;
                p.open_weights = open_weights;
            }
            Event::PhaseMoved { phase, to, .. } => match self.phases.get_mut(&phase) {
                Some(p) => p.state = Some(to),
                None => {
                    return discrepancy(
                        seq,
                        format!("phase {phase} moved before its settings were logged"),
                    )
                }
            },
            Event::HeldOutData { phase, sha256, .. } => match self.phases.get_mut(&phase) {
                Some(p) => p.data_sha256 = Some(sha256),
                None => {
                    return discrepancy(
                        seq,
                        format!("held-out data for phase {phase}, which the log never set up"),
                    )
                }
            },
            Event::Invited {
                phase, contributor, ..
            } => match self.phases.get_mut(&phase) {
                Some(p) => p.invited.push(contributor),
                None => {
                    return discrepancy(
                        seq,
                        format!(
                            "{contributor} invited to phase {phase}, which the log never set up"
                        ),
                    )
                }
            },
            Event::WorkerRegistered {
                worker, public_key, ..
            } => {
                self.keys.insert(worker, (public_key, true));
            }
            Event::WorkerAttested { worker, .. } => {
                if !self.keys.contains_key(&worker) {
                    return discrepancy(
                        seq,
                        format!("worker {worker} attested but never registered"),
                    );
                }
            }
            Event::WorkerRevoked { worker } => match self.keys.get_mut(&worker) {
                Some(key) => key.1 = false,
                None => {
                    return discrepancy(
                        seq,
                        format!("worker {worker} revoked but never registered"),
                    )
                }
            },
            Event::SubmissionReceived {
                submission,
                phase,
                contributor,
                sha256,
                at,
            } => {
                if !self.phases.contains_key(&phase) {
                    return discrepancy(
                        seq,
                        format!(
                            "submission {submission} to phase {phase}, which the log never set up"
                        ),
                    );
                }
                if self.submissions.contains_key(&submission) {
                    return discrepancy(seq, format!("submission {submission} received twice"));
                }
                self.submissions.insert(
                    submission,
                    LoggedSubmission {
                        phase,
                        contributor,
                        at,
                        public_loss: None,
                        statement_sha256: None,
                        signature: None,
                        public_key: None,
                        statement: None,
                        disqualified: false,
                        opened: false,
                        files_sha256: sha256,
                    },
                );
            }
            Event::ScoreRecorded {
                submission,
                public_loss,
                statement_sha256,
                signature,
                public_key,
            } => {
                if let Some(key) = &public_key {
                    if !self.keys.values().any(|(k, valid)| k == key && *valid) {
                        return discrepancy(seq, format!("submission {submission} was scored with a key no registered worker holds"));
                    }
                }
                let s = self.submission_mut(seq, submission)?;
                if s.public_loss.is_some() {
                    return discrepancy(
                        seq,
                        format!("submission {submission} scored twice without a re-run"),
                    );
                }
                s.public_loss = Some(public_loss);
                s.statement_sha256 = statement_sha256;
                s.signature = signature;
                s.public_key = public_key;
                s.statement = None;
            }
            Event::ScoreRevealed {
                submission,
                statement,
            } => {
                let published = self
                    .submissions
                    .get(&submission)
                    .and_then(|s| self.phases.get(&s.phase))
                    .and_then(|p| p.data_sha256.clone());
                let s = self.submission_mut(seq, submission)?;
                let canonical = statement.canonical();
                let sha = hex::encode(Sha256::digest(canonical.as_bytes()));
                if s.statement_sha256.as_deref() != Some(sha.as_str()) {
                    return discrepancy(seq, format!("the statement revealed for submission {submission} is not the one its score committed to"));
                }
                if statement.submission_id != submission {
                    return discrepancy(seq, format!("the statement revealed for submission {submission} is about submission {}", statement.submission_id));
                }
                let (Some(signature), Some(key)) = (&s.signature, &s.public_key) else {
                    return discrepancy(
                        seq,
                        format!("submission {submission}'s score was not signed"),
                    );
                };
                if let Err(e) = statement::verify(&canonical, signature, key) {
                    return discrepancy(seq, format!("submission {submission}: {e}"));
                }
                if let Some(data) = published.filter(|d| *d != statement.data_sha256) {
                    return discrepancy(seq, format!("submission {submission} was scored on held-out data {}, not the phase's published {data}", statement.data_sha256));
                }
                s.statement = Some(statement);
                self.signatures_checked += 1;
            }
            Event::Rerun { submission, .. } => {
                let s = self.submission_mut(seq, submission)?;
                s.public_loss = None;
                s.statement_sha256 = None;
                s.signature = None;
                s.public_key = None;
                s.statement = None;
            }
            Event::Disqualified { submission, .. } => {
                self.submission_mut(seq, submission)?.disqualified = true;
            }
            Event::PhaseFinalized {
                phase,
                split_secret,
                advanced,
                promoted,
            } => match self.phases.get_mut(&phase) {
                Some(p) => {
                    p.split_secret = Some(split_secret);
                    p.advanced = advanced;
                    p.promoted = promoted;
                }
                None => {
                    return discrepancy(seq, format!("phase {phase} finalized but never set up"))
                }
            },
            Event::RewardsGranted {
                phase,
                budget,
                awards,
                ..
            } => {
                let Some(p) = self.phases.get(&phase).filter(|p| p.split_secret.is_some()) else {
                    return discrepancy(
                        seq,
                        format!("rewards granted for phase {phase} before it was finalized"),
                    );
                };
                let total: u64 = awards.iter().map(|a| a.points).sum();
                if !awards.is_empty() && total != budget {
                    return discrepancy(seq, format!("phase {phase}'s rewards add up to {total} points, not its budget of {budget}"));
                }
                if let Some(a) = awards.iter().find(|a| !p.advanced.contains(&a.contributor)) {
                    return discrepancy(
                        seq,
                        format!(
                            "{} was rewarded in phase {phase} without advancing",
                            a.contributor
                        ),
                    );
                }
                for a in awards {
                    *self.points.entry(a.contributor).or_default() += a.points;
                }
            }
            Event::WeightsOpened {
                submission,
                weights_sha256,
                files,
            } => {
                let s = match self.may_open(submission) {
                    Ok(s) => s,
                    Err(problem) => return discrepancy(seq, problem),
                };
                if let Some(signed) = s
                    .statement
                    .as_ref()
                    .filter(|st| st.weights_sha256 != weights_sha256)
                {
                    return discrepancy(seq, format!("submission {submission}'s opened weights hash to {weights_sha256}, not the {} its worker signed", signed.weights_sha256));
                }
                if let Some(f) = files
                    .iter()
                    .find(|f| crate::encryption::plain_name(&f.sealed) != Some(f.name.as_str()))
                {
                    return discrepancy(
                        seq,
                        format!(
                            "submission {submission}: {} is not what {} decrypts to",
                            f.name, f.sealed
                        ),
                    );
                }
                let sealed: Vec<(String, String)> = files
                    .iter()
                    .map(|f| (f.sealed.clone(), f.sealed_sha256.clone()))
                    .collect();
                if files.is_empty() || crate::protocol::files_sha256(&sealed) != s.files_sha256 {
                    return discrepancy(seq, format!("submission {submission}: the opened files are not the ones it was received with"));
                }
                self.submission_mut(seq, submission)?.opened = true;
            }
        }
        Ok(())
    }

    /// Submission `id`, if the log shows that its weights are due to be published and not
    /// yet opened: its phase was finalized under rules that open the weights, promoted
    /// it, and revealed what its worker signed. Otherwise why not. A worker asked to open
    /// a checkpoint checks this first, so a server cannot have it open anything else.
    pub fn may_open(&self, id: i64) -> Result<&LoggedSubmission, String> {
        let s = self
            .submissions
            .get(&id)
            .ok_or_else(|| format!("submission {id} was never received"))?;
        let phase = self.phases.get(&s.phase).cloned().unwrap_or_default();
        if phase.split_secret.is_none() {
            return Err(format!(
                "phase {} of submission {id} is not finalized",
                s.phase
            ));
        }
        if !phase.open_weights {
            return Err(format!("phase {}'s rules do not open the weights", s.phase));
        }
        let promoted = match phase.promoted.is_empty() {
            true => phase.advanced.contains(&s.contributor),
            false => phase.promoted.contains(&id),
        };
        if !promoted {
            return Err(format!("phase {} did not promote submission {id}", s.phase));
        }
        if s.statement.is_none() {
            return Err(format!(
                "the statement signed for submission {id} was never revealed"
            ));
        }
        if s.opened {
            return Err(format!("submission {id} was opened already"));
        }
        Ok(s)
    }

    fn submission_mut(&mut self, seq: u64, id: i64) -> Result<&mut LoggedSubmission, Discrepancy> {
        match self.submissions.get_mut(&id) {
            Some(s) => Ok(s),
            None => discrepancy(seq, format!("submission {id} was never received")),
        }
    }

    /// The leaderboard of `phase` the log implies: contributors' standings under the
    /// phase's epsilon, ranked by the first-committer rule (`domain::ranking`).
    pub fn board(&self, phase: u8) -> Vec<BoardRow> {
        let epsilon = self.phases.get(&phase).map_or(0.0, |p| p.epsilon);
        let mut ids: HashMap<&str, i64> = HashMap::new();
        let mut names: Vec<&str> = Vec::new();
        let scores: Vec<Scored> = self
            .submissions
            .iter()
            .filter(|(_, s)| s.phase == phase)
            .filter_map(|(id, s)| {
                let loss = s.public_loss?;
                let next = names.len() as i64;
                let user_id = *ids.entry(s.contributor.as_str()).or_insert_with(|| {
                    names.push(s.contributor.as_str());
                    next
                });
                Some(Scored {
                    submission_id: *id,
                    user_id,
                    loss,
                    at: s.at,
                    disqualified: s.disqualified,
                })
            })
            .collect();
        ranking::rank(&scores, epsilon)
            .into_iter()
            .zip(1..)
            .map(|(s, rank)| BoardRow {
                rank,
                contributor: names
                    .get(usize::try_from(s.user_id).unwrap_or(usize::MAX))
                    .map_or_else(String::new, |n| (*n).to_owned()),
                loss: s.loss,
                submission: s.submission_id,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statement::WorkerKey;

    fn chain(events: &[Event]) -> Vec<Entry> {
        let mut prev = GENESIS.to_owned();
        events
            .iter()
            .zip(1..)
            .map(|(event, seq)| {
                let body = event.body();
                let hash = entry_hash(seq, 100 + seq as i64, &prev, &body);
                let entry = Entry {
                    seq,
                    at: 100 + seq as i64,
                    prev: prev.clone(),
                    hash: hash.clone(),
                    body,
                };
                prev = hash;
                entry
            })
            .collect()
    }

    fn settings() -> Event {
        settings_opening(true)
    }

    /// Phase 1's settings, opening the weights of what it promotes or not.
    fn settings_opening(open_weights: bool) -> Event {
        Event::PhaseSettings {
            phase: 1,
            epsilon: 0.01,
            public_share: 0.5,
            seq_len: 8,
            windows: 4,
            max_parameters: 1000,
            evaluation_key: None,
            open_weights,
        }
    }

    fn received(submission: i64, contributor: &str, at: i64) -> Event {
        Event::SubmissionReceived {
            submission,
            phase: 1,
            contributor: contributor.into(),
            sha256: "ab".into(),
            at,
        }
    }

    fn statement(submission: i64) -> ScoreStatement {
        ScoreStatement {
            version: 1,
            submission_id: submission,
            weights_sha256: "ab".into(),
            data_sha256: "cd".into(),
            spec_sha256: "ef".into(),
            evaluator_version: "test".into(),
            seq_len: 8,
            window_nll: vec![7.0, 7.5, 6.5, 7.0],
            loss: 1.0,
            tokens: 28,
            parameters: 10,
            device: "cpu".into(),
            scored_at: 5,
        }
    }

    fn signed_score(key: &WorkerKey, submission: i64, public_loss: f64) -> (Event, Event) {
        let statement = statement(submission);
        let sha = hex::encode(Sha256::digest(statement.canonical().as_bytes()));
        (
            Event::ScoreRecorded {
                submission,
                public_loss,
                statement_sha256: Some(sha),
                signature: Some(key.sign(&statement)),
                public_key: Some(key.public_hex()),
            },
            Event::ScoreRevealed {
                submission,
                statement,
            },
        )
    }

    /// Worker 1, registered with `key`.
    fn registered(key: &WorkerKey) -> Event {
        Event::WorkerRegistered {
            worker: 1,
            name: "w".into(),
            public_key: key.public_hex(),
        }
    }

    fn replay(events: &[Event]) -> Result<Replay, Discrepancy> {
        let mut r = Replay::default();
        for (event, seq) in check_chain((0, GENESIS), &chain(events))?
            .into_iter()
            .zip(1..)
        {
            r.apply(seq, event)?;
        }
        Ok(r)
    }

    /// Whether `events` replay cleanly, or the discrepancy as text.
    fn verdict(events: &[Event]) -> Result<(), String> {
        replay(events).map(|_| ()).map_err(|d| d.to_string())
    }

    #[test]
    fn an_intact_chain_checks_and_any_edit_is_found_where_it_was_made() {
        let entries = chain(&[settings(), received(1, "ada", 10), received(2, "bo", 11)]);
        assert_eq!(check_chain((0, GENESIS), &entries).map(|e| e.len()), Ok(3));

        let mut edited = entries.clone();
        edited[1].body = received(1, "mallory", 10).body();
        assert_eq!(
            check_chain((0, GENESIS), &edited).map_err(|d| d.seq),
            Err(2)
        );

        // Rehashing the edited entry breaks the link of the next one.
        edited[1].hash = entry_hash(2, edited[1].at, &edited[1].prev, &edited[1].body);
        assert_eq!(
            check_chain((0, GENESIS), &edited).map_err(|d| d.seq),
            Err(3)
        );

        let mut dropped = entries.clone();
        dropped.remove(1);
        assert_eq!(
            check_chain((0, GENESIS), &dropped).map_err(|d| d.seq),
            Err(3)
        );

        // A page continues from the entry before it.
        assert!(check_chain((1, &entries[0].hash), &entries[1..]).is_ok());
        assert!(check_chain((1, GENESIS), &entries[1..]).is_err());
    }

    #[test]
    fn events_round_trip_through_their_body() {
        let key = WorkerKey::from_secret([7; 32]);
        let (recorded, revealed) = signed_score(&key, 3, 2.5);
        for event in [settings(), received(1, "ada", 10), recorded, revealed] {
            assert_eq!(
                serde_json::from_str::<Event>(&event.body()).ok(),
                Some(event.clone())
            );
            assert!(event
                .body()
                .contains(&format!("\"kind\":\"{}\"", event.kind())));
        }
    }

    #[test]
    fn invitations_are_recorded_for_phases_the_log_set_up() {
        let invite = |phase| Event::Invited {
            phase,
            contributor: "ada".into(),
            reason: "scored after an outage".into(),
        };
        assert_eq!(
            serde_json::from_str::<Event>(&invite(1).body()).ok(),
            Some(invite(1))
        );
        let r = replay(&[settings(), invite(1)]).map_err(|d| d.to_string());
        assert_eq!(
            r.map(|r| r.phases.get(&1).map(|p| p.invited.clone())),
            Ok(Some(vec!["ada".to_owned()]))
        );
        let unknown = verdict(&[settings(), invite(2)]);
        assert!(
            matches!(&unknown, Err(m) if m.contains("never set up")),
            "{unknown:?}"
        );
    }

    #[test]
    fn revealed_scores_must_be_on_the_held_out_data_the_log_published() {
        let key = WorkerKey::from_secret([7; 32]);
        let register = registered(&key);
        let data = |sha256: &str| Event::HeldOutData {
            phase: 1,
            sha256: sha256.into(),
            tokens: 1000,
        };
        assert_eq!(
            serde_json::from_str::<Event>(&data("cd").body()).ok(),
            Some(data("cd"))
        );
        let (recorded, revealed) = signed_score(&key, 1, 3.0); // scored on data "cd"
        let run = |published: Option<Event>| {
            let mut events = vec![settings(), register.clone()];
            events.extend(published);
            events.extend([received(1, "ada", 10), recorded.clone(), revealed.clone()]);
            verdict(&events)
        };
        assert_eq!(run(Some(data("cd"))), Ok(()));
        // A log from before the event existed has nothing to check against.
        assert_eq!(run(None), Ok(()));
        let other = run(Some(data("ef")));
        assert!(
            matches!(&other, Err(m) if m.contains("scored on held-out data cd, not the phase's published ef")),
            "{other:?}"
        );
        let unknown = verdict(&[
            settings(),
            Event::HeldOutData {
                phase: 2,
                sha256: "cd".into(),
                tokens: 1,
            },
        ]);
        assert!(
            matches!(&unknown, Err(m) if m.contains("never set up")),
            "{unknown:?}"
        );
    }

    #[test]
    fn the_board_follows_scores_reruns_and_disqualifications() {
        let key = WorkerKey::from_secret([7; 32]);
        let register = registered(&key);
        let (s1, _) = signed_score(&key, 1, 3.0);
        let (s2, _) = signed_score(&key, 2, 2.0);
        let (s3, _) = signed_score(&key, 3, 2.999);
        let events = vec![
            settings(),
            register,
            received(1, "ada", 10),
            received(2, "bo", 11),
            received(3, "ada", 12),
            s1,
            s2,
            s3,
        ];
        let r = replay(&events).map_err(|d| d.to_string());
        let board = r.as_ref().map(|r| r.board(1)).unwrap_or_default();
        // ada's later 2.999 is within epsilon of her 3.0, so her standing stays submission 1.
        let rows: Vec<(u64, &str, i64)> = board
            .iter()
            .map(|b| (b.rank, b.contributor.as_str(), b.submission))
            .collect();
        assert_eq!(rows, vec![(1, "bo", 2), (2, "ada", 1)]);

        let mut more = events.clone();
        more.push(Event::Disqualified {
            submission: 2,
            reason: "copy".into(),
        });
        more.push(Event::Rerun {
            submission: 1,
            reason: "bad node".into(),
        });
        let r = replay(&more).map_err(|d| d.to_string());
        let rows: Vec<(u64, String, i64)> = r
            .map(|r| r.board(1))
            .unwrap_or_default()
            .into_iter()
            .map(|b| (b.rank, b.contributor, b.submission))
            .collect();
        assert_eq!(rows, vec![(1, "ada".to_owned(), 3)]);
    }

    #[test]
    fn signatures_and_commitments_are_checked() {
        let key = WorkerKey::from_secret([7; 32]);
        let register = registered(&key);
        let (recorded, revealed) = signed_score(&key, 1, 3.0);
        let base = vec![settings(), register.clone(), received(1, "ada", 10)];

        let good = replay(&[base.clone(), vec![recorded.clone(), revealed.clone()]].concat());
        assert_eq!(good.map(|r| r.signatures_checked).ok(), Some(1));

        // A key no registered worker holds.
        let stranger = WorkerKey::from_secret([9; 32]);
        let (forged, _) = signed_score(&stranger, 1, 3.0);
        let refused = replay(&[base.clone(), vec![forged]].concat());
        assert!(refused
            .err()
            .is_some_and(|d| d.seq == 4 && d.problem.contains("no registered worker")));

        // A revealed statement other than the one committed to.
        let Event::ScoreRevealed { mut statement, .. } = revealed.clone() else {
            return;
        };
        statement.loss = 0.5;
        let swapped = Event::ScoreRevealed {
            submission: 1,
            statement,
        };
        let refused = replay(&[base.clone(), vec![recorded.clone(), swapped]].concat());
        assert!(refused
            .err()
            .is_some_and(|d| d.seq == 5 && d.problem.contains("not the one")));

        // A commitment to a statement whose signature does not hold.
        let Event::ScoreRecorded {
            submission,
            public_loss,
            statement_sha256,
            public_key,
            ..
        } = recorded
        else {
            return;
        };
        let bad_signature = Event::ScoreRecorded {
            submission,
            public_loss,
            statement_sha256,
            signature: Some("00".repeat(64)),
            public_key,
        };
        let refused = replay(&[base, vec![bad_signature, revealed]].concat());
        assert!(refused
            .err()
            .is_some_and(|d| d.seq == 5 && d.problem.contains("signature")));
    }

    #[test]
    fn weights_are_opened_once_for_what_was_promoted_and_signed() {
        let key = WorkerKey::from_secret([7; 32]);
        let (recorded, revealed) = signed_score(&key, 1, 7.0);
        let sealed = [("model.safetensors.age".to_owned(), "01".to_owned())];
        let arrived = Event::SubmissionReceived {
            submission: 1,
            phase: 1,
            contributor: "ada".into(),
            sha256: crate::protocol::files_sha256(&sealed),
            at: 10,
        };
        let finalized = |promoted: Vec<i64>| Event::PhaseFinalized {
            phase: 1,
            split_secret: "s".into(),
            advanced: vec!["ada".into()],
            promoted,
        };
        let file = OpenedFile {
            sealed: sealed[0].0.clone(),
            sealed_sha256: sealed[0].1.clone(),
            file_key: "00".repeat(16),
            name: "model.safetensors".into(),
            bytes: 10,
            sha256: "02".into(),
        };
        let opened = |weights: &str, file: &OpenedFile| Event::WeightsOpened {
            submission: 1,
            weights_sha256: weights.into(),
            files: vec![file.clone()],
        };
        let before = |settings: Event, promoted: Vec<i64>| {
            vec![
                settings,
                registered(&key),
                arrived.clone(),
                recorded.clone(),
                revealed.clone(),
                finalized(promoted),
            ]
        };
        let history = before(settings(), vec![1]);
        let problem = |events: Vec<Event>| replay(&events).err().map(|d| (d.seq, d.problem));
        let fine = replay(&[history.clone(), vec![opened("ab", &file)]].concat());
        assert!(fine.is_ok_and(|r| r.submissions[&1].opened));
        // Older logs name only who advanced.
        let older = replay(&[before(settings(), vec![]), vec![opened("ab", &file)]].concat());
        assert!(older.is_ok());

        // The weights hash the worker signed ("ab") is the one the opened files must have.
        let other = problem([history.clone(), vec![opened("ff", &file)]].concat());
        assert!(other.is_some_and(|(seq, p)| seq == 7 && p.contains("hash to ff, not the ab")));
        let twice = problem(
            [
                history.clone(),
                vec![opened("ab", &file), opened("ab", &file)],
            ]
            .concat(),
        );
        assert!(twice.is_some_and(|(seq, p)| seq == 8 && p.contains("opened already")));
        // Only files it was received with, decrypted to their own names.
        let swapped = OpenedFile {
            sealed_sha256: "03".into(),
            ..file.clone()
        };
        let e = problem([history.clone(), vec![opened("ab", &swapped)]].concat());
        assert!(e.is_some_and(|(_, p)| p.contains("not the ones it was received with")));
        let renamed = OpenedFile {
            name: "other.safetensors".into(),
            ..file.clone()
        };
        let e = problem([history.clone(), vec![opened("ab", &renamed)]].concat());
        assert!(e.is_some_and(|(_, p)| p.contains("is not what model.safetensors.age decrypts to")));

        // Not the promoted submission, not a phase that opens weights, not finalized.
        let e = problem([before(settings(), vec![2]), vec![opened("ab", &file)]].concat());
        assert!(e.is_some_and(|(_, p)| p.contains("did not promote submission 1")));
        let closed_weights = settings_opening(false);
        let e = problem([before(closed_weights, vec![1]), vec![opened("ab", &file)]].concat());
        assert!(e.is_some_and(|(_, p)| p.contains("do not open the weights")));
        let unfinished = problem([history[..5].to_vec(), vec![opened("ab", &file)]].concat());
        assert!(unfinished.is_some_and(|(seq, p)| seq == 6 && p.contains("is not finalized")));
        let unsigned = problem(vec![
            settings(),
            registered(&key),
            arrived.clone(),
            recorded.clone(),
            finalized(vec![1]),
            opened("ab", &file),
        ]);
        assert!(unsigned.is_some_and(|(_, p)| p.contains("never revealed")));
        let unknown = problem(vec![settings(), opened("ab", &file)]);
        assert!(unknown.is_some_and(|(_, p)| p.contains("never received")));
    }

    #[test]
    fn rewards_must_add_up_and_go_to_those_who_advanced() {
        let finalized = Event::PhaseFinalized {
            phase: 1,
            split_secret: "s".into(),
            advanced: vec!["ada".into(), "bo".into()],
            promoted: vec![],
        };
        let award = |who: &str, points| Award {
            contributor: who.into(),
            rank: 1,
            points,
        };
        let granted = |awards| Event::RewardsGranted {
            phase: 1,
            budget: 100,
            rule: "rank_weighted".into(),
            awards,
        };
        let fine = replay(&[
            settings(),
            finalized.clone(),
            granted(vec![award("ada", 67), award("bo", 33)]),
        ]);
        assert_eq!(
            fine.map(|r| r.points.get("bo").copied()).ok(),
            Some(Some(33))
        );
        let short = replay(&[
            settings(),
            finalized.clone(),
            granted(vec![award("ada", 67)]),
        ]);
        assert!(short
            .err()
            .is_some_and(|d| d.seq == 3 && d.problem.contains("add up to 67")));
        let stranger = replay(&[
            settings(),
            finalized,
            granted(vec![award("ada", 50), award("eve", 50)]),
        ]);
        assert!(stranger
            .err()
            .is_some_and(|d| d.problem.contains("eve was rewarded")));
        let early = replay(&[settings(), granted(vec![award("ada", 100)])]);
        assert!(early
            .err()
            .is_some_and(|d| d.problem.contains("before it was finalized")));
    }

    #[test]
    fn events_about_unknown_things_are_discrepancies() {
        let refused = replay(&[
            settings(),
            Event::Disqualified {
                submission: 9,
                reason: "x".into(),
            },
        ]);
        assert!(refused.err().is_some_and(|d| d.seq == 2));
        let refused = replay(&[received(1, "ada", 10)]);
        assert!(refused.err().is_some_and(|d| d.seq == 1));
    }
}
