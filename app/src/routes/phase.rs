//! A phase's page: rules and limits, leaderboard, best score over time.

use ascent_domain::format;
use ascent_domain::phase::PhaseSpec;
use ascent_domain::views::FinalBoard;
use ascent_domain::PhaseState;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::components::final_board::FinalTable;
use crate::components::leaderboard::LeaderboardTable;
use crate::components::live::follow_events;
use crate::components::phase_bits::StateBadge;
use crate::components::score_chart::ScoreChart;
use crate::functions::phases::{phase_page, PhasePageData};
use crate::functions::session::use_session;
use crate::routes::not_found::found_or_not_found;

#[component]
pub fn PhasePage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let key = move || {
        let number = params
            .read()
            .get("number")
            .and_then(|n| n.parse::<u8>().ok());
        let page = query
            .read()
            .get("page")
            .and_then(|p| p.parse::<u64>().ok())
            .unwrap_or(1)
            .max(1);
        (number, page)
    };
    let data = Resource::new(key, |(number, page)| async move {
        match number {
            Some(number) => phase_page(number, page).await,
            None => Ok(None),
        }
    });
    // The leaderboard follows the phase live: every change (a score landed, a
    // submission arrived) refetches the page's data. The stream's first event is the
    // state the page was rendered from.
    let skip_first = StoredValue::new(true);
    follow_events(
        move || {
            key().0.map(|number| {
                skip_first.set_value(true);
                format!("/api/phases/{number}/events")
            })
        },
        "phase",
        move |_| {
            if skip_first.get_value() {
                skip_first.set_value(false);
            } else {
                data.refetch();
            }
            true
        },
    );
    // A transition, not a suspense: a live refresh keeps showing the old board until
    // the new one is ready.
    view! {
        <Transition fallback=|| view! { <p class="loading">"Loading phase…"</p> }>
            {move || Suspend::new(async move {
                found_or_not_found(data.await, |page| view! { <PhaseView page /> }.into_any())
            })}
        </Transition>
    }
}

#[component]
fn PhaseView(page: PhasePageData) -> impl IntoView {
    let summary = page.detail.summary;
    let spec = page.detail.spec;
    let title = format!("Phase {}: {}", summary.number, summary.title);
    let chart_end = page.now.clamp(summary.opens_at, summary.closes_at);
    let csv = format!("/api/phases/{}/leaderboard.csv", summary.number);
    let json = format!("/api/phases/{}/leaderboard", summary.number);
    let open_board = page.final_board.is_none();
    view! {
        <Title text=title.clone() />
        <section class="phase-header">
            <p class="crumbs"><a href="/#phases">"All phases"</a></p>
            <div class="title-row">
                <h1>{title}</h1>
                <StateBadge state=summary.state />
            </div>
            <p class="lede">{summary.summary.clone()}</p>
            <p class="dates">
                {format!("Opens {} · closes {}", format::datetime(summary.opens_at), format::datetime(summary.closes_at))}
            </p>
            {(summary.state == PhaseState::Open).then(|| view! { <SubmitLink number=summary.number /> })}
        </section>
        {page.final_board.map(|board| view! { <FinalPanel board next=summary.number + 1 /> })}
        <section class="phase-grid">
            <div class="panel">
                <h2>{if open_board { "Leaderboard" } else { "Public leaderboard" }}</h2>
                <p class="hint">
                    {format!("{} contributors · {} submissions · ", summary.contributors, summary.submissions)}
                    {if open_board {
                        "Ranked by the public part of the held-out data while the phase is open. "
                    } else {
                        "As it stood on the public part of the data; the final ranking above decides. "
                    }}
                    <a href=json>"JSON"</a>" · "<a href=csv>"CSV"</a>
                </p>
                <LeaderboardTable board=page.leaderboard />
                <h2>"Best score over time"</h2>
                <ScoreChart points=page.best_over_time scored=page.scored start=summary.opens_at end=chart_end />
            </div>
            <aside class="panel rules">
                <Rules spec number=summary.number entrants=page.entrants />
            </aside>
        </section>
    }
}

/// A closed phase's final ranking, decided on the private part of the data.
#[component]
fn FinalPanel(board: FinalBoard, next: u8) -> impl IntoView {
    let phase = board.phase;
    let advancing = board.advancing();
    let status = match board.state {
        PhaseState::Finalized if next <= 7 => format!(
            "Final. {advancing} of {} contributors advanced to phase {next}. {}",
            board.rows.len(),
            board.rule
        ),
        PhaseState::Finalized => format!("Final. {advancing} winners."),
        _ => {
            let pending = if board.pending > 0 {
                format!(
                    " {} submissions received before the close are still being scored.",
                    board.pending
                )
            } else {
                String::new()
            };
            format!(
                "Provisional: the phase has closed and organizers are reviewing the advancement list ({advancing} proposed). {}{pending}",
                board.rule
            )
        }
    };
    let csv = format!("/api/phases/{phase}/final.csv");
    let json = format!("/api/phases/{phase}/final");
    let advancement = format!("/api/phases/{phase}/advancement.csv");
    view! {
        <section class="panel final-panel">
            <h2>"Final ranking"</h2>
            <p class="hint">
                "Decided on the private part of the held-out data, which nobody saw while the phase was open; "
                "a later submission ranks above an earlier one only if it is better by more than epsilon. "
                <a href=json>"JSON"</a>" · "<a href=csv>"CSV"</a>" · "<a href=advancement>"advancement list (CSV)"</a>
            </p>
            <p class="final-status" role="status">{status}</p>
            <FinalTable board />
        </section>
    }
}

