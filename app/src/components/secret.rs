//! A secret shown once, right after it was created (an API token, a worker token, a
//! password reset link), with what to do with it. Ascent keeps only its hash, so this is
//! the only chance to copy it.

use leptos::prelude::*;

/// `what` names the secret ("Your new token."); `usage` says what to do with it and
/// introduces `command`, if there is one.
#[component]
pub fn ShownOnce(
    what: &'static str,
    secret: String,
    usage: &'static str,
    #[prop(optional)] command: Option<String>,
) -> impl IntoView {
    view! {
        <div class="secret" role="status">
            <p>
                <strong>{what}</strong>
                " Copy it now: it is shown only this once (Ascent keeps only its hash)."
            </p>
            <code class="secret-value">{secret}</code>
            <p class="hint">{usage}</p>
            {command.map(|command| view! { <pre class="command"><code>{command}</code></pre> })}
        </div>
    }
}
