//! Who is calling the programmatic APIs: a signed-in contributor (session cookie or API
//! token, resolved by the security layer) or a worker (worker token).

use ascent_app::ssr::RequestViewer;
use ascent_domain::views::Viewer;
use ascent_store::workers;
use axum::extract::FromRequestParts;
use http::header;
use http::request::Parts;

use crate::http::api::ApiError;
use crate::state::AppState;

/// The signed-in user, or a 401.
pub struct Contributor(pub Viewer);

impl FromRequestParts<AppState> for Contributor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Contributor, ApiError> {
        match parts.extensions.get::<RequestViewer>() {
            Some(RequestViewer(Some(viewer))) => Ok(Contributor(viewer.clone())),
            _ => Err(ApiError::Unauthorized(
                "sign in, or send an API token (create one on your profile page) as `Authorization: Bearer asc_…`".into(),
            )),
        }
    }
}

/// The signed-in user, if any.
pub struct MaybeViewer(pub Option<Viewer>);

impl FromRequestParts<AppState> for MaybeViewer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<MaybeViewer, ApiError> {
        Ok(MaybeViewer(
            parts
                .extensions
                .get::<RequestViewer>()
                .and_then(|RequestViewer(v)| v.clone()),
        ))
    }
}

/// The bearer token of a request, if it sent one.
pub fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// A worker with a live token, by id.
pub struct Worker(pub i64);

impl FromRequestParts<AppState> for Worker {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Worker, ApiError> {
        let token = bearer(parts).ok_or_else(|| {
            ApiError::Unauthorized(
                "workers send their token as `Authorization: Bearer ascw_…`".into(),
            )
        })?;
        match workers::authenticate(&state.pool, token, ascent_store::now()).await? {
            Some(id) => Ok(Worker(id)),
            None => Err(ApiError::Unauthorized(
                "this worker token is unknown or was revoked; ask an organizer for a new one"
                    .into(),
            )),
        }
    }
}
