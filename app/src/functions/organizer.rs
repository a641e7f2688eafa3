//! The organizer console's data. Organizers only: anonymous visitors are sent to log
//! in, contributors are refused with 403.

use ascent_domain::views::{ConsoleOverview, Viewer};
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use super::AppError;

/// The signed-in organizer, or the right refusal for everyone else.
#[cfg(feature = "ssr")]
pub fn require_organizer(path: &str) -> Result<Viewer, AppError> {
    use http::StatusCode;
    match crate::ssr::viewer() {
        Some(viewer) if viewer.is_organizer() => Ok(viewer),
        Some(viewer) => {
            tracing::warn!(
                user = viewer.id,
                path,
                "organizer page refused to a contributor"
            );
            crate::ssr::set_status(StatusCode::FORBIDDEN);
            Err(AppError::Forbidden(
                "This page is for organizers only.".into(),
            ))
        }
        None if crate::ssr::is_direct_call() => {
            crate::ssr::set_status(StatusCode::UNAUTHORIZED);
            Err(AppError::Unauthenticated)
        }
        None => {
            crate::ssr::redirect_local(&format!("/login?next={path}"));
            Err(AppError::Unauthenticated)
        }
    }
}

/// The signed-in organizer and the database, for an organizer's server function.
#[cfg(feature = "ssr")]
pub fn organizer_with_pool(path: &str) -> Result<(Viewer, ascent_store::SqlitePool), AppError> {
    let organizer = require_organizer(path)?;
    Ok((organizer, crate::ssr::pool()?))
}

/// Everything the console shows, read at once (one resource: a page whose data comes
/// in several resources made at different depths hydrates unreliably).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsoleData {
    pub viewer: Viewer,
    pub overview: ConsoleOverview,
    pub workers: WorkersPanel,
    /// A password reset link just issued by a form posted without JavaScript, shown
    /// this once.
    pub reset_link: Option<String>,
}

#[server(input = GetUrl)]
pub async fn load_console() -> Result<ConsoleData, AppError> {
    let viewer = require_organizer("/organizer")?;
    let pool = crate::ssr::pool()?;
    Ok(ConsoleData {
        viewer,
        overview: ascent_store::console::overview(&pool).await?,
        workers: workers_panel(
            &pool,
            crate::ssr::take_handed_over_secret(ascent_domain::protocol::WORKER_TOKEN_PREFIX),
        )
        .await?,
        reset_link: crate::ssr::take_handed_over_secret(
            ascent_domain::protocol::RESET_TOKEN_PREFIX,
        )
        .map(|token| crate::routes::reset_password::link(&crate::ssr::site_origin(), &token)),
    })
}

/// Issues a password reset link for contributor `handle` (see `ascent_store::resets`)
/// and returns it (shown once); the reason goes to the audit log.
#[server(endpoint = "organizer/reset_link")]
pub async fn issue_reset_link(
    csrf_token: String,
    handle: String,
    reason: String,
) -> Result<String, AppError> {
    let _checked_by_the_security_layer = csrf_token;
    let organizer = require_organizer("/organizer")?;
    let pool = crate::ssr::pool()?;
    let (_, token) = ascent_store::resets::issue(
        &pool,
        handle.trim(),
        Some(organizer.id),
        &reason,
        ascent_store::now(),
    )
    .await
    .map_err(|e| match e {
        ascent_store::StoreError::NotFound(message)
        | ascent_store::StoreError::Refused(message) => AppError::Invalid(message),
        other => other.into(),
    })?;
    crate::ssr::hand_over_secret(&token);
    Ok(crate::routes::reset_password::link(
        &crate::ssr::site_origin(),
        &token,
    ))
}

/// A worker as the console lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerRow {
    pub id: i64,
    pub name: String,
    pub built_in: bool,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub last_seen_at: Option<i64>,
    pub device: Option<String>,
    pub evaluator_version: Option<String>,
    pub current_submission: Option<i64>,
    /// The kind of TEE evidence verified for it, if any.
    pub attestation: Option<String>,
}

