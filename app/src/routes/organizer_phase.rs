//! The console's page for one phase: move it, review its final ranking, adjust the
//! advancement list, finalize and promote, edit its settings. Organizers only.

use ascent_domain::views::FinalBoard;
use ascent_domain::{format, PhaseState};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::components::console::{refusal, ConsoleNav};
use crate::components::final_board::FinalTable;
use crate::components::forms::{action_error, CsrfField, FormError};
use crate::components::phase_bits::StateBadge;
use crate::functions::phase_admin::{
    phase_review, AdjustAdvancement, EditPhase, FinalizePhase, Invite, MovePhase, PhaseForm,
    PhaseReviewData,
};

#[derive(Clone, Copy)]
struct Actions {
    moved: ServerAction<MovePhase>,
    adjust: ServerAction<AdjustAdvancement>,
    finalize: ServerAction<FinalizePhase>,
    edit: ServerAction<EditPhase>,
    invite: ServerAction<Invite>,
}

#[component]
pub fn OrganizerPhasePage() -> impl IntoView {
    let params = use_params_map();
    let actions = Actions {
        moved: ServerAction::new(),
        adjust: ServerAction::new(),
        finalize: ServerAction::new(),
        edit: ServerAction::new(),
        invite: ServerAction::new(),
    };
    let number = move || {
        params
            .read()
            .get("number")
            .and_then(|n| n.parse::<u8>().ok())
    };
    let data = Resource::new(
        move || {
            (
                number(),
                actions.moved.version().get(),
                actions.adjust.version().get(),
                actions.finalize.version().get(),
                actions.edit.version().get(),
                actions.invite.version().get(),
            )
        },
        |(number, ..)| async move {
            match number {
                Some(number) => phase_review(number).await,
                None => Ok(None),
            }
        },
    );
    view! {
        <Transition fallback=|| view! { <p class="loading">"Loading phase…"</p> }>
            {move || Suspend::new(async move {
                let next = format!("/organizer/phases/{}", number().unwrap_or(1));
                match data.await {
                    Ok(Some(review)) => view! { <Review review actions /> }.into_any(),
                    Ok(None) => view! {
                        <section class="not-found">
                            <p class="code">"404"</p>
                            <h1>"No such phase"</h1>
                            <p><a class="button" href="/organizer">"Back to the console"</a></p>
                        </section>
                    }
                    .into_any(),
                    Err(e) => refusal(e, &next),
                }
            })}
        </Transition>
    }
}

#[component]
fn Review(review: PhaseReviewData, actions: Actions) -> impl IntoView {
    let summary = review.detail.summary.clone();
    let number = summary.number;
    let title = format!("Phase {number}: {}", summary.title);
    let public_page = format!("/phases/{number}");
    view! {
        <Title text=format!("{title} · console") />
        <section class="profile-header">
            <p class="crumbs"><a href="/organizer">"Console"</a>" › "{format!("Phase {number}")}</p>
            <div class="title-row">
                <h1>{title}</h1>
                <StateBadge state=summary.state />
            </div>
            <p class="muted">
                {format!("Opens {} · closes {} · {} contributors · {} submissions · ", format::datetime(summary.opens_at), format::datetime(summary.closes_at), summary.contributors, summary.submissions)}
                <a href=public_page>"public page"</a>
            </p>
            <ConsoleNav current="" />
        </section>
        <StatePanel number state=summary.state action=actions.moved />
        {review.board.map(|board| view! { <AdvancementPanel board actions /> })}
        <SettingsPanel review=review.detail.clone() state=summary.state action=actions.edit />
        {(number > 1).then(|| view! { <EntrantsPanel number state=summary.state entrants=review.entrants.clone() action=actions.invite /> })}
        <section class="panel" id="held-out">
            <h2>"Held-out data"</h2>
            {match review.data.clone() {
                Some((name, tokens, sha256)) => view! {
                    <dl class="rules-list">
                        <dt>"File"</dt><dd id="data-name">{name}</dd>
                        <dt>"Tokens"</dt><dd>{tokens}</dd>
                        <dt>"SHA-256"</dt><dd><code class="hash" id="data-sha256">{sha256}</code></dd>
                    </dl>
                }
                .into_any(),
                None => view! { <p class="form-error">"No held-out data yet: nobody can submit to this phase until it has some."</p> }.into_any(),
            }}
            {if review.data.is_some() && summary.submissions > 0 {
                view! {
                    <p class="hint">{format!("Locked: {} submissions were scored or queued on it.", summary.submissions)}</p>
                }
                .into_any()
            } else {
                view! { <DataForm number csrf=review.csrf_token.clone() replacing=review.data.is_some() /> }.into_any()
            }}
            <p class="hint">
                "Validated (format, length, vocabulary), stored by hash and served only to workers holding a job of this phase; never to contributors. From a file on the server itself: "
                <code>{format!("ascent admin data add --phase {number} FILE")}</code>"."
            </p>
        </section>
    }
}

