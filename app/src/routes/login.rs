//! Log in.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::components::forms::{action_error, CsrfField, FormError};
use crate::functions::session::use_session;

#[component]
pub fn LoginPage() -> impl IntoView {
    let session = use_session();
    let query = use_query_map();
    let next = move || query.read().get("next").unwrap_or_default();
    view! {
        <Title text="Log in" />
        <section class="auth">
            <h1>"Log in"</h1>
            <ActionForm action=session.login attr:class="stack">
                <CsrfField />
                <input type="hidden" name="next" value=next />
                <label>
                    "Email"
                    <input type="email" name="email" autocomplete="username" required />
                </label>
                <label>
                    "Password"
                    <input type="password" name="password" autocomplete="current-password" required />
                </label>
                <FormError error=action_error(session.login) />
                <button type="submit" class="button">"Log in"</button>
            </ActionForm>
            <p class="muted">"New here? "<a href="/register">"Create an account"</a>"."</p>
            <p class="muted">"Lost your password? An organizer can give you a reset link once you show them the account is yours."</p>
        </section>
    }
}
