//! Organizers' tools for single submissions and the audit log: search, disqualify,
//! re-run (each with a mandatory reason), and read the log.

use ascent_domain::views::{AuditEntry, SubmissionView};
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use super::AppError;
#[cfg(feature = "ssr")]
use super::{organizer::organizer_with_pool, phase_admin::refused_as_invalid};

/// Most submissions one search returns.
pub const SEARCH_LIMIT: u32 = 100;

/// Submissions matching `text` (an id, a handle, or the start of a SHA-256) and the
/// filters, newest first.
#[server(input = GetUrl, endpoint = "organizer/search_submissions")]
pub async fn search_submissions(
    text: String,
    phase: Option<u8>,
    state: Option<String>,
    disqualified_only: bool,
    #[server(default)] near_copies_only: bool,
) -> Result<Vec<SubmissionView>, AppError> {
    use ascent_store::moderation::{search, SubmissionQuery};

    let (_, pool) = organizer_with_pool("/organizer/submissions")?;
    let query = SubmissionQuery {
        text,
        phase,
        state,
        disqualified_only,
        near_copies_only,
    };
    Ok(search(&pool, &query, SEARCH_LIMIT).await?)
}

#[server(endpoint = "organizer/disqualify")]
pub async fn disqualify(csrf_token: String, id: i64, reason: String) -> Result<(), AppError> {
    let _checked_by_the_security_layer = csrf_token;
    let (organizer, pool) = organizer_with_pool("/organizer/submissions")?;
    ascent_store::moderation::disqualify(&pool, id, organizer.id, &reason, ascent_store::now())
        .await
        .map_err(refused_as_invalid)
}

#[server(endpoint = "organizer/rerun")]
pub async fn rerun(csrf_token: String, id: i64, reason: String) -> Result<(), AppError> {
    let _checked_by_the_security_layer = csrf_token;
    let (organizer, pool) = organizer_with_pool("/organizer/submissions")?;
    ascent_store::moderation::rerun(&pool, id, organizer.id, &reason, ascent_store::now())
        .await
        .map_err(refused_as_invalid)
}

/// Entries per page of the audit log.
pub const AUDIT_PAGE: u32 = 50;

/// The audit log, newest first, older than entry `before` if given.
#[server(input = GetUrl, endpoint = "organizer/audit")]
pub async fn audit_log(before: Option<i64>) -> Result<Vec<AuditEntry>, AppError> {
    let (_, pool) = organizer_with_pool("/organizer/audit")?;
    Ok(ascent_store::audit::recent(&pool, AUDIT_PAGE, before).await?)
}
