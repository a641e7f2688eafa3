//! The public, machine-readable API: phases and leaderboards as JSON and CSV.
//! Times are RFC 3339 in UTC; losses are nats per token.

use ascent_domain::format;
use ascent_domain::views::{Leaderboard, LeaderboardRow, PhaseSummary};
use ascent_store::phases::Audience;
use ascent_store::{lifecycle, phases, standings, StoreError};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{header, StatusCode};
use serde::{Deserialize, Serialize};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::state::AppState;

/// The API's error: a status and a message, served as `{"error": "..."}`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("internal error")]
    Internal(String),
    #[error("internal error")]
    Store(StoreError),
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::NotFound(m) => ApiError::NotFound(m),
            StoreError::Conflict(m) => ApiError::Conflict(m),
            StoreError::Refused(m) => ApiError::Forbidden(m),
            other => ApiError::Store(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Internal(error) => {
                tracing::error!(%error, "API request failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
            ApiError::Store(error) => {
                tracing::error!(%error, "API request failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response()
    }
}

#[derive(Debug, Serialize)]
pub struct ApiPhase {
    pub number: u8,
    pub title: String,
    pub state: String,
    pub opens_at: String,
    pub closes_at: String,
    pub max_parameters: u64,
    pub vocab_size: u32,
    pub seq_len: u32,
    pub contributors: u64,
    pub submissions: u64,
    pub best_loss: Option<f64>,
}

impl From<PhaseSummary> for ApiPhase {
    fn from(p: PhaseSummary) -> ApiPhase {
        ApiPhase {
            number: p.number,
            title: p.title,
            state: p.state.as_str().to_owned(),
            opens_at: format::rfc3339(p.opens_at),
            closes_at: format::rfc3339(p.closes_at),
            max_parameters: p.max_parameters,
            vocab_size: p.vocab_size,
            seq_len: p.seq_len,
            contributors: p.contributors,
            submissions: p.submissions,
            best_loss: p.best_loss,
        }
    }
}

pub async fn phases(State(state): State<AppState>) -> Result<Json<Vec<ApiPhase>>, ApiError> {
    let list = phases::summaries(&state.pool, Audience::Public).await?;
    Ok(Json(list.into_iter().map(ApiPhase::from).collect()))
}

#[derive(Debug, Deserialize)]
pub struct Page {
    offset: Option<u64>,
    limit: Option<u64>,
}

const DEFAULT_LIMIT: u64 = 100;
const MAX_LIMIT: u64 = 1000;

#[derive(Debug, Serialize)]
pub struct ApiRow {
    pub rank: u64,
    pub contributor: String,
    pub best_loss: f64,
    pub perplexity: f64,
    pub parameters: u64,
    pub submissions: u64,
    pub last_improvement_at: String,
    pub submission_id: i64,
    /// Bootstrap 95% interval of the loss over the public windows (leading rows only).
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
}

impl From<LeaderboardRow> for ApiRow {
    fn from(r: LeaderboardRow) -> ApiRow {
        ApiRow {
            rank: r.rank,
            contributor: r.handle,
            best_loss: r.loss,
            perplexity: r.perplexity,
            parameters: r.parameters,
            submissions: r.submissions,
            last_improvement_at: format::rfc3339(r.last_improvement_at),
            submission_id: r.submission_id,
            ci_low: r.interval.map(|i| i.0),
            ci_high: r.interval.map(|i| i.1),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ApiLeaderboard {
    pub phase: u8,
    pub total: u64,
    pub offset: u64,
    pub rows: Vec<ApiRow>,
}

pub(crate) fn phase_number(raw: &str) -> Result<u8, ApiError> {
    raw.parse::<u8>()
        .ok()
        .filter(|n| (1..=7).contains(n))
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "there is no phase {raw:?}; phases are numbered 1 to 7"
            ))
        })
}

/// Whole leaderboards by phase, as ranked at a page version: ranking a phase reads all
/// its standings, so the API does it once per change rather than once per request.
#[derive(Clone, Default)]
pub struct BoardCache(Arc<Mutex<HashMap<u8, RankedBoard>>>);

/// A phase's whole leaderboard and the page version it was ranked at.
type RankedBoard = (phases::PageVersion, Arc<Leaderboard>);

async fn load(
    state: &AppState,
    number: u8,
    offset: u64,
    limit: u64,
) -> Result<Leaderboard, ApiError> {
    let missing = || ApiError::NotFound(format!("phase {number} is not configured"));
    // The version first: a change in between only costs a rebuild next time.
    let version = phases::page_version(&state.pool, number, Audience::Public)
        .await?
        .ok_or_else(missing)?;
    let cached = state.boards.0.lock().ok().and_then(|boards| {
        boards
            .get(&number)
            .filter(|(v, _)| *v == version)
            .map(|(_, b)| b.clone())
    });
    let whole = match cached {
        Some(board) => board,
        None => {
            let board = Arc::new(
                standings::leaderboard(&state.pool, number, 0, u64::MAX >> 1)
                    .await?
                    .ok_or_else(missing)?,
            );
            if let Ok(mut boards) = state.boards.0.lock() {
                boards.insert(number, (version, board.clone()));
            }
            board
        }
    };
    Ok(Leaderboard {
        phase: whole.phase,
        total: whole.total,
        offset,
        rows: whole
            .rows
            .iter()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .cloned()
            .collect(),
    })
}

pub async fn leaderboard(
    State(state): State<AppState>,
    Path(number): Path<String>,
    Query(page): Query<Page>,
) -> Result<Json<ApiLeaderboard>, ApiError> {
    let number = phase_number(&number)?;
    let limit = page.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let board = load(&state, number, page.offset.unwrap_or(0), limit).await?;
    Ok(Json(ApiLeaderboard {
        phase: board.phase,
        total: board.total,
        offset: board.offset,
        rows: board.rows.into_iter().map(ApiRow::from).collect(),
    }))
}

/// The whole leaderboard as CSV, one row per contributor.
pub async fn leaderboard_csv(
    State(state): State<AppState>,
    Path(number): Path<String>,
) -> Result<Response, ApiError> {
    let number = phase_number(&number)?;
    let board = load(&state, number, 0, u64::MAX >> 1).await?;
    let mut csv = String::from("rank,contributor,best_loss,perplexity,parameters,submissions,last_improvement_at,submission_id\n");
    for row in board.rows {
        let row = ApiRow::from(row);
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{}\n",
            row.rank,
            csv_field(&row.contributor),
            row.best_loss,
            row.perplexity,
            row.parameters,
            row.submissions,
            row.last_improvement_at,
            row.submission_id
        ));
    }
    let disposition = format!("attachment; filename=\"ascent-phase-{number}-leaderboard.csv\"");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        csv,
    )
        .into_response())
}

