//! Server-side glue between axum and the pages: what the HTTP layer learned about a
//! request (who is signed in, the CSRF token, the client's address), how server
//! functions reach the database, and the cookies Ascent sets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ascent_domain::views::Viewer;
use ascent_store::phases::PageVersion;
use ascent_store::SqlitePool;
use http::request::Parts;
use http::{header, HeaderValue, StatusCode};
use leptos::prelude::*;
use leptos_axum::ResponseOptions;

use crate::functions::phases::PhasePageData;
use crate::functions::AppError;

/// Session cookie. `__Host-` pins it to this host and path `/`; browsers require
/// `Secure` for the prefix and accept it on loopback HTTP as well as HTTPS.
pub const SESSION_COOKIE: &str = "__Host-ascent-session";
/// CSRF cookie for the double-submit check: every state-changing request repeats its
/// value in a form field or header that another site cannot read or forge.
pub const CSRF_COOKIE: &str = "__Host-ascent-csrf";
/// Form field and header carrying the CSRF token.
pub const CSRF_FIELD: &str = "csrf_token";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Who is signed in, as resolved by the HTTP layer from the session cookie.
#[derive(Debug, Clone, Default)]
pub struct RequestViewer(pub Option<Viewer>);

/// The session token the viewer was signed in with; `None` for a visitor and for a
/// program signed in with an API token.
#[derive(Debug, Clone, Default)]
pub struct SignedInSession(pub Option<String>);

/// The request's CSRF token (from its cookie, or freshly issued with this response).
#[derive(Debug, Clone)]
pub struct CsrfToken(pub String);

/// The client's address, for login throttling.
#[derive(Debug, Clone)]
pub struct ClientAddress(pub String);

pub fn session_cookie(token: &str, max_age_secs: i64) -> String {
    format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Secure; Max-Age={max_age_secs}"
    )
}

pub fn expired_session_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Secure; Max-Age=0")
}

pub fn csrf_cookie(token: &str) -> String {
    format!("{CSRF_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Secure")
}

/// Reads a cookie's value from a `Cookie` header.
pub fn cookie_value<'a>(cookie_header: &'a str, name: &str) -> Option<&'a str> {
    cookie_header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn parts() -> Option<Parts> {
    use_context::<Parts>()
}

pub fn pool() -> Result<SqlitePool, AppError> {
    use_context::<SqlitePool>().ok_or_else(|| {
        tracing::error!("no database pool in the request context");
        AppError::Internal
    })
}

/// Whether this server accepts development attestation evidence (its configuration's
/// `dev_attestation`, provided with the pool).
#[derive(Debug, Clone, Copy)]
pub struct DevAttestation(pub bool);

/// The attestation verifiers this server runs.
pub fn attestation_verifiers() -> Vec<&'static dyn ascent_domain::attestation::Verifier> {
    let development = use_context::<DevAttestation>().is_some_and(|d| d.0);
    ascent_domain::attestation::verifiers(development)
}

/// The session token the viewer is signed in with, as the HTTP layer resolved it; `None`
/// for a visitor and for a program signed in with an API token.
pub fn session_token() -> Option<String> {
    parts()?.extensions.get::<SignedInSession>()?.0.clone()
}

pub fn viewer() -> Option<Viewer> {
    parts().and_then(|p| {
        p.extensions
            .get::<RequestViewer>()
            .and_then(|v| v.0.clone())
    })
}

/// Which phases the viewer may see: drafts are for organizers only.
pub fn audience() -> ascent_store::phases::Audience {
    ascent_store::phases::Audience::of(viewer().is_some_and(|v| v.is_organizer()))
}

pub fn csrf_token() -> String {
    parts()
        .and_then(|p| p.extensions.get::<CsrfToken>().map(|t| t.0.clone()))
        .unwrap_or_default()
}

pub fn client_address() -> String {
    parts()
        .and_then(|p| p.extensions.get::<ClientAddress>().map(|a| a.0.clone()))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Sets the status of an error answer to a program's call of a server function.
/// A plain HTML form post (no JavaScript) is left alone: server functions answer it
/// with a redirect back to the form, carrying the error in the URL.
pub fn set_error_status(status: StatusCode) {
    if !is_plain_form_post() {
        set_status(status);
    }
}

/// Whether this server function call is an HTML form posted without JavaScript (the
/// browser then follows a redirect back to the page and never sees the return value).
pub fn is_plain_form_post() -> bool {
    parts()
        .and_then(|p| {
            p.headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.contains("text/html"))
        })
        .unwrap_or(false)
}

/// Cookie carrying a secret just created by a form posted without JavaScript (an API or
/// worker token) to the page the browser is sent back to, which shows it once and
/// clears it. `HttpOnly`, one minute; the secret itself is never stored by the server.
pub const NEW_SECRET_COOKIE: &str = "__Host-ascent-new-secret";

