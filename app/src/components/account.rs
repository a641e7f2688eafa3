//! The account panel of a contributor's own profile: change the password, sign out the
//! other browsers. Plain forms that work with and without the WebAssembly.

use leptos::prelude::*;

use crate::components::forms::{action_error, CsrfField, FormError};
use crate::functions::account::{AccountPanel, ChangePassword, SignOutOthers};

/// The panel's actions, made by the page outside its transition (as `TokenActions`).
#[derive(Clone, Copy)]
pub struct AccountActions {
    pub change_password: ServerAction<ChangePassword>,
    pub sign_out_others: ServerAction<SignOutOthers>,
}

impl AccountActions {
    pub fn new() -> AccountActions {
        AccountActions {
            change_password: ServerAction::new(),
            sign_out_others: ServerAction::new(),
        }
    }
}

impl Default for AccountActions {
    fn default() -> Self {
        AccountActions::new()
    }
}

#[component]
pub fn Account(panel: AccountPanel, actions: AccountActions) -> impl IntoView {
    let AccountActions {
        change_password,
        sign_out_others,
    } = actions;
    let others = match panel.other_sessions {
        0 => "Only this browser is signed in.".to_owned(),
        1 => "1 other browser is signed in too.".to_owned(),
        n => format!("{n} other browsers are signed in too."),
    };
    view! {
        <section class="panel" id="account">
            <h2>"Account"</h2>
            <h3>"Password"</h3>
            <p class="hint">"Changing it signs out every other browser."</p>
            <ActionForm action=change_password attr:class="inline-form" attr:id="password-form">
                <CsrfField />
                <label>
                    <span>"Current password"</span>
                    <input type="password" name="current" autocomplete="current-password" required />
                </label>
                <label>
                    <span>"New password"</span>
                    <input type="password" name="new_password" autocomplete="new-password" minlength="10" required />
                </label>
                <button type="submit" class="button">"Change password"</button>
            </ActionForm>
            <Done action=change_password />
            <FormError error=action_error(change_password) />
            <h3>"Other browsers"</h3>
            <p id="other-sessions">{others}</p>
            {(panel.other_sessions > 0).then(|| view! {
                <ActionForm action=sign_out_others attr:class="inline-form" attr:id="sign-out-others-form">
                    <CsrfField />
                    <button type="submit" class="button danger">"Sign out everywhere else"</button>
                </ActionForm>
            })}
            <Done action=sign_out_others />
            <FormError error=action_error(sign_out_others) />
        </section>
    }
}

/// What an action did, once it succeeded (the hydrated page; a form posted without
/// JavaScript shows the page again, changed).
#[component]
fn Done<I>(action: ServerAction<I>) -> impl IntoView
where
    I: leptos::server_fn::ServerFn<Output = String, Error = crate::functions::AppError>
        + Clone
        + Send
        + Sync
        + 'static,
{
    move || {
        action
            .value()
            .get()
            .and_then(Result::ok)
            .map(|message| view! { <p class="form-ok" role="status">{message}</p> })
    }
}
