//! A secret shown once, right after it was created (an API token, a worker token), with
//! the command that uses it. Ascent keeps only its hash, so this is the only chance to
//! copy it.

use leptos::prelude::*;

/// `what` names the secret ("Your new token."); `usage` introduces `command`.
#[component]
pub fn ShownOnce(
    what: &'static str,
    secret: String,
    usage: &'static str,
    command: String,
) -> impl IntoView {
    view! {
        <div class="secret" role="status">
            <p>
                <strong>{what}</strong>
                " Copy it now: it is shown only this once (Ascent keeps only its hash)."
            </p>
            <code class="secret-value">{secret}</code>
            <p class="hint">{usage}</p>
            <pre class="command"><code>{command}</code></pre>
        </div>
    }
}
