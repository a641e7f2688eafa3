//! How long to wait before each retry: exponential, capped, bounded in count.

use std::time::Duration;

/// A retry schedule: `first`, `2 × first`, `4 × first`… never above `max`, at most
/// `retries` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
    pub retries: u32,
}

impl Default for Backoff {
    /// About a minute and a half of patience in all: 0.5, 1, 2, 4, 8, 16, 30, 30 s.
    fn default() -> Self {
        Backoff {
            first: Duration::from_millis(500),
            max: Duration::from_secs(30),
            retries: 8,
        }
    }
}

impl Backoff {
    /// The wait before retry number `retry` (0 = the first retry), or `None` when the
    /// retries are used up.
    pub fn delay(&self, retry: u32) -> Option<Duration> {
        if retry >= self.retries {
            return None;
        }
        let factor = 1u32.checked_shl(retry).unwrap_or(u32::MAX);
        Some(self.first.saturating_mul(factor).min(self.max))
    }

    /// Every wait of the schedule, in order.
    pub fn delays(&self) -> impl Iterator<Item = Duration> + '_ {
        (0..).map_while(|retry| self.delay(retry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_then_stops() {
        let b = Backoff {
            first: Duration::from_millis(100),
            max: Duration::from_millis(1000),
            retries: 6,
        };
        let ms: Vec<u128> = b.delays().map(|d| d.as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.delay(6), None);
    }

    #[test]
    fn large_retry_counts_do_not_overflow() {
        let b = Backoff {
            first: Duration::from_secs(1),
            max: Duration::from_secs(60),
            retries: 200,
        };
        assert_eq!(b.delay(40), Some(Duration::from_secs(60)));
        assert_eq!(b.delay(199), Some(Duration::from_secs(60)));
        let default: Vec<Duration> = Backoff::default().delays().collect();
        assert_eq!(default.len(), 8);
        assert_eq!(default.last(), Some(&Duration::from_secs(30)));
    }
}
