//! Reading contributors' profiles.

use ascent_domain::views::ContributorProfile;
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use super::account::AccountPanel;
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
    /// Points earned: (phase, final place, points).
    pub rewards: Vec<(u8, u64, u64)>,
    /// Where the viewer wants their points paid: only on their own profile.
    pub payout: Option<Payout>,
    /// Password and other browsers: only on the viewer's own profile.
    pub account: Option<AccountPanel>,
}

/// The viewer's payout account, if they have set one. (A struct, not `Option<Option>`:
/// JSON cannot tell `Some(None)` from `None`, and the page hydrates from JSON.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payout {
    pub account: Option<String>,
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
    let (tokens, payout, account) = match own {
        Some(viewer) => (
            Some(super::tokens::token_panel(&pool, viewer.id).await?),
            Some(Payout {
                account: ascent_store::rewards::payout_account(&pool, viewer.id).await?,
            }),
            Some(super::account::account_panel(&pool, viewer.id).await?),
        ),
        None => (None, None, None),
    };
    let rewards = ascent_store::rewards::earned_by(&pool, &profile.handle).await?;
    Ok(Some(ContributorPageData {
        profile,
        tokens,
        rewards,
        payout,
        account,
    }))
}

/// Sets (or with an empty value clears) the viewer's payout account, a NEAR account id.
#[server(endpoint = "profile/payout_account")]
pub async fn set_payout_account(
    csrf_token: String,
    account: String,
) -> Result<Option<String>, AppError> {
    let _checked_by_the_security_layer = csrf_token;
    let viewer = crate::ssr::viewer().ok_or(AppError::Unauthenticated)?;
    let pool = crate::ssr::pool()?;
    Ok(ascent_store::rewards::set_payout_account(&pool, viewer.id, &account).await?)
}
