//! Submitting a checkpoint to a phase: the phase's limits, the viewer's quota and
//! eligibility, and the upload form. The upload itself is `public/upload.js`, a small
//! plain script (chunked, resumable), so it works before and without the WebAssembly.

use ascent_domain::format;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::functions::submit::{submit_page, SubmitPageData};
use crate::functions::AppError;
use crate::routes::not_found::NotFound;

#[component]
pub fn SubmitPage() -> impl IntoView {
    let params = use_params_map();
    let number = move || {
        params
            .read()
            .get("number")
            .and_then(|n| n.parse::<u8>().ok())
    };
    let page = Resource::new(number, |number| async move {
        match number {
            Some(number) => submit_page(number)
                .await
                .map(|data| data.map(|d| (number, d))),
            None => Ok(None),
        }
    });
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(Some((_, data))) => view! { <SubmitView data /> }.into_any(),
                    Ok(None) => view! { <NotFound /> }.into_any(),
                    Err(AppError::Unauthenticated) => {
                        let next = number().map_or_else(|| "/".to_owned(), |n| format!("/phases/{n}/submit"));
                        let login = format!("/login?next={next}");
                        view! {
                            <section class="auth">
                                <h1>"Please log in"</h1>
                                <p>"You need an account to submit a checkpoint."</p>
                                <p><a class="button" href=login>"Log in"</a></p>
                            </section>
                        }
                            .into_any()
                    }
                    Err(e) => view! { <p class="form-error">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// A sentence's first letter in capitals (the rules' refusals are written to follow
/// a colon).
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

#[component]
fn SubmitView(data: SubmitPageData) -> impl IntoView {
    let title = format!("Submit to phase {}", data.phase);
    let phase_href = format!("/phases/{}", data.phase);
    let phase_name = format!("Phase {}: {}", data.phase, data.title);
    let limits = data.limits;
    let resets_in = (data.resets_at - data.now).max(0);
    let quota = format!("{} of {} left today", data.remaining, data.per_day);
    let resets = format!(
        "The quota resets at {} (00:00 UTC){}.",
        format::datetime(data.resets_at),
        if resets_in > 0 {
            format!(", in {}", format::duration(resets_in))
        } else {
            String::new()
        }
    );
    let body = match data.refusal {
        Some(reason) => view! {
            <div class="refusal" role="alert">
                <h2>"You cannot submit to this phase right now"</h2>
                <p>{sentence(&reason)}"."</p>
                <p><a href=phase_href.clone()>"Back to the phase"</a></p>
            </div>
        }
        .into_any(),
        None => {
            view! { <UploadForm phase=data.phase max_bytes=data.max_bytes csrf=data.csrf_token /> }
                .into_any()
        }
    };
    view! {
        <Title text=title.clone() />
        <section class="phase-header">
            <p class="crumbs"><a href=phase_href.clone()>{phase_name}</a></p>
            <h1>{title}</h1>
            <p class="lede">
                "Upload a Hugging Face Llama checkpoint: "<code>"config.json"</code>" and its weights in "
                <code>"model.safetensors"</code>" (or "<code>"model.safetensors.index.json"</code>
                " with its shards). It is queued as soon as the upload ends and scored on held-out text; this phase's leaderboard shows it when it is scored."
            </p>
        </section>
        <section class="phase-grid">
            <div class="panel">{body}</div>
            <aside class="panel rules">
                <h2>"Limits"</h2>
                <dl class="rules-list">
                    <dt>"Architecture"</dt><dd>{limits.architecture.clone()}" (safetensors only)"</dd>
                    <dt>"Vocabulary"</dt><dd>{format!("exactly {} tokens", limits.vocab_size)}</dd>
                    <dt>"Parameters"</dt><dd>{format!("at most {} ({})", format::parameters(limits.max_parameters), limits.max_parameters)}</dd>
                    <dt>"Context"</dt><dd>{format!("at least {} tokens", limits.min_context)}</dd>
                    <dt>"Upload size"</dt><dd>{format!("at most {}", format::bytes(data.max_bytes))}</dd>
                </dl>
                <h3>"Your quota"</h3>
                <p class="quota"><strong data-remaining=data.remaining>{quota}</strong></p>
                <p class="hint">{resets}</p>
                <h3>"From a terminal"</h3>
                <p class="hint">
                    "Create an API token on your profile page, then "
                    <code>{format!("ascent-eval submit --phase {} DIR", data.phase)}</code>"."
                </p>
            </aside>
        </section>
    }
}

/// The file picker and the upload's progress; `upload.js` drives it through the data
/// attributes and the ids below.
#[component]
fn UploadForm(phase: u8, max_bytes: u64, csrf: String) -> impl IntoView {
    view! {
        <form
            id="upload-form"
            class="upload stack"
            data-phase=phase
            data-max-bytes=max_bytes
            data-csrf=csrf
            novalidate
        >
            <h2>"Your checkpoint"</h2>
            <label class="dropzone">
                <span class="dropzone-title">"Choose the checkpoint's files"</span>
                <span class="field-hint">
                    "Select them together: config.json and the .safetensors file(s). Pickle files (.bin, .pt) are refused."
                </span>
                <input id="upload-files" type="file" name="files" multiple accept=".json,.safetensors" />
            </label>
            <div id="upload-files-list" class="file-list" aria-live="polite"></div>
            <div id="upload-progress" class="upload-progress" hidden>
                <div class="progress-label">
                    <span id="upload-percent">"0%"</span>
                    <span id="upload-rate" class="muted"></span>
                </div>
                <progress id="upload-bar" max="100" value="0"></progress>
            </div>
            <p id="upload-message" class="upload-message" role="status" aria-live="polite"></p>
            <div class="actions">
                <button id="upload-start" type="submit" class="button" disabled>"Upload and submit"</button>
            </div>
        </form>
        <script type="module" src="/upload.js"></script>
    }
}
