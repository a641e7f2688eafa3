//! The state every handler shares.

use std::sync::Arc;

use ascent_store::SqlitePool;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use crate::config::Config;
use crate::events::Changes;
use crate::http::api::BoardCache;
use crate::storage::Storage;

#[derive(Clone)]
pub struct AppState {
    pub pool: SqlitePool,
    pub leptos_options: LeptosOptions,
    pub config: Arc<Config>,
    /// Checkpoint files and held-out data.
    pub storage: Storage,
    /// Change notices for live event streams.
    pub changes: Changes,
    /// Ranked leaderboards for the JSON/CSV API, by phase and page version.
    pub boards: BoardCache,
}

impl AppState {
    pub fn new(pool: SqlitePool, config: Config) -> AppState {
        let leptos_options = LeptosOptions::builder()
            .output_name("ascent")
            .site_root(config.site_root.as_str())
            .site_pkg_dir("pkg")
            .site_addr(config.addr)
            .build();
        AppState {
            pool,
            leptos_options,
            storage: Storage::new(&config.data_dir),
            changes: Changes::default(),
            boards: BoardCache::default(),
            config: Arc::new(config),
        }
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> LeptosOptions {
        state.leptos_options.clone()
    }
}

impl FromRef<AppState> for SqlitePool {
    fn from_ref(state: &AppState) -> SqlitePool {
        state.pool.clone()
    }
}
