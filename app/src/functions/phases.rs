//! Reading phases: the timeline and a phase's page.

use ascent_domain::views::{FinalBoard, Leaderboard, PhaseDetail, PhaseSummary, ScorePoint};
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use super::AppError;

/// Rows per leaderboard page.
pub const LEADERBOARD_PAGE: u64 = 50;

/// What the home page shows: the phases and where the public log stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HomeData {
    pub phases: Vec<PhaseSummary>,
    /// The public log's latest entry: its number and hash.
    pub log_head: Option<(u64, String)>,
    /// This site's address, for the `ascent-eval verify --server` command.
    pub server_url: String,
}

#[server(input = GetUrl)]
pub async fn home_page() -> Result<HomeData, AppError> {
    let pool = crate::ssr::pool()?;
    Ok(HomeData {
        phases: ascent_store::phases::summaries(&pool, crate::ssr::audience()).await?,
        log_head: ascent_store::public_log::head(&pool).await?,
        server_url: crate::ssr::site_origin(),
    })
}

/// Everything a phase page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhasePageData {
    pub detail: PhaseDetail,
    pub leaderboard: Leaderboard,
    pub best_over_time: Vec<ScorePoint>,
    /// The final ranking on the private part, once the phase is closed.
    pub final_board: Option<FinalBoard>,
    /// The phase's submissions scored by now (the chart's last count).
    pub scored: u64,
    /// Who may enter a phase after the first: (promoted from the one before, invited).
    pub entrants: (u64, u64),
    /// Server time when the page was made; the chart runs up to it.
    pub now: i64,
}

/// A phase's page, with leaderboard page `page` (from 1); `None` if there is no such phase.
#[server(input = GetUrl)]
pub async fn phase_page(number: u8, page: u64) -> Result<Option<PhasePageData>, AppError> {
    use ascent_store::{phases, standings};

    let pool = crate::ssr::pool()?;
    // Read the version before the data: a change in between only costs a rebuild.
    let audience = crate::ssr::audience();
    let Some(version) = phases::page_version(&pool, number, audience).await? else {
        return Ok(None);
    };
    let cache = crate::ssr::phase_page_cache();
    if let Some(mut data) = cache.as_ref().and_then(|c| c.get((number, page), version)) {
        data.now = ascent_store::now();
        return Ok(Some(data));
    }
    let Some(detail) = phases::detail(&pool, number, audience).await? else {
        return Ok(None);
    };
    let offset = page.saturating_sub(1).saturating_mul(LEADERBOARD_PAGE);
    let Some(leaderboard) = standings::leaderboard(&pool, number, offset, LEADERBOARD_PAGE).await?
    else {
        return Ok(None);
    };
    let best_over_time = standings::best_over_time(&pool, number).await?;
    let final_board = ascent_store::lifecycle::final_board(&pool, number).await?;
    let scored = standings::scored_count(&pool, number).await?;
    let entrants = ascent_store::entrants::of_phase(&pool, number).await?;
    let invited = entrants.iter().filter(|e| e.reason == "invited").count() as u64;
    let data = PhasePageData {
        detail,
        leaderboard,
        best_over_time,
        final_board,
        scored,
        entrants: (entrants.len() as u64 - invited, invited),
        now: ascent_store::now(),
    };
    if let Some(cache) = cache {
        cache.put((number, page), version, data.clone());
    }
    Ok(Some(data))
}
