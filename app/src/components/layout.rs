//! The frame of every page: header with navigation and session, footer.

use leptos::prelude::*;
use leptos::server::ServerAction;

use crate::components::forms::CsrfInput;
use crate::functions::session::{use_session, Logout};

#[component]
pub fn Header() -> impl IntoView {
    let session = use_session();
    view! {
        <header class="site-header">
            <a class="brand" href="/">
                <span class="brand-mark" aria-hidden="true">"▲"</span>
                "Ascent"
            </a>
            <nav class="site-nav" aria-label="Main">
                <a href="/#phases">"Phases"</a>
                <a href="/#take-part">"Take part"</a>
            </nav>
            <div class="session">
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        match session.info.await {
                            Ok(info) => match info.viewer {
                                Some(viewer) => {
                                    let profile = format!("/contributors/{}", viewer.handle);
                                    let unread = info.unread;
                                    let label = if unread == 0 { "Notifications".to_owned() } else { format!("Notifications, {unread} unread") };
                                    view! {
                                        {viewer.is_organizer().then(|| view! { <a href="/organizer">"Console"</a> })}
                                        <a class="notices" href="/notifications" aria-label=label>
                                            "Notices"
                                            {(unread > 0).then(|| view! { <span class="count">{unread}</span> })}
                                        </a>
                                        <a class="me" href=profile>{viewer.handle.clone()}</a>
                                        <LogoutButton action=session.logout csrf_token=info.csrf_token />
                                    }
                                        .into_any()
                                }
                                None => {
                                    view! {
                                        <a href="/login">"Log in"</a>
                                        <a class="button small" href="/register">"Register"</a>
                                    }
                                        .into_any()
                                }
                            },
                            Err(_) => view! { <a href="/login">"Log in"</a> }.into_any(),
                        }
                    })}
                </Transition>
            </div>
        </header>
    }
}

/// Rendered inside the header's session `Suspend`, so it takes the token from there
/// rather than from a `CsrfField` (see `CsrfField` for why).
#[component]
fn LogoutButton(action: ServerAction<Logout>, csrf_token: String) -> impl IntoView {
    view! {
        <ActionForm action attr:class="inline">
            <CsrfInput token=csrf_token />
            <button type="submit" class="link-button">"Log out"</button>
        </ActionForm>
    }
}

#[component]
pub fn Footer() -> impl IntoView {
    view! {
        <footer class="site-footer">
            <p>
                "Ascent grows an open language model in seven phases. Standings are public: "
                <a href="/api/phases">"phases as JSON"</a>
                "."
            </p>
        </footer>
    }
}