/// One phase with its rules, its state, and once finalized the contributors it promoted.
#[derive(Debug, Serialize)]
pub struct ApiPhaseDetail {
    #[serde(flatten)]
    pub phase: ApiPhase,
    pub rules: ascent_domain::PhaseSpec,
    /// Handles promoted to the next phase, in final order; `null` until finalized.
    pub promoted: Option<Vec<String>>,
    /// The secret that split the windows into the public and private parts, published
    /// once the phase is finalized so anyone can recompute both from the signed window
    /// losses; `null` until then.
    pub split_secret: Option<String>,
}

pub async fn phase(
    State(state): State<AppState>,
    Path(number): Path<String>,
) -> Result<Json<ApiPhaseDetail>, ApiError> {
    let number = phase_number(&number)?;
    let detail = phases::detail(&state.pool, number, Audience::Public)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("phase {number} is not configured")))?;
    let promoted = if detail.summary.state == ascent_domain::PhaseState::Finalized {
        Some(lifecycle::promoted(&state.pool, number).await?)
    } else {
        None
    };
    let split_secret = lifecycle::published_split_secret(&state.pool, number).await?;
    Ok(Json(ApiPhaseDetail {
        phase: ApiPhase::from(detail.summary),
        rules: detail.spec,
        promoted,
        split_secret,
    }))
}

#[derive(Debug, Serialize)]
pub struct ApiFinalRow {
    pub rank: u64,
    pub contributor: String,
    pub private_loss: f64,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub public_rank: u64,
    pub public_loss: f64,
    pub movement: i64,
    pub advances: bool,
    pub proposed_by_rule: bool,
    pub adjustment: Option<String>,
    pub submission_id: i64,
}

#[derive(Debug, Serialize)]
pub struct ApiFinal {
    pub phase: u8,
    pub state: String,
    /// True while the phase is closed but not finalized: organizers may still adjust
    /// the advancement list, and queued submissions may still land.
    pub provisional: bool,
    pub rule: String,
    pub pending_submissions: u64,
    pub rows: Vec<ApiFinalRow>,
}

/// Which rows an export holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalExport {
    /// Everyone ranked.
    Standings,
    /// Only those who advance.
    Advancement,
}