/// Hands a freshly created secret to the next page when the form was posted without
/// JavaScript; a hydrated page gets it as the server function's return value instead.
pub fn hand_over_secret(secret: &str) {
    if is_plain_form_post() {
        append_header(
            header::SET_COOKIE,
            &format!("{NEW_SECRET_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict; Secure; Max-Age=60"),
        );
    }
}

/// The secret handed over by [`hand_over_secret`] if it starts with `prefix`; the
/// cookie is cleared so it is shown only once.
pub fn take_handed_over_secret(prefix: &str) -> Option<String> {
    let parts = parts()?;
    let cookies = parts.headers.get(header::COOKIE)?.to_str().ok()?;
    let secret = cookie_value(cookies, NEW_SECRET_COOKIE)?;
    let plain = secret
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !plain || !secret.starts_with(prefix) {
        return None;
    }
    append_header(
        header::SET_COOKIE,
        &format!("{NEW_SECRET_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Secure; Max-Age=0"),
    );
    Some(secret.to_owned())
}

/// The address people reach this site at, for commands shown on pages
/// (`ascent-eval submit --server …`): `http` on loopback, else `https`.
pub fn site_origin() -> String {
    let host = parts()
        .and_then(|p| {
            p.headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let loopback = ["127.0.0.1", "localhost", "[::1]"]
        .iter()
        .any(|h| host == *h || host.starts_with(&format!("{h}:")));
    let scheme = if loopback { "http" } else { "https" };
    format!("{scheme}://{host}")
}

/// Sets the status of the page being rendered.
pub fn set_status(status: StatusCode) {
    if let Some(response) = use_context::<ResponseOptions>() {
        response.set_status(status);
    }
}

pub fn append_header(name: header::HeaderName, value: &str) {
    if let (Some(response), Ok(value)) = (
        use_context::<ResponseOptions>(),
        HeaderValue::from_str(value),
    ) {
        response.append_header(name, value);
    }
}

/// Whether a program called a server function directly (`/api/…`), rather than a page
/// rendering on the server: it wants a status, not a redirect to the login page.
pub fn is_direct_call() -> bool {
    parts().is_some_and(|p| p.uri.path().starts_with("/api/")) && !is_plain_form_post()
}

/// Redirects to a path on this site; anything else becomes `/`.
pub fn redirect_local(path: &str) {
    leptos_axum::redirect(&safe_local_path(path));
}

/// A path that stays on this site: starts with one `/`, no scheme or host, no control
/// characters. Used for `next=` parameters so a login cannot redirect elsewhere.
pub fn safe_local_path(path: &str) -> String {
    let local = path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && path.chars().all(|c| !c.is_control() && c != '\\');
    if local {
        path.to_owned()
    } else {
        "/".to_owned()
    }
}

/// (phase, leaderboard page).
type PageKey = (u8, u64);

/// Recently rendered phase-page data, kept while the phase's `PageVersion` is
/// unchanged: a busy leaderboard is read once per change, not once per visitor.
/// Shared by all requests of this process; every process keeps its own.
#[derive(Clone, Default)]
pub struct PhasePageCache {
    entries: Arc<Mutex<HashMap<PageKey, (PageVersion, PhasePageData)>>>,
}

impl PhasePageCache {
    /// Bound on cached pages; past it the cache starts over (pages are cheap to rebuild).
    const CAPACITY: usize = 512;

    pub fn get(&self, key: (u8, u64), version: PageVersion) -> Option<PhasePageData> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(&key)
            .filter(|(v, _)| *v == version)
            .map(|(_, data)| data.clone())
    }

    pub fn put(&self, key: (u8, u64), version: PageVersion, data: PhasePageData) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= Self::CAPACITY {
                entries.clear();
            }
            entries.insert(key, (version, data));
        }
    }
}

pub fn phase_page_cache() -> Option<PhasePageCache> {
    use_context::<PhasePageCache>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_by_exact_name() {
        let header = "a=1; __Host-ascent-session=abc; __Host-ascent-csrf=def";
        assert_eq!(cookie_value(header, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie_value(header, CSRF_COOKIE), Some("def"));
        assert_eq!(cookie_value(header, "ascent-session"), None);
    }

    #[test]
    fn only_local_paths_are_redirect_targets() {
        assert_eq!(safe_local_path("/phases/1"), "/phases/1");
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "javascript:alert(1)",
            "/a\nb",
        ] {
            assert_eq!(safe_local_path(bad), "/", "{bad:?}");
        }
    }

    #[test]
    fn session_cookie_has_the_required_attributes() {
        let cookie = session_cookie("t", 60);
        for part in [
            "__Host-ascent-session=t",
            "Path=/",
            "HttpOnly",
            "SameSite=Lax",
            "Secure",
        ] {
            assert!(cookie.contains(part), "{cookie} lacks {part}");
        }
    }
}
