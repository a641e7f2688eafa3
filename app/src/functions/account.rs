//! A contributor's own account: changing the password and ending the sessions of other
//! browsers, from their profile page.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::AppError;

/// The account panel of the viewer's own profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountPanel {
    /// Live sessions of this account in other browsers.
    pub other_sessions: u64,
}

/// The account panel of user `user_id`'s own profile (the caller checks it is the
/// viewer's).
#[cfg(feature = "ssr")]
pub async fn account_panel(
    pool: &ascent_store::SqlitePool,
    user_id: i64,
) -> Result<AccountPanel, AppError> {
    let keep = crate::ssr::session_token();
    Ok(AccountPanel {
        other_sessions: ascent_store::sessions::count_others(pool, user_id, keep.as_deref())
            .await?,
    })
}

/// The viewer and the session they are signed in with in this browser. A program signed
/// in with an API token may not change the password or end the browsers' sessions.
#[cfg(feature = "ssr")]
fn browser_session() -> Result<(ascent_domain::views::Viewer, String), AppError> {
    let viewer = crate::ssr::viewer().ok_or(AppError::Unauthenticated)?;
    let session = crate::ssr::session_token().ok_or_else(|| {
        tracing::warn!(user = viewer.id, "account change refused to an API token");
        crate::ssr::set_error_status(http::StatusCode::FORBIDDEN);
        AppError::Forbidden("Sign in with your password in a browser to do this.".into())
    })?;
    Ok((viewer, session))
}

/// Changes the viewer's password, given the current one, and signs out every other
/// browser. Wrong current passwords count towards the same throttle as failed logins.
#[server(endpoint = "account/password")]
pub async fn change_password(
    csrf_token: String,
    current: String,
    new_password: String,
) -> Result<String, AppError> {
    use ascent_domain::account::Password;
    use ascent_domain::throttle::ThrottlePolicy;
    use ascent_store::{accounts, now};

    let _checked_by_the_security_layer = csrf_token;
    let (viewer, keep) = browser_session()?;
    let pool = crate::ssr::pool()?;
    let new = Password::parse(&new_password).map_err(|e| AppError::Invalid(e.to_string()))?;
    if current == new_password {
        return Err(AppError::Invalid(
            "The new password is the current one; choose another.".into(),
        ));
    }
    let account_key = super::session::account_throttle_key(&viewer.email);
    let checks = [(account_key.as_str(), ThrottlePolicy::default())];
    let at = now();
    super::session::refuse_if_throttled(&pool, &checks, at).await?;
    if !accounts::change_password(&pool, viewer.id, &current, &new, Some(&keep)).await? {
        super::session::count_failure(&pool, &checks, at).await?;
        tracing::info!(
            user = viewer.id,
            "password change refused: wrong current password"
        );
        crate::ssr::set_error_status(http::StatusCode::UNAUTHORIZED);
        return Err(AppError::Invalid(
            "That is not your current password.".into(),
        ));
    }
    accounts::clear_login_failures(&pool, &account_key).await?;
    tracing::info!(user = viewer.id, "password changed; other sessions ended");
    Ok("Password changed. Every other browser was signed out; API tokens still work (revoke any you do not trust).".into())
}

/// Signs out every browser of the viewer's but this one; says how many.
#[server(endpoint = "account/sign_out_others")]
pub async fn sign_out_others(csrf_token: String) -> Result<String, AppError> {
    let _checked_by_the_security_layer = csrf_token;
    let (viewer, keep) = browser_session()?;
    let pool = crate::ssr::pool()?;
    let ended = ascent_store::sessions::end_others(&pool, viewer.id, Some(&keep)).await?;
    tracing::info!(user = viewer.id, ended, "other sessions ended");
    Ok(match ended {
        0 => "No other browser was signed in.".to_owned(),
        1 => "Signed out 1 other browser.".to_owned(),
        n => format!("Signed out {n} other browsers."),
    })
}

/// The handle a password reset link is for, or `None` if the link is unknown, used or
/// expired.
#[server(input = leptos::server_fn::codec::GetUrl)]
pub async fn load_reset(token: String) -> Result<Option<String>, AppError> {
    let pool = crate::ssr::pool()?;
    let account = ascent_store::resets::account_of(&pool, &token, ascent_store::now()).await?;
    Ok(account.map(|v| v.handle))
}

/// Sets a new password with a reset link issued by an organizer, ends every session of
/// the account and revokes its API tokens (whoever else had the account loses it), lifts
/// the login throttle on it, signs this browser in and goes to the profile.
#[server(endpoint = "account/reset_password")]
pub async fn reset_password(
    csrf_token: String,
    token: String,
    new_password: String,
) -> Result<(), AppError> {
    use ascent_domain::account::Password;
    use ascent_store::{now, resets};

    let _checked_by_the_security_layer = csrf_token;
    let pool = crate::ssr::pool()?;
    let new = Password::parse(&new_password).map_err(|e| AppError::Invalid(e.to_string()))?;
    let Some(viewer) = resets::reset(&pool, &token, &new, now()).await? else {
        crate::ssr::set_error_status(http::StatusCode::GONE);
        return Err(AppError::Invalid(
            "This reset link is unknown, used or expired; ask an organizer for a new one.".into(),
        ));
    };
    super::session::sign_in(&pool, viewer.id).await?;
    let account_key = super::session::account_throttle_key(&viewer.email);
    ascent_store::accounts::clear_login_failures(&pool, &account_key).await?;
    tracing::info!(
        user = viewer.id,
        "password reset with a link; sessions ended, API tokens revoked"
    );
    crate::ssr::redirect_local(&format!("/contributors/{}", viewer.handle));
    Ok(())
}
