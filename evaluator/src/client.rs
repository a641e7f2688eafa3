//! A small blocking HTTP client for Ascent's server, shared by `ascent-eval worker` and
//! `ascent-eval submit`: bearer-token auth, JSON in and out, `{"error": …}` bodies as
//! [`ClientError::Status`], timeouts, retries with capped exponential backoff on
//! connection errors and 5xx (never on 4xx), and resumable, verified downloads.

mod backoff;
mod download;
mod error;

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use ureq::http::{Method, Request, Response};
use ureq::{AsSendBody, Body};

pub use backoff::Backoff;
pub use download::{
    download, partial_path, range_start, resume_plan, sha256_file, verify, Expected, RangeStart,
    ResumePlan,
};
pub use error::ClientError;

/// Largest JSON answer we read into memory.
const MAX_JSON_BYTES: u64 = 16 << 20;
/// Largest error body we read (its message is all we want).
const MAX_ERROR_BYTES: u64 = 64 << 10;

/// A connection to one Ascent server, with one identity.
#[derive(Clone)]
pub struct Client {
    base: String,
    authorization: Option<String>,
    agent: ureq::Agent,
    backoff: Backoff,
}

impl std::fmt::Debug for Client {
    // Never print the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.base)
            .field("backoff", &self.backoff)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `server` (`http://…` or `https://…`, e.g. `https://ascent.example`),
    /// sending `token` as `Authorization: Bearer` when given.
    pub fn new(server: &str, token: Option<&str>) -> Result<Client, ClientError> {
        let base = server.trim().trim_end_matches('/').to_owned();
        let invalid = |message: &str| ClientError::InvalidServer {
            url: server.to_owned(),
            message: message.to_owned(),
        };
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(invalid("it must start with http:// or https://"));
        }
        let uri: ureq::http::Uri = base.parse().map_err(|_| invalid("not a URL"))?;
        if uri.host().is_none_or(str::is_empty) {
            return Err(invalid("no host"));
        }
        let authorization = match token.map(str::trim) {
            Some("") => return Err(invalid("empty token")),
            Some(t) if !t.bytes().all(|b| b.is_ascii_graphic()) => {
                return Err(invalid("the token holds characters a token never has"))
            }
            Some(t) => Some(format!("Bearer {t}")),
            None => None,
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(concat!("ascent-eval/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(Duration::from_secs(15)))
            // A stalled transfer fails after two quiet minutes; a long one is fine.
            .timeout_per_read(Some(Duration::from_secs(120)))
            .timeout_per_write(Some(Duration::from_secs(120)))
            .build()
            .into();
        Ok(Client {
            base,
            authorization,
            agent,
            backoff: Backoff::default(),
        })
    }

    /// The same client with another retry schedule (tests use a short one).
    pub fn with_backoff(mut self, backoff: Backoff) -> Client {
        self.backoff = backoff;
        self
    }

    pub fn backoff(&self) -> Backoff {
        self.backoff
    }

    /// The server's base URL, without a trailing slash.
    pub fn server(&self) -> &str {
        &self.base
    }

    /// The absolute URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// One request, no retry, whatever status comes back. Only a missing answer is an
    /// error here.
    pub fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl AsSendBody,
    ) -> Result<Response<Body>, ClientError> {
        let url = self.url(path);
        let mut request = Request::builder().method(method).uri(&url);
        if let Some(auth) = &self.authorization {
            request = request.header("authorization", auth);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(body).map_err(|e| ClientError::Transport {
            url: url.clone(),
            source: ureq::Error::Http(e),
        })?;
        self.agent
            .run(request)
            .map_err(|source| ClientError::Transport { url, source })
    }

    /// Runs `op` until it succeeds, fails for good, or the retries run out.
    pub fn retrying<T>(
        &self,
        what: &str,
        mut op: impl FnMut() -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let mut retry = 0;
        loop {
            match op() {
                Err(e) if e.is_retryable() => match self.backoff.delay(retry) {
                    Some(wait) => {
                        tracing::warn!(error = %e, retry = retry + 1, ?wait, "{what}: retrying");
                        std::thread::sleep(wait);
                        retry += 1;
                    }
                    None => return Err(e),
                },
                other => return other,
            }
        }
    }

    /// `GET path` → JSON, with retries.
    pub fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.retrying(path, || {
            let response = self.send(Method::GET, path, &[("accept", "application/json")], ())?;
            let response = self.success(path, response)?;
            read_json(&self.url(path), response)
        })
    }

    /// `method path` with a JSON body → the JSON answer, or `None` for `204 No Content`;
    /// with retries (every call this is used for is safe to repeat).
    pub fn send_json<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<Option<T>, ClientError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ClientError::Decode {
            url: self.url(path),
            message: format!("cannot serialize the request: {e}"),
        })?;
        self.retrying(path, || {
            let response = self.send(
                method.clone(),
                path,
                &[
                    ("content-type", "application/json"),
                    ("accept", "application/json"),
                ],
                &bytes[..],
            )?;
            let response = self.success(path, response)?;
            if response.status() == 204 {
                return Ok(None);
            }
            read_json(&self.url(path), response).map(Some)
        })
    }

    /// `POST path` with a JSON body; see [`Client::send_json`].
    pub fn post_json<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Option<T>, ClientError> {
        self.send_json(Method::POST, path, body)
    }

    /// The response if its status is 2xx, else its error as [`ClientError::Status`].
    pub fn success(
        &self,
        path: &str,
        response: Response<Body>,
    ) -> Result<Response<Body>, ClientError> {
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(status_error(self.url(path), response))
        }
    }
}

