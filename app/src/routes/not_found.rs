//! The 404 page, also used when a phase, contributor or submission does not exist.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::functions::AppError;

/// A looked-up page: the item's view, the 404 page when it does not exist, or the error.
pub fn found_or_not_found<T>(
    result: Result<Option<T>, AppError>,
    found: impl FnOnce(T) -> AnyView,
) -> AnyView {
    match result {
        Ok(Some(item)) => found(item),
        Ok(None) => view! { <NotFound /> }.into_any(),
        Err(e) => view! { <p class="form-error">{e.to_string()}</p> }.into_any(),
    }
}

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    crate::ssr::set_status(http::StatusCode::NOT_FOUND);
    view! {
        <Title text="Not found" />
        <section class="not-found">
            <p class="code">"404"</p>
            <h1>"This page does not exist."</h1>
            <p>"The address may be mistyped, or the page may have moved."</p>
            <p><a class="button" href="/">"Go to the phases"</a></p>
        </section>
    }
}
