//! A contributor's API tokens (for `ascent-eval submit`): listed, created and revoked
//! on their own profile page. A token is shown once, when it is created.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::AppError;

/// A token as its owner sees it in the list (never the secret itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiTokenRow {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// The token panel of the viewer's profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenPanel {
    pub tokens: Vec<ApiTokenRow>,
    /// This site's address, for the `ascent-eval submit --server` command.
    pub server_url: String,
    /// The lowest open phase, for the example command.
    pub open_phase: Option<u8>,
    /// A token just created by a form posted without JavaScript, shown this once.
    pub created: Option<String>,
}

#[cfg(feature = "ssr")]
fn signed_in() -> Result<ascent_domain::views::Viewer, AppError> {
    crate::ssr::viewer().ok_or(AppError::Unauthenticated)
}

/// The token panel of user `user_id`'s own profile (the caller checks it is the viewer's).
#[cfg(feature = "ssr")]
pub async fn token_panel(
    pool: &ascent_store::SqlitePool,
    user_id: i64,
) -> Result<TokenPanel, AppError> {
    use ascent_domain::protocol::API_TOKEN_PREFIX;
    use ascent_domain::PhaseState;
    use ascent_store::{api_tokens, phases};

    let tokens = api_tokens::list(pool, user_id)
        .await?
        .into_iter()
        .map(|t| ApiTokenRow {
            id: t.id,
            name: t.name,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
        })
        .collect();
    let open_phase = phases::summaries(pool, phases::Audience::Public)
        .await?
        .into_iter()
        .find(|p| p.state == PhaseState::Open)
        .map(|p| p.number);
    Ok(TokenPanel {
        tokens,
        server_url: crate::ssr::site_origin(),
        open_phase,
        created: crate::ssr::take_handed_over_secret(API_TOKEN_PREFIX),
    })
}

/// Creates an API token for the viewer and returns it (shown once).
#[server]
pub async fn create_api_token(csrf_token: String, name: String) -> Result<String, AppError> {
    let _checked_by_the_security_layer = csrf_token;
    let viewer = signed_in()?;
    let pool = crate::ssr::pool()?;
    let token = ascent_store::api_tokens::create(&pool, viewer.id, &name, ascent_store::now())
        .await
        .map_err(|e| match e {
            ascent_store::StoreError::Conflict(message) => AppError::Invalid(message),
            other => other.into(),
        })?;
    crate::ssr::hand_over_secret(&token);
    Ok(token)
}

#[server]
pub async fn revoke_api_token(csrf_token: String, id: i64) -> Result<(), AppError> {
    let _checked_by_the_security_layer = csrf_token;
    let viewer = signed_in()?;
    let pool = crate::ssr::pool()?;
    ascent_store::api_tokens::revoke(&pool, viewer.id, id, ascent_store::now()).await?;
    Ok(())
}
