//! Rewards: each phase's points budget, shared at finalization among the contributors
//! who advance (for the last phase, its winners), by a rule the phase announces.
//!
//! - `rank_weighted`: the contributor in final place r weighs 1/r, so the winner gets
//!   the most but second place still gets half the winner's share, third a third...
//! - `improvement`: each weighs by how far their private loss is below the phase's
//!   baseline, the loss of a model that predicts every token uniformly (ln of the
//!   vocabulary size); a phase where nobody beat the baseline falls back to
//!   `rank_weighted`.
//!
//! Points are whole numbers that always sum to the budget: each gets the floor of their
//! exact share, and the points left over go one each to the largest remainders, ties
//! to the better place. The same ranking always gives the same split.

use serde::{Deserialize, Serialize};

/// How a phase's budget is shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RewardRule {
    #[default]
    RankWeighted,
    Improvement,
}

impl RewardRule {
    pub fn as_str(self) -> &'static str {
        match self {
            RewardRule::RankWeighted => "rank_weighted",
            RewardRule::Improvement => "improvement",
        }
    }

    pub fn parse(value: &str) -> Option<RewardRule> {
        match value {
            "rank_weighted" => Some(RewardRule::RankWeighted),
            "improvement" => Some(RewardRule::Improvement),
            _ => None,
        }
    }

    /// A sentence a visitor understands.
    pub fn describe(self) -> &'static str {
        match self {
            RewardRule::RankWeighted => {
                "shared among those who advance in proportion to 1/place: first place gets the most, second half as much, third a third"
            }
            RewardRule::Improvement => {
                "shared among those who advance in proportion to how far their loss is below a uniform guess (ln of the vocabulary size)"
            }
        }
    }
}

/// A phase's rewards: the points it shares at finalization and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardSpec {
    /// Points shared at finalization (0: the phase gives none).
    pub budget: u64,
    #[serde(default)]
    pub rule: RewardRule,
}

/// A paid place of the final ranking.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Place {
    pub user_id: i64,
    /// Final place, from 1.
    pub rank: u64,
    /// Private loss.
    pub loss: f64,
}

/// Points for one contributor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Award {
    pub user_id: i64,
    pub rank: u64,
    pub points: u64,
}

/// Shares `spec.budget` among `paid` (the places that advance) under `spec.rule`;
/// `vocab_size` gives the improvement rule's baseline. Awards come in place order and
/// sum to the budget whenever anyone is paid.
pub fn split(spec: &RewardSpec, paid: &[Place], vocab_size: u32) -> Vec<Award> {
    let mut places: Vec<Place> = paid.to_vec();
    places.sort_by_key(|p| (p.rank, p.user_id));
    if places.is_empty() || spec.budget == 0 {
        return Vec::new();
    }
    let rank_weights = || {
        places
            .iter()
            .map(|p| 1.0 / p.rank.max(1) as f64)
            .collect::<Vec<f64>>()
    };
    let weights = match spec.rule {
        RewardRule::RankWeighted => rank_weights(),
        RewardRule::Improvement => {
            let baseline = f64::from(vocab_size.max(2)).ln();
            let gains: Vec<f64> = places
                .iter()
                .map(|p| {
                    if p.loss.is_finite() {
                        (baseline - p.loss).max(0.0)
                    } else {
                        0.0
                    }
                })
                .collect();
            if gains.iter().any(|g| *g > 0.0) {
                gains
            } else {
                rank_weights()
            }
        }
    };
    let total: f64 = weights.iter().sum();
    let budget = spec.budget as f64;
    let shares: Vec<f64> = weights.iter().map(|w| budget * w / total).collect();
    let mut points: Vec<u64> = shares.iter().map(|s| s.floor() as u64).collect();
    let given: u64 = points.iter().sum();
    let mut leftover = spec.budget.saturating_sub(given);
    // Largest remainder first; the sort is stable, so ties keep place order.
    let mut order: Vec<usize> = (0..places.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (shares[a] - shares[a].floor(), shares[b] - shares[b].floor());
        rb.total_cmp(&ra)
    });
    for &i in order.iter().cycle() {
        if leftover == 0 {
            break;
        }
        points[i] += 1;
        leftover -= 1;
    }
    places
        .iter()
        .zip(points)
        .map(|(p, points)| Award {
            user_id: p.user_id,
            rank: p.rank,
            points,
        })
        .collect()
}

