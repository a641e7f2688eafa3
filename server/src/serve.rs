//! Running the server: bind, serve the router, run maintenance and the built-in
//! workers, and stop cleanly. The binary and the tests start it the same way.

use std::net::SocketAddr;

use anyhow::Context;
use ascent_store::SqlitePool;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::http::router;
use crate::pipeline::{self, BuiltInWorkers};
use crate::state::AppState;

/// A server that is accepting requests.
pub struct RunningServer {
    /// Where it listens (the real port when the configuration asked for port 0).
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: oneshot::Sender<()>,
    serving: JoinHandle<std::io::Result<()>>,
    background: Vec<JoinHandle<()>>,
    workers: BuiltInWorkers,
}

/// Binds `config.addr` and starts serving, with maintenance and `config.workers`
/// in-process workers.
pub async fn start(pool: SqlitePool, config: Config) -> anyhow::Result<RunningServer> {
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.addr))?;
    let addr = listener.local_addr()?;
    let workers = config.workers;
    let state = AppState::new(pool.clone(), config);
    // Held-out data a crash interrupted while it was being received (no upload runs yet).
    state.storage.remove_incoming_datasets();
    let app = router(state.clone());
    let (shutdown, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = stopped.await;
        })
        .await
    });
    tracing::info!("serving on http://{addr}");
    let background = vec![
        tokio::spawn(pipeline::maintain(state.clone())),
        tokio::spawn(purge_sessions(pool)),
    ];
    let loopback = format!("http://127.0.0.1:{}", addr.port());
    let workers = BuiltInWorkers::start(&state, loopback, workers).await?;
    Ok(RunningServer {
        addr,
        state,
        shutdown,
        serving,
        background,
        workers,
    })
}

impl RunningServer {
    /// The base URL, e.g. `http://127.0.0.1:3000`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.addr.port())
    }

    /// Stops the workers, then the listener (letting requests in flight finish).
    pub async fn stop(self) -> anyhow::Result<()> {
        let workers = self.workers;
        tokio::task::spawn_blocking(move || workers.stop()).await?;
        for task in self.background {
            task.abort();
        }
        let _ = self.shutdown.send(());
        self.serving.await??;
        Ok(())
    }
}

/// Deletes expired sessions every hour.
async fn purge_sessions(pool: SqlitePool) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        every.tick().await;
        match ascent_store::sessions::purge_expired(&pool).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(sessions = n, "expired sessions purged"),
            Err(error) => tracing::warn!(%error, "purging sessions failed"),
        }
    }
}
