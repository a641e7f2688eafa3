//! The organizer console's data. Organizers only: anonymous visitors are sent to log
//! in, contributors are refused with 403.

use ascent_domain::views::{ConsoleOverview, Viewer};
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use super::AppError;

/// The signed-in organizer, or the right refusal for everyone else.
#[cfg(feature = "ssr")]
pub fn require_organizer(path: &str) -> Result<Viewer, AppError> {
    use http::StatusCode;
    match crate::ssr::viewer() {
        Some(viewer) if viewer.is_organizer() => Ok(viewer),
        Some(viewer) => {
            tracing::warn!(
                user = viewer.id,
                path,
                "organizer page refused to a contributor"
            );
            crate::ssr::set_status(StatusCode::FORBIDDEN);
            Err(AppError::Forbidden(
                "This page is for organizers only.".into(),
            ))
        }
        None => {
            crate::ssr::redirect_local(&format!("/login?next={path}"));
            Err(AppError::Unauthenticated)
        }
    }
}

#[server(input = GetUrl)]
pub async fn load_console() -> Result<(Viewer, ConsoleOverview), AppError> {
    let viewer = require_organizer("/organizer")?;
    let pool = crate::ssr::pool()?;
    Ok((viewer, ascent_store::console::overview(&pool).await?))
}
