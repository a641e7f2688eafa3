//! Typed configuration, read once from the environment.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything the server needs to know about where it runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// `ASCENT_ADDR` (or `LEPTOS_SITE_ADDR`, which `cargo leptos` sets), default `127.0.0.1:3000`.
    pub addr: SocketAddr,
    /// `ASCENT_DATA_DIR`, default `./data`: the database and, later, checkpoints.
    pub data_dir: PathBuf,
    /// `ASCENT_DATABASE_URL`, default `sqlite://<data_dir>/ascent.db`.
    pub database_url: String,
    /// `LEPTOS_SITE_ROOT`, default `target/site`: the built CSS, WebAssembly and assets.
    pub site_root: String,
    /// `ASCENT_TRUST_FORWARDED_FOR`: take the client address from `X-Forwarded-For`
    /// (only behind a proxy that sets it).
    pub trust_forwarded_for: bool,
    /// `ASCENT_WORKERS`, default 1: in-process CPU workers the server runs (0: none;
    /// remote workers then do all the scoring).
    pub workers: usize,
    /// `ASCENT_DEV_ATTESTATION=1`: accept the development attestation verifier's
    /// evidence (`domain::attestation`), which proves nothing about hardware. For trying
    /// attested phases without a TEE; never in production.
    pub dev_attestation: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} must be an address like 127.0.0.1:3000, got {value:?}")]
    Address { name: &'static str, value: String },
    #[error("ASCENT_WORKERS must be a number of workers from 0 to 64, got {0:?}")]
    Workers(String),
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let addr_text = var("ASCENT_ADDR")
            .or_else(|| var("LEPTOS_SITE_ADDR"))
            .unwrap_or_else(|| "127.0.0.1:3000".to_owned());
        let addr = addr_text.parse().map_err(|_| ConfigError::Address {
            name: "ASCENT_ADDR",
            value: addr_text.clone(),
        })?;
        let data_dir = PathBuf::from(var("ASCENT_DATA_DIR").unwrap_or_else(|| "data".to_owned()));
        let database_url = var("ASCENT_DATABASE_URL")
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("ascent.db").display()));
        let workers = match var("ASCENT_WORKERS") {
            None => 1,
            Some(text) => text
                .parse()
                .ok()
                .filter(|n| *n <= 64)
                .ok_or(ConfigError::Workers(text))?,
        };
        Ok(Config {
            addr,
            workers,
            data_dir,
            database_url,
            site_root: var("LEPTOS_SITE_ROOT").unwrap_or_else(|| "target/site".to_owned()),
            trust_forwarded_for: var("ASCENT_TRUST_FORWARDED_FOR")
                .is_some_and(|v| v == "1" || v == "true"),
            dev_attestation: var("ASCENT_DEV_ATTESTATION").is_some_and(|v| v == "1" || v == "true"),
        })
    }
}
