//! The API token panel of a contributor's own profile: create (shown once), list,
//! revoke. Plain forms that work with and without the WebAssembly.

use ascent_domain::format;
use leptos::prelude::*;

use crate::components::forms::{action_error, CsrfField, FormError};
use crate::components::secret::ShownOnce;
use crate::functions::tokens::{ApiTokenRow, CreateApiToken, RevokeApiToken, TokenPanel};

/// The panel's actions. Made by the page, outside its transition, so that a re-render
/// of the page's content does not make them again; the page's one resource refetches
/// when either has run.
#[derive(Clone, Copy)]
pub struct TokenActions {
    pub create: ServerAction<CreateApiToken>,
    pub revoke: ServerAction<RevokeApiToken>,
}

impl TokenActions {
    pub fn new() -> TokenActions {
        TokenActions {
            create: ServerAction::new(),
            revoke: ServerAction::new(),
        }
    }
}

impl Default for TokenActions {
    fn default() -> Self {
        TokenActions::new()
    }
}

/// The viewer's own tokens, from the page's data.
#[component]
pub fn ApiTokens(panel: TokenPanel, actions: TokenActions) -> impl IntoView {
    let TokenActions { create, revoke } = actions;
    // A token created by the hydrated form is the action's value; one created by a form
    // posted without JavaScript comes with the page's data.
    let fresh = create
        .value()
        .get_untracked()
        .and_then(Result::ok)
        .or(panel.created.clone());
    let phase = panel.open_phase.unwrap_or(1);
    view! {
        <section class="panel" id="api-tokens">
            <h2>"API tokens"</h2>
            <p class="hint">
                "A token lets a program submit as you, e.g. "<code>"ascent-eval submit"</code>
                " on the machine that trained your model. Keep it secret; revoke it when that machine no longer needs it."
            </p>
            {fresh.map(|token| view! { <NewToken token server=panel.server_url.clone() phase /> })}
            <TokenList tokens=panel.tokens revoke />
            <ActionForm action=create attr:class="inline-form" attr:id="new-token-form">
                <CsrfField />
                <label>
                    <span>"New token"</span>
                    <input type="text" name="name" placeholder="a name, e.g. lab-gpu-box" maxlength="60" required />
                </label>
                <button type="submit" class="button">"Create token"</button>
            </ActionForm>
            <FormError error=action_error(create) />
            <FormError error=action_error(revoke) />
        </section>
    }
}

/// A token just created, with the command that uses it.
#[component]
fn NewToken(token: String, server: String, phase: u8) -> impl IntoView {
    let command = format!(
        "export ASCENT_TOKEN={token}\nascent-eval submit --server {server} --phase {phase} DIR"
    );
    view! {
        <ShownOnce
            what="Your new token."
            secret=token
            usage="Submit a checkpoint directory from a terminal:"
            command
        />
    }
}

#[component]
fn TokenList(tokens: Vec<ApiTokenRow>, revoke: ServerAction<RevokeApiToken>) -> impl IntoView {
    if tokens.is_empty() {
        return view! { <p class="empty">"No API tokens yet."</p> }.into_any();
    }
    let rows = tokens
        .into_iter()
        .map(|t| {
            let last_used = t
                .last_used_at
                .map_or_else(|| "never".to_owned(), format::datetime);
            view! {
                <tr>
                    <td class="token-name">{t.name.clone()}</td>
                    <td>{format::datetime(t.created_at)}</td>
                    <td>{last_used}</td>
                    <td class="num">
                        <ActionForm action=revoke attr:class="inline">
                            <CsrfField />
                            <input type="hidden" name="id" value=t.id />
                            <button type="submit" class="button small danger" aria-label=format!("Revoke {}", t.name)>
                                "Revoke"
                            </button>
                        </ActionForm>
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table class="tokens">
                <thead>
                    <tr>
                        <th scope="col">"Name"</th>
                        <th scope="col">"Created"</th>
                        <th scope="col">"Last used"</th>
                        <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}
