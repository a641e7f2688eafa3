//! Set a new password with a reset link an organizer issued (`ascent admin reset-link`).

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::components::forms::{posted_error, CsrfField, FormError};
use crate::functions::account::{load_reset, ResetPassword};

/// The address of this page for reset token `token` on the site at `site`: what an
/// organizer sends (from the console or `ascent admin reset-link`).
pub fn link(site: &str, token: &str) -> String {
    format!(
        "{}/reset-password?token={token}",
        site.trim_end_matches('/')
    )
}

#[component]
pub fn ResetPasswordPage() -> impl IntoView {
    let query = use_query_map();
    let token = move || query.read().get("token").unwrap_or_default();
    let account = Resource::new(token, load_reset);
    view! {
        <Title text="Reset your password" />
        <section class="auth">
            <h1>"Reset your password"</h1>
            <Transition fallback=|| view! { <p class="loading">"Checking the link…"</p> }>
                {move || Suspend::new(async move {
                    match account.await {
                        Ok(Some(handle)) => view! { <ResetForm handle token=token() /> }.into_any(),
                        Ok(None) => view! {
                            <p class="form-error" role="alert" id="reset-invalid">
                                "This reset link is unknown, used or expired. Ask an organizer for a new one."
                            </p>
                        }
                        .into_any(),
                        Err(e) => view! { <p class="form-error" role="alert">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// A plain form: the server signs this browser in and sends it to the profile with a
/// whole page load, so the header shows the new session.
#[component]
fn ResetForm(handle: String, token: String) -> impl IntoView {
    let error = posted_error::<ResetPassword>();
    view! {
        <p class="muted">
            "A new password for "<strong id="reset-handle">{handle}</strong>
            ". Every browser signed in to this account will be signed out."
        </p>
        <form method="post" action=ResetPassword::url() class="stack" id="reset-form">
            <CsrfField />
            <input type="hidden" name="token" value=token />
            <label>
                "New password"
                <input type="password" name="new_password" autocomplete="new-password" minlength="10" required />
                <span class="field-hint">"At least 10 characters."</span>
            </label>
            <FormError error />
            <button type="submit" class="button">"Set the new password"</button>
        </form>
    }
}
