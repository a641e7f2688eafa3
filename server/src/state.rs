//! The state every handler shares.

use std::sync::Arc;

use ascent_store::SqlitePool;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use crate::config::Config;

#[derive(Clone)]
pub struct AppState {
    pub pool: SqlitePool,
    pub leptos_options: LeptosOptions,
    pub config: Arc<Config>,
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