/// Who may enter a phase after the first, and the form to invite someone.
#[component]
fn EntrantsPanel(
    number: u8,
    state: PhaseState,
    entrants: Vec<(String, String, i64)>,
    action: ServerAction<Invite>,
) -> impl IntoView {
    let invited = entrants.iter().filter(|e| e.1 == "invited").count();
    let summary = format!(
        "{} may enter: {} promoted from phase {}, {invited} invited.",
        entrants.len(),
        entrants.len() - invited,
        number - 1
    );
    let rows = entrants
        .into_iter()
        .map(|(handle, why, at)| {
            view! {
                <li>
                    <a href=format!("/contributors/{handle}")>{handle.clone()}</a>
                    <span class="muted">{format!(" — {why} {}", format::date(at))}</span>
                </li>
            }
        })
        .collect_view();
    let open_to_invites = !matches!(
        state,
        PhaseState::Draft | PhaseState::Closed | PhaseState::Finalized
    );
    view! {
        <section class="panel" id="entrants">
            <h2>"Entrants"</h2>
            <p class="hint">{summary}</p>
            <ul class="plain-list">{rows}</ul>
            {open_to_invites.then(|| view! {
                <ActionForm action attr:class="inline-form" attr:id="invite-form">
                    <CsrfField />
                    <input type="hidden" name="number" value=number />
                    <label>
                        <span>"Contributor's handle"</span>
                        <input type="text" name="handle" required maxlength="40" />
                    </label>
                    <label>
                        <span>"Reason (public log and audit log)"</span>
                        <input type="text" name="reason" required maxlength="500" placeholder="e.g. scored after an outage" />
                    </label>
                    <button type="submit" class="button">"Invite"</button>
                </ActionForm>
                <FormError error=action_error(action) />
                <p class="hint">"An invited contributor may submit to this phase as if promoted; they are told in the app, and the invitation is in the public log with its reason."</p>
            })}
        </section>
    }
}

/// The hand move this phase allows now, if any: (target state, button, explanation).
fn next_move(state: PhaseState) -> Option<(PhaseState, &'static str, &'static str)> {
    match state {
        PhaseState::Draft => Some((PhaseState::Upcoming, "Publish", "A draft: only organizers see it, and the public log does not mention it. Publishing shows it to everyone, logs its settings and held-out data, and tells those promoted into it; it then opens on schedule. Phases are published in order, before their closing time.")),
        PhaseState::Upcoming => Some((PhaseState::Open, "Open now", "Submissions are accepted from now on; the opening time moves to now.")),
        PhaseState::Open => Some((PhaseState::Closed, "Close now", "No new submissions; those already received are still scored. The final ranking on the private part is then computed for review.")),
        PhaseState::Closed | PhaseState::Finalized => None,
    }
}

#[component]
fn StatePanel(number: u8, state: PhaseState, action: ServerAction<MovePhase>) -> impl IntoView {
    let body = match next_move(state) {
        Some((to, label, explanation)) => view! {
            <p>{explanation}</p>
            <ActionForm action attr:class="inline-form" attr:id="move-form">
                <CsrfField />
                <input type="hidden" name="number" value=number />
                <input type="hidden" name="to" value=to.as_str() />
                <label>
                    <span>"Reason (for the audit log)"</span>
                    <input type="text" name="reason" required maxlength="500" placeholder="e.g. the schedule was announced" />
                </label>
                <button type="submit" class="button">{label}</button>
            </ActionForm>
            <FormError error=action_error(action) />
        }
        .into_any(),
        None if state == PhaseState::Closed => view! {
            <p>"The phase is closed. Review the final ranking and the advancement list below, adjust it where needed, then finalize to promote."</p>
        }
        .into_any(),
        None => view! { <p>"The phase is finalized: its ranking and advancement list are final."</p> }.into_any(),
    };
    view! {
        <section class="panel" id="state">
            <h2>"State"</h2>
            {body}
        </section>
    }
}

