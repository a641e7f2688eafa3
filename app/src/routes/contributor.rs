//! A contributor's public profile: phases reached and submission history, and on the
//! viewer's own profile their API tokens, payout account, password and sessions.

use ascent_domain::format;
use ascent_domain::views::{Role, SubmissionView};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::components::account::{Account, AccountActions};
use crate::components::forms::{action_error, CsrfField, FormError};
use crate::components::tokens::{ApiTokens, TokenActions};
use crate::functions::people::{
    load_contributor_page, ContributorPageData, Payout, SetPayoutAccount,
};
use crate::routes::not_found::found_or_not_found;

#[component]
pub fn ContributorPage() -> impl IntoView {
    let params = use_params_map();
    let handle = move || params.read().get("handle").unwrap_or_default();
    let actions = TokenActions::new();
    let payout = ServerAction::<SetPayoutAccount>::new();
    let account = AccountActions::new();
    // One resource for the whole page, as on the console: creating or revoking a token,
    // or setting the payout account, reads the page again.
    let page = Resource::new(
        move || {
            (
                handle(),
                actions.create.version().get(),
                actions.revoke.version().get(),
                payout.version().get(),
                account.change_password.version().get(),
                account.sign_out_others.version().get(),
            )
        },
        |(handle, ..)| load_contributor_page(handle),
    );
    view! {
        <Transition fallback=|| view! { <p class="loading">"Loading profile…"</p> }>
            {move || Suspend::new(async move {
                found_or_not_found(page.await, |data| view! { <Profile data actions payout account /> }.into_any())
            })}
        </Transition>
    }
}

/// Points earned phase by phase, and on one's own profile where to pay them.
#[component]
fn Rewards(
    rewards: Vec<(u8, u64, u64)>,
    account: Option<Payout>,
    payout: ServerAction<SetPayoutAccount>,
) -> impl IntoView {
    let total: u64 = rewards.iter().map(|(_, _, points)| points).sum();
    let items = rewards
        .into_iter()
        .map(|(phase, rank, points)| {
            view! {
                <li>
                    <a href=format!("/phases/{phase}")>{format!("Phase {phase}")}</a>
                    <span class="muted">{format!(" — #{rank}: ")}</span>
                    <strong>{format!("{points} points")}</strong>
                </li>
            }
        })
        .collect_view();
    let form = account.map(|Payout { account: current }| {
        let shown = current.clone().unwrap_or_default();
        let status = current.map_or_else(
            || "No payout account yet: points are paid once you set one.".to_owned(),
            |a| format!("Points are paid to {a}."),
        );
        view! {
            <p class="hint" id="payout-status">{status}</p>
            <ActionForm action=payout attr:class="inline-form" attr:id="payout-form">
                <CsrfField />
                <label>
                    <span>"Payout account (NEAR account id)"</span>
                    <input type="text" name="account" value=shown placeholder="e.g. ada.near" maxlength="64" />
                </label>
                <button type="submit" class="button">"Save"</button>
            </ActionForm>
            <FormError error=action_error(payout) />
        }
    });
    view! {
        <section class="panel" id="rewards">
            <h2>"Rewards"</h2>
            <p class="stat-line"><strong id="points-total">{format!("{total} points")}</strong>" earned"</p>
            <ul class="plain-list">{items}</ul>
            {form}
        </section>
    }
}