/// The console's workers section: the workers and the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkersPanel {
    pub workers: Vec<WorkerRow>,
    /// Jobs waiting for a worker.
    pub waiting: u64,
    /// Jobs a worker holds a live lease on.
    pub running: u64,
    /// Server time, for "last seen … ago".
    pub now: i64,
    /// A worker token just created by a form posted without JavaScript, shown this once.
    pub created: Option<String>,
    /// This site's address, for the `ascent-eval worker --server` command.
    pub server_url: String,
}

#[cfg(feature = "ssr")]
async fn workers_panel(
    pool: &ascent_store::SqlitePool,
    created: Option<String>,
) -> Result<WorkersPanel, AppError> {
    use ascent_store::{jobs, workers};

    let now = ascent_store::now();
    let (waiting, running) = jobs::queue_counts(pool, now).await?;
    let workers = workers::list(pool, now)
        .await?
        .into_iter()
        .map(|w| WorkerRow {
            id: w.id,
            name: w.name,
            built_in: w.built_in,
            created_at: w.created_at,
            revoked_at: w.revoked_at,
            last_seen_at: w.last_seen_at,
            device: w.device,
            evaluator_version: w.evaluator_version,
            current_submission: w.current_submission,
            attestation: w.attestation,
        })
        .collect();
    Ok(WorkersPanel {
        workers,
        waiting,
        running,
        now,
        created,
        server_url: crate::ssr::site_origin(),
    })
}

/// The queue and the workers now, for the console's live section.
#[server(input = GetUrl, endpoint = "organizer/queue")]
pub async fn queue_snapshot() -> Result<WorkersPanel, AppError> {
    let (_, pool) = organizer_with_pool("/organizer")?;
    // A token handed over to the page is shown by the page, not by a refresh.
    workers_panel(&pool, None).await
}

/// Registers a remote worker and returns its token (shown once). With TEE evidence
/// (`ascent-eval attest`), the evidence is verified first and the worker is attested.
#[server(endpoint = "organizer/create_worker")]
pub async fn create_worker(
    csrf_token: String,
    name: String,
    public_key: String,
    #[server(default)] evidence: String,
) -> Result<String, AppError> {
    let _checked_by_the_security_layer = csrf_token;
    let organizer = require_organizer("/organizer")?;
    let pool = crate::ssr::pool()?;
    let attested = match evidence.trim() {
        "" => None,
        evidence => Some(
            ascent_domain::attestation::verify(
                evidence,
                &public_key,
                &crate::ssr::attestation_verifiers(),
            )
            .map_err(|e| AppError::Invalid(format!("attestation refused: {e}")))?,
        ),
    };
    let token = ascent_store::workers::create_attested(
        &pool,
        &name,
        &public_key,
        attested.map(|kind| (kind, evidence.trim())),
        Some(organizer.id),
        ascent_store::now(),
    )
    .await
    .map_err(|e| match e {
        ascent_store::StoreError::Conflict(message) => AppError::Invalid(message),
        other => other.into(),
    })?;
    tracing::info!(by = organizer.id, name = %name.trim(), "worker created from the console");
    crate::ssr::hand_over_secret(&token);
    Ok(token)
}

/// Revokes a worker: its leases lapse and its late results are refused.
#[server(endpoint = "organizer/revoke_worker")]
pub async fn revoke_worker(csrf_token: String, id: i64) -> Result<(), AppError> {
    let _checked_by_the_security_layer = csrf_token;
    let organizer = require_organizer("/organizer")?;
    let pool = crate::ssr::pool()?;
    ascent_store::workers::revoke(&pool, id, Some(organizer.id), ascent_store::now()).await?;
    tracing::info!(
        by = organizer.id,
        worker = id,
        "worker revoked from the console"
    );
    Ok(())
}
