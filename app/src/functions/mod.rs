//! Server functions: what pages read and change. Each returns `AppError`, the one
//! error type of this crate's boundary, which travels to the browser as JSON.

pub mod account;
pub mod moderation;
pub mod notifications;
pub mod organizer;
pub mod people;
pub mod phase_admin;
pub mod phases;
pub mod session;
pub mod submit;
pub mod tokens;

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// The input was refused; the message says what to change.
    #[error("{0}")]
    Invalid(String),
    #[error("Please log in to continue.")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{message}")]
    TooManyAttempts {
        message: String,
        retry_after_secs: i64,
    },
    #[error("Something went wrong on our side and has been logged. Please try again.")]
    Internal,
    /// The request did not reach the server function (network, encoding).
    #[error("The request failed: {0}")]
    Transport(String),
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AppError::Transport(value.to_string())
    }
}

#[cfg(feature = "ssr")]
impl From<ascent_store::StoreError> for AppError {
    fn from(error: ascent_store::StoreError) -> Self {
        use ascent_store::StoreError;
        match error {
            StoreError::Conflict(message) => AppError::Conflict(message),
            StoreError::NotFound(message) => AppError::NotFound(message),
            StoreError::Refused(message) => AppError::Forbidden(message),
            other => {
                tracing::error!(error = %other, "store error");
                AppError::Internal
            }
        }
    }
}
