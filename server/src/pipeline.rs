//! The background side of the submission pipeline: a maintenance loop that moves phases
//! by their schedule, requeues jobs whose worker vanished and deletes abandoned uploads, and the server's own
//! in-process workers.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use ascent_store::{jobs, now, phases, uploads, workers};

use crate::state::AppState;

/// How often the maintenance loop runs.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(5);

/// One round of maintenance; returns whether anything changed.
pub async fn maintain_once(state: &AppState) -> bool {
    let mut changed = false;
    match phases::apply_schedule(&state.pool, now()).await {
        Ok(moves) => changed |= !moves.is_empty(),
        Err(error) => tracing::warn!(%error, "applying the phase schedule failed"),
    }
    match jobs::reap(&state.pool, now()).await {
        Ok(0) => {}
        Ok(n) => {
            tracing::info!(jobs = n, "jobs with lapsed leases put back in the queue");
            changed = true;
        }
        Err(error) => tracing::warn!(%error, "reaping jobs failed"),
    }
    match uploads::purge_expired(&state.pool, now()).await {
        Ok(ids) => {
            for id in ids {
                match state.storage.remove_upload(&id).await {
                    Ok(()) => tracing::info!(upload = %id, "abandoned upload deleted"),
                    Err(error) => {
                        tracing::warn!(upload = %id, %error, "deleting an abandoned upload's files failed")
                    }
                }
            }
        }
        Err(error) => tracing::warn!(%error, "purging expired uploads failed"),
    }
    if changed {
        state.changes.notify();
    }
    changed
}

/// Runs maintenance forever.
pub async fn maintain(state: AppState) {
    let mut every = tokio::time::interval(MAINTENANCE_EVERY);
    loop {
        every.tick().await;
        maintain_once(&state).await;
    }
}

/// The server's in-process workers: threads running the same worker loop as
/// `ascent-eval worker`, talking to this server over loopback.
pub struct BuiltInWorkers {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl BuiltInWorkers {
    /// Gives the built-in worker a fresh token, puts back the jobs its previous process
    /// held, and starts `count` worker threads against `server_url`.
    pub async fn start(
        state: &AppState,
        server_url: String,
        count: usize,
    ) -> anyhow::Result<BuiltInWorkers> {
        let stop = Arc::new(AtomicBool::new(false));
        if count == 0 {
            return Ok(BuiltInWorkers {
                stop,
                threads: Vec::new(),
            });
        }
        // The built-in workers sign their scores like any worker, with a key kept in the
        // data directory.
        let key_path = state.config.data_dir.join("keys/built-in-worker.key");
        let (key, _) = ascent_evaluator::worker::key::load_or_create(&key_path)?;
        let (id, token) = workers::renew_built_in(&state.pool, &key.public_hex(), now()).await?;
        let released = jobs::release_worker(&state.pool, id, now()).await?;
        if released > 0 {
            tracing::info!(
                jobs = released,
                "jobs of the previous process put back in the queue"
            );
        }
        let cache_dir = state.config.data_dir.join("worker-cache");
        let mut threads = Vec::with_capacity(count);
        for n in 0..count {
            let mut options = ascent_evaluator::worker::WorkerOptions::new(
                server_url.clone(),
                token.clone(),
                cache_dir.join(n.to_string()),
                key.clone(),
            );
            // On the same machine a claim is cheap: look often so the demo feels live.
            options.poll_interval = Duration::from_secs(1);
            let stop = stop.clone();
            let thread = std::thread::Builder::new()
                .name(format!("built-in-worker-{n}"))
                .spawn(move || {
                    if let Err(error) = ascent_evaluator::worker::run(&options, &stop) {
                        tracing::error!(%error, "built-in worker stopped");
                    }
                })?;
            threads.push(thread);
        }
        tracing::info!(count, "built-in workers started");
        Ok(BuiltInWorkers { stop, threads })
    }

    /// Asks the workers to stop and waits for them (a job in progress is dropped; its
    /// lease is released at the next start).
    pub fn stop(self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}
