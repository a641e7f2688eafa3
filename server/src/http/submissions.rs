//! A submission as JSON, and its live event stream (server-sent events), redacted for
//! the viewer: while the phase is open the private part stays hidden, and only the
//! owner and organizers read why it failed.

use ascent_store::phases::Audience::Public;
use std::convert::Infallible;
use std::time::Duration;

use ascent_domain::protocol::SubmissionReport;
use ascent_domain::views::Viewer;
use ascent_domain::PhaseState;
use ascent_store::{now, submissions};
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures_util::stream::{self, Stream};

use crate::http::api::ApiError;
use crate::http::auth::MaybeViewer;
use crate::state::AppState;

/// How often a stream looks for changes made by other processes.
const POLL: Duration = Duration::from_secs(2);

async fn load(
    state: &AppState,
    id: i64,
    viewer: Option<&Viewer>,
) -> Result<SubmissionReport, ApiError> {
    let record = submissions::report(&state.pool, id, now())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("there is no submission {id}")))?;
    let owner = viewer.is_some_and(|v| v.id == record.user_id);
    let organizer = viewer.is_some_and(Viewer::is_organizer);
    let open = !matches!(
        record.phase_state,
        PhaseState::Closed | PhaseState::Finalized
    );
    Ok(record.report.redacted(owner, organizer, open))
}

pub async fn show(
    State(state): State<AppState>,
    MaybeViewer(viewer): MaybeViewer,
    Path(id): Path<i64>,
) -> Result<Json<SubmissionReport>, ApiError> {
    Ok(Json(load(&state, id, viewer.as_ref()).await?))
}

struct Follow {
    state: AppState,
    viewer: Option<Viewer>,
    id: i64,
    changes: tokio::sync::watch::Receiver<u64>,
    next: Option<SubmissionReport>,
    last: Option<SubmissionReport>,
    done: bool,
}

/// `GET /api/submissions/{id}/events`: the report now, then again on every change,
/// ending once the submission is scored or failed.
pub async fn events(
    State(state): State<AppState>,
    MaybeViewer(viewer): MaybeViewer,
    Path(id): Path<i64>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let first = load(&state, id, viewer.as_ref()).await?;
    let follow = Follow {
        changes: state.changes.subscribe(),
        state,
        viewer,
        id,
        next: Some(first),
        last: None,
        done: false,
    };
    let stream = stream::unfold(follow, |mut f| async move {
        if f.done {
            return None;
        }
        let report = match f.next.take() {
            Some(report) => report,
            None => loop {
                let _ = tokio::time::timeout(POLL, f.changes.changed()).await;
                let report = load(&f.state, f.id, f.viewer.as_ref()).await.ok()?;
                if f.last.as_ref() != Some(&report) {
                    break report;
                }
            },
        };
        f.done = report.state.is_final();
        let event = Event::default()
            .event("submission")
            .json_data(&report)
            .ok()?;
        f.last = Some(report);
        Some((Ok(event), f))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// `GET /api/phases/{n}/events`: the phase's page version now and on every change (a
/// score landed, a submission arrived), so an open leaderboard can refresh itself.
pub async fn phase_events(
    State(state): State<AppState>,
    Path(number): Path<u8>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let version = ascent_store::phases::page_version(&state.pool, number, Public)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("there is no phase {number}")))?;
    let changes = state.changes.subscribe();
    let start = (
        state,
        changes,
        None::<ascent_store::phases::PageVersion>,
        Some(version),
    );
    let stream = stream::unfold(start, move |(state, mut changes, last, next)| async move {
        let version = match next {
            Some(v) => v,
            None => loop {
                let _ = tokio::time::timeout(POLL, changes.changed()).await;
                let v = ascent_store::phases::page_version(&state.pool, number, Public)
                    .await
                    .ok()??;
                if last != Some(v) {
                    break v;
                }
            },
        };
        let event = Event::default().event("phase").data(format!(
            "{{\"submissions\":{},\"standings_version\":{},\"updated_at\":{}}}",
            version.submission_count, version.standings_version, version.updated_at
        ));
        Some((Ok(event), (state, changes, Some(version), None)))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
