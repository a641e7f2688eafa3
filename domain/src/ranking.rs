//! Ranking rules, as pure functions: a contributor's standing, the first-committer rule
//! with the phase's epsilon, who advances, and how sure a leading score is.
//!
//! - A contributor's standing is their best scored, non-disqualified submission; a later
//!   submission of theirs replaces an earlier one only if it is better by more than
//!   epsilon (relative), so resubmitting noise does not move anyone.
//! - Between contributors, standings are placed in the order they were achieved: each
//!   goes below every earlier standing it does not beat by more than epsilon. So a later
//!   submission ranks above an earlier one only if it beats it by more than epsilon, and
//!   exact ties go to the earlier one.

use crate::phase::AdvancementRule;

/// One scored submission, as ranking needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub submission_id: i64,
    pub user_id: i64,
    /// The loss that ranks (public part while open, private part at close).
    pub loss: f64,
    /// When it was submitted (unix seconds); ties broken by `submission_id`.
    pub at: i64,
    pub disqualified: bool,
}

/// Whether `later` beats `earlier` by more than the relative margin `epsilon`.
pub fn clearly_beats(later: f64, earlier: f64, epsilon: f64) -> bool {
    later < earlier - epsilon.max(0.0) * earlier.abs()
}

fn chronological(a: &Scored, b: &Scored) -> std::cmp::Ordering {
    (a.at, a.submission_id).cmp(&(b.at, b.submission_id))
}

/// Each contributor's standing submission: their first, replaced by each later one that
/// clearly beats the one standing. Disqualified and non-finite scores never stand.
pub fn standings(scores: &[Scored], epsilon: f64) -> Vec<Scored> {
    let mut ordered: Vec<&Scored> = scores
        .iter()
        .filter(|s| !s.disqualified && s.loss.is_finite())
        .collect();
    ordered.sort_by(|a, b| chronological(a, b));
    let mut best: Vec<Scored> = Vec::new();
    for s in ordered {
        match best.iter_mut().find(|b| b.user_id == s.user_id) {
            Some(current) if clearly_beats(s.loss, current.loss, epsilon) => *current = s.clone(),
            Some(_) => {}
            None => best.push(s.clone()),
        }
    }
    best
}

/// The ranking of the standings (best first) under the first-committer rule.
pub fn rank(scores: &[Scored], epsilon: f64) -> Vec<Scored> {
    let mut by_time = standings(scores, epsilon);
    by_time.sort_by(chronological);
    let mut ranked: Vec<Scored> = Vec::with_capacity(by_time.len());
    for s in by_time {
        // Below the last earlier standing it does not clearly beat.
        let position = ranked
            .iter()
            .rposition(|earlier| !clearly_beats(s.loss, earlier.loss, epsilon))
            .map_or(0, |i| i + 1);
        ranked.insert(position, s);
    }
    ranked
}

/// A scored submission with both parts of its loss, as the final ranking needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub submission_id: i64,
    pub user_id: i64,
    pub public_loss: f64,
    pub private_loss: f64,
    /// When it was submitted (unix seconds).
    pub at: i64,
    pub disqualified: bool,
}

impl Entry {
    fn on(&self, loss: f64) -> Scored {
        Scored {
            submission_id: self.submission_id,
            user_id: self.user_id,
            loss,
            at: self.at,
            disqualified: self.disqualified,
        }
    }
}

/// A contributor's place in a closed phase's final ranking.
#[derive(Debug, Clone, PartialEq)]
pub struct FinalPlace {
    /// 1 is the winner.
    pub rank: u64,
    pub user_id: i64,
    /// The submission that stands on the private part.
    pub submission_id: i64,
    pub private_loss: f64,
    /// The contributor's place on the public leaderboard as it stood at the close.
    pub public_rank: u64,
    /// The loss that placed them there.
    pub public_loss: f64,
}

impl FinalPlace {
    /// Places gained (positive) or lost (negative) from the public leaderboard.
    pub fn movement(&self) -> i64 {
        i64::try_from(self.public_rank).unwrap_or(i64::MAX)
            - i64::try_from(self.rank).unwrap_or(i64::MAX)
    }
}

