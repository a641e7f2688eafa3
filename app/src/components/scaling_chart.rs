//! The server-rendered SVG scaling curve of the competition: each phase's best loss
//! against its parameter cap, on a log scale, with a table of the same numbers.

use ascent_domain::format;
use ascent_domain::views::PhaseSummary;
use leptos::prelude::*;

use crate::chart::{scaling_chart, Frame, PhaseCap};

#[component]
pub fn ScalingChart(phases: Vec<PhaseSummary>) -> impl IntoView {
    let caps: Vec<PhaseCap> = phases
        .iter()
        .map(|p| PhaseCap {
            phase: p.number,
            max_parameters: p.max_parameters,
            best_loss: p.best_loss,
        })
        .collect();
    let Some(chart) = scaling_chart(&caps, format::parameters, Frame::scaling()) else {
        return ().into_any();
    };
    let f = chart.frame;
    let view_box = format!("0 0 {} {}", f.width, f.height);
    let plot_bottom = f.height - f.bottom;
    let plot_right = f.width - f.right;
    let decimals = chart.y_decimals;
    let y_ticks = chart
        .y_ticks
        .iter()
        .map(|&(y, value)| {
            view! {
                <line class="grid" x1=f.left x2=plot_right y1=y y2=y />
                <text class="tick" x=f.left - 8.0 y=y + 4.0 text-anchor="end">{format!("{value:.decimals$}")}</text>
            }
        })
        .collect_view();
    let x_ticks = chart
        .x_ticks
        .iter()
        .map(|&(x, value)| {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let label = format::parameters(value.round() as u64);
            view! {
                <line class="axis" x1=x x2=x y1=plot_bottom y2=plot_bottom + 5.0 />
                <text class="tick" x=x y=plot_bottom + 19.0 text-anchor="middle">{label}</text>
            }
        })
        .collect_view();
    let guides = chart
        .caps
        .iter()
        .map(|c| {
            let scored = chart.points.iter().any(|p| p.phase == c.phase);
            let class = if scored { "cap" } else { "cap unscored" };
            let label = c.labelled.then(|| {
                view! {
                    <text class="cap-label" x=c.x y=f.top - 20.0 text-anchor="middle">{format!("Phase {}", c.phase)}</text>
                    <text class="tick" x=c.x y=f.top - 7.0 text-anchor="middle">{format::parameters(c.max_parameters)}</text>
                }
            });
            view! {
                <g class=class data-phase=c.phase>
                    <line class="cap-guide" x1=c.x x2=c.x y1=f.top - 2.0 y2=plot_bottom />
                    {label}
                </g>
            }
        })
        .collect_view();
    let points = chart
        .points
        .iter()
        .map(|p| {
            let title = format!(
                "Phase {}: best loss {} with at most {} parameters",
                p.phase,
                format::loss(p.loss),
                format::parameters(p.max_parameters)
            );
            view! {
                <g class="scaling-point" data-phase=p.phase>
                    <circle class="mark" cx=p.x cy=p.y r="4.5">
                        <title>{title}</title>
                    </circle>
                    <text class="count" x=p.x + 8.0 y=p.y - 8.0>{format::loss(p.loss)}</text>
                </g>
            }
        })
        .collect_view();
    let empty = chart.points.is_empty().then(|| {
        view! {
            <text class="tick" x=(f.left + plot_right) / 2.0 y=(f.top + plot_bottom) / 2.0 text-anchor="middle">
                "No phase has a scored submission yet."
            </text>
        }
    });
    let scored = chart.points.len();
    let summary = match (chart.points.first(), chart.points.last()) {
        (Some(first), Some(last)) if scored > 1 => format!(
            "Best loss against parameter cap: {scored} of {} phases scored, from {} at {} parameters to {} at {}.",
            chart.caps.len(),
            format::loss(first.loss),
            format::parameters(first.max_parameters),
            format::loss(last.loss),
            format::parameters(last.max_parameters)
        ),
        (Some(only), _) => format!(
            "Best loss against parameter cap: 1 of {} phases scored so far, phase {} with {} at {} parameters.",
            chart.caps.len(),
            only.phase,
            format::loss(only.loss),
            format::parameters(only.max_parameters)
        ),
        _ => format!(
            "Best loss against parameter cap: none of the {} phases has a scored submission yet.",
            chart.caps.len()
        ),
    };
    let description = "Each phase is a vertical line at its parameter cap, on a log scale. \
        A phase with scored submissions has a dot at its best loss (lower is better); the dots are joined by a line.";
    let rows = phases
        .iter()
        .map(|p| {
            view! {
                <tr>
                    <td>{format!("Phase {}", p.number)}</td>
                    <td class="num">{format::parameters(p.max_parameters)}</td>
                    <td class="num">{p.best_loss.map_or_else(|| "—".to_owned(), format::loss)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <figure class="chart scaling-chart">
            <div class="chart-frame">
            <svg viewBox=view_box role="img" aria-labelledby="scaling-chart-title scaling-chart-desc" preserveAspectRatio="xMidYMid meet">
                <title id="scaling-chart-title">{summary.clone()}</title>
                <desc id="scaling-chart-desc">{description}</desc>
                {y_ticks}
                {guides}
                <line class="axis" x1=f.left x2=plot_right y1=plot_bottom y2=plot_bottom />
                {x_ticks}
                <text class="axis-title" x=(f.left + plot_right) / 2.0 y=f.height - 6.0 text-anchor="middle">
                    "Parameter cap (log scale)"
                </text>
                <text class="axis-title" x=f.left - 8.0 y=f.top - 20.0 text-anchor="end">"Best loss"</text>
                {chart.path.map(|d| view! { <path class="scaling-line" d=d /> })}
                {points}
                {empty}
            </svg>
            </div>
            <figcaption>{summary}</figcaption>
            <details class="chart-data">
                <summary>"The numbers"</summary>
                <table>
                    <thead>
                        <tr>
                            <th scope="col">"Phase"</th>
                            <th class="num" scope="col">"Parameter cap"</th>
                            <th class="num" scope="col">"Best loss"</th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </details>
        </figure>
    }
    .into_any()
}
