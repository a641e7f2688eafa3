//! Home: the seven-phase timeline and how to take part.

use ascent_domain::format;
use ascent_domain::views::PhaseSummary;
use ascent_domain::PhaseState;
use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::phase_bits::StateBadge;
use crate::components::scaling_chart::ScalingChart;
use crate::functions::phases::home_page;

/// The phase to highlight: the open one, else the next to open, else the last.
pub fn current_phase(phases: &[PhaseSummary]) -> Option<u8> {
    phases
        .iter()
        .find(|p| p.state == PhaseState::Open)
        .or_else(|| phases.iter().find(|p| p.state == PhaseState::Upcoming))
        .or_else(|| phases.last())
        .map(|p| p.number)
}

#[component]
pub fn HomePage() -> impl IntoView {
    let home = Resource::new(|| (), |_| home_page());
    view! {
        <Title text="" />
        <section class="hero">
            <h1>"Grow an open language model, one phase at a time."</h1>
            <p class="lede">
                "Ascent is an open competition in seven phases, from a 500-million-parameter prototype to a 1.4-trillion-parameter model. "
                "Anyone can submit a checkpoint; every checkpoint is scored on held-out text; the best of each phase advance to the next, larger one."
            </p>
        </section>
        <section id="phases" class="timeline-section">
            <h2>"The seven phases"</h2>
            <Suspense fallback=|| view! { <p class="loading">"Loading phases…"</p> }>
                {move || Suspend::new(async move {
                    match home.await {
                        Ok(data) if data.phases.is_empty() => view! {
                            <p class="empty">"No phases are configured yet. An organizer loads them with "<code>"ascent admin phases load"</code>"."</p>
                        }.into_any(),
                        Ok(data) => view! {
                            <Timeline phases=data.phases.clone() />
                            <section class="scaling panel" aria-labelledby="scaling-heading">
                                <h2 id="scaling-heading">"The scaling curve"</h2>
                                <p class="hint">"Each phase's best loss against its parameter cap: as the models grow, the best loss should fall."</p>
                                <ScalingChart phases=data.phases />
                            </section>
                            <LogHead head=data.log_head server_url=data.server_url />
                        }.into_any(),
                        Err(e) => view! { <p class="form-error">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
        <section id="take-part" class="take-part">
            <h2>"How to take part"</h2>
            <ol class="steps">
                <li>
                    <h3>"Register"</h3>
                    <p><a href="/register">"Create an account"</a>" with an email address and a public name. Phase 1 is open to everyone."</p>
                </li>
                <li>
                    <h3>"Train within the limits"</h3>
                    <p>"Each phase sets the architecture (Llama), the vocabulary, a parameter cap and a minimum context. Read them on the phase's page."</p>
                </li>
                <li>
                    <h3>"Submit a checkpoint"</h3>
                    <p>"Upload "<code>"config.json"</code>" and safetensors weights. The evaluator scores the mean cross-entropy on held-out text it never publishes; lower is better."</p>
                </li>
                <li>
                    <h3>"Advance"</h3>
                    <p>"When a phase closes, the final ranking is decided on a hidden part of the held-out data. The best advance to the next, larger phase."</p>
                </li>
            </ol>
        </section>
    }
}

/// Where the public log stands, and how anyone checks it.
#[component]
fn LogHead(head: Option<(u64, String)>, server_url: String) -> impl IntoView {
    let (entries, hash) = head.unwrap_or_else(|| (0, "—".to_owned()));
    view! {
        <section class="panel public-log" id="public-log" aria-labelledby="log-heading">
            <h2 id="log-heading">"Public log"</h2>
            <p class="hint">
                "Every submission, signed score, re-run, disqualification, phase move, promotion and invitation is appended to a hash-chained log: each entry commits to the one before it, so history cannot be rewritten unnoticed. "
                <a href="/api/log">"Read it"</a>" or check it against the leaderboards yourself."
            </p>
            <dl class="stats">
                <div class="stat"><dt>"entries"</dt><dd id="log-entries">{entries}</dd></div>
                <div class="stat wide"><dt>"head hash"</dt><dd><code id="log-head" class="hash">{hash}</code></dd></div>
            </dl>
            <pre class="command"><code>{format!("ascent-eval verify --server {server_url}")}</code></pre>
        </section>
    }
}

#[component]
fn Timeline(phases: Vec<PhaseSummary>) -> impl IntoView {
    let current = current_phase(&phases);
    let items = phases
        .into_iter()
        .map(|phase| {
            let is_current = Some(phase.number) == current;
            let class = if is_current { "phase-card current" } else { "phase-card" };
            let href = format!("/phases/{}", phase.number);
            let best = phase.best_loss.map_or_else(|| "—".to_owned(), format::loss);
            view! {
                <li class=class>
                    <a class="phase-link" href=href aria-current=is_current.then_some("step")>
                        <div class="phase-head">
                            <span class="phase-number">{format!("Phase {}", phase.number)}</span>
                            <StateBadge state=phase.state />
                        </div>
                        <h3>{phase.title}</h3>
                        <p class="dates">{format!("{} – {}", format::date(phase.opens_at), format::date(phase.closes_at))}</p>
                        <dl class="facts">
                            <div><dt>"Max params"</dt><dd>{format::parameters(phase.max_parameters)}</dd></div>
                            <div><dt>"Contributors"</dt><dd>{phase.contributors}</dd></div>
                            <div><dt>"Best loss"</dt><dd>{best}</dd></div>
                        </dl>
                        {phase.advanced.map(|n| {
                            let text = if phase.number < 7 {
                                format!("{n} advanced to phase {}", phase.number + 1)
                            } else {
                                format!("{n} winners")
                            };
                            view! { <p class="advanced">{text}</p> }
                        })}
                    </a>
                </li>
            }
        })
        .collect_view();
    view! { <ol class="timeline">{items}</ol> }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(number: u8, state: PhaseState) -> PhaseSummary {
        PhaseSummary {
            number,
            title: String::new(),
            summary: String::new(),
            state,
            opens_at: 0,
            closes_at: 0,
            max_parameters: 0,
            vocab_size: 0,
            seq_len: 0,
            contributors: 0,
            submissions: 0,
            best_loss: None,
            advanced: None,
        }
    }

    #[test]
    fn the_open_phase_is_current_else_the_next_upcoming() {
        use PhaseState::*;
        let open = [phase(1, Finalized), phase(2, Open), phase(3, Upcoming)];
        assert_eq!(current_phase(&open), Some(2));
        let between = [phase(1, Finalized), phase(2, Closed), phase(3, Upcoming)];
        assert_eq!(current_phase(&between), Some(3));
        let over = [phase(1, Finalized), phase(2, Finalized)];
        assert_eq!(current_phase(&over), Some(2));
        assert_eq!(current_phase(&[]), None);
    }
}
