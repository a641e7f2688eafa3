//! The console's audit log: every organizer action and every state change the server
//! made on its own, newest first. Append-only; nobody can edit it.

use ascent_domain::format;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::components::console::{refusal, ConsoleNav};
use crate::functions::moderation::{audit_log, AUDIT_PAGE};

#[component]
pub fn OrganizerAuditPage() -> impl IntoView {
    let query = use_query_map();
    let before = move || {
        query
            .read()
            .get("before")
            .and_then(|b| b.parse::<i64>().ok())
    };
    let entries = Resource::new(before, audit_log);
    view! {
        <Title text="Audit log · console" />
        <section class="profile-header">
            <p class="crumbs"><a href="/organizer">"Console"</a>" › Audit log"</p>
            <h1>"Audit log"</h1>
            <p class="muted">"Who did what, when and why. Entries are only ever added: the database refuses to change or delete them."</p>
            <ConsoleNav current="/organizer/audit" />
        </section>
        <section class="panel">
            <Transition fallback=|| view! { <p class="loading">"Loading the log…"</p> }>
                {move || Suspend::new(async move {
                    match entries.await {
                        Ok(entries) if entries.is_empty() => view! { <p class="empty">"Nothing recorded yet."</p> }.into_any(),
                        Ok(entries) => {
                            let older = (entries.len() as u32 >= AUDIT_PAGE)
                                .then(|| entries.last().map(|e| format!("/organizer/audit?before={}", e.id)))
                                .flatten();
                            let rows = entries
                                .into_iter()
                                .map(|e| view! {
                                    <tr>
                                        <td class="when">{format::datetime(e.at)}</td>
                                        <td>{e.actor.unwrap_or_else(|| "server".into())}</td>
                                        <td>{e.action}</td>
                                        <td>{e.subject}</td>
                                        <td>{e.reason}</td>
                                        <td><code class="detail">{e.detail}</code></td>
                                    </tr>
                                })
                                .collect_view();
                            view! {
                                <div class="table-wrap">
                                    <table class="audit">
                                        <thead>
                                            <tr>
                                                <th scope="col">"When"</th>
                                                <th scope="col">"Who"</th>
                                                <th scope="col">"Action"</th>
                                                <th scope="col">"Subject"</th>
                                                <th scope="col">"Reason"</th>
                                                <th scope="col">"Detail"</th>
                                            </tr>
                                        </thead>
                                        <tbody>{rows}</tbody>
                                    </table>
                                </div>
                                {older.map(|href| view! { <nav class="pager"><a href=href>"Older entries →"</a></nav> })}
                            }
                            .into_any()
                        }
                        Err(e) => refusal(e, "/organizer/audit"),
                    }
                })}
            </Transition>
        </section>
    }
}
