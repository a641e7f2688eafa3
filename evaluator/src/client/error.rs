//! The one error type of the HTTP clients (`worker`, `submit`), and what each failure
//! means: retry, the user's fault (exit 2), or ours (exit 1).

use std::path::PathBuf;

/// Everything that can go wrong talking to the server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server URL cannot be used.
    #[error("invalid server URL {url:?}: {message}")]
    InvalidServer { url: String, message: String },

    /// No answer: connection refused or reset, DNS, TLS, timeout, a broken body.
    #[error("{url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: ureq::Error,
    },

    /// The server answered with an error status and (usually) its `{"error": …}` message.
    #[error("{url}: {status} {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },

    /// The server answered, but not with what the protocol says.
    #[error("{url}: unexpected answer: {message}")]
    Decode { url: String, message: String },

    /// A local file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A downloaded file is not what the server promised (size or SHA-256).
    #[error("{name}: {message}")]
    Integrity { name: String, message: String },

    /// Stopped from outside (a lost lease, a time limit, a shutdown).
    #[error("cancelled")]
    Cancelled,
}

impl ClientError {
    /// Worth trying again: no answer at all, a server error, or "too many requests".
    /// A 4xx is the request's fault and would fail the same way again.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Transport { source, .. } => !matches!(
                source,
                ureq::Error::BadUri(_)
                    | ureq::Error::Http(_)
                    | ureq::Error::InvalidProxyUrl
                    | ureq::Error::BodyExceedsLimit(_)
            ),
            ClientError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }

    /// The HTTP status, when the server answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The server's own words for a refusal, or the whole error otherwise.
    pub fn message(&self) -> String {
        match self {
            ClientError::Status { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    /// Exit status for a command-line client: 2 when the server refused the request
    /// (4xx: quota, closed phase, bad token…) or the URL is unusable, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Status { status, .. } if (400..500).contains(status) => 2,
            ClientError::InvalidServer { .. } => 2,
            _ => 1,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ClientError::Io {
            path: path.into(),
            source,
        }
    }
}

/// The message of an error body: `{"error": "…"}` as the protocol says, else the start
/// of whatever text came back, else the status's reason phrase.
pub(crate) fn error_message(status: u16, body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error: String,
    }
    if let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body) {
        return parsed.error;
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if !text.is_empty() {
        return text.chars().take(300).collect();
    }
    ureq::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("error")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> ClientError {
        ClientError::Status {
            url: "u".into(),
            status: code,
            message: "m".into(),
        }
    }

    #[test]
    fn retries_on_server_errors_not_on_refusals() {
        assert!(status(500).is_retryable());
        assert!(status(503).is_retryable());
        assert!(status(429).is_retryable());
        assert!(!status(400).is_retryable());
        assert!(!status(404).is_retryable());
        assert!(!status(409).is_retryable());
        let refused = ClientError::Transport {
            url: "u".into(),
            source: ureq::Error::ConnectionFailed,
        };
        assert!(refused.is_retryable());
        assert_eq!(refused.exit_code(), 1);
        assert_eq!(status(403).exit_code(), 2);
        assert_eq!(status(502).exit_code(), 1);
    }

    #[test]
    fn error_bodies_become_messages() {
        assert_eq!(
            error_message(409, br#"{"error":"phase 3 is closed"}"#),
            "phase 3 is closed"
        );
        assert_eq!(error_message(502, b"bad gateway\n"), "bad gateway");
        assert_eq!(error_message(404, b""), "Not Found");
    }
}
