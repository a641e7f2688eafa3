//! Pieces every console page shares: the console's navigation and what a refused
//! visitor sees instead of the page.

use leptos::prelude::*;

use crate::functions::AppError;

/// Links between the console's pages; `current` is the one shown.
#[component]
pub fn ConsoleNav(current: &'static str) -> impl IntoView {
    let links = [
        ("/organizer", "Overview"),
        ("/organizer/submissions", "Submissions"),
        ("/organizer/audit", "Audit log"),
    ];
    view! {
        <nav class="console-nav" aria-label="Console">
            {links
                .into_iter()
                .map(|(href, label)| {
                    let here = href == current;
                    view! { <a href=href class:current=here aria-current=here.then_some("page")>{label}</a> }
                })
                .collect_view()}
        </nav>
    }
}

/// The page a console route shows when its data could not be read: organizers only,
/// log in first, or the error.
pub fn refusal(error: AppError, next: &str) -> AnyView {
    match error {
        AppError::Forbidden(message) => view! {
            <section class="not-found">
                <p class="code">"403"</p>
                <h1>"Organizers only"</h1>
                <p>{message}</p>
                <p><a class="button" href="/">"Go to the phases"</a></p>
            </section>
        }
        .into_any(),
        AppError::Unauthenticated => {
            let login = format!("/login?next={next}");
            view! {
                <section class="auth">
                    <h1>"Please log in"</h1>
                    <p><a class="button" href=login>"Log in as an organizer"</a></p>
                </section>
            }
            .into_any()
        }
        other => view! { <p class="form-error">{other.to_string()}</p> }.into_any(),
    }
}
