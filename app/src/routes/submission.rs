//! A submission's page: where it is in the pipeline (followed live while it runs) and,
//! once scored, its score; why it failed when it failed.

use ascent_domain::format;
use ascent_domain::protocol::{JobStage, SubmissionReport, SubmissionState};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::components::live::follow_events;
use crate::functions::submit::{submission_page, SubmissionPageData};
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
                Some(id) => submission_page(id).await,
                None => Ok(None),
            }
        },
    );
    // Once the live report is final, read the page again for what the report lacks
    // (the weights hash); a transition keeps the page in place meanwhile.
    let reload = Callback::new(move |()| submission.refetch());
    view! {
        <Transition fallback=|| view! { <p class="loading">"Loading submission…"</p> }>
            {move || Suspend::new(async move {
                found_or_not_found(submission.await, |data| view! { <Detail data reload /> }.into_any())
            })}
        </Transition>
    }
}

#[component]
fn Detail(data: SubmissionPageData, reload: Callback<()>) -> impl IntoView {
    let SubmissionPageData {
        report,
        phase_title,
        weights_sha256,
        disqualified,
        open_files,
        sealed,
    } = data;
    let id = report.id;
    let title = format!("Submission #{id}");
    let contributor = format!("/contributors/{}", report.contributor);
    let phase = format!("/phases/{}", report.phase);
    let phase_name = format!("Phase {}: {}", report.phase, phase_title);
    let live = RwSignal::new(report);
    // Follow the submission until it is final; the page is already right without this.
    let following = move || {
        let running = !live.with_untracked(|r| r.state.is_final());
        running.then(|| format!("/api/submissions/{id}/events"))
    };
    follow_events(
        following,
        "submission",
        move |data| match serde_json_report(&data) {
            Some(report) => {
                let done = report.state.is_final();
                live.set(report);
                if done {
                    reload.run(());
                }
                !done
            }
            None => true,
        },
    );
    let dash = || "—".to_owned();
    let r = move || live.get();
    view! {
        <Title text=title.clone() />
        <section class="profile-header">
            <p class="crumbs"><a href=phase.clone()>{phase_name}</a></p>
            <div class="title-row">
                <h1>{title}</h1>
                {move || {
                    let state = live.with(|r| r.state);
                    view! {
                        <span class=format!("badge sub-{}", state.as_str()) data-state=state.as_str()>
                            {state.as_str()}
                        </span>
                    }
                }}
                {disqualified.is_some().then(|| view! { <span class="badge state-closed">"disqualified"</span> })}
            </div>
            {disqualified.map(|reason| view! {
                <p class="form-error" role="status">
                    {format!("Disqualified by the organizers: {reason}. It no longer counts for the leaderboard.")}
                </p>
            })}
        </section>
        <section class="panel">
            <Pipeline live />
            <dl class="rules-list wide">
                <dt>"Contributor"</dt><dd><a href=contributor>{move || r().contributor}</a></dd>
                <dt>"Submitted"</dt><dd>{move || format::datetime(r().created_at)}</dd>
                <dt>"Scored"</dt><dd>{move || r().scored_at.map_or_else(dash, format::datetime)}</dd>
                <dt>"Scored by"</dt><dd id="worker-kind">{move || {
                    let report = r();
                    match (report.scored_at, report.worker_attestation) {
                        (None, _) => dash(),
                        (Some(_), Some(kind)) => format!("an attested worker: {}", kind.label()),
                        (Some(_), None) => "a worker without TEE attestation".to_owned(),
                    }
                }}</dd>
                <dt>"Loss (public part)"</dt><dd class="score">{move || r().public_loss.map_or_else(dash, format::loss)}</dd>
                <dt>"Perplexity (public part)"</dt><dd>{move || r().public_loss.map_or_else(dash, |l| format!("{:.2}", l.exp()))}</dd>
                {move || r().private_loss.map(|l| view! { <dt>"Loss (private part)"</dt><dd>{format::loss(l)}</dd> })}
                {move || r().loss.map(|l| view! { <dt>"Loss (all windows)"</dt><dd>{format::loss(l)}</dd> })}
                <dt>"Parameters"</dt><dd>{move || r().parameters.map_or_else(dash, |p| format!("{} ({p})", format::parameters(p)))}</dd>
                <dt>"Size"</dt><dd>{move || r().bytes.map_or_else(dash, format::bytes)}</dd>
                <dt>"Attempts"</dt><dd>{move || r().attempts}</dd>
                <dt>"Checkpoint"</dt><dd id="encryption">{move || if r().encrypted {
                    "Encrypted to the phase's evaluation key: the server holds only ciphertext, only the phase's workers can read it, and it is never published"
                } else {
                    "Plain safetensors files"
                }}</dd>
                <dt>"Files SHA-256"</dt><dd><code class="hash">{move || r().sha256.unwrap_or_else(dash)}</code></dd>
                <dt>"Weights SHA-256"</dt><dd><code class="hash">{weights_sha256.unwrap_or_else(dash)}</code></dd>
            </dl>
            {move || r().error.map(|e| view! {
                <p class="form-error submission-error" role="alert">
                    <strong>"Why it failed: "</strong>{e}
                </p>
            })}
        </section>
        {open_files.map(|files| view! { <OpenWeights id files /> }.into_any())}
        {sealed.then(|| view! { <SealedWeights /> })}
        {move || r().signed.map(|signed| view! { <SignedPanel signed /> }.into_any())}
    }
}

