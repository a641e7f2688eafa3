//! The organizer console. Organizers only.

use ascent_domain::format;
use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::console::{refusal, ConsoleNav};
use crate::components::forms::{action_error, CsrfField, FormError};
use crate::components::phase_bits::StateBadge;
use crate::components::secret::ShownOnce;
use crate::components::workers::Workers;
use crate::functions::organizer::{
    load_console, ConsoleData, CreateWorker, IssueResetLink, RevokeWorker,
};

#[component]
pub fn OrganizerPage() -> impl IntoView {
    let create = ServerAction::<CreateWorker>::new();
    let revoke = ServerAction::<RevokeWorker>::new();
    let reset = ServerAction::<IssueResetLink>::new();
    let overview = Resource::new(
        move || (create.version().get(), revoke.version().get()),
        |_| load_console(),
    );
    view! {
        <Title text="Organizer console" />
        <Transition fallback=|| view! { <p class="loading">"Loading console…"</p> }>
            {move || Suspend::new(async move {
                match overview.await {
                    Ok(data) => view! { <Console data create revoke reset /> }.into_any(),
                    Err(e) => refusal(e, "/organizer"),
                }
            })}
        </Transition>
    }
}

#[component]
fn Console(
    data: ConsoleData,
    create: ServerAction<CreateWorker>,
    revoke: ServerAction<RevokeWorker>,
    reset: ServerAction<IssueResetLink>,
) -> impl IntoView {
    let ConsoleData {
        viewer,
        overview,
        workers,
        reset_link,
    } = data;
    let phases = overview
        .phases
        .into_iter()
        .map(|p| {
            let href = format!("/organizer/phases/{}", p.number);
            view! {
                <tr>
                    <td><a href=href>{format!("{}. {}", p.number, p.title)}</a></td>
                    <td><StateBadge state=p.state /></td>
                    <td>{format::datetime(p.opens_at)}</td>
                    <td>{format::datetime(p.closes_at)}</td>
                    <td class="num">{format::parameters(p.max_parameters)}</td>
                    <td class="num">{p.contributors}</td>
                    <td class="num">{p.submissions}</td>
                </tr>
            }
        })
        .collect_view();
    let pipeline = overview
        .submissions_by_state
        .into_iter()
        .map(|(state, count)| {
            view! {
                <div class="stat">
                    <dt>{state}</dt>
                    <dd>{count}</dd>
                </div>
            }
        })
        .collect_view();
    let transitions = overview
        .recent_transitions
        .into_iter()
        .map(|t| {
            let change = format!(
                "{} → {}",
                t.from_state.unwrap_or_else(|| "new".into()),
                t.to_state
            );
            view! {
                <tr>
                    <td>{format::datetime(t.at)}</td>
                    <td>{format!("Phase {}", t.phase)}</td>
                    <td>{change}</td>
                    <td>{t.actor.unwrap_or_else(|| "system".into())}</td>
                    <td>{t.reason}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="profile-header">
            <h1>"Organizer console"</h1>
            <p class="muted">{format!("Signed in as {} ({})", viewer.handle, viewer.email)}</p>
            <ConsoleNav current="/organizer" />
        </section>
        <section class="panel">
            <h2>"Accounts and pipeline"</h2>
            <dl class="stats">
                <div class="stat"><dt>"contributors"</dt><dd>{overview.contributors}</dd></div>
                <div class="stat"><dt>"organizers"</dt><dd>{overview.organizers}</dd></div>
                {pipeline}
            </dl>
            <ResetLinks reset handed_over=reset_link />
        </section>
        <Workers panel=workers create revoke />
        <section class="panel">
            <h2>"Phases"</h2>
            <p class="hint">"Open a phase to move it, edit its settings, review its final ranking and promote its winners."</p>
            <div class="table-wrap">
                <table>
                    <thead>
                        <tr>
                            <th scope="col">"Phase"</th>
                            <th scope="col">"State"</th>
                            <th scope="col">"Opens"</th>
                            <th scope="col">"Closes"</th>
                            <th class="num" scope="col">"Cap"</th>
                            <th class="num" scope="col">"Contributors"</th>
                            <th class="num" scope="col">"Submissions"</th>
                        </tr>
                    </thead>
                    <tbody>{phases}</tbody>
                </table>
            </div>
        </section>
        <section class="panel">
            <h2>"Recent phase changes"</h2>
            <div class="table-wrap">
                <table>
                    <thead>
                        <tr>
                            <th scope="col">"When"</th>
                            <th scope="col">"Phase"</th>
                            <th scope="col">"Change"</th>
                            <th scope="col">"By"</th>
                            <th scope="col">"Reason"</th>
                        </tr>
                    </thead>
                    <tbody>{transitions}</tbody>
                </table>
            </div>
        </section>
    }
}

/// Issuing a password reset link for a contributor who lost their password, once they
/// have shown the account is theirs; the link is shown once.
#[component]
fn ResetLinks(reset: ServerAction<IssueResetLink>, handed_over: Option<String>) -> impl IntoView {
    let fresh = move || {
        reset
            .value()
            .get()
            .and_then(Result::ok)
            .or_else(|| handed_over.clone())
    };
    view! {
        <h3 class="subsection">"Password reset link"</h3>
        <p class="hint">
            "For a contributor who lost their password. The link sets a new one once within the hour, "
            "signs out every browser and revokes the account's API tokens. It is recorded in the audit log."
        </p>
        {move || fresh().map(|link| view! {
            <div id="reset-link">
                <ShownOnce
                    what="The reset link."
                    secret=link
                    usage="Send it to the contributor by a channel you trust; it works once."
                />
            </div>
        })}
        <ActionForm action=reset attr:class="inline-form" attr:id="reset-link-form">
            <CsrfField />
            <label>
                <span>"Contributor"</span>
                <input type="text" name="handle" placeholder="their public name" maxlength="32" required />
            </label>
            <label>
                <span>"Why"</span>
                <input type="text" name="reason" placeholder="how they proved the account is theirs" maxlength="300" required />
            </label>
            <button type="submit" class="button">"Issue link"</button>
        </ActionForm>
        <FormError error=action_error(reset) />
    }
}
