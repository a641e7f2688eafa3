//! Shared setup of the pipeline tests: a demo-like preset small enough for the
//! evaluator's fixtures, a data directory, held-out data, users with API tokens.

pub mod process;

use std::path::{Path, PathBuf};

use ascent_domain::account::{Email, Handle, Password};
use ascent_domain::preset::parse_preset;
use ascent_domain::protocol::{NewUpload, UploadFile, UploadStatus};
use ascent_domain::views::Role;
use ascent_server::config::Config;
use ascent_server::state::AppState;
use ascent_server::storage::Storage;
use ascent_store::{accounts, api_tokens, phases, SqlitePool};
use axum::body::Body;
use axum::Router;
use http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Calls a server function the way a script does: form fields, an API token (no
/// cookie, so no CSRF token is needed), JSON back.
pub async fn server_fn(
    app: &Router,
    token: &str,
    endpoint: &str,
    fields: &[(&str, &str)],
) -> TestResult<Reply> {
    let body = fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(format!("/api/{endpoint}"))
        .header(header::HOST, "127.0.0.1:3000")
        .header(header::ACCEPT, "application/json")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if !token.is_empty() {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = app.clone().oneshot(request.body(Body::from(body))?).await?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok(Reply {
        status,
        offset: None,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// Percent-encodes a form value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_owned(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The evaluator's golden fixtures (real safetensors written by transformers).
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../evaluator/tests/fixtures")
        .join(name)
}

/// The demo preset with phase 1 shrunk to the fixtures: 8 windows of 64 tokens, a
/// 150K-parameter cap, two submissions a day.
pub fn test_preset(now: i64) -> TestResult<ascent_domain::preset::Preset> {
    let text = include_str!("../../../../presets/demo.toml")
        .replacen("max_parameters = 100_000", "max_parameters = 150_000", 1)
        .replacen("windows = 64", "windows = 8", 1)
        .replacen("per_day = 10", "per_day = 2", 1);
    Ok(parse_preset(&text, now)?)
}

/// Loads the test preset and gives phase 1 the fixture shard as held-out data.
pub async fn phases_with_data(pool: &SqlitePool, data_dir: &Path) -> TestResult {
    logs();
    let now = ascent_store::now();
    phases::load_preset(pool, &test_preset(now)?, now, false).await?;
    ascent_server::admin::add_data(pool, &Storage::new(data_dir), 1, &fixture("text_u16.bin"))
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Logs to the test's output (shown when it fails), once per test binary.
pub fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info,sqlx=warn".into()),
        ))
        .with_test_writer()
        .try_init();
}

pub fn config(data_dir: &Path, workers: usize) -> TestResult<Config> {
    Ok(Config {
        addr: "127.0.0.1:0".parse()?,
        data_dir: data_dir.to_owned(),
        database_url: String::new(),
        site_root: "target/site".into(),
        trust_forwarded_for: false,
        workers,
        dev_attestation: true,
    })
}

pub fn state(pool: &SqlitePool, data_dir: &Path) -> TestResult<AppState> {
    Ok(AppState::new(pool.clone(), config(data_dir, 0)?))
}

/// Registers a contributor and returns (id, API token).
pub async fn contributor(pool: &SqlitePool, handle: &str) -> TestResult<(i64, String)> {
    account(pool, handle, Role::Contributor).await
}

/// Registers an account with `role` and returns (id, API token).
pub async fn account(pool: &SqlitePool, handle: &str, role: Role) -> TestResult<(i64, String)> {
    let viewer = accounts::register(
        pool,
        &Email::parse(&format!("{handle}@example.org"))?,
        &Handle::parse(handle)?,
        &Password::parse("correct horse battery")?,
        role,
    )
    .await?;
    let token = api_tokens::create(pool, viewer.id, "tests", ascent_store::now()).await?;
    Ok((viewer.id, token))
}

pub struct Reply {
    pub status: StatusCode,
    pub offset: Option<u64>,
    pub body: String,
}

impl Reply {
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> TestResult<T> {
        serde_json::from_str(&self.body).map_err(|e| format!("{e}: {}", self.body).into())
    }
}

pub async fn call(
    app: &Router,
    method: Method,
    path: &str,
    token: &str,
    body: Body,
    offset: Option<u64>,
) -> TestResult<Reply> {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "127.0.0.1:3000")
        .header(header::CONTENT_TYPE, "application/json");
    if !token.is_empty() {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if let Some(offset) = offset {
        request = request
            .header("upload-offset", offset)
            .header(header::CONTENT_TYPE, "application/offset+octet-stream");
    }
    let response = app.clone().oneshot(request.body(body)?).await?;
    let status = response.status();
    let offset = response
        .headers()
        .get("upload-offset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok(Reply {
        status,
        offset,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// The files of a fixture checkpoint, as (name, bytes).
pub fn checkpoint(name: &str) -> TestResult<Vec<(String, Vec<u8>)>> {
    files_of(&fixture(name))
}

/// The files of one of the demo's trained checkpoints (`demo/checkpoints/<name>`).
pub fn demo_checkpoint(name: &str) -> TestResult<Vec<(String, Vec<u8>)>> {
    files_of(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../demo/checkpoints")
            .join(name),
    )
}

fn files_of(dir: &Path) -> TestResult<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        files.push((
            entry.file_name().to_string_lossy().into_owned(),
            std::fs::read(entry.path())?,
        ));
    }
    files.sort();
    Ok(files)
}

pub fn new_upload(phase: u8, files: &[(String, Vec<u8>)], fingerprint: &str) -> TestResult<Body> {
    new_upload_to(phase, files, fingerprint, None)
}

/// [`new_upload`] for files said to be encrypted to `encrypted_to` (`NAME.age`).
pub fn new_upload_to(
    phase: u8,
    files: &[(String, Vec<u8>)],
    fingerprint: &str,
    encrypted_to: Option<&str>,
) -> TestResult<Body> {
    let new = NewUpload {
        phase,
        files: files
            .iter()
            .map(|(name, bytes)| UploadFile {
                name: name.clone(),
                bytes: bytes.len() as u64,
            })
            .collect(),
        fingerprint: fingerprint.to_owned(),
        encrypted_to: encrypted_to.map(str::to_owned),
    };
    Ok(Body::from(serde_json::to_vec(&new)?))
}

pub async fn start(
    app: &Router,
    token: &str,
    files: &[(String, Vec<u8>)],
    fingerprint: &str,
) -> TestResult<Reply> {
    start_in(app, token, 1, files, fingerprint).await
}

pub async fn start_in(
    app: &Router,
    token: &str,
    phase: u8,
    files: &[(String, Vec<u8>)],
    fingerprint: &str,
) -> TestResult<Reply> {
    call(
        app,
        Method::POST,
        "/api/uploads",
        token,
        new_upload(phase, files, fingerprint)?,
        None,
    )
    .await
}

pub async fn send_all(
    app: &Router,
    token: &str,
    id: &str,
    files: &[(String, Vec<u8>)],
) -> TestResult {
    for (name, bytes) in files {
        let reply = call(
            app,
            Method::PATCH,
            &format!("/api/uploads/{id}/files/{name}"),
            token,
            Body::from(bytes.clone()),
            Some(0),
        )
        .await?;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    }
    Ok(())
}

pub async fn submit(
    app: &Router,
    token: &str,
    files: &[(String, Vec<u8>)],
    fingerprint: &str,
) -> TestResult<Reply> {
    submit_to(app, token, 1, files, fingerprint).await
}

/// Uploads a whole checkpoint to `phase` and finishes it; the finish's reply.
pub async fn submit_to(
    app: &Router,
    token: &str,
    phase: u8,
    files: &[(String, Vec<u8>)],
    fingerprint: &str,
) -> TestResult<Reply> {
    let started = start_in(app, token, phase, files, fingerprint).await?;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    let status: UploadStatus = started.json()?;
    send_all(app, token, &status.id, files).await?;
    finish(app, token, &status.id).await
}

/// `POST /api/uploads/{id}/finish`; its reply.
pub async fn finish(app: &Router, token: &str, id: &str) -> TestResult<Reply> {
    call(
        app,
        Method::POST,
        &format!("/api/uploads/{id}/finish"),
        token,
        Body::empty(),
        None,
    )
    .await
}

/// Runs the `ascent-eval` worker loop, holding `evaluation_keys`, one job per run until
/// the queue has nothing it may claim; the summaries added up.
pub async fn work(
    url: &str,
    token: &str,
    cache: &Path,
    evaluation_keys: &[ascent_evaluator::encryption::EvaluationKey],
) -> TestResult<ascent_evaluator::worker::WorkerSummary> {
    use ascent_evaluator::worker::{self, WorkerOptions, WorkerSummary};
    let mut options = WorkerOptions::new(url, token, cache.to_owned(), worker_key());
    options.once = true;
    options.evaluation_keys = evaluation_keys.to_vec();
    let mut total = WorkerSummary::default();
    loop {
        let options = options.clone();
        let stop = std::sync::atomic::AtomicBool::new(false);
        let summary = tokio::task::spawn_blocking(move || worker::run(&options, &stop)).await??;
        if summary == WorkerSummary::default() {
            return Ok(total);
        }
        total.scored += summary.scored;
        total.invalid += summary.invalid;
        total.errors += summary.errors;
        total.refused += summary.refused;
        total.opened += summary.opened;
        total.abandoned += summary.abandoned;
    }
}

/// Registers a remote worker named `name` with [`worker_key`]'s public half; its token.
pub async fn worker_token(pool: &SqlitePool, name: &str, now: i64) -> TestResult<String> {
    Ok(ascent_store::workers::create(pool, name, &worker_key().public_hex(), None, now).await?)
}

/// The signing key of the tests' remote workers (its public half registered with them).
pub fn worker_key() -> ascent_domain::statement::WorkerKey {
    ascent_domain::statement::WorkerKey::from_secret([42; 32])
}

/// Waits until no submission is queued or being scored.
pub async fn scored_all(pool: &SqlitePool) -> TestResult {
    for _ in 0..600 {
        if ascent_store::submissions::unscored(pool).await? == 0 {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    Err("submissions were not scored within two minutes".into())
}