/// The downloads of an open checkpoint, with their hashes and the model card.
#[component]
fn OpenWeights(id: i64, files: Vec<(String, u64, String)>) -> impl IntoView {
    let rows = files
        .into_iter()
        .map(|(name, bytes, sha256)| {
            let href = format!("/api/submissions/{id}/files/{name}");
            view! {
                <tr>
                    <td><a href=href download>{name}</a></td>
                    <td class="num">{format::bytes(bytes)}</td>
                    <td><code class="hash">{sha256}</code></td>
                </tr>
            }
        })
        .collect_view();
    let card = format!("/api/submissions/{id}/model-card.md");
    view! {
        <section class="panel" id="open-weights">
            <h2>"Open weights"</h2>
            <p class="hint">
                "This checkpoint was promoted when its phase was finalized, and the phase's rules publish promoted checkpoints. Download it and check each file with "
                <code>"sha256sum"</code>". "
                <a href=card>"Model card"</a>
            </p>
            <div class="table-wrap">
                <table>
                    <thead><tr><th scope="col">"File"</th><th class="num" scope="col">"Size"</th><th scope="col">"SHA-256"</th></tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        </section>
    }
}

/// A promoted checkpoint whose weights are due to be published but are still encrypted.
#[component]
fn SealedWeights() -> impl IntoView {
    view! {
        <section class="panel" id="open-weights">
            <h2>"Open weights: not opened yet"</h2>
            <p class="hint">
                "This checkpoint was promoted and the phase's rules publish promoted checkpoints, but it was encrypted to the phase's evaluation key, which the server does not hold. It is published here once a worker holding that key reveals the key of each file; the server then decrypts the files and publishes them only if they are exactly the checkpoint that was scored."
            </p>
        </section>
    }
}

/// The statement the scoring worker signed, for anyone to check.
#[component]
fn SignedPanel(signed: ascent_domain::protocol::SignedScore) -> impl IntoView {
    view! {
        <section class="panel signed" id="signature">
            <h2>"Signed score"</h2>
            <p class="hint">
                {format!("Worker {} signed this statement of what it measured with its ed25519 key; the server checked the signature against the key registered for that worker before it accepted the score. Check it yourself with any ed25519 library: the message is the statement's exact text.", signed.worker)}
            </p>
            <dl class="rules-list wide">
                <dt>"Worker key"</dt><dd><code class="hash">{signed.public_key}</code></dd>
                <dt>"Signature"</dt><dd><code class="hash">{signed.signature}</code></dd>
            </dl>
            <details>
                <summary>"Statement"</summary>
                <pre class="statement"><code>{signed.statement}</code></pre>
            </details>
        </section>
    }
}

