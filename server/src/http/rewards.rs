//! The reward ledger for organizers, as JSON and CSV (payout accounts included, which
//! is why it is theirs only; the points themselves are public in the log).

use ascent_domain::views::Role;
use ascent_store::rewards::{self, LedgerEntry};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::header;

use crate::http::api::{csv_field, ApiError};
use crate::http::auth::Contributor;
use crate::state::AppState;

fn organizer(caller: &Contributor) -> Result<(), ApiError> {
    if caller.0.role == Role::Organizer {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "the reward ledger is for organizers".into(),
        ))
    }
}

/// `GET /api/rewards`: every ledger entry, by phase and place.
pub async fn ledger_json(
    State(state): State<AppState>,
    caller: Contributor,
) -> Result<Json<Vec<LedgerEntry>>, ApiError> {
    organizer(&caller)?;
    Ok(Json(rewards::ledger(&state.pool).await?))
}

/// `GET /api/rewards.csv`: the same, for a spreadsheet or a payout script.
pub async fn ledger_csv(
    State(state): State<AppState>,
    caller: Contributor,
) -> Result<Response, ApiError> {
    organizer(&caller)?;
    let mut csv = String::from("phase,rank,contributor,points,rule,granted_at,payout_account\n");
    for e in rewards::ledger(&state.pool).await? {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            e.phase,
            e.rank,
            csv_field(&e.contributor),
            e.points,
            e.rule,
            ascent_domain::format::rfc3339(e.at),
            csv_field(e.payout_account.as_deref().unwrap_or_default()),
        ));
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"ascent-rewards.csv\"",
            ),
        ],
        csv,
    )
        .into_response())
}
