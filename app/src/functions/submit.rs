//! The submit page (the rules at the door, as they stand for the viewer) and a
//! submission's page (its report, as the viewer may see it).

use ascent_domain::limits::ModelLimits;
use ascent_domain::protocol::SubmissionReport;
use ascent_domain::PhaseState;
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use super::AppError;

/// What the submit page shows before any file is chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubmitPageData {
    pub phase: u8,
    pub title: String,
    pub state: PhaseState,
    pub limits: ModelLimits,
    pub max_bytes: u64,
    pub per_day: u32,
    /// Submissions the viewer has left today.
    pub remaining: u32,
    /// Unix seconds when the daily quota starts over.
    pub resets_at: i64,
    /// Server time when the page was made.
    pub now: i64,
    /// Why the viewer may not submit now; `None` when they may.
    pub refusal: Option<String>,
    /// The upload script repeats it in the `x-csrf-token` header.
    pub csrf_token: String,
}

/// The submit page of phase `number`; `None` if there is no such phase. Anonymous
/// visitors are sent to log in and come back.
#[server(input = GetUrl)]
pub async fn submit_page(number: u8) -> Result<Option<SubmitPageData>, AppError> {
    use ascent_domain::entry::{check_entry, quota_day, remaining, EntryFacts};
    use ascent_store::{phases, uploads};

    let Some(viewer) = crate::ssr::viewer() else {
        crate::ssr::redirect_local(&format!("/login?next=/phases/{number}/submit"));
        return Err(AppError::Unauthenticated);
    };
    let pool = crate::ssr::pool()?;
    let Some(detail) = phases::detail(&pool, number, crate::ssr::audience()).await? else {
        return Ok(None);
    };
    let now = ascent_store::now();
    let facts = uploads::entry_facts_now(&pool, number, viewer.id, now).await?;
    // Any size passes here: the page checks the chosen files against the limit.
    let refusal = check_entry(&EntryFacts {
        bytes: 1,
        ..facts.clone()
    })
    .err()
    .map(|refusal| refusal.to_string());
    Ok(Some(SubmitPageData {
        phase: number,
        title: detail.summary.title,
        state: facts.state,
        limits: detail.spec.model,
        max_bytes: facts.max_bytes,
        per_day: facts.per_day,
        remaining: remaining(facts.per_day, facts.used_today),
        resets_at: quota_day(now).1,
        now,
        refusal,
        csrf_token: crate::ssr::csrf_token(),
    }))
}

/// A submission's page: its report redacted for the viewer, and what the report lacks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubmissionPageData {
    pub report: SubmissionReport,
    pub phase_title: String,
    /// Canonical hash of the tensor bytes (what duplicate detection compares).
    pub weights_sha256: Option<String>,
    /// The organizers' reason, once disqualified (shown to everyone: it changed the board).
    pub disqualified: Option<String>,
    /// Its files (name, bytes, SHA-256) once it is an open checkpoint: promoted by a
    /// finalized phase whose rules open the weights.
    pub open_files: Option<Vec<(String, u64, String)>>,
    /// Promoted under rules that open the weights, but encrypted and not opened yet.
    pub sealed: bool,
}

#[server(input = GetUrl)]
pub async fn submission_page(id: i64) -> Result<Option<SubmissionPageData>, AppError> {
    use ascent_domain::views::Viewer;
    use ascent_store::{profiles, submissions};

    let pool = crate::ssr::pool()?;
    let Some(record) = submissions::report(&pool, id, ascent_store::now()).await? else {
        return Ok(None);
    };
    let Some(view) = profiles::submission(&pool, id).await? else {
        return Ok(None);
    };
    // The same redaction as `GET /api/submissions/{id}`.
    let viewer = crate::ssr::viewer();
    let owner = viewer.as_ref().is_some_and(|v| v.id == record.user_id);
    let organizer = viewer.as_ref().is_some_and(Viewer::is_organizer);
    let open = !matches!(
        record.phase_state,
        PhaseState::Closed | PhaseState::Finalized
    );
    Ok(Some(SubmissionPageData {
        report: record.report.redacted(owner, organizer, open),
        phase_title: view.phase_title,
        weights_sha256: view.weights_sha256,
        disqualified: view
            .disqualified
            .then(|| view.disqualified_reason.unwrap_or_default()),
        open_files: ascent_store::lifecycle::open_checkpoint(&pool, id)
            .await?
            .map(|open| open.card.files),
        sealed: ascent_store::opened::sealed(&pool, id, true)
            .await?
            .is_some(),
    }))
}
