//! Login throttling: after a few failed attempts for one account or one address,
//! each further attempt must wait longer, and after many the key is locked for a while.

/// The knobs of the throttle; `Default` is what the server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures allowed without any wait.
    pub free_failures: u32,
    /// Wait after the first failure past the free ones; doubles with each further one.
    pub base_delay_secs: i64,
    /// Failures after which the key is locked for `lock_secs`.
    pub lock_after: u32,
    pub lock_secs: i64,
    /// A record with no failure for this long is forgotten.
    pub forget_after_secs: i64,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            free_failures: 5,
            base_delay_secs: 2,
            lock_after: 10,
            lock_secs: 15 * 60,
            forget_after_secs: 60 * 60,
        }
    }
}

/// What a login attempt may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginGate {
    Allowed,
    /// Refused without checking the password; try again after this many seconds.
    RetryAfter(i64),
}

/// Failures recorded for one key (an email or an address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureRecord {
    pub failures: u32,
    pub last_failure_at: i64,
}

impl ThrottlePolicy {
    /// The policy for a client address: many people can share one (NAT, offices), so
    /// it allows more failures before slowing down, but it still stops a sweep.
    pub fn for_addresses() -> Self {
        ThrottlePolicy {
            free_failures: 20,
            lock_after: 50,
            ..ThrottlePolicy::default()
        }
    }

    /// Whether an attempt at `now` may proceed given the key's failures so far.
    pub fn gate(&self, record: Option<FailureRecord>, now: i64) -> LoginGate {
        let Some(record) = self.live(record, now) else {
            return LoginGate::Allowed;
        };
        let wait = self.wait_after(record.failures);
        let ready_at = record.last_failure_at.saturating_add(wait);
        if now >= ready_at {
            LoginGate::Allowed
        } else {
            LoginGate::RetryAfter(ready_at - now)
        }
    }

    /// The record after one more failure at `now`.
    pub fn record_failure(&self, record: Option<FailureRecord>, now: i64) -> FailureRecord {
        let failures = self.live(record, now).map_or(0, |r| r.failures);
        FailureRecord {
            failures: failures.saturating_add(1),
            last_failure_at: now,
        }
    }

    fn live(&self, record: Option<FailureRecord>, now: i64) -> Option<FailureRecord> {
        record.filter(|r| now.saturating_sub(r.last_failure_at) < self.forget_after_secs)
    }

    fn wait_after(&self, failures: u32) -> i64 {
        if failures >= self.lock_after {
            self.lock_secs
        } else if failures >= self.free_failures {
            let doublings = (failures - self.free_failures).min(30);
            self.base_delay_secs
                .saturating_mul(1_i64 << doublings)
                .min(self.lock_secs)
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(failures: u32, at: i64) -> Option<FailureRecord> {
        Some(FailureRecord {
            failures,
            last_failure_at: at,
        })
    }

    #[test]
    fn first_failures_are_free() {
        let p = ThrottlePolicy::default();
        assert_eq!(p.gate(None, 100), LoginGate::Allowed);
        assert_eq!(p.gate(after(4, 100), 100), LoginGate::Allowed);
    }

    #[test]
    fn waits_double_then_lock() {
        let p = ThrottlePolicy::default();
        assert_eq!(p.gate(after(5, 100), 100), LoginGate::RetryAfter(2));
        assert_eq!(p.gate(after(6, 100), 101), LoginGate::RetryAfter(3));
        assert_eq!(p.gate(after(7, 100), 108), LoginGate::Allowed);
        assert_eq!(p.gate(after(10, 100), 100), LoginGate::RetryAfter(900));
        assert_eq!(p.gate(after(50, 100), 999), LoginGate::RetryAfter(1));
        assert_eq!(p.gate(after(50, 100), 1000), LoginGate::Allowed);
    }

    #[test]
    fn old_failures_are_forgotten() {
        let p = ThrottlePolicy::default();
        assert_eq!(p.gate(after(10, 0), 3600), LoginGate::Allowed);
        assert_eq!(p.record_failure(after(10, 0), 3600).failures, 1);
        assert_eq!(p.record_failure(after(3, 0), 10).failures, 4);
    }
}