/// Why a payout account is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a payout account is a NEAR account id: 2 to 64 lowercase letters, digits and single '-', '_' or '.' between them (e.g. ada.near), or a 64-digit implicit account")]
pub struct BadPayoutAccount;

/// Checks a NEAR account id (named, like `ada.near`, or implicit, 64 hex digits);
/// returns it trimmed.
pub fn check_payout_account(value: &str) -> Result<String, BadPayoutAccount> {
    let id = value.trim();
    let separator = |c: char| matches!(c, '-' | '_' | '.');
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || separator(c);
    let well_formed = (2..=64).contains(&id.len())
        && id.chars().all(allowed)
        && !id.starts_with(separator)
        && !id.ends_with(separator)
        && !id
            .as_bytes()
            .windows(2)
            .any(|w| separator(char::from(w[0])) && separator(char::from(w[1])));
    if well_formed {
        Ok(id.to_owned())
    } else {
        Err(BadPayoutAccount)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn places(losses: &[f64]) -> Vec<Place> {
        losses
            .iter()
            .zip(1..)
            .map(|(&loss, rank)| Place {
                user_id: 100 + rank as i64,
                rank,
                loss,
            })
            .collect()
    }

    fn points(awards: &[Award]) -> Vec<u64> {
        awards.iter().map(|a| a.points).collect()
    }

    #[test]
    fn rank_weighted_pays_more_than_the_winner_and_sums_to_the_budget() {
        let spec = RewardSpec {
            budget: 1000,
            rule: RewardRule::RankWeighted,
        };
        let awards = split(&spec, &places(&[2.0, 2.1, 2.2]), 256);
        // 1 : 1/2 : 1/3 of 1000 = 545.45, 272.73, 181.82 → the leftover point goes to the largest remainder.
        assert_eq!(points(&awards), vec![545, 273, 182]);
        assert_eq!(awards.iter().map(|a| a.points).sum::<u64>(), 1000);
        assert_eq!(awards[0].user_id, 101);
    }

    #[test]
    fn improvement_weighs_by_the_gain_over_a_uniform_guess() {
        let spec = RewardSpec {
            budget: 90,
            rule: RewardRule::Improvement,
        };
        let baseline = 256f64.ln();
        let awards = split(&spec, &places(&[baseline - 2.0, baseline - 1.0]), 256);
        assert_eq!(points(&awards), vec![60, 30]);
        // Nobody below the baseline: shared by place instead.
        let awards = split(&spec, &places(&[9.0, 9.5]), 256);
        assert_eq!(points(&awards), vec![60, 30]);
    }

    #[test]
    fn the_split_always_sums_and_never_depends_on_input_order() {
        for budget in [1, 7, 100, 12_345, 1_000_000] {
            for n in 1..30 {
                let losses: Vec<f64> = (0..n).map(|i| 2.0 + f64::from(i) * 0.013).collect();
                for rule in [RewardRule::RankWeighted, RewardRule::Improvement] {
                    let spec = RewardSpec { budget, rule };
                    let mut paid = places(&losses);
                    let awards = split(&spec, &paid, 256);
                    assert_eq!(
                        awards.iter().map(|a| a.points).sum::<u64>(),
                        budget,
                        "{budget} {n} {rule:?}"
                    );
                    paid.reverse();
                    assert_eq!(split(&spec, &paid, 256), awards);
                    // Better places never get fewer points.
                    assert!(
                        awards.windows(2).all(|w| w[0].points >= w[1].points),
                        "{awards:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn payout_accounts_are_near_account_ids() {
        for good in [
            "ada.near",
            "bo",
            "team-7_lab.testnet",
            &"a".repeat(64),
            " ada.near ",
        ] {
            assert!(check_payout_account(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "a",
            "Ada.near",
            "ada..near",
            ".ada",
            "ada-",
            "ada near",
            "ada@near",
            &"a".repeat(65),
        ] {
            assert_eq!(check_payout_account(bad), Err(BadPayoutAccount), "{bad}");
        }
    }

    #[test]
    fn nobody_paid_or_no_budget_gives_nothing() {
        let spec = RewardSpec {
            budget: 100,
            rule: RewardRule::RankWeighted,
        };
        assert!(split(&spec, &[], 256).is_empty());
        let none = RewardSpec {
            budget: 0,
            rule: RewardRule::RankWeighted,
        };
        assert!(split(&none, &places(&[2.0]), 256).is_empty());
    }
}
