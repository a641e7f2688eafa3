//! Shared setup of the pipeline tests: a demo-like preset small enough for the
//! evaluator's fixtures, a data directory, held-out data, users with API tokens.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use ascent_domain::account::{Email, Handle, Password};
use ascent_domain::preset::parse_preset;
use ascent_domain::views::Role;
use ascent_server::config::Config;
use ascent_server::state::AppState;
use ascent_server::storage::Storage;
use ascent_store::{accounts, api_tokens, phases, SqlitePool};

pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The evaluator's golden fixtures (real safetensors written by transformers).
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../evaluator/tests/fixtures")
        .join(name)
}

/// The demo preset with phase 1 shrunk to the fixtures: 8 windows of 64 tokens, a
/// 150K-parameter cap, two submissions a day.
pub fn test_preset(now: i64) -> TestResult<ascent_domain::preset::Preset> {
    let text = include_str!("../../../presets/demo.toml")
        .replacen("max_parameters = 100_000", "max_parameters = 150_000", 1)
        .replacen("windows = 64", "windows = 8", 1)
        .replacen("per_day = 10", "per_day = 2", 1);
    Ok(parse_preset(&text, now)?)
}

/// Loads the test preset and gives phase 1 the fixture shard as held-out data.
pub async fn phases_with_data(pool: &SqlitePool, data_dir: &Path) -> TestResult {
    let now = ascent_store::now();
    phases::load_preset(pool, &test_preset(now)?, now, false).await?;
    ascent_server::admin::add_data(pool, &Storage::new(data_dir), 1, &fixture("text_u16.bin"))
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

pub fn config(data_dir: &Path, workers: usize) -> TestResult<Config> {
    Ok(Config {
        addr: "127.0.0.1:0".parse()?,
        data_dir: data_dir.to_owned(),
        database_url: String::new(),
        site_root: "target/site".into(),
        trust_forwarded_for: false,
        workers,
    })
}

pub fn state(pool: &SqlitePool, data_dir: &Path) -> TestResult<AppState> {
    Ok(AppState::new(pool.clone(), config(data_dir, 0)?))
}

/// Registers a contributor and returns (id, API token).
pub async fn contributor(pool: &SqlitePool, handle: &str) -> TestResult<(i64, String)> {
    let viewer = accounts::register(
        pool,
        &Email::parse(&format!("{handle}@example.org"))?,
        &Handle::parse(handle)?,
        &Password::parse("correct horse battery")?,
        Role::Contributor,
    )
    .await?;
    let token = api_tokens::create(pool, viewer.id, "tests", ascent_store::now()).await?;
    Ok((viewer.id, token))
}
