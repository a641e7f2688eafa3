//! Routers built while other routers render pages, as a test binary's parallel tests
//! (or two servers in one process) do: every page still renders.

use ascent_domain::preset::parse_preset;
use ascent_server::config::Config;
use ascent_server::http::router;
use ascent_server::state::AppState;
use axum::body::Body;
use axum::Router;
use http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use std::time::Duration;
use tower::ServiceExt;

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

async fn fresh_router(dir: &std::path::Path) -> TestResult<Router> {
    let pool =
        ascent_store::connect(&format!("sqlite://{}", dir.join("db.sqlite").display())).await?;
    ascent_store::migrate(&pool).await?;
    let now = ascent_store::now();
    let preset = parse_preset(include_str!("../../../presets/demo.toml"), now)?;
    ascent_store::phases::load_preset(&pool, &preset, now, false).await?;
    let config = Config {
        addr: "127.0.0.1:3000".parse()?,
        data_dir: dir.join("data"),
        database_url: String::new(),
        site_root: "target/site".into(),
        trust_forwarded_for: false,
        workers: 0,
        dev_attestation: false,
    };
    Ok(router(AppState::new(pool, config)))
}

async fn render(app: &Router, path: &str) -> TestResult<String> {
    let request = Request::get(path)
        .header(header::ACCEPT, "text/html")
        .header(header::HOST, "127.0.0.1:3000")
        .body(Body::empty())?;
    let response = app.clone().oneshot(request).await?;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let body = response.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// Leptos suspends resource loading process-wide while it lists a router's pages; a
/// router built beside a page being rendered used to leave that page waiting forever
/// (seen as a CI run hanging in whichever test rendered at the wrong moment).
#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn pages_render_while_other_routers_are_built() -> TestResult {
    let root = tempfile::tempdir()?;
    let mut tasks = Vec::new();
    for task in 0..3 {
        let root = root.path().to_owned();
        tasks.push(tokio::spawn(async move {
            for round in 0..40 {
                let dir = root.join(format!("{task}-{round}"));
                std::fs::create_dir_all(&dir)?;
                let app = fresh_router(&dir).await?;
                let page = tokio::time::timeout(Duration::from_secs(20), render(&app, "/login"))
                    .await
                    .map_err(|_| format!("task {task} round {round}: the page never finished"))??;
                assert!(page.contains("Log in"), "task {task} round {round}");
            }
            TestResult::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}
