//! The signed-in person's notifications ("you advanced to phase 2").

use ascent_domain::views::Notification;
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use super::AppError;

/// Newest first; `Unauthenticated` for visitors.
#[server(input = GetUrl)]
pub async fn my_notifications() -> Result<Vec<Notification>, AppError> {
    let viewer = crate::ssr::viewer().ok_or(AppError::Unauthenticated)?;
    let pool = crate::ssr::pool()?;
    Ok(ascent_store::notifications::of_user(&pool, viewer.id, 100).await?)
}

/// Marks all of the viewer's notifications read.
#[server]
pub async fn mark_notifications_read(csrf_token: String) -> Result<(), AppError> {
    let _checked_by_the_security_layer = csrf_token;
    let viewer = crate::ssr::viewer().ok_or(AppError::Unauthenticated)?;
    let pool = crate::ssr::pool()?;
    ascent_store::notifications::mark_read(&pool, viewer.id, ascent_store::now()).await?;
    Ok(())
}