/// The way in for an open phase: to the submit page, or to log in first.
#[component]
fn SubmitLink(number: u8) -> impl IntoView {
    let session = use_session();
    let submit = format!("/phases/{number}/submit");
    view! {
        <p class="cta">
            <Transition fallback=|| ()>
                {move || {
                    let submit = submit.clone();
                    Suspend::new(async move {
                        let signed_in = matches!(session.info.await, Ok(info) if info.viewer.is_some());
                        if signed_in {
                            view! { <a class="button" href=submit>"Submit a checkpoint"</a> }.into_any()
                        } else {
                            let login = format!("/login?next={submit}");
                            view! {
                                <a class="button" href=login>"Log in to submit"</a>
                                <span class="muted">" New here? "<a href="/register">"Create an account"</a>"."</span>
                            }
                                .into_any()
                        }
                    })
                }}
            </Transition>
        </p>
    }
}

#[component]
fn Rules(spec: PhaseSpec, number: u8, entrants: (u64, u64)) -> impl IntoView {
    let who = if number <= 1 {
        "Every registered contributor".to_owned()
    } else {
        let (promoted, invited) = entrants;
        format!(
            "Promoted from phase {} ({promoted}) or invited by the organizers ({invited})",
            number - 1
        )
    };
    let share = format!("{:.0}%", spec.evaluation.public_share * 100.0);
    let rewards = if spec.rewards.budget == 0 {
        "This phase grants no points.".to_owned()
    } else {
        format!(
            "{} points at finalization, {}. Points are recorded in the public log and paid to the payout account on each contributor's profile.",
            spec.rewards.budget,
            spec.rewards.rule.describe()
        )
    };
    view! {
        <h2>"Rules and limits"</h2>
        <h3>"Model"</h3>
        <dl class="rules-list">
            <dt>"Architecture"</dt><dd>{spec.model.architecture.clone()}" (Hugging Face format, safetensors only)"</dd>
            <dt>"Vocabulary"</dt><dd>{format!("{} tokens", spec.model.vocab_size)}</dd>
            <dt>"Parameter cap"</dt><dd>{format!("{} ({})", format::parameters(spec.model.max_parameters), spec.model.max_parameters)}</dd>
            <dt>"Minimum context"</dt><dd>{format!("{} tokens", spec.model.min_context)}</dd>
        </dl>
        <h3>"Evaluation"</h3>
        <dl class="rules-list">
            <dt>"Held-out data"</dt><dd>{spec.evaluation.dataset.clone()}</dd>
            <dt>"Window"</dt><dd>{format!("{} tokens × {} windows", spec.evaluation.seq_len, spec.evaluation.windows)}</dd>
            <dt>"Public share"</dt><dd>{share}" of windows; the rest decide the final ranking"</dd>
            <dt>"Score"</dt><dd>"Mean cross-entropy in nats per predicted token; lower is better"</dd>
        </dl>
        <h3>"Submissions"</h3>
        <dl class="rules-list" id="rules-submissions">
            <dt>"Who"</dt><dd id="entry-rule">{who}</dd>
            <dt>"Per day"</dt><dd>{spec.submissions.per_day}</dd>
            <dt>"Largest upload"</dt><dd>{format::bytes(spec.submissions.max_bytes)}</dd>
            <dt>"Ties"</dt><dd>{format!("A later submission must beat an earlier one by more than {}% to rank above it", spec.epsilon * 100.0)}</dd>
            <dt>"Encrypted"</dt><dd id="evaluation-key">{match spec.evaluation_key.clone() {
                Some(key) => view! {
                    "Accepted: "<code>"ascent-eval submit --encrypt"</code>
                    " encrypts your files to the phase's key; only its workers can read them, and they are never published. Key: "
                    <code class="hash">{key}</code>
                }.into_any(),
                None => view! { "Not offered: this phase has no evaluation key" }.into_any(),
            }}</dd>
        </dl>
        <h3>"Advancement"</h3>
        <p>{spec.advancement.describe()}</p>
        <h3>"Rewards"</h3>
        <p id="rewards-rule">{rewards}</p>
    }
}