/// The final ranking of a closed phase: decided on the private part only, under the
/// same first-committer rule, with each contributor's place on the public board kept
/// beside it to show who moved.
pub fn final_ranking(entries: &[Entry], epsilon: f64) -> Vec<FinalPlace> {
    let public: Vec<Scored> = entries.iter().map(|e| e.on(e.public_loss)).collect();
    let private: Vec<Scored> = entries.iter().map(|e| e.on(e.private_loss)).collect();
    let public_board = rank(&public, epsilon);
    rank(&private, epsilon)
        .into_iter()
        .zip(1u64..)
        .map(|(standing, place)| {
            let (public_rank, public_loss) = public_board
                .iter()
                .zip(1u64..)
                .find(|(p, _)| p.user_id == standing.user_id)
                .map_or((place, standing.loss), |(p, at)| (at, p.loss));
            FinalPlace {
                rank: place,
                user_id: standing.user_id,
                submission_id: standing.submission_id,
                private_loss: standing.loss,
                public_rank,
                public_loss,
            }
        })
        .collect()
}

/// Why a contributor does or does not advance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Proposed by the phase's rule, unchanged.
    Proposed,
    /// Below the rule's line, not changed.
    NotProposed,
    /// An organizer added them, for this reason.
    Added(String),
    /// An organizer removed them, for this reason.
    Removed(String),
}

impl Verdict {
    pub fn advances(&self) -> bool {
        matches!(self, Verdict::Proposed | Verdict::Added(_))
    }
}

/// The advancement list: the rule proposes the first `advancing(rule, losses)` places,
/// and each organizer adjustment (`user_id`, advance?, reason) overrides it for one
/// contributor. `ranked_users` is in final order; the result is parallel to it.
pub fn advancement_list(
    rule: &AdvancementRule,
    ranked_users: &[(i64, f64)],
    adjustments: &[(i64, bool, String)],
) -> Vec<Verdict> {
    let losses: Vec<f64> = ranked_users.iter().map(|(_, loss)| *loss).collect();
    let proposed = advancing(rule, &losses);
    ranked_users
        .iter()
        .enumerate()
        .map(|(i, (user, _))| {
            let by_rule = i < proposed;
            match adjustments.iter().find(|(u, _, _)| u == user) {
                Some((_, true, why)) if !by_rule => Verdict::Added(why.clone()),
                Some((_, false, why)) if by_rule => Verdict::Removed(why.clone()),
                _ if by_rule => Verdict::Proposed,
                _ => Verdict::NotProposed,
            }
        })
        .collect()
}

/// How many of `ranked` (best first, by loss) a rule advances.
pub fn advancing(rule: &AdvancementRule, losses: &[f64]) -> usize {
    let n = losses.len();
    match *rule {
        AdvancementRule::TopK(k) => n.min(k as usize),
        AdvancementRule::TopFraction(f) => {
            if n == 0 {
                0
            } else {
                ((n as f64 * f.clamp(0.0, 1.0)).ceil() as usize).clamp(1, n)
            }
        }
        AdvancementRule::WithinMargin(m) => match losses.first() {
            None => 0,
            Some(&best) => {
                let bound = best + m.max(0.0) * best.abs();
                losses.iter().take_while(|&&l| l <= bound).count()
            }
        },
    }
}

/// A bootstrap 95% confidence interval of a mean loss, resampling windows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

