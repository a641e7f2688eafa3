//! The HTTP surface: the Leptos pages and server functions, the public JSON/CSV API,
//! static files, and the layers around them (security, tracing, compression).

pub mod api;
pub mod auth;
pub mod datasets;
pub mod open_weights;
pub mod rewards;
pub mod sealed;
pub mod security;
pub mod submissions;
pub mod uploads;
pub mod worker_api;

use ascent_app::ssr::{DevAttestation, PhasePageCache};
use ascent_app::{shell, App};
use axum::routing::{get, patch, post, put};
use axum::{middleware, Router};
use leptos::prelude::provide_context;
use leptos_axum::{
    file_and_error_handler_with_context, generate_route_list, AxumRouteListing, LeptosRoutes,
};
use std::sync::OnceLock;
use tower_http::compression::CompressionLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::http::api::FinalExport;
use crate::state::AppState;

/// The site's page routes, generated once per process. Leptos stops resources from
/// loading process-wide while it generates them (one global flag), so generating them
/// again while another router renders a page would leave that page waiting forever.
fn page_routes() -> Vec<AxumRouteListing> {
    static ROUTES: OnceLock<Vec<AxumRouteListing>> = OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

/// The whole application router, as the binary serves it and tests drive it.
pub fn router(state: AppState) -> Router {
    let routes = page_routes();
    let context = {
        let pool = state.pool.clone();
        let page_cache = PhasePageCache::default();
        let dev_attestation = DevAttestation(state.config.dev_attestation);
        move || {
            provide_context(pool.clone());
            provide_context(page_cache.clone());
            provide_context(dev_attestation);
        }
    };
    let options = state.leptos_options.clone();
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/phases", get(api::phases))
        .route("/api/phases/{number}", get(api::phase))
        .route("/api/phases/{number}/final", get(|s, p| api::final_json(s, p, FinalExport::Standings)))
        .route("/api/phases/{number}/final.csv", get(|s, p| api::final_csv(s, p, FinalExport::Standings)))
        .route("/api/phases/{number}/advancement", get(|s, p| api::final_json(s, p, FinalExport::Advancement)))
        .route("/api/phases/{number}/advancement.csv", get(|s, p| api::final_csv(s, p, FinalExport::Advancement)))
        .route("/api/phases/{number}/leaderboard", get(api::leaderboard))
        .route("/api/phases/{number}/leaderboard.csv", get(api::leaderboard_csv))
        .route("/api/phases/{number}/events", get(submissions::phase_events))
        .route("/api/phases/{number}/data", put(datasets::upload))
        .route("/api/log", get(api::log))
        .route("/api/rewards", get(rewards::ledger_json))
        .route("/api/rewards.csv", get(rewards::ledger_csv))
        .route("/api/submissions/{id}", get(submissions::show))
        .route("/api/submissions/{id}/events", get(submissions::events))
        .route("/api/submissions/{id}/files/{name}", get(open_weights::file))
        .route("/api/submissions/{id}/model-card.md", get(open_weights::card))
        .route("/api/submissions/{id}/sealed/{name}", get(sealed::ciphertext))
        .route("/api/uploads", post(uploads::start))
        .route("/api/uploads/{id}", get(uploads::status).delete(uploads::abandon))
        .route("/api/uploads/{id}/files/{name}", patch(uploads::append))
        .route("/api/uploads/{id}/finish", post(uploads::finish))
        .route("/api/worker/claim", post(worker_api::claim))
        .route("/api/worker/jobs/{job}/heartbeat", post(worker_api::heartbeat))
        .route("/api/worker/jobs/{job}/files/{name}", get(worker_api::file))
        .route("/api/worker/jobs/{job}/result", post(worker_api::result))
        .route("/api/worker/data/{sha256}", get(worker_api::data))
        .route("/api/worker/sealed", post(sealed::waiting))
        .route("/api/worker/sealed/{submission}", post(sealed::open))
        .leptos_routes_with_context(&state, routes, context.clone(), move || shell(options.clone()))
        .fallback(file_and_error_handler_with_context::<AppState, _>(context, shell))
        .layer(middleware::from_fn_with_state(state.clone(), security::guard))
        .layer(CompressionLayer::new())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &axum::extract::Request| {
                    tracing::info_span!("request", method = %request.method(), path = %request.uri().path())
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .with_state(state)
}