/// Turns an error response into [`ClientError::Status`], with the server's message.
pub(crate) fn status_error(url: String, mut response: Response<Body>) -> ClientError {
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_ERROR_BYTES)
        .read_to_vec()
        .unwrap_or_default();
    ClientError::Status {
        url,
        status,
        message: error::error_message(status, &body),
    }
}

fn read_json<T: DeserializeOwned>(
    url: &str,
    mut response: Response<Body>,
) -> Result<T, ClientError> {
    let bytes = response
        .body_mut()
        .with_config()
        .limit(MAX_JSON_BYTES)
        .read_to_vec()
        .map_err(|source| ClientError::Transport {
            url: url.to_owned(),
            source,
        })?;
    serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
        url: url.to_owned(),
        message: e.to_string(),
    })
}

/// A value as one URL path segment: unreserved characters kept, the rest %-encoded.
pub fn segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A header's value as a number, if it is one.
pub fn header_u64(response: &Response<Body>, name: &str) -> Option<u64> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_checked_and_normalised() {
        let c = Client::new("https://ascent.example/", Some("asc_x")).expect("valid");
        assert_eq!(c.url("/api/uploads"), "https://ascent.example/api/uploads");
        assert!(
            !format!("{c:?}").contains("asc_x"),
            "the token never prints"
        );
        for bad in ["ascent.example", "ftp://x", "http://", ""] {
            assert!(
                matches!(
                    Client::new(bad, None),
                    Err(ClientError::InvalidServer { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(Client::new("http://127.0.0.1:3000", Some("bad token")).is_err());
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(
            segment("model-00001.safetensors"),
            "model-00001.safetensors"
        );
        assert_eq!(segment("a/../b c"), "a%2F..%2Fb%20c");
    }

    #[test]
    fn nothing_listening_is_a_retryable_transport_error() {
        // A port we just bound and released: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let c = Client::new(&format!("http://127.0.0.1:{port}"), None)
            .expect("valid")
            .with_backoff(Backoff {
                first: Duration::from_millis(1),
                max: Duration::from_millis(2),
                retries: 2,
            });
        let mut calls = 0;
        let e = c
            .retrying("probe", || {
                calls += 1;
                c.get_json::<serde_json::Value>("/api/x")
            })
            .expect_err("nothing listens");
        assert!(e.is_retryable(), "{e}");
        assert_eq!(calls, 3, "one try and two retries");
    }
}
