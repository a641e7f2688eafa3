//! The API token panel of a contributor's own profile: create (shown once), list,
//! revoke. Plain forms that work with and without the WebAssembly.

use ascent_domain::format;
use leptos::prelude::*;

use crate::components::forms::{action_error, CsrfField, FormError};
use crate::functions::tokens::{
    my_api_tokens, ApiTokenRow, CreateApiToken, RevokeApiToken, TokenPanel,
};
use crate::functions::AppError;

/// The panel's actions and data. Made by the page, outside its suspense, so that a
/// re-render of the page's content does not make them again (their data must match
/// between the server and the hydrating browser).
#[derive(Clone, Copy)]
pub struct TokensState {
    pub create: ServerAction<CreateApiToken>,
    pub revoke: ServerAction<RevokeApiToken>,
    pub panel: Resource<Result<Option<TokenPanel>, AppError>>,
}

impl TokensState {
    /// For the profile of `handle()`; the panel is `None` unless it is the viewer's.
    pub fn new(handle: impl Fn() -> String + Send + Sync + 'static) -> TokensState {
        let create = ServerAction::<CreateApiToken>::new();
        let revoke = ServerAction::<RevokeApiToken>::new();
        let panel = Resource::new(
            move || (handle(), create.version().get(), revoke.version().get()),
            |(handle, _, _)| my_api_tokens(handle),
        );
        TokensState {
            create,
            revoke,
            panel,
        }
    }
}

/// The viewer's own tokens; nothing on anyone else's profile.
#[component]
pub fn ApiTokens(state: TokensState) -> impl IntoView {
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                matches!(state.panel.await, Ok(Some(_))).then(|| view! { <TokenSection state /> })
            })}
        </Transition>
    }
}

#[component]
fn TokenSection(state: TokensState) -> impl IntoView {
    let TokensState {
        create,
        revoke,
        panel,
    } = state;
    view! {
        <section class="panel" id="api-tokens">
            <h2>"API tokens"</h2>
            <p class="hint">
                "A token lets a program submit as you, e.g. "<code>"ascent-eval submit"</code>
                " on the machine that trained your model. Keep it secret; revoke it when that machine no longer needs it."
            </p>
            <Transition fallback=|| view! { <p class="loading">"Loading tokens…"</p> }>
                {move || Suspend::new(async move {
                    match panel.await {
                        Ok(None) => ().into_any(),
                        Ok(Some(panel)) => {
                            let fresh = create
                                .value()
                                .get_untracked()
                                .and_then(Result::ok)
                                .or(panel.created.clone());
                            let phase = panel.open_phase.unwrap_or(1);
                            view! {
                                {fresh.map(|token| view! { <NewToken token server=panel.server_url.clone() phase /> })}
                                <TokenList tokens=panel.tokens revoke />
                            }
                                .into_any()
                        }
                        Err(e) => view! { <p class="form-error">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
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

/// A token just created: shown once, with the command that uses it.
#[component]
fn NewToken(token: String, server: String, phase: u8) -> impl IntoView {
    let command = format!(
        "export ASCENT_TOKEN={token}\nascent-eval submit --server {server} --phase {phase} DIR"
    );
    view! {
        <div class="secret" role="status">
            <p>
                <strong>"Your new token."</strong>
                " Copy it now: it is shown only this once (Ascent keeps only its hash)."
            </p>
            <code class="secret-value">{token}</code>
            <p class="hint">"Submit a checkpoint directory from a terminal:"</p>
            <pre class="command"><code>{command}</code></pre>
        </div>
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
