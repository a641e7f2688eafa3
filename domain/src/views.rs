//! What pages and the JSON API show: read models assembled by the store and rendered
//! by the UI. They cross the wire to the browser, so they are plain serde types.

use serde::{Deserialize, Serialize};

use crate::phase::{PhaseSpec, PhaseState};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Contributor,
    Organizer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Contributor => "contributor",
            Role::Organizer => "organizer",
        }
    }

    pub fn parse(value: &str) -> Option<Role> {
        match value {
            "contributor" => Some(Role::Contributor),
            "organizer" => Some(Role::Organizer),
            _ => None,
        }
    }
}

/// The signed-in person looking at a page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewer {
    pub id: i64,
    pub handle: String,
    pub email: String,
    pub role: Role,
}

impl Viewer {
    pub fn is_organizer(&self) -> bool {
        self.role == Role::Organizer
    }
}

/// A phase with the numbers a visitor wants at a glance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseSummary {
    pub number: u8,
    pub title: String,
    pub summary: String,
    pub state: PhaseState,
    pub opens_at: i64,
    pub closes_at: i64,
    pub max_parameters: u64,
    pub vocab_size: u32,
    pub seq_len: u32,
    pub contributors: u64,
    pub submissions: u64,
    /// The best loss: on the public part, or once finalized the winner's private loss.
    pub best_loss: Option<f64>,
    /// How many it promoted, once finalized.
    pub advanced: Option<u64>,
}

/// A phase's full page: its rules and its summary numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseDetail {
    pub summary: PhaseSummary,
    pub spec: PhaseSpec,
}

/// One line of a leaderboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaderboardRow {
    pub rank: u64,
    pub handle: String,
    pub loss: f64,
    pub perplexity: f64,
    pub parameters: u64,
    pub submissions: u64,
    pub last_improvement_at: i64,
    pub submission_id: i64,
    /// Bootstrap 95% interval of the loss over the scored windows (leading rows only).
    pub interval: Option<(f64, f64)>,
}

/// A page of a leaderboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Leaderboard {
    pub phase: u8,
    pub total: u64,
    pub offset: u64,
    pub rows: Vec<LeaderboardRow>,
}

/// A point of a phase's best score over time: a new best loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScorePoint {
    pub at: i64,
    pub loss: f64,
    /// Submissions of the phase scored by then, this one included.
    pub scored_so_far: u64,
}

/// A submission as its page and lists show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubmissionView {
    pub id: i64,
    pub phase: u8,
    pub phase_title: String,
    pub handle: String,
    pub state: String,
    pub created_at: i64,
    pub scored_at: Option<i64>,
    pub weights_sha256: Option<String>,
    pub bytes: Option<u64>,
    pub parameters: Option<u64>,
    pub loss: Option<f64>,
    pub error: Option<String>,
    pub disqualified: bool,
    /// The organizer's reason, once disqualified.
    pub disqualified_reason: Option<String>,
    /// For organizers: the earlier submission of another contributor whose weights
    /// these nearly copy (`fingerprint`).
    #[serde(default)]
    pub near_copy: Option<NearCopy>,
}

/// A submission whose weights another one nearly copies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NearCopy {
    pub submission: i64,
    pub handle: String,
    /// Cosine similarity of the two fingerprints, up to 1.
    pub similarity: f64,
}

/// A phase a contributor took part in, with their standing there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseReached {
    pub phase: u8,
    pub title: String,
    /// The public loss while the phase runs; the private one once it is finalized.
    pub best_loss: Option<f64>,
    /// Place on the leaderboard, or in the final ranking once finalized.
    pub rank: Option<u64>,
    /// Once the phase is finalized: whether they advanced.
    pub advanced: Option<bool>,
}

/// A contributor's public profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContributorProfile {
    pub handle: String,
    pub role: Role,
    pub joined_at: i64,
    pub phases: Vec<PhaseReached>,
    pub submissions: Vec<SubmissionView>,
    /// Phases after the first they may enter, and why ("promoted" or "invited").
    pub eligible: Vec<(u8, String)>,
}

/// A recorded change of a phase's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransitionView {
    pub phase: u8,
    pub from_state: Option<String>,
    pub to_state: String,
    pub at: i64,
    pub actor: Option<String>,
    pub reason: String,
}

/// What the organizer console opens with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsoleOverview {
    pub phases: Vec<PhaseSummary>,
    pub contributors: u64,
    pub organizers: u64,
    /// Submissions per state, in pipeline order, zero counts included.
    pub submissions_by_state: Vec<(String, u64)>,
    pub recent_transitions: Vec<TransitionView>,
}

/// One contributor's line in a closed phase's final ranking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalRow {
    pub rank: u64,
    pub handle: String,
    pub submission_id: i64,
    /// The loss that ranks: the private part.
    pub private_loss: f64,
    /// Place and loss on the public leaderboard at the close.
    pub public_rank: u64,
    pub public_loss: f64,
    /// Places gained (positive) or lost since the public leaderboard.
    pub movement: i64,
    /// Bootstrap 95% interval of the private loss (leading rows only).
    pub interval: Option<(f64, f64)>,
    /// Whether they advance to the next phase.
    pub advances: bool,
    /// Whether the phase's rule proposed them.
    pub proposed: bool,
    /// An organizer's reason for overriding the rule, if one did.
    pub adjustment: Option<String>,
}

/// A closed phase's final ranking and advancement list: proposed while the phase is
/// closed, frozen once it is finalized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalBoard {
    pub phase: u8,
    pub state: PhaseState,
    /// The advancement rule, as a sentence.
    pub rule: String,
    /// Submissions of the phase still waiting for or being scored.
    pub pending: u64,
    pub rows: Vec<FinalRow>,
}

impl FinalBoard {
    pub fn advancing(&self) -> usize {
        self.rows.iter().filter(|r| r.advances).count()
    }
}

/// One entry of the organizers' append-only audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    /// Handle of the organizer; `None` for the server itself (the schedule).
    pub actor: Option<String>,
    pub action: String,
    pub subject: String,
    pub reason: String,
    /// JSON with what changed.
    pub detail: String,
}

/// An in-app notice for one person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub id: i64,
    pub at: i64,
    pub text: String,
    pub link: String,
    pub read: bool,
}
