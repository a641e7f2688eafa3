//! A phase of the competition: its state machine and its specification.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::limits::ModelLimits;

/// Number of phases in a competition; fixed by the design.
pub const PHASE_COUNT: usize = 7;

/// Where a phase is in its life: `draft → upcoming → open → closed → finalized`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PhaseState {
    Draft,
    Upcoming,
    Open,
    Closed,
    Finalized,
}

impl PhaseState {
    pub const ALL: [PhaseState; 5] = [
        PhaseState::Draft,
        PhaseState::Upcoming,
        PhaseState::Open,
        PhaseState::Closed,
        PhaseState::Finalized,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PhaseState::Draft => "draft",
            PhaseState::Upcoming => "upcoming",
            PhaseState::Open => "open",
            PhaseState::Closed => "closed",
            PhaseState::Finalized => "finalized",
        }
    }

    /// The state the schedule moves a phase to at `now`, if any: an upcoming phase opens
    /// at `opens_at`, an open one closes at `closes_at`. Drafts wait to be published, and
    /// closed phases wait for an organizer to finalize them.
    pub fn scheduled_move(self, now: i64, opens_at: i64, closes_at: i64) -> Option<PhaseState> {
        let due = PhaseState::by_schedule(now, opens_at, closes_at);
        match (self, due) {
            (PhaseState::Upcoming, PhaseState::Open | PhaseState::Closed)
            | (PhaseState::Open, PhaseState::Closed) => Some(due),
            _ => None,
        }
    }

    /// The state the door applies at `now`: the schedule moves phases every few seconds,
    /// and the door does not wait for it to close one, so a phase whose closing time has
    /// passed counts as closed already. (Opening waits for the move, so that the log
    /// records the phase open before its first entry.)
    pub fn at_the_door(self, now: i64, opens_at: i64, closes_at: i64) -> PhaseState {
        match self.scheduled_move(now, opens_at, closes_at) {
            Some(PhaseState::Closed) => PhaseState::Closed,
            _ => self,
        }
    }

    /// Whether an organizer may move a phase from this state to `to` by hand: publish a
    /// draft, open an upcoming phase early, close an open one early. Finalizing is not a
    /// plain move: it happens with the promotion of a closed phase's winners.
    pub fn organizer_move(self, to: PhaseState) -> Result<(), String> {
        use PhaseState::*;
        match (self, to) {
            (Draft, Upcoming) | (Upcoming, Open) | (Open, Closed) => Ok(()),
            (Closed, Finalized) => Err(
                "a closed phase is finalized by promoting its winners (review the advancement list)"
                    .into(),
            ),
            (from, to) if from == to => Err(format!("the phase is already {to}")),
            (from, to) => Err(format!("a phase cannot go from {from} to {to}")),
        }
    }

    /// The state a published phase has at `now` according to its schedule alone.
    pub fn by_schedule(now: i64, opens_at: i64, closes_at: i64) -> PhaseState {
        if now < opens_at {
            PhaseState::Upcoming
        } else if now < closes_at {
            PhaseState::Open
        } else {
            PhaseState::Closed
        }
    }
}

impl fmt::Display for PhaseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown phase state {0:?} (expected draft, upcoming, open, closed or finalized)")]
pub struct UnknownPhaseState(pub String);

impl FromStr for PhaseState {
    type Err = UnknownPhaseState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PhaseState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownPhaseState(s.to_owned()))
    }
}

/// How a phase scores checkpoints on its held-out data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalSpec {
    /// Name of the held-out data set (the shard itself is registered separately).
    pub dataset: String,
    /// Window length N in tokens; each window predicts N-1 tokens.
    pub seq_len: u32,
    /// Number of windows scored (from token 0).
    pub windows: u32,
    /// Share of windows on the public leaderboard; the rest decide the final ranking.
    pub public_share: f64,
    /// Most minutes one evaluation may take, from a worker's claim to its result.
    #[serde(default = "default_time_limit_minutes")]
    pub time_limit_minutes: u32,
}

fn default_time_limit_minutes() -> u32 {
    10
}

/// Per-contributor limits on submitting to a phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmissionLimits {
    pub per_day: u32,
    pub max_bytes: u64,
}

/// Who advances from a phase to the next at its close.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", content = "value", rename_all = "snake_case")]
pub enum AdvancementRule {
    /// The best K contributors.
    TopK(u32),
    /// The best fraction of contributors (rounded up, at least one).
    TopFraction(f64),
    /// Everyone whose loss is within this relative margin of the best loss.
    WithinMargin(f64),
}

impl AdvancementRule {
    /// A sentence a visitor understands.
    pub fn describe(&self) -> String {
        match *self {
            AdvancementRule::TopK(k) => format!("The best {k} contributors advance."),
            AdvancementRule::TopFraction(f) => {
                format!(
                    "The best {}% of contributors advance.",
                    trim_float(f * 100.0)
                )
            }
            AdvancementRule::WithinMargin(m) => format!(
                "Everyone within {}% of the best loss advances.",
                trim_float(m * 100.0)
            ),
        }
    }
}

