//! Who is signed in, and the actions that change it: register, log in, log out.

use ascent_domain::views::Viewer;
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use super::AppError;

/// What every page needs to know about the visitor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub viewer: Option<Viewer>,
    /// Repeated in every form so the server can tell our pages from another site's.
    pub csrf_token: String,
    /// Notifications the viewer has not read.
    pub unread: u64,
}

#[server(input = GetUrl)]
pub async fn current_session() -> Result<SessionInfo, AppError> {
    let viewer = crate::ssr::viewer();
    let unread = match &viewer {
        Some(v) => ascent_store::notifications::unread(&crate::ssr::pool()?, v.id).await?,
        None => 0,
    };
    Ok(SessionInfo {
        viewer,
        csrf_token: crate::ssr::csrf_token(),
        unread,
    })
}

/// The session and the actions that change it, shared by every page.
#[derive(Clone, Copy)]
pub struct Session {
    pub info: Resource<Result<SessionInfo, AppError>>,
    pub login: ServerAction<Login>,
    pub logout: ServerAction<Logout>,
    pub register: ServerAction<Register>,
}

pub fn provide_session(
    login: ServerAction<Login>,
    logout: ServerAction<Logout>,
    register: ServerAction<Register>,
) {
    let info = Resource::new(
        move || {
            (
                login.version().get(),
                logout.version().get(),
                register.version().get(),
            )
        },
        |_| current_session(),
    );
    provide_context(Session {
        info,
        login,
        logout,
        register,
    });
}

pub fn use_session() -> Session {
    expect_context::<Session>()
}

// Every state-changing server function takes `csrf_token`: the security layer checks it
// before the function runs, and declaring it makes hydrated forms send it too (they
// re-encode the form from the function's arguments and drop unknown fields).

#[server]
pub async fn login(
    csrf_token: String,
    email: String,
    password: String,
    next: Option<String>,
) -> Result<(), AppError> {
    use ascent_domain::account::Email;
    use ascent_domain::throttle::ThrottlePolicy;
    use ascent_store::{accounts, now};
    use http::StatusCode;

    let _checked_by_the_security_layer = csrf_token;
    let pool = crate::ssr::pool()?;
    let email = Email::parse(&email).map_err(|e| AppError::Invalid(e.to_string()))?;
    let at = now();
    // Throttle per account (guessing one password) and per address (trying many
    // accounts); an address is shared by many people behind NAT, so it gets more room.
    let account_key = account_throttle_key(email.as_str());
    let address_key = format!("address:{}", crate::ssr::client_address());
    let checks = [
        (account_key.as_str(), ThrottlePolicy::default()),
        (address_key.as_str(), ThrottlePolicy::for_addresses()),
    ];
    refuse_if_throttled(&pool, &checks, at).await?;
    let Some(viewer) = accounts::authenticate(&pool, &email, &password).await? else {
        count_failure(&pool, &checks, at).await?;
        tracing::info!(email = email.as_str(), "login failed");
        crate::ssr::set_error_status(StatusCode::UNAUTHORIZED);
        return Err(AppError::Invalid(
            "That email and password do not match an account.".into(),
        ));
    };
    accounts::clear_login_failures(&pool, &account_key).await?;
    sign_in(&pool, viewer.id).await?;
    tracing::info!(user = viewer.id, "logged in");
    let fallback = format!("/contributors/{}", viewer.handle);
    crate::ssr::redirect_local(
        next.as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(&fallback),
    );
    Ok(())
}

/// The login throttle's key for the account with this (parsed, lowercase) email: wrong
/// passwords typed at the login and at a password change count against the same one.
#[cfg(feature = "ssr")]
pub(crate) fn account_throttle_key(email: &str) -> String {
    format!("account:{email}")
}

/// Starts a session for user `user_id` and gives this browser its cookie.
#[cfg(feature = "ssr")]
pub(crate) async fn sign_in(pool: &ascent_store::SqlitePool, user_id: i64) -> Result<(), AppError> {
    use ascent_store::sessions;

    let token = sessions::start(pool, user_id).await?;
    crate::ssr::append_header(
        http::header::SET_COOKIE,
        &crate::ssr::session_cookie(&token, sessions::SESSION_SECS),
    );
    Ok(())
}

/// Refuses with 429 and Retry-After while any of the throttle keys `checks` is held back
/// by its policy (see `login`).
#[cfg(feature = "ssr")]
pub(crate) async fn refuse_if_throttled(
    pool: &ascent_store::SqlitePool,
    checks: &[(&str, ascent_domain::throttle::ThrottlePolicy)],
    at: i64,
) -> Result<(), AppError> {
    use ascent_domain::throttle::LoginGate;

    for (key, policy) in checks {
        let record = ascent_store::accounts::login_failures(pool, key).await?;
        if let LoginGate::RetryAfter(secs) = policy.gate(record, at) {
            tracing::warn!(key, secs, "password attempts throttled");
            crate::ssr::set_error_status(http::StatusCode::TOO_MANY_REQUESTS);
            crate::ssr::append_header(http::header::RETRY_AFTER, &secs.to_string());
            return Err(AppError::TooManyAttempts {
                message: format!(
                    "Too many failed attempts. Try again in {}.",
                    ascent_domain::format::duration(secs)
                ),
                retry_after_secs: secs,
            });
        }
    }
    Ok(())
}

/// Records a wrong password against every throttle key of `checks`.
#[cfg(feature = "ssr")]
pub(crate) async fn count_failure(
    pool: &ascent_store::SqlitePool,
    checks: &[(&str, ascent_domain::throttle::ThrottlePolicy)],
    at: i64,
) -> Result<(), AppError> {
    use ascent_store::accounts;

    for (key, policy) in checks {
        let record = accounts::login_failures(pool, key).await?;
        accounts::save_login_failures(pool, key, policy.record_failure(record, at)).await?;
    }
    Ok(())
}

#[server]
pub async fn logout(csrf_token: String) -> Result<(), AppError> {
    use ascent_store::sessions;

    let _checked_by_the_security_layer = csrf_token;
    let pool = crate::ssr::pool()?;
    if let Some(token) = crate::ssr::session_token() {
        sessions::end(&pool, &token).await?;
    }
    crate::ssr::append_header(
        http::header::SET_COOKIE,
        &crate::ssr::expired_session_cookie(),
    );
    crate::ssr::redirect_local("/");
    Ok(())
}

#[server]
pub async fn register(
    csrf_token: String,
    email: String,
    handle: String,
    password: String,
) -> Result<(), AppError> {
    use ascent_domain::account::{Email, Handle, Password};
    use ascent_domain::views::Role;
    use ascent_store::accounts;

    let _checked_by_the_security_layer = csrf_token;
    let pool = crate::ssr::pool()?;
    let invalid = |e: ascent_domain::account::AccountFieldError| AppError::Invalid(e.to_string());
    let email = Email::parse(&email).map_err(invalid)?;
    let handle = Handle::parse(&handle).map_err(invalid)?;
    let password = Password::parse(&password).map_err(invalid)?;
    let viewer = accounts::register(&pool, &email, &handle, &password, Role::Contributor).await?;
    sign_in(&pool, viewer.id).await?;
    tracing::info!(user = viewer.id, handle = %viewer.handle, "registered");
    crate::ssr::redirect_local(&format!("/contributors/{}", viewer.handle));
    Ok(())
}