#[component]
fn AdvancementPanel(board: FinalBoard, actions: Actions) -> impl IntoView {
    let number = board.phase;
    let closed = board.state == PhaseState::Closed;
    let advancing = board.advancing();
    let pending = board.pending;
    let next = if number < 7 {
        format!("phase {}", number + 1)
    } else {
        "the winners' list".to_owned()
    };
    let exports = [
        (
            format!("/api/phases/{number}/final.csv"),
            "final standings (CSV)",
        ),
        (
            format!("/api/phases/{number}/final"),
            "final standings (JSON)",
        ),
        (
            format!("/api/phases/{number}/advancement.csv"),
            "advancement list (CSV)",
        ),
        (
            format!("/api/phases/{number}/advancement"),
            "advancement list (JSON)",
        ),
        (
            "/api/rewards.csv".to_owned(),
            "reward ledger, all phases (CSV)",
        ),
        (
            "/api/rewards".to_owned(),
            "reward ledger, all phases (JSON)",
        ),
    ];
    let finalize = closed.then(|| {
        let label = format!("Finalize and promote {advancing} to {next}");
        view! {
            {(pending > 0).then(|| view! {
                <p class="form-error" role="alert">
                    {format!("{pending} submissions received before the close are still being scored; finalizing waits for them.")}
                </p>
            })}
            <ActionForm action=actions.finalize attr:class="inline-form" attr:id="finalize-form">
                <CsrfField />
                <input type="hidden" name="number" value=number />
                <label>
                    <span>"Reason (for the audit log)"</span>
                    <input type="text" name="reason" required maxlength="500" placeholder="e.g. reviewed; no objections" />
                </label>
                <button type="submit" class="button" disabled={pending > 0}>{label}</button>
            </ActionForm>
            <FormError error=action_error(actions.finalize) />
        }
    });
    view! {
        <section class="panel" id="advancement">
            <h2>{if closed { "Final ranking and proposed advancement" } else { "Final ranking and advancement" }}</h2>
            <p class="hint">
                {board.rule.clone()}
                {if closed {
                    format!(" The rule proposes {advancing}; add or remove contributors with a reason, then finalize.")
                } else {
                    format!(" {advancing} advanced.")
                }}
            </p>
            <FinalTable board adjust=actions.adjust />
            <FormError error=action_error(actions.adjust) />
            {finalize}
            <p class="exports">
                "Exports: "
                {exports
                    .into_iter()
                    .map(|(href, label)| view! { <a href=href>{label}</a>" " })
                    .collect_view()}
            </p>
        </section>
    }
}