/// Where the submission is: the stages with the current one marked, and the worker's
/// progress in it.
#[component]
fn Pipeline(live: RwSignal<SubmissionReport>) -> impl IntoView {
    let steps = [
        (SubmissionState::Queued, "Queued"),
        (SubmissionState::Validating, "Validating"),
        (SubmissionState::Scoring, "Scoring"),
        (SubmissionState::Scored, "Scored"),
    ];
    let rank = |s: SubmissionState| match s {
        SubmissionState::Queued => 0,
        SubmissionState::Validating => 1,
        SubmissionState::Scoring => 2,
        SubmissionState::Scored | SubmissionState::Failed => 3,
    };
    let items = steps
        .into_iter()
        .map(|(step, label)| {
            let class = move || {
                let state = live.with(|r| r.state);
                let failed = state == SubmissionState::Failed;
                // A failure may happen at any stage: only the end is marked.
                if failed {
                    if step == SubmissionState::Scored {
                        "step failed"
                    } else {
                        "step"
                    }
                } else if state == SubmissionState::Scored || rank(state) > rank(step) {
                    "step done"
                } else if state == step {
                    "step current"
                } else {
                    "step"
                }
            };
            let label = move || {
                if step == SubmissionState::Scored
                    && live.with(|r| r.state) == SubmissionState::Failed
                {
                    "Failed"
                } else {
                    label
                }
            };
            view! { <li class=class>{label}</li> }
        })
        .collect_view();
    let progress = move || {
        live.with(|r| {
            let p = r.progress.as_ref()?;
            if r.state.is_final() {
                return None;
            }
            let (what, unit) = match p.stage {
                JobStage::Validating => ("Downloading and checking the files", "bytes"),
                JobStage::Scoring => ("Scoring windows of held-out text", "windows"),
            };
            #[allow(clippy::cast_precision_loss)]
            let percent = if p.total == 0 {
                0.0
            } else {
                (p.done as f64 / p.total as f64 * 100.0).min(100.0)
            };
            // Nothing counted yet: an indeterminate bar rather than "0 of 0".
            let counts = match (p.total, p.stage) {
                (0, _) => String::new(),
                (_, JobStage::Validating) => {
                    format!("{} of {}", format::bytes(p.done), format::bytes(p.total))
                }
                (_, JobStage::Scoring) => format!("{} of {} {unit}", p.done, p.total),
            };
            let bar = if p.total == 0 {
                view! { <progress max="100"></progress> }.into_any()
            } else {
                view! { <progress max="100" value=format!("{percent:.1}")></progress> }.into_any()
            };
            Some(view! {
                <div class="job-progress">
                    <div class="progress-label">
                        <span>{what}</span>
                        <span class="muted">{counts}</span>
                    </div>
                    {bar}
                </div>
            })
        })
    };
    let note = move || {
        live.with(|r| match r.state {
            SubmissionState::Queued if r.attempts > 0 => Some(format!(
                "Waiting for a worker (attempt {} was interrupted on our side and does not count against you).",
                r.attempts
            )),
            SubmissionState::Queued => Some("Waiting for a worker to pick it up.".to_owned()),
            SubmissionState::Validating | SubmissionState::Scoring => {
                Some("This page updates by itself as the worker reports.".to_owned())
            }
            _ => None,
        })
    };
    view! {
        <ol class="pipeline" aria-label="Progress">{items}</ol>
        {progress}
        {move || note().map(|n| view! { <p class="hint live-note">{n}</p> })}
    }
}

/// Reads a report sent by the event stream (JSON), in the browser.
fn serde_json_report(data: &str) -> Option<SubmissionReport> {
    #[cfg(feature = "hydrate")]
    {
        serde_json::from_str(data).ok()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = data;
        None
    }
}
