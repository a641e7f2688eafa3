//! Keeping a job's lease: a thread that sends a heartbeat with the job's stage and
//! progress every third of the lease, and cancels the job when the lease is lost, the
//! job's time limit passes, or the worker is asked to stop.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ascent_domain::protocol::{Heartbeat, JobStage, LeaseRenewal};
use ureq::http::Method;

use crate::client::{segment, Client, ClientError};

/// Why a job was stopped before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    /// The server gave the job to someone else (heartbeat answered 409): say nothing more.
    LeaseLost,
    /// The job ran past its time limit.
    TimeLimit,
    /// The worker was asked to stop (Ctrl-C, server shutdown).
    Stopped,
}

/// What a running job shares with its lease keeper.
#[derive(Debug, Default)]
pub struct JobState {
    stage: AtomicU8,
    done: AtomicU64,
    total: AtomicU64,
    /// Read by the downloads and by `score` between batches.
    pub cancel: AtomicBool,
    reason: Mutex<Option<CancelReason>>,
}

impl JobState {
    pub fn set_progress(&self, stage: JobStage, done: u64, total: u64) {
        let stage = match stage {
            JobStage::Validating => 0,
            JobStage::Scoring => 1,
        };
        self.stage.store(stage, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
        self.done.store(done, Ordering::Relaxed);
    }

    pub fn progress(&self) -> (JobStage, u64, u64) {
        let stage = match self.stage.load(Ordering::Relaxed) {
            0 => JobStage::Validating,
            _ => JobStage::Scoring,
        };
        (
            stage,
            self.done.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
        )
    }

    /// Cancels the job; the first reason given is the one that counts.
    pub fn cancel(&self, reason: CancelReason) {
        if let Ok(mut slot) = self.reason.lock() {
            slot.get_or_insert(reason);
        }
        self.cancel.store(true, Ordering::Relaxed);
    }

    pub fn cancel_reason(&self) -> Option<CancelReason> {
        self.reason.lock().ok().and_then(|slot| *slot)
    }
}

/// The job the keeper keeps.
pub struct Lease<'a> {
    pub client: &'a Client,
    pub job_id: i64,
    pub lease: &'a str,
    pub lease_seconds: u64,
    pub deadline: Instant,
}

/// Least time between two heartbeats sent only to report progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Runs until `done` is signalled or dropped, or the job is cancelled.
pub fn keep(lease: &Lease<'_>, state: &JobState, stop: &AtomicBool, done: Receiver<()>) {
    let mut interval = beat_interval(lease.lease_seconds);
    let mut next_beat = Instant::now() + interval;
    // Progress is reported as it happens (at most once a second), so the submission
    // page moves; the lease itself needs a beat only every `interval`.
    let mut last_beat = Instant::now();
    let mut reported = None;
    loop {
        // Wake at least every second to notice a stop or the deadline promptly.
        let now = Instant::now();
        let wait = next_beat
            .min(lease.deadline)
            .saturating_duration_since(now)
            .min(Duration::from_secs(1));
        match done.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        if stop.load(Ordering::Relaxed) {
            tracing::info!("stop requested: cancelling the job");
            state.cancel(CancelReason::Stopped);
            return;
        }
        if Instant::now() >= lease.deadline {
            tracing::warn!("time limit reached: cancelling the job");
            state.cancel(CancelReason::TimeLimit);
            return;
        }
        let progress = state.progress();
        let news = reported != Some(progress) && last_beat.elapsed() >= PROGRESS_EVERY;
        if Instant::now() < next_beat && !news {
            continue;
        }
        last_beat = Instant::now();
        reported = Some(progress);
        match heartbeat(lease, state) {
            Ok(renewal) => interval = beat_interval(renewal.lease_seconds),
            Err(e) if e.status() == Some(409) => {
                tracing::warn!("lease lost: cancelling the job");
                state.cancel(CancelReason::LeaseLost);
                return;
            }
            // The next beat may still arrive in time; if not, the server says 409.
            Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
        }
        next_beat = Instant::now() + interval;
    }
}

/// A third of the lease, so that two heartbeats may be lost before it lapses.
pub fn beat_interval(lease_seconds: u64) -> Duration {
    Duration::from_millis(lease_seconds.saturating_mul(1000) / 3).max(Duration::from_millis(500))
}

/// One heartbeat, no retry: the next one is the retry.
fn heartbeat(lease: &Lease<'_>, state: &JobState) -> Result<LeaseRenewal, ClientError> {
    let (stage, done, total) = state.progress();
    let body = Heartbeat {
        lease: lease.lease.to_owned(),
        stage,
        done,
        total,
    };
    let path = format!(
        "/api/worker/jobs/{}/heartbeat",
        segment(&lease.job_id.to_string())
    );
    let bytes = serde_json::to_vec(&body).map_err(|e| ClientError::Decode {
        url: lease.client.url(&path),
        message: e.to_string(),
    })?;
    let response = lease.client.send(
        Method::POST,
        &path,
        &[("content-type", "application/json")],
        &bytes[..],
    )?;
    let mut response = lease.client.success(&path, response)?;
    let answer = response
        .body_mut()
        .with_config()
        .limit(64 << 10)
        .read_to_vec()
        .map_err(|source| ClientError::Transport {
            url: lease.client.url(&path),
            source,
        })?;
    serde_json::from_slice(&answer).map_err(|e| ClientError::Decode {
        url: lease.client.url(&path),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beats_three_times_per_lease() {
        assert_eq!(beat_interval(60), Duration::from_secs(20));
        assert_eq!(beat_interval(0), Duration::from_millis(500));
        assert_eq!(beat_interval(u64::MAX), Duration::from_millis(u64::MAX / 3));
    }

    #[test]
    fn the_first_cancel_reason_counts() {
        let s = JobState::default();
        assert_eq!(s.cancel_reason(), None);
        s.cancel(CancelReason::LeaseLost);
        s.cancel(CancelReason::Stopped);
        assert_eq!(s.cancel_reason(), Some(CancelReason::LeaseLost));
        assert!(s.cancel.load(Ordering::Relaxed));
        s.set_progress(JobStage::Scoring, 3, 7);
        assert_eq!(s.progress(), (JobStage::Scoring, 3, 7));
    }

    #[test]
    fn the_keeper_enforces_the_deadline_and_the_stop_flag() {
        let client = Client::new("http://127.0.0.1:9", None).expect("client");
        let lease = Lease {
            client: &client,
            job_id: 1,
            lease: "l",
            lease_seconds: 3600,
            deadline: Instant::now() + Duration::from_millis(50),
        };
        let state = JobState::default();
        let (_tx, rx) = std::sync::mpsc::channel();
        keep(&lease, &state, &AtomicBool::new(false), rx);
        assert_eq!(state.cancel_reason(), Some(CancelReason::TimeLimit));

        let state = JobState::default();
        let (_tx, rx) = std::sync::mpsc::channel();
        let lease = Lease {
            deadline: Instant::now() + Duration::from_secs(3600),
            ..lease
        };
        keep(&lease, &state, &AtomicBool::new(true), rx);
        assert_eq!(state.cancel_reason(), Some(CancelReason::Stopped));
    }
}
