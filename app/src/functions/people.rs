//! Reading contributors' profiles.

use ascent_domain::views::ContributorProfile;
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use super::tokens::TokenPanel;
use super::AppError;

/// Submissions listed on a profile.
pub const PROFILE_HISTORY: u32 = 100;

/// Everything a profile page shows, read at once (one resource per page: see
/// `ConsoleData`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContributorPageData {
    pub profile: ContributorProfile,
    /// The API token panel: only on the viewer's own profile.
    pub tokens: Option<TokenPanel>,
}

/// `handle`'s profile page; `None` if there is no such contributor.
#[server(input = GetUrl)]
pub async fn load_contributor_page(
    handle: String,
) -> Result<Option<ContributorPageData>, AppError> {
    let pool = crate::ssr::pool()?;
    let Some(profile) =
        ascent_store::profiles::contributor(&pool, &handle, PROFILE_HISTORY).await?
    else {
        return Ok(None);
    };
    let own = crate::ssr::viewer().filter(|v| v.handle.eq_ignore_ascii_case(&profile.handle));
    let tokens = match own {
        Some(viewer) => Some(super::tokens::token_panel(&pool, viewer.id).await?),
        None => None,
    };
    Ok(Some(ContributorPageData { profile, tokens }))
}
