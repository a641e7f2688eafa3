//! The rules at the door: may this contributor submit this checkpoint to this phase now?
//!
//! Checked when an upload starts (before any byte is sent) and again when it finishes
//! (the phase may have closed, or another upload used the day's quota, meanwhile).

use crate::phase::PhaseState;

const DAY: i64 = 24 * 60 * 60;

/// What the door needs to know about the phase, the contributor and the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryFacts {
    pub phase: u8,
    pub state: PhaseState,
    /// Promoted from the previous phase or invited (phase 1 needs neither).
    pub is_entrant: bool,
    /// The phase has held-out data to score against.
    pub has_data: bool,
    pub per_day: u32,
    /// Submissions counted against today's quota (UTC day).
    pub used_today: u32,
    pub max_bytes: u64,
    /// Total size of the checkpoint's files.
    pub bytes: u64,
    /// Unix seconds now.
    pub now: i64,
}

/// Why a submission is refused at the door. The message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "phase {phase} is {state}, not open: submissions are accepted only while a phase is open"
    )]
    NotOpen { phase: u8, state: &'static str },
    #[error("phase {phase} is open to contributors promoted from phase {previous} or invited by the organizers")]
    NotEligible { phase: u8, previous: u8 },
    #[error("phase {phase} has no held-out data yet, so nothing could score your checkpoint; the organizers have to add it first")]
    NoData { phase: u8 },
    #[error("you have used today's {per_day} submissions to phase {phase}; the quota resets at 00:00 UTC (in {hours_left} h)")]
    QuotaReached {
        phase: u8,
        per_day: u32,
        hours_left: i64,
    },
    #[error("the checkpoint is {bytes} bytes; phase {phase} accepts at most {max_bytes}")]
    TooLarge {
        phase: u8,
        bytes: u64,
        max_bytes: u64,
    },
    #[error("the checkpoint has no files")]
    Empty,
}

/// Applies every rule of the door, in the order a contributor would want to hear them.
pub fn check_entry(f: &EntryFacts) -> Result<(), Refusal> {
    if f.state != PhaseState::Open {
        return Err(Refusal::NotOpen {
            phase: f.phase,
            // A draft is shown to nobody but organizers: to contributors it is not out yet.
            state: match f.state {
                PhaseState::Draft => PhaseState::Upcoming.as_str(),
                state => state.as_str(),
            },
        });
    }
    if f.phase > 1 && !f.is_entrant {
        return Err(Refusal::NotEligible {
            phase: f.phase,
            previous: f.phase - 1,
        });
    }
    if !f.has_data {
        return Err(Refusal::NoData { phase: f.phase });
    }
    if f.used_today >= f.per_day {
        let (_, next) = quota_day(f.now);
        return Err(Refusal::QuotaReached {
            phase: f.phase,
            per_day: f.per_day,
            hours_left: (next - f.now + 3599) / 3600,
        });
    }
    if f.bytes == 0 {
        return Err(Refusal::Empty);
    }
    if f.bytes > f.max_bytes {
        return Err(Refusal::TooLarge {
            phase: f.phase,
            bytes: f.bytes,
            max_bytes: f.max_bytes,
        });
    }
    Ok(())
}

/// The UTC day containing `now`, as [start, next start) in unix seconds: the window of
/// the daily submission quota.
pub fn quota_day(now: i64) -> (i64, i64) {
    let start = now.div_euclid(DAY) * DAY;
    (start, start + DAY)
}

/// Submissions left today.
pub fn remaining(per_day: u32, used_today: u32) -> u32 {
    per_day.saturating_sub(used_today)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> EntryFacts {
        EntryFacts {
            phase: 1,
            state: PhaseState::Open,
            is_entrant: false,
            has_data: true,
            per_day: 3,
            used_today: 0,
            max_bytes: 1000,
            bytes: 500,
            now: 10 * DAY + 3600,
        }
    }

    #[test]
    fn an_open_phase_one_admits_anyone_within_limits() {
        assert_eq!(check_entry(&facts()), Ok(()));
    }

    #[test]
    fn each_rule_refuses_with_its_reason() {
        let closed = EntryFacts {
            state: PhaseState::Closed,
            ..facts()
        };
        assert!(matches!(
            check_entry(&closed),
            Err(Refusal::NotOpen {
                state: "closed",
                ..
            })
        ));
        let phase_two = EntryFacts {
            phase: 2,
            ..facts()
        };
        assert_eq!(
            check_entry(&phase_two),
            Err(Refusal::NotEligible {
                phase: 2,
                previous: 1
            })
        );
        assert_eq!(
            check_entry(&EntryFacts {
                is_entrant: true,
                ..phase_two
            }),
            Ok(())
        );
        let no_data = EntryFacts {
            has_data: false,
            ..facts()
        };
        assert_eq!(check_entry(&no_data), Err(Refusal::NoData { phase: 1 }));
        let spent = EntryFacts {
            used_today: 3,
            ..facts()
        };
        let refusal = check_entry(&spent).expect_err("quota spent");
        assert_eq!(
            refusal,
            Refusal::QuotaReached {
                phase: 1,
                per_day: 3,
                hours_left: 23
            }
        );
        assert!(refusal.to_string().contains("00:00 UTC"));
        let big = EntryFacts {
            bytes: 1001,
            ..facts()
        };
        assert!(matches!(check_entry(&big), Err(Refusal::TooLarge { .. })));
        assert_eq!(
            check_entry(&EntryFacts {
                bytes: 1000,
                ..facts()
            }),
            Ok(())
        );
        assert_eq!(
            check_entry(&EntryFacts {
                bytes: 0,
                ..facts()
            }),
            Err(Refusal::Empty)
        );
    }

    #[test]
    fn the_quota_day_is_the_utc_day() {
        assert_eq!(quota_day(DAY + 5), (DAY, 2 * DAY));
        assert_eq!(quota_day(DAY), (DAY, 2 * DAY));
        assert_eq!(quota_day(-1), (-DAY, 0));
        assert_eq!(remaining(3, 1), 2);
        assert_eq!(remaining(3, 5), 0);
    }
}
