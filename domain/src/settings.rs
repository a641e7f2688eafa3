//! What organizers may change about a phase, and when: everything before it opens; once
//! it has submissions, nothing that would change how they are scored or ranked; nothing
//! once it is closed.

use crate::phase::{PhaseSpec, PhaseState};
use crate::preset::{check_against_previous, check_spec};

/// Checks an organizer's edit of `current` into `edited`, given the phase's state, how
/// many submissions it has, its neighbours (as stored) and the time. The message says
/// what to change.
pub fn check_edit(
    current: &PhaseSpec,
    edited: &PhaseSpec,
    state: PhaseState,
    submissions: u64,
    neighbours: (Option<&PhaseSpec>, Option<&PhaseSpec>),
    now: i64,
) -> Result<(), String> {
    if edited.number != current.number {
        return Err("the phase number cannot change".into());
    }
    match state {
        PhaseState::Closed | PhaseState::Finalized => {
            return Err(format!(
                "phase {} is {state}; its settings are final",
                current.number
            ))
        }
        PhaseState::Open => {
            if edited.opens_at != current.opens_at {
                return Err("the phase is open: its opening time is history".into());
            }
            if edited.closes_at <= now {
                return Err(
                    "the closing time must be in the future (close the phase instead)".into(),
                );
            }
        }
        PhaseState::Draft | PhaseState::Upcoming => {}
    }
    if submissions > 0 {
        let frozen = [
            (edited.model != current.model, "the model limits"),
            (
                edited.require_attestation != current.require_attestation,
                "whether scores need attested workers",
            ),
            (
                edited.evaluation_key != current.evaluation_key,
                "the evaluation key (encrypted submissions are encrypted to it)",
            ),
            (
                edited.evaluation.dataset != current.evaluation.dataset,
                "the data set",
            ),
            (
                edited.evaluation.seq_len != current.evaluation.seq_len,
                "the window length",
            ),
            (
                edited.evaluation.windows != current.evaluation.windows,
                "the number of windows",
            ),
            (
                edited.evaluation.public_share != current.evaluation.public_share,
                "the public share",
            ),
            (edited.epsilon != current.epsilon, "epsilon"),
        ];
        if let Some((_, what)) = frozen.iter().find(|(changed, _)| *changed) {
            return Err(format!(
                "{what} cannot change: the phase has {submissions} submissions scored under the current rules"
            ));
        }
    }
    check_spec(edited).map_err(|e| e.to_string())?;
    if let Some(previous) = neighbours.0 {
        check_against_previous(previous, edited).map_err(|e| e.to_string())?;
    }
    if let Some(next) = neighbours.1 {
        check_against_previous(edited, next).map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preset::parse_preset;

    const DEMO: &str = include_str!("../../presets/demo.toml");
    const NOW: i64 = 1_000_000;

    fn phases() -> Vec<PhaseSpec> {
        parse_preset(DEMO, NOW).expect("demo preset").phases
    }

    fn check(
        phases: &[PhaseSpec],
        edited: &PhaseSpec,
        state: PhaseState,
        submissions: u64,
    ) -> Result<(), String> {
        let i = usize::from(edited.number) - 1;
        let neighbours = (i.checked_sub(1).map(|p| &phases[p]), phases.get(i + 1));
        check_edit(&phases[i], edited, state, submissions, neighbours, NOW + 10)
    }

    #[test]
    fn an_upcoming_phase_can_change_anything_valid() {
        let all = phases();
        let mut edited = all[1].clone();
        edited.evaluation.windows = 128;
        edited.submissions.per_day = 3;
        edited.epsilon = 0.002;
        assert_eq!(check(&all, &edited, PhaseState::Upcoming, 0), Ok(()));
        edited.evaluation.public_share = 1.0;
        assert!(check(&all, &edited, PhaseState::Upcoming, 0)
            .err()
            .unwrap_or_default()
            .contains("public_share"));
    }

    #[test]
    fn neighbours_keep_the_ladder_in_order() {
        let all = phases();
        let mut edited = all[1].clone();
        edited.model.max_parameters = all[0].model.max_parameters;
        assert!(check(&all, &edited, PhaseState::Upcoming, 0)
            .err()
            .unwrap_or_default()
            .contains("max_parameters"));
        let mut edited = all[1].clone();
        edited.closes_at = all[2].opens_at + 1;
        assert!(check(&all, &edited, PhaseState::Upcoming, 0)
            .err()
            .unwrap_or_default()
            .contains("opens before phase 2 closes"));
    }

    #[test]
    fn scored_rules_are_frozen_once_submissions_exist() {
        let all = phases();
        let mut edited = all[0].clone();
        edited.submissions.per_day = 20;
        edited.closes_at -= 3600;
        assert_eq!(check(&all, &edited, PhaseState::Open, 12), Ok(()));
        edited.evaluation.windows = 32;
        assert!(check(&all, &edited, PhaseState::Open, 12)
            .err()
            .unwrap_or_default()
            .contains("number of windows"));
        assert_eq!(check(&all, &edited, PhaseState::Open, 0), Ok(()));
        let mut edited = all[0].clone();
        edited.epsilon = 0.01;
        assert!(check(&all, &edited, PhaseState::Open, 1)
            .err()
            .unwrap_or_default()
            .contains("epsilon"));
    }

    #[test]
    fn open_closed_and_final_phases_protect_their_past() {
        let all = phases();
        let mut edited = all[0].clone();
        edited.opens_at -= 10;
        assert!(check(&all, &edited, PhaseState::Open, 0)
            .err()
            .unwrap_or_default()
            .contains("opening time"));
        let mut edited = all[0].clone();
        edited.closes_at = NOW;
        assert!(check(&all, &edited, PhaseState::Open, 0)
            .err()
            .unwrap_or_default()
            .contains("future"));
        for state in [PhaseState::Closed, PhaseState::Finalized] {
            assert!(check(&all, &all[0], state, 0)
                .err()
                .unwrap_or_default()
                .contains("final"));
        }
    }
}
