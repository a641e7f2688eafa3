//! Create an account.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::forms::{action_error, CsrfField, FormError};
use crate::functions::session::use_session;

#[component]
pub fn RegisterPage() -> impl IntoView {
    let session = use_session();
    view! {
        <Title text="Register" />
        <section class="auth">
            <h1>"Create an account"</h1>
            <p class="muted">"Phase 1 is open to every registered contributor."</p>
            <ActionForm action=session.register attr:class="stack">
                <CsrfField />
                <label>
                    "Email"
                    <input type="email" name="email" autocomplete="email" required />
                </label>
                <label>
                    "Public name"
                    <input type="text" name="handle" autocomplete="username" minlength="3" maxlength="32"
                        pattern="[A-Za-z0-9][A-Za-z0-9_\\-]{2,31}" required />
                    <span class="field-hint">"3–32 letters, digits, '-' or '_'. Shown on leaderboards."</span>
                </label>
                <label>
                    "Password"
                    <input type="password" name="password" autocomplete="new-password" minlength="10" required />
                    <span class="field-hint">"At least 10 characters."</span>
                </label>
                <FormError error=action_error(session.register) />
                <button type="submit" class="button">"Create account"</button>
            </ActionForm>
            <p class="muted">"Already registered? "<a href="/login">"Log in"</a>"."</p>
        </section>
    }
}
