//! Reading contributors' profiles.

use ascent_domain::views::ContributorProfile;
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use super::AppError;

/// Submissions listed on a profile.
pub const PROFILE_HISTORY: u32 = 100;

#[server(input = GetUrl)]
pub async fn load_profile(handle: String) -> Result<Option<ContributorProfile>, AppError> {
    let pool = crate::ssr::pool()?;
    Ok(ascent_store::profiles::contributor(&pool, &handle, PROFILE_HISTORY).await?)
}
