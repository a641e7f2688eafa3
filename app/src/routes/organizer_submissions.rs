//! The console's submission search: find submissions by id, contributor or hash, and
//! disqualify or re-run one, with a reason. Organizers only.

use ascent_domain::format;
use ascent_domain::protocol::SubmissionState;
use ascent_domain::views::SubmissionView;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::components::console::{refusal, ConsoleNav};
use crate::components::forms::{action_error, CsrfField, FormError};
use crate::functions::moderation::{search_submissions, Disqualify, Rerun, SEARCH_LIMIT};

#[component]
pub fn OrganizerSubmissionsPage() -> impl IntoView {
    let query = use_query_map();
    let disqualify = ServerAction::<Disqualify>::new();
    let rerun = ServerAction::<Rerun>::new();
    let filters = move || {
        let q = query.read();
        (
            q.get("q").unwrap_or_default(),
            q.get("phase").and_then(|p| p.parse::<u8>().ok()),
            q.get("state").filter(|s| !s.is_empty()),
            q.get("disqualified").is_some_and(|v| v == "on"),
            q.get("near_copies").is_some_and(|v| v == "on"),
        )
    };
    let results = Resource::new(
        move || (filters(), disqualify.version().get(), rerun.version().get()),
        |((text, phase, state, disqualified, near_copies), ..)| {
            search_submissions(text, phase, state, disqualified, near_copies)
        },
    );
    view! {
        <Title text="Submissions · console" />
        <section class="profile-header">
            <p class="crumbs"><a href="/organizer">"Console"</a>" › Submissions"</p>
            <h1>"Submissions"</h1>
            <ConsoleNav current="/organizer/submissions" />
        </section>
        <section class="panel">
            <form method="get" action="/organizer/submissions" class="inline-form search-form" role="search">
                <label>
                    <span>"Id, contributor or SHA-256 prefix"</span>
                    <input type="search" name="q" value=move || filters().0 placeholder="e.g. 42, ada or 3fa9c1" />
                </label>
                <label>
                    <span>"Phase"</span>
                    <select name="phase">
                        <option value="">"any"</option>
                        {(1..=7u8).map(|n| view! { <option value=n selected=move || filters().1 == Some(n)>{n}</option> }).collect_view()}
                    </select>
                </label>
                <label>
                    <span>"State"</span>
                    <select name="state">
                        <option value="">"any"</option>
                        {SubmissionState::ALL.iter().map(|s| s.as_str()).map(|s| view! { <option value=s selected=move || filters().2.as_deref() == Some(s)>{s}</option> }).collect_view()}
                    </select>
                </label>
                <label class="check">
                    <input type="checkbox" name="disqualified" checked=move || filters().3 />
                    <span>"disqualified only"</span>
                </label>
                <label class="check">
                    <input type="checkbox" name="near_copies" checked=move || filters().4 />
                    <span>"near copies only"</span>
                </label>
                <button type="submit" class="button">"Search"</button>
            </form>
            <FormError error=action_error(disqualify) />
            <FormError error=action_error(rerun) />
            <Transition fallback=|| view! { <p class="loading">"Searching…"</p> }>
                {move || Suspend::new(async move {
                    match results.await {
                        Ok(found) => view! { <Results found disqualify rerun /> }.into_any(),
                        Err(e) => refusal(e, "/organizer/submissions"),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn Results(
    found: Vec<SubmissionView>,
    disqualify: ServerAction<Disqualify>,
    rerun: ServerAction<Rerun>,
) -> impl IntoView {
    if found.is_empty() {
        return view! { <p class="empty">"No submission matches."</p> }.into_any();
    }
    let note = (found.len() as u32 >= SEARCH_LIMIT)
        .then(|| view! { <p class="hint">{format!("The newest {SEARCH_LIMIT} matches; narrow the search to see others.")}</p> });
    let rows = found
        .into_iter()
        .map(|s| {
            let can_rerun = !s.disqualified && (s.state == "scored" || s.state == "failed");
            let id = s.id;
            let status = if s.disqualified {
                view! {
                    <span class="badge removed">"disqualified"</span>
                    <span class="adjusted">{s.disqualified_reason.clone().unwrap_or_default()}</span>
                }
                .into_any()
            } else {
                view! { <span class=format!("badge sub-{}", s.state)>{s.state.clone()}</span> }.into_any()
            };
            let near_copy = s.near_copy.clone().map(|c| view! {
                <span class="near-copy" title="Cosine similarity of the two weight fingerprints (1 = identical directions)">
                    "near copy of "
                    <a href=format!("/submissions/{}", c.submission)>{format!("#{}", c.submission)}</a>
                    {format!(" by {} · similarity {:.4}", c.handle, c.similarity)}
                </span>
            });
            let moderation = view! {
                {(!s.disqualified).then(|| view! {
                    <ActionForm action=disqualify attr:class="inline adjust-form">
                        <CsrfField />
                        <input type="hidden" name="id" value=id />
                        <input type="text" name="reason" placeholder="reason (required)" required maxlength="500" aria-label=format!("Reason to disqualify submission {id}") />
                        <button type="submit" class="button small danger" aria-label=format!("Disqualify submission {id}")>"Disqualify"</button>
                    </ActionForm>
                })}
                {can_rerun.then(|| view! {
                    <ActionForm action=rerun attr:class="inline adjust-form">
                        <CsrfField />
                        <input type="hidden" name="id" value=id />
                        <input type="text" name="reason" placeholder="reason (required)" required maxlength="500" aria-label=format!("Reason to re-run submission {id}") />
                        <button type="submit" class="button small" aria-label=format!("Re-run submission {id}")>"Re-run"</button>
                    </ActionForm>
                })}
            };
            view! {
                <tr>
                    <td class="num"><a href=format!("/submissions/{id}")>{format!("#{id}")}</a></td>
                    <td><a href=format!("/contributors/{}", s.handle)>{s.handle.clone()}</a></td>
                    <td class="num">{s.phase}</td>
                    <td>{status}{near_copy}</td>
                    <td class="num">{s.loss.map(format::loss).unwrap_or_else(|| "—".into())}</td>
                    <td title=format::datetime(s.created_at)>{format::date(s.created_at)}</td>
                    <td><code class="hash">{s.weights_sha256.clone().map(|h| h.chars().take(12).collect::<String>()).unwrap_or_default()}</code></td>
                    <td>{moderation}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        {note}
        <div class="table-wrap">
            <table class="submissions">
                <thead>
                    <tr>
                        <th class="num" scope="col">"Id"</th>
                        <th scope="col">"Contributor"</th>
                        <th class="num" scope="col">"Phase"</th>
                        <th scope="col">"State"</th>
                        <th class="num" scope="col">"Public loss"</th>
                        <th scope="col">"Received"</th>
                        <th scope="col">"Weights"</th>
                        <th scope="col">"Actions"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}