#[component]
fn Profile(
    data: ContributorPageData,
    actions: TokenActions,
    payout: ServerAction<SetPayoutAccount>,
    account: AccountActions,
) -> impl IntoView {
    let ContributorPageData {
        profile,
        tokens,
        rewards,
        payout: own_payout,
        account: account_panel,
    } = data;
    let rewards = (!rewards.is_empty() || own_payout.is_some())
        .then(|| view! { <Rewards rewards account=own_payout payout /> }.into_any());
    let phases = if profile.phases.is_empty() {
        view! { <p class="empty">"Has not taken part in a phase yet."</p> }.into_any()
    } else {
        let items = profile
            .phases
            .into_iter()
            .map(|reached| {
                let href = format!("/phases/{}", reached.phase);
                let standing = match (reached.rank, reached.best_loss, reached.advanced) {
                    (Some(rank), Some(loss), Some(_)) => {
                        format!("finished #{rank} · private loss {}", format::loss(loss))
                    }
                    (Some(rank), Some(loss), None) => {
                        format!("rank {rank} · best loss {}", format::loss(loss))
                    }
                    _ => "no scored submission yet".to_owned(),
                };
                let advanced = reached.advanced.map(|advanced| {
                    if advanced {
                        view! { <span class="badge advances">"advanced"</span> }.into_any()
                    } else {
                        view! { <span class="badge state-draft">"did not advance"</span> }
                            .into_any()
                    }
                });
                view! {
                    <li>
                        <a href=href>{format!("Phase {}: {}", reached.phase, reached.title)}</a>
                        <span class="muted">{format!(" — {standing} ")}</span>
                        {advanced}
                    </li>
                }
            })
            .collect_view();
        view! { <ul class="plain-list">{items}</ul> }.into_any()
    };
    let role = (profile.role == Role::Organizer)
        .then(|| view! { <span class="badge state-open">"organizer"</span> });
    view! {
        <Title text=profile.handle.clone() />
        <section class="profile-header">
            <div class="title-row">
                <h1>{profile.handle.clone()}</h1>
                {role}
            </div>
            <p class="muted">{format!("Joined {}", format::date(profile.joined_at))}</p>
        </section>
        {(!profile.eligible.is_empty()).then(|| {
            let items = profile
                .eligible
                .iter()
                .map(|(phase, why)| {
                    let how = if why == "promoted" {
                        format!("promoted from phase {}", phase.saturating_sub(1))
                    } else {
                        "invited by the organizers".to_owned()
                    };
                    view! {
                        <li>
                            <a href=format!("/phases/{phase}")>{format!("Phase {phase}")}</a>
                            <span class="muted">{format!(" — {how}")}</span>
                        </li>
                    }
                })
                .collect_view();
            view! {
                <section class="panel eligible" id="eligible">
                    <h2>"May enter"</h2>
                    <ul class="plain-list">{items}</ul>
                </section>
            }
        })}
        <section class="panel" id="phases-reached">
            <h2>"Phases"</h2>
            {phases}
        </section>
        {rewards}
        <section class="panel">
            <h2>"Submissions"</h2>
            <SubmissionList submissions=profile.submissions />
        </section>
        {tokens.map(|panel| view! { <ApiTokens panel actions /> })}
        {account_panel.map(|panel| view! { <Account panel actions=account /> })}
    }
}

#[component]
pub fn SubmissionList(submissions: Vec<SubmissionView>) -> impl IntoView {
    if submissions.is_empty() {
        return view! { <p class="empty">"No submissions yet."</p> }.into_any();
    }
    let rows = submissions
        .into_iter()
        .map(|s| {
            let href = format!("/submissions/{}", s.id);
            let phase = format!("/phases/{}", s.phase);
            let loss = s.loss.map_or_else(|| "—".to_owned(), format::loss);
            let state = format!("badge sub-{}", s.state);
            view! {
                <tr>
                    <td><a href=href>{format!("#{}", s.id)}</a></td>
                    <td><a href=phase>{format!("Phase {}", s.phase)}</a></td>
                    <td><span class=state>{s.state.clone()}</span></td>
                    <td class="num">{loss}</td>
                    <td>{format::datetime(s.created_at)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table>
                <thead>
                    <tr>
                        <th scope="col">"Submission"</th>
                        <th scope="col">"Phase"</th>
                        <th scope="col">"State"</th>
                        <th class="num" scope="col">"Loss"</th>
                        <th scope="col">"Submitted"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}