#[component]
fn SettingsPanel(
    review: ascent_domain::views::PhaseDetail,
    state: PhaseState,
    action: ServerAction<EditPhase>,
) -> impl IntoView {
    let number = review.summary.number;
    if matches!(state, PhaseState::Closed | PhaseState::Finalized) {
        return view! {
            <section class="panel" id="settings">
                <h2>"Settings"</h2>
                <p class="muted">"The phase is closed: its settings are final."</p>
            </section>
        }
        .into_any();
    }
    let form = PhaseForm::of(&review.spec);
    let frozen = review.summary.submissions > 0;
    let rules = [
        ("top_k", "best K"),
        ("top_fraction", "best fraction"),
        ("within_margin", "within a margin of the best"),
    ];
    let rule_options = rules
        .into_iter()
        .map(|(value, label)| {
            let selected = form.advancement_rule == value;
            view! { <option value=value selected=selected>{label}</option> }
        })
        .collect_view();
    let reward_options = [
        ("rank_weighted", "by place (1/place)"),
        ("improvement", "by gain over a uniform guess"),
    ]
    .into_iter()
    .map(|(value, label)| {
        let selected = form.reward_rule == value;
        view! { <option value=value selected=selected>{label}</option> }
    })
    .collect_view();
    let field = |name: &'static str,
                 label: &'static str,
                 value: String,
                 kind: &'static str,
                 locked: bool| {
        let hidden = locked.then(|| value.clone());
        view! {
            <label>
                <span>{label}</span>
                <input type=kind name=format!("form[{name}]") value=value required disabled=locked step=(kind == "number").then_some("any") />
                {hidden.map(|value| view! { <input type="hidden" name=format!("form[{name}]") value=value /> })}
            </label>
        }
    };
    let open = state == PhaseState::Open;
    view! {
        <section class="panel" id="settings">
            <h2>"Settings"</h2>
            <p class="hint">
                "Times are UTC. "
                {frozen.then_some("The phase has submissions: the model limits, the evaluation and epsilon are locked, since they decided the scores already given. ")}
                "Every change is checked against the neighbouring phases and recorded with its reason."
            </p>
            <ActionForm action attr:class="settings-form" attr:id="settings-form">
                <CsrfField />
                <input type="hidden" name="number" value=number />
                <fieldset>
                    <legend>"Phase"</legend>
                    {field("title", "Title", form.title.clone(), "text", false)}
                    {field("summary", "Summary", form.summary.clone(), "text", false)}
                    {field("opens_at", "Opens at (UTC)", form.opens_at.clone(), "datetime-local", open)}
                    {field("closes_at", "Closes at (UTC)", form.closes_at.clone(), "datetime-local", false)}
                </fieldset>
                <fieldset>
                    <legend>"Model and evaluation"</legend>
                    {field("max_parameters", "Parameter cap", form.max_parameters.clone(), "number", frozen)}
                    {field("seq_len", "Window length (tokens)", form.seq_len.clone(), "number", frozen)}
                    {field("windows", "Windows", form.windows.clone(), "number", frozen)}
                    {field("public_share", "Public share (0–1)", form.public_share.clone(), "number", frozen)}
                    {field("epsilon", "Epsilon (relative)", form.epsilon.clone(), "number", frozen)}
                    {field("time_limit_minutes", "Time limit per evaluation (minutes)", form.time_limit_minutes.clone(), "number", false)}
                </fieldset>
                <fieldset>
                    <legend>"Submissions and advancement"</legend>
                    {field("per_day", "Submissions per day", form.per_day.clone(), "number", false)}
                    {field("max_bytes", "Largest upload (bytes)", form.max_bytes.clone(), "number", false)}
                    <label>
                        <span>"Advancement rule"</span>
                        <select name="form[advancement_rule]">{rule_options}</select>
                    </label>
                    {field("advancement_value", "Rule value (K, fraction or margin)", form.advancement_value.clone(), "number", false)}
                    <label class="check">
                        <input type="checkbox" name="form[open_weights]" value="on" checked={form.open_weights == "on"} />
                        <span>"Publish the promoted checkpoints once finalized (open weights)"</span>
                    </label>
                    <label class="check">
                        <input type="checkbox" name="form[require_attestation]" value="on" checked={form.require_attestation == "on"} disabled=frozen />
                        <span>"Accept scores only from attested workers (TEE)"</span>
                    </label>
                    {frozen.then(|| view! { <input type="hidden" name="form[require_attestation]" value=form.require_attestation.clone() /> })}
                    <label class="span-all">
                        <span>"Evaluation key for encrypted submissions (age1…; empty: none)"</span>
                        <input type="text" class="mono" name="form[evaluation_key]" value=form.evaluation_key.clone() disabled=frozen spellcheck="false" autocomplete="off" placeholder="age1…" />
                        {frozen.then(|| view! { <input type="hidden" name="form[evaluation_key]" value=form.evaluation_key.clone() /> })}
                        <span class="hint">"Make the key pair on a worker machine with " <code>"ascent-eval evaluation-key FILE"</code> " and start the phase's workers with " <code>"--evaluation-key FILE"</code> ". Only the public half goes here; the server never sees the private one."</span>
                    </label>
                </fieldset>
                <fieldset>
                    <legend>"Rewards"</legend>
                    {field("reward_budget", "Points shared at finalization", form.reward_budget.clone(), "number", false)}
                    <label>
                        <span>"Shared"</span>
                        <select name="form[reward_rule]">{reward_options}</select>
                    </label>
                </fieldset>
                <label>
                    <span>"Reason (for the audit log)"</span>
                    <input type="text" name="reason" required maxlength="500" />
                </label>
                <button type="submit" class="button">"Save settings"</button>
            </ActionForm>
            <FormError error=action_error(action) />
            {move || action.value().get().and_then(Result::ok).map(|()| view! { <p class="notice" role="status">"Saved."</p> })}
        </section>
    }
    .into_any()
}

/// Uploads a token shard as the phase's held-out data; `data-upload.js` sends it (one
/// request, with progress) and reloads the page with the result.
#[component]
fn DataForm(number: u8, csrf: String, replacing: bool) -> impl IntoView {
    let label = if replacing {
        "Replace the held-out data"
    } else {
        "Upload held-out data"
    };
    view! {
        <form id="data-form" class="stack" data-phase=number data-csrf=csrf novalidate>
            <label class="field">
                <span>"Token shard"</span>
                <input id="data-file" type="file" name="file" accept=".bin" />
                <span class="field-hint">"256 int32 header words (magic 20240520, version 1 = u16 or 2 = u32 tokens, token count), then the tokens; every token below the phase's vocabulary size."</span>
            </label>
            <progress id="data-bar" max="100" value="0" hidden></progress>
            <p id="data-message" class="upload-message" role="status" aria-live="polite"></p>
            <div class="actions">
                <button id="data-start" type="submit" class="button">{label}</button>
            </div>
        </form>
        <script type="module" src="/data-upload.js"></script>
    }
}