async fn final_rows(
    state: &AppState,
    raw: &str,
    export: FinalExport,
) -> Result<ApiFinal, ApiError> {
    let number = phase_number(raw)?;
    let board = lifecycle::final_board(&state.pool, number)
        .await?
        .ok_or_else(|| {
            ApiError::Conflict(format!(
                "phase {number} has not closed: its final ranking is decided at the close, on the private part of the data"
            ))
        })?;
    Ok(ApiFinal {
        phase: number,
        state: board.state.as_str().to_owned(),
        provisional: board.state != ascent_domain::PhaseState::Finalized,
        rule: board.rule,
        pending_submissions: board.pending,
        rows: board
            .rows
            .into_iter()
            .filter(|r| export == FinalExport::Standings || r.advances)
            .map(|r| ApiFinalRow {
                rank: r.rank,
                contributor: r.handle,
                private_loss: r.private_loss,
                ci_low: r.interval.map(|i| i.0),
                ci_high: r.interval.map(|i| i.1),
                public_rank: r.public_rank,
                public_loss: r.public_loss,
                movement: r.movement,
                advances: r.advances,
                proposed_by_rule: r.proposed,
                adjustment: r.adjustment,
                submission_id: r.submission_id,
            })
            .collect(),
    })
}

/// A closed phase's final standings (or its advancement list) as JSON.
pub async fn final_json(
    State(state): State<AppState>,
    Path(number): Path<String>,
    export: FinalExport,
) -> Result<Json<ApiFinal>, ApiError> {
    Ok(Json(final_rows(&state, &number, export).await?))
}

/// The same as CSV.
pub async fn final_csv(
    State(state): State<AppState>,
    Path(number): Path<String>,
    export: FinalExport,
) -> Result<Response, ApiError> {
    let board = final_rows(&state, &number, export).await?;
    let mut csv = String::from("rank,contributor,private_loss,ci_low,ci_high,public_rank,public_loss,movement,advances,proposed_by_rule,adjustment,submission_id\n");
    let optional = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    for r in &board.rows {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{}\n",
            r.rank,
            csv_field(&r.contributor),
            r.private_loss,
            optional(r.ci_low),
            optional(r.ci_high),
            r.public_rank,
            r.public_loss,
            r.movement,
            r.advances,
            r.proposed_by_rule,
            csv_field(r.adjustment.as_deref().unwrap_or("")),
            r.submission_id
        ));
    }
    let what = match export {
        FinalExport::Standings => "final-standings",
        FinalExport::Advancement => "advancement",
    };
    let suffix = if board.provisional {
        "-provisional"
    } else {
        ""
    };
    let disposition = format!(
        "attachment; filename=\"ascent-phase-{}-{what}{suffix}.csv\"",
        board.phase
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        csv,
    )
        .into_response())
}

/// Quotes a CSV field when it needs it, and defuses spreadsheet formulas.
pub fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("ada"), "ada");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
    }

    #[test]
    fn phase_numbers_are_one_to_seven() {
        assert_eq!(phase_number("3").ok(), Some(3));
        for bad in ["0", "8", "x", "-1", "300"] {
            assert!(phase_number(bad).is_err(), "{bad}");
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct LogPage {
    after: Option<u64>,
    limit: Option<u64>,
}

/// The log's latest entry.
#[derive(Debug, Serialize)]
pub struct LogHead {
    pub seq: u64,
    pub hash: String,
}

#[derive(Debug, Serialize)]
pub struct ApiLog {
    /// The latest entry when this page was read (`null` while the log is empty).
    pub head: Option<LogHead>,
    /// Entries after `after`, in order; each `body` is the event's JSON exactly as hashed.
    pub entries: Vec<ascent_domain::public_log::Entry>,
    /// Where the next page starts (`?after=`), or `null` at the head.
    pub next_after: Option<u64>,
}

/// `GET /api/log?after=SEQ&limit=N`: the public hash-chained log, oldest first.
pub async fn log(
    State(state): State<AppState>,
    Query(page): Query<LogPage>,
) -> Result<Json<ApiLog>, ApiError> {
    let after = page.after.unwrap_or(0);
    let limit = page.limit.unwrap_or(MAX_LIMIT).clamp(1, MAX_LIMIT);
    let head = ascent_store::public_log::head(&state.pool).await?;
    let entries = ascent_store::public_log::page(&state.pool, after, limit).await?;
    let next_after = match (entries.last(), &head) {
        (Some(last), Some((head_seq, _))) if last.seq < *head_seq => Some(last.seq),
        _ => None,
    };
    Ok(Json(ApiLog {
        head: head.map(|(seq, hash)| LogHead { seq, hash }),
        entries,
        next_after,
    }))
}
