//! The security layer in front of every route: who is signed in (session cookie), the
//! CSRF token (issued on first visit, checked on every state-changing request), and
//! the client's address.
//!
//! CSRF uses a double-submit token: a `__Host-` cookie that other sites can neither
//! read nor set, repeated by our pages in a form field or header. A state-changing
//! request must carry both, equal, and must not come from another origin.

use std::net::SocketAddr;

use ascent_app::ssr::{
    cookie_value, csrf_cookie, ClientAddress, CsrfToken, RequestViewer, SignedInSession,
    CSRF_COOKIE, CSRF_FIELD, CSRF_HEADER, SESSION_COOKIE,
};
use ascent_store::{api_tokens, sessions};
use axum::body::{to_bytes, Body};
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use subtle::ConstantTimeEq;

use crate::state::AppState;

/// Form bodies larger than this are not read for a CSRF token (and so are refused).
const MAX_FORM_BYTES: usize = 64 * 1024;

pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let cookies = parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join("; ");
    let session_token = cookie_value(&cookies, SESSION_COOKIE).map(str::to_owned);
    let csrf_from_cookie = cookie_value(&cookies, CSRF_COOKIE)
        .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned);

    // The upload and worker APIs act only for a session or a bearer token; a request
    // with neither has no ambient authority to abuse, and gets the API's own 401.
    let token_api = session_token.is_none()
        && (parts.uri.path().starts_with("/api/uploads")
            || parts.uri.path().starts_with("/api/worker/"));
    let body = if is_state_changing(&parts.method) && !token_api {
        match check_csrf(
            &parts.headers,
            body,
            csrf_from_cookie.as_deref(),
            session_token.is_some(),
        )
        .await
        {
            Ok(body) => body,
            Err(refusal) => {
                tracing::warn!(path = %parts.uri.path(), reason = refusal.reason, "request refused by CSRF check");
                return refusal.into_response();
            }
        }
    } else {
        body
    };

    let viewer = match &session_token {
        Some(token) => match sessions::viewer(&state.pool, token).await {
            Ok(viewer) => viewer,
            Err(error) => {
                tracing::error!(%error, "session lookup failed");
                return database_unavailable();
            }
        },
        None => match bearer_token(&parts.headers) {
            // Programs sign in with an API token instead of a session.
            Some(token) => {
                match api_tokens::viewer(&state.pool, token, ascent_store::now()).await {
                    Ok(viewer) => viewer,
                    Err(error) => {
                        tracing::error!(%error, "API token lookup failed");
                        return database_unavailable();
                    }
                }
            }
            None => None,
        },
    };
    let (csrf, issued) = match csrf_from_cookie {
        Some(token) => (token, false),
        None => match ascent_store::random_token() {
            Ok(token) => (token, true),
            Err(error) => {
                tracing::error!(%error, "no randomness for a CSRF token");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        },
    };
    let address = client_address(&parts, state.config.trust_forwarded_for);
    // The session token only where the viewer comes from it (not from an API token).
    let signed_in = session_token.filter(|_| viewer.is_some());
    parts.extensions.insert(SignedInSession(signed_in));
    parts.extensions.insert(RequestViewer(viewer));
    parts.extensions.insert(CsrfToken(csrf.clone()));
    parts.extensions.insert(ClientAddress(address));

    let mut response = next.run(Request::from_parts(parts, body)).await;
    if issued {
        if let Ok(value) = HeaderValue::from_str(&csrf_cookie(&csrf)) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

fn database_unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "The database is unavailable; try again shortly.",
    )
        .into_response()
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

fn is_state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Why a state-changing request was refused.
struct CsrfRefusal {
    reason: &'static str,
}

impl IntoResponse for CsrfRefusal {
    fn into_response(self) -> Response {
        (
            StatusCode::FORBIDDEN,
            "This request did not come from an Ascent page, or the page has expired. Reload the page and try again.",
        )
            .into_response()
    }
}

async fn check_csrf(
    headers: &HeaderMap,
    body: Body,
    cookie_token: Option<&str>,
    has_session: bool,
) -> Result<Body, CsrfRefusal> {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v == "cross-site")
    {
        return Err(CsrfRefusal {
            reason: "cross-site request",
        });
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let origin_host = origin.split_once("://").map(|(_, rest)| rest);
        if origin_host.is_none() || origin_host != host {
            return Err(CsrfRefusal {
                reason: "origin does not match host",
            });
        }
    }
    // Programs holding an API token send it in a header no other site can add, and
    // carry no session cookie: they are not exposed to CSRF.
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer "));
    if bearer && !has_session {
        return Ok(body);
    }
    let Some(expected) = cookie_token else {
        return Err(CsrfRefusal {
            reason: "no CSRF cookie",
        });
    };
    if let Some(sent) = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
        return if tokens_match(sent, expected) {
            Ok(body)
        } else {
            Err(CsrfRefusal {
                reason: "CSRF header mismatch",
            })
        };
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(CsrfRefusal {
            reason: "no CSRF token",
        });
    }
    let bytes = to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| CsrfRefusal {
            reason: "form too large",
        })?;
    let sent = form_urlencoded::parse(&bytes)
        .find(|(key, _)| key == CSRF_FIELD)
        .map(|(_, value)| value.into_owned());
    match sent {
        Some(sent) if tokens_match(&sent, expected) => Ok(Body::from(bytes)),
        Some(_) => Err(CsrfRefusal {
            reason: "CSRF field mismatch",
        }),
        None => Err(CsrfRefusal {
            reason: "no CSRF field",
        }),
    }
}

fn tokens_match(sent: &str, expected: &str) -> bool {
    sent.len() == expected.len() && bool::from(sent.as_bytes().ct_eq(expected.as_bytes()))
}

fn client_address(parts: &http::request::Parts, trust_forwarded_for: bool) -> String {
    if trust_forwarded_for {
        let forwarded = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty());
        if let Some(address) = forwarded {
            return address.to_owned();
        }
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(
            || "unknown".to_owned(),
            |ConnectInfo(addr)| addr.ip().to_string(),
        )
}
