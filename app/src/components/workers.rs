//! The organizer console's workers section: the queue, every worker with its last
//! heartbeat and current job, and creating (token shown once) and revoking workers.

use ascent_domain::attestation::TeeKind;
use ascent_domain::format;
use leptos::prelude::*;

use crate::components::forms::{action_error, CsrfField, FormError};
use crate::components::secret::ShownOnce;
use crate::functions::organizer::{
    queue_snapshot, CreateWorker, RevokeWorker, WorkerRow, WorkersPanel,
};

/// How often the console reads the queue and the workers again.
const LIVE_SECONDS: u64 = 5;

/// The section, from the console's data; `create` and `revoke` refetch it.
#[component]
pub fn Workers(
    panel: WorkersPanel,
    create: ServerAction<CreateWorker>,
    revoke: ServerAction<RevokeWorker>,
) -> impl IntoView {
    let fresh = create
        .value()
        .get_untracked()
        .and_then(Result::ok)
        .or(panel.created.clone());
    let server_url = panel.server_url.clone();
    // The queue and the workers stay live: the browser reads them again every few
    // seconds (the rest of the console, forms included, is left alone).
    let live = RwSignal::new(panel);
    Effect::new(move |_| {
        let every = std::time::Duration::from_secs(LIVE_SECONDS);
        let refresh = move || {
            leptos::task::spawn_local(async move {
                if let Ok(latest) = queue_snapshot().await {
                    live.set(latest);
                }
            });
        };
        if let Ok(handle) = set_interval_with_handle(refresh, every) {
            on_cleanup(move || handle.clear());
        }
    });
    view! {
        <section class="panel" id="workers">
            <h2>"Queue and workers"</h2>
            <p class="hint">{format!("Live: refreshed every {LIVE_SECONDS} seconds.")}</p>
            <dl class="stats">
                <div class="stat"><dt>"jobs waiting"</dt><dd id="jobs-waiting">{move || live.with(|p| p.waiting)}</dd></div>
                <div class="stat"><dt>"jobs running"</dt><dd id="jobs-running">{move || live.with(|p| p.running)}</dd></div>
            </dl>
            {fresh.map(|token| view! { <NewWorkerToken token server=server_url.clone() /> })}
            {move || live.with(|p| view! { <WorkerTable workers=p.workers.clone() now=p.now revoke /> })}
            <ActionForm action=create attr:class="inline-form" attr:id="new-worker-form">
                <CsrfField />
                <label>
                    <span>"New worker"</span>
                    <input type="text" name="name" placeholder="a name, e.g. gpu-01" maxlength="40" required />
                </label>
                <label>
                    <span>"Its public key"</span>
                    <input type="text" name="public_key" placeholder="64 hex digits from `ascent-eval key`" maxlength="64" minlength="64" required />
                </label>
                <label class="wide">
                    <span>"TEE attestation evidence (optional)"</span>
                    <textarea name="evidence" rows="2" placeholder="JSON from `ascent-eval attest` on the worker"></textarea>
                </label>
                <button type="submit" class="button">"Create worker"</button>
            </ActionForm>
            <FormError error=action_error(create) />
            <FormError error=action_error(revoke) />
        </section>
    }
}

#[component]
fn NewWorkerToken(token: String, server: String) -> impl IntoView {
    let command = format!("ascent-eval worker --server {server} --token {token}");
    view! {
        <ShownOnce
            what="The new worker's token."
            secret=token
            usage="Run the worker with it on the scoring machine:"
            command
        />
    }
}

fn ago(now: i64, at: i64) -> String {
    let secs = now - at;
    if secs < 5 {
        "just now".to_owned()
    } else {
        format!("{} ago", format::duration(secs))
    }
}

#[component]
fn WorkerTable(
    workers: Vec<WorkerRow>,
    now: i64,
    revoke: ServerAction<RevokeWorker>,
) -> impl IntoView {
    if workers.is_empty() {
        return view! {
            <p class="empty">"No workers yet. The server's own worker appears here once it starts; remote GPU workers need a token from the form below."</p>
        }
        .into_any();
    }
    let rows = workers
        .into_iter()
        .map(|w| {
            let revoked = w.revoked_at.is_some();
            let status = match w.revoked_at {
                Some(at) => view! { <span class="badge sub-failed">{format!("revoked {}", format::date(at))}</span> }.into_any(),
                None => view! { <span class="badge sub-scored">"active"</span> }.into_any(),
            };
            let current = w.current_submission.map_or_else(
                || view! { <span class="muted">"idle"</span> }.into_any(),
                |id| view! { <a href=format!("/submissions/{id}")>{format!("#{id}")}</a> }.into_any(),
            );
            let last_seen = w
                .last_seen_at
                .map_or_else(|| "never".to_owned(), |at| ago(now, at));
            let last_seen_title = w.last_seen_at.map(format::datetime).unwrap_or_default();
            let label = format!("Revoke {}", w.name);
            let action = (!revoked && !w.built_in).then(|| {
                view! {
                    <ActionForm action=revoke attr:class="inline">
                        <CsrfField />
                        <input type="hidden" name="id" value=w.id />
                        <button type="submit" class="button small danger" aria-label=label>
                            "Revoke"
                        </button>
                    </ActionForm>
                }
            });
            view! {
                <tr class:revoked=revoked>
                    <td>
                        <span class="worker-name">{w.name.clone()}</span>
                        {w.built_in.then(|| view! { <span class="badge tag">"built-in"</span> })}
                        {w.attestation.as_deref().and_then(TeeKind::parse).map(|kind| view! {
                            <span class="badge tag attested" title="TEE evidence verified at registration">{kind.label()}</span>
                        })}
                    </td>
                    <td>{status}</td>
                    <td>{w.device.clone().unwrap_or_else(|| "—".to_owned())}</td>
                    <td>{w.evaluator_version.clone().unwrap_or_else(|| "—".to_owned())}</td>
                    <td title=last_seen_title>{last_seen}</td>
                    <td>{current}</td>
                    <td class="num">{action}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table class="workers">
                <thead>
                    <tr>
                        <th scope="col">"Worker"</th>
                        <th scope="col">"Status"</th>
                        <th scope="col">"Device"</th>
                        <th scope="col">"Evaluator"</th>
                        <th scope="col">"Last seen"</th>
                        <th scope="col">"Current job"</th>
                        <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}