fn trim_float(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Everything that defines one phase, as organizers configure it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseSpec {
    pub number: u8,
    pub title: String,
    pub summary: String,
    /// Unix seconds.
    pub opens_at: i64,
    /// Unix seconds.
    pub closes_at: i64,
    pub model: ModelLimits,
    pub evaluation: EvalSpec,
    pub submissions: SubmissionLimits,
    pub advancement: AdvancementRule,
    /// Relative margin a later submission must beat an earlier one by to rank above it.
    pub epsilon: f64,
    /// Whether the promoted checkpoints become public downloads (with a model card) once
    /// the phase is finalized.
    #[serde(default)]
    pub open_weights: bool,
    /// The points the phase shares at finalization, and how (`domain::rewards`).
    #[serde(default)]
    pub rewards: crate::rewards::RewardSpec,
    /// Whether only scores from attested workers (`attestation`) count.
    #[serde(default)]
    pub require_attestation: bool,
    /// The phase's evaluation key, an age recipient (`encryption`): when set, contributors
    /// may submit checkpoints encrypted to it, which only its workers can read.
    #[serde(default)]
    pub evaluation_key: Option<String>,
    /// Whether the phase is a draft: configured, but seen only by organizers (and absent
    /// from the public log) until they publish it. Phases are published in order, so
    /// every phase after a draft is a draft too.
    #[serde(default)]
    pub draft: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_opens_and_closes_but_never_finalizes() {
        use PhaseState::*;
        let (opens, closes) = (100, 200);
        assert_eq!(Upcoming.scheduled_move(99, opens, closes), None);
        assert_eq!(Upcoming.scheduled_move(100, opens, closes), Some(Open));
        assert_eq!(Upcoming.scheduled_move(250, opens, closes), Some(Closed));
        assert_eq!(Open.scheduled_move(150, opens, closes), None);
        assert_eq!(Open.scheduled_move(200, opens, closes), Some(Closed));
        assert_eq!(Closed.scheduled_move(300, opens, closes), None);
        assert_eq!(Draft.scheduled_move(150, opens, closes), None);
        assert_eq!(Finalized.scheduled_move(150, opens, closes), None);
        // The door closes with the schedule but does not open ahead of it.
        assert_eq!(Upcoming.at_the_door(150, opens, closes), Upcoming);
        assert_eq!(Upcoming.at_the_door(250, opens, closes), Closed);
        assert_eq!(Open.at_the_door(150, opens, closes), Open);
        assert_eq!(Open.at_the_door(200, opens, closes), Closed);
        assert_eq!(Draft.at_the_door(250, opens, closes), Draft);
    }

    #[test]
    fn states_round_trip_through_their_names() {
        for state in PhaseState::ALL {
            assert_eq!(state.as_str().parse::<PhaseState>(), Ok(state));
        }
        assert!("opened".parse::<PhaseState>().is_err());
    }

    #[test]
    fn schedule_decides_the_published_state() {
        assert_eq!(PhaseState::by_schedule(5, 10, 20), PhaseState::Upcoming);
        assert_eq!(PhaseState::by_schedule(10, 10, 20), PhaseState::Open);
        assert_eq!(PhaseState::by_schedule(19, 10, 20), PhaseState::Open);
        assert_eq!(PhaseState::by_schedule(20, 10, 20), PhaseState::Closed);
    }

    #[test]
    fn advancement_rules_read_as_sentences() {
        assert_eq!(
            AdvancementRule::TopK(3).describe(),
            "The best 3 contributors advance."
        );
        assert_eq!(
            AdvancementRule::TopFraction(0.25).describe(),
            "The best 25% of contributors advance."
        );
        assert_eq!(
            AdvancementRule::WithinMargin(0.015).describe(),
            "Everyone within 1.5% of the best loss advances."
        );
    }

    #[test]
    fn organizers_move_phases_only_forward_one_step() {
        use PhaseState::*;
        assert_eq!(Draft.organizer_move(Upcoming), Ok(()));
        assert_eq!(Upcoming.organizer_move(Open), Ok(()));
        assert_eq!(Open.organizer_move(Closed), Ok(()));
        assert!(Closed
            .organizer_move(Finalized)
            .err()
            .unwrap_or_default()
            .contains("promoting"));
        assert!(Open
            .organizer_move(Open)
            .err()
            .unwrap_or_default()
            .contains("already open"));
        assert!(Finalized.organizer_move(Open).is_err());
        assert!(Closed.organizer_move(Open).is_err());
        assert!(Upcoming.organizer_move(Closed).is_err());
    }
}
