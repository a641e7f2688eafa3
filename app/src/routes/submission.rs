//! A submission's page: where it is in the pipeline and, once scored, its score.

use ascent_domain::format;
use ascent_domain::views::SubmissionView;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::functions::people::submission_detail;
use crate::routes::not_found::found_or_not_found;

#[component]
pub fn SubmissionPage() -> impl IntoView {
    let params = use_params_map();
    let submission = Resource::new(
        move || {
            params
                .read()
                .get("id")
                .and_then(|id| id.parse::<i64>().ok())
        },
        |id| async move {
            match id {
                Some(id) => submission_detail(id).await,
                None => Ok(None),
            }
        },
    );
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading submission…"</p> }>
            {move || Suspend::new(async move {
                found_or_not_found(submission.await, |s| view! { <Detail s /> }.into_any())
            })}
        </Suspense>
    }
}

#[component]
fn Detail(s: SubmissionView) -> impl IntoView {
    let title = format!("Submission #{}", s.id);
    let contributor = format!("/contributors/{}", s.handle);
    let phase = format!("/phases/{}", s.phase);
    let dash = || "—".to_owned();
    view! {
        <Title text=title.clone() />
        <section class="profile-header">
            <p class="crumbs"><a href=phase.clone()>{format!("Phase {}: {}", s.phase, s.phase_title)}</a></p>
            <div class="title-row">
                <h1>{title}</h1>
                <span class=format!("badge sub-{}", s.state)>{s.state.clone()}</span>
                {s.disqualified.then(|| view! { <span class="badge state-closed">"disqualified"</span> })}
            </div>
        </section>
        <section class="panel">
            <dl class="rules-list wide">
                <dt>"Contributor"</dt><dd><a href=contributor>{s.handle.clone()}</a></dd>
                <dt>"Submitted"</dt><dd>{format::datetime(s.created_at)}</dd>
                <dt>"Scored"</dt><dd>{s.scored_at.map_or_else(dash, format::datetime)}</dd>
                <dt>"Loss (public part)"</dt><dd>{s.loss.map_or_else(dash, format::loss)}</dd>
                <dt>"Perplexity"</dt><dd>{s.loss.map_or_else(dash, |l| format!("{:.2}", l.exp()))}</dd>
                <dt>"Parameters"</dt><dd>{s.parameters.map_or_else(dash, format::parameters)}</dd>
                <dt>"Size"</dt><dd>{s.bytes.map_or_else(dash, format::bytes)}</dd>
                <dt>"Weights SHA-256"</dt><dd><code class="hash">{s.weights_sha256.clone().unwrap_or_else(dash)}</code></dd>
            </dl>
            {s.error.map(|e| view! { <p class="form-error" role="alert">{e}</p> })}
        </section>
    }
}
