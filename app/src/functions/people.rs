//! Reading contributors and their submissions.

use ascent_domain::views::{ContributorProfile, SubmissionView};
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

#[server(input = GetUrl)]
pub async fn submission_detail(id: i64) -> Result<Option<SubmissionView>, AppError> {
    let pool = crate::ssr::pool()?;
    Ok(ascent_store::profiles::submission(&pool, id).await?)
}