/// Resamples `window_losses` (each window's mean loss) with replacement `rounds` times
/// and returns the 2.5th and 97.5th percentiles of the resampled means. Deterministic:
/// the same losses and seed give the same interval. `None` for fewer than two windows.
pub fn bootstrap_interval(window_losses: &[f64], rounds: usize, seed: u64) -> Option<Interval> {
    let n = window_losses.len();
    if n < 2 || rounds == 0 {
        return None;
    }
    let mut state = seed;
    let mut means: Vec<f64> = (0..rounds)
        .map(|_| {
            let sum: f64 = (0..n)
                .map(|_| window_losses[(splitmix64(&mut state) % n as u64) as usize])
                .sum();
            sum / n as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[((rounds - 1) as f64 * q).round() as usize];
    Some(Interval {
        low: at(0.025),
        high: at(0.975),
    })
}

/// SplitMix64: a tiny, well-known generator; enough for resampling indices.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(submission_id: i64, user_id: i64, loss: f64, at: i64) -> Scored {
        Scored {
            submission_id,
            user_id,
            loss,
            at,
            disqualified: false,
        }
    }

    fn order(ranked: &[Scored]) -> Vec<i64> {
        ranked.iter().map(|r| r.submission_id).collect()
    }

    #[test]
    fn a_later_submission_must_clearly_beat_an_earlier_one() {
        let eps = 0.01;
        // Ada first at 2.00; Bob later at 1.99 (0.5% better: not enough); Cy later at
        // 1.97 (1.5% better: enough).
        let scores = [s(1, 1, 2.00, 10), s(2, 2, 1.99, 20), s(3, 3, 1.97, 30)];
        assert_eq!(order(&rank(&scores, eps)), [3, 1, 2]);
        // Without epsilon the plain order by loss.
        assert_eq!(order(&rank(&scores, 0.0)), [3, 2, 1]);
    }

    #[test]
    fn exact_ties_go_to_the_earlier() {
        let scores = [s(2, 2, 1.5, 20), s(1, 1, 1.5, 10)];
        assert_eq!(order(&rank(&scores, 0.0)), [1, 2]);
        // Same second: the lower submission id was first.
        let same_time = [s(8, 2, 1.5, 10), s(7, 1, 1.5, 10)];
        assert_eq!(order(&rank(&same_time, 0.0)), [7, 8]);
    }

    #[test]
    fn a_contributors_best_counts_and_disqualified_ones_do_not() {
        let mut scores = vec![
            s(1, 1, 3.0, 10),
            s(2, 1, 2.0, 20),
            s(3, 1, 1.999, 30), // not clearly better than 2.0 at 1%
            s(4, 2, 2.5, 15),
        ];
        assert_eq!(order(&rank(&scores, 0.01)), [2, 4]);
        scores[1].disqualified = true;
        // Ada's standing falls back: 3.0 stands, then 1.999 clearly beats it.
        assert_eq!(order(&rank(&scores, 0.01)), [3, 4]);
        scores.push(Scored {
            loss: f64::NAN,
            ..s(5, 3, 0.0, 40)
        });
        assert_eq!(rank(&scores, 0.01).len(), 2);
    }

    #[test]
    fn advancement_rules() {
        let losses = [1.0, 1.004, 1.02, 1.5, 2.0];
        assert_eq!(advancing(&AdvancementRule::TopK(3), &losses), 3);
        assert_eq!(advancing(&AdvancementRule::TopK(9), &losses), 5);
        assert_eq!(advancing(&AdvancementRule::TopFraction(0.3), &losses), 2);
        assert_eq!(advancing(&AdvancementRule::TopFraction(0.01), &losses), 1);
        assert_eq!(advancing(&AdvancementRule::WithinMargin(0.005), &losses), 2);
        assert_eq!(advancing(&AdvancementRule::WithinMargin(0.5), &losses), 4);
        assert_eq!(advancing(&AdvancementRule::TopK(3), &[]), 0);
        assert_eq!(advancing(&AdvancementRule::TopFraction(0.5), &[]), 0);
    }

    #[test]
    fn the_bootstrap_interval_brackets_the_mean_and_narrows_with_more_windows() {
        let few: Vec<f64> = (0..20).map(|i| 2.0 + f64::from(i % 5) * 0.1).collect();
        let many: Vec<f64> = (0..2000).map(|i| 2.0 + f64::from(i % 5) * 0.1).collect();
        let mean = 2.2;
        let a = bootstrap_interval(&few, 1000, 7).expect("interval");
        let b = bootstrap_interval(&many, 1000, 7).expect("interval");
        assert!(a.low < mean && mean < a.high, "{a:?}");
        assert!(b.low < mean && mean < b.high, "{b:?}");
        assert!(b.high - b.low < (a.high - a.low) / 5.0, "{a:?} {b:?}");
        assert_eq!(bootstrap_interval(&few, 1000, 7), Some(a), "deterministic");
        assert_eq!(bootstrap_interval(&[1.0], 1000, 7), None);
        let constant = bootstrap_interval(&[3.0; 10], 100, 1).expect("interval");
        assert_eq!((constant.low, constant.high), (3.0, 3.0));
    }

    fn e(submission_id: i64, user_id: i64, public: f64, private: f64, at: i64) -> Entry {
        Entry {
            submission_id,
            user_id,
            public_loss: public,
            private_loss: private,
            at,
            disqualified: false,
        }
    }

    #[test]
    fn the_final_ranking_uses_the_private_part_and_shows_movement() {
        // Ada leads the public board; Bob wins on the private part.
        let entries = [
            e(1, 1, 2.00, 2.30, 10),
            e(2, 2, 2.10, 2.10, 20),
            e(3, 3, 2.20, 2.20, 30),
        ];
        let places = final_ranking(&entries, 0.0);
        let users: Vec<i64> = places.iter().map(|p| p.user_id).collect();
        assert_eq!(users, [2, 3, 1]);
        assert_eq!(places[0].public_rank, 2);
        assert_eq!(places[0].movement(), 1);
        assert_eq!(places[2].public_rank, 1);
        assert_eq!(places[2].movement(), -2);
        assert_eq!(places[2].public_loss, 2.00);
        assert_eq!(places[2].private_loss, 2.30);
    }

    #[test]
    fn the_final_ranking_picks_each_contributors_best_private_submission() {
        // Ada's second submission is worse in public but better in private: it stands.
        let entries = [
            e(1, 1, 2.0, 2.5, 10),
            e(2, 1, 2.1, 2.2, 20),
            e(3, 2, 2.3, 2.3, 15),
        ];
        let places = final_ranking(&entries, 0.0);
        assert_eq!(places[0].submission_id, 2);
        assert_eq!(
            places[0].public_loss, 2.0,
            "public place from the public best"
        );
        assert_eq!(places.len(), 2);
    }

    #[test]
    fn the_final_ranking_applies_epsilon_ties_and_disqualification() {
        let mut entries = vec![
            e(1, 1, 2.0, 2.000, 10),
            e(2, 2, 2.0, 1.999, 20), // not clearly better at 1%: Ada keeps first
            e(3, 3, 2.0, 2.000, 30), // exact tie: the earlier ranks first
        ];
        let order = |places: Vec<FinalPlace>| places.iter().map(|p| p.user_id).collect::<Vec<_>>();
        assert_eq!(order(final_ranking(&entries, 0.01)), [1, 2, 3]);
        entries[0].disqualified = true;
        assert_eq!(order(final_ranking(&entries, 0.01)), [2, 3]);
        assert_eq!(final_ranking(&[], 0.01), []);
    }

    #[test]
    fn organizers_adjust_the_proposed_list() {
        let ranked = [(10, 1.0), (11, 1.1), (12, 1.2), (13, 1.3)];
        let rule = AdvancementRule::TopK(2);
        assert_eq!(
            advancement_list(&rule, &ranked, &[]),
            [
                Verdict::Proposed,
                Verdict::Proposed,
                Verdict::NotProposed,
                Verdict::NotProposed
            ]
        );
        let adjustments = [
            (11, false, "shared weights with a banned account".to_owned()),
            (13, true, "scored after an outage; invited".to_owned()),
            (10, true, "redundant".to_owned()),
        ];
        let list = advancement_list(&rule, &ranked, &adjustments);
        assert_eq!(
            list[0],
            Verdict::Proposed,
            "adding someone already in changes nothing"
        );
        assert_eq!(
            list[1],
            Verdict::Removed("shared weights with a banned account".into())
        );
        assert_eq!(list[2], Verdict::NotProposed);
        assert_eq!(
            list[3],
            Verdict::Added("scored after an outage; invited".into())
        );
        let advancing_users: Vec<i64> = ranked
            .iter()
            .zip(&list)
            .filter(|(_, v)| v.advances())
            .map(|((u, _), _)| *u)
            .collect();
        assert_eq!(advancing_users, [10, 13]);
    }
}
