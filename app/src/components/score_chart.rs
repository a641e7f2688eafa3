//! The server-rendered SVG chart of a phase's best score over time, with the number of
//! submissions scored when each record was set and by now.

use ascent_domain::format;
use ascent_domain::views::ScorePoint;
use leptos::prelude::*;

use crate::chart::{step_chart, total_text, Frame};

/// `scored`: the phase's submissions scored by now; `start`, `end`: the time axis.
#[component]
pub fn ScoreChart(points: Vec<ScorePoint>, scored: u64, start: i64, end: i64) -> impl IntoView {
    let Some(chart) = step_chart(&points, scored, start, end, Frame::default()) else {
        return view! {
            <p class="empty">"The chart of the best score over time starts with the first scored submission."</p>
        }
        .into_any();
    };
    let f = chart.frame;
    let view_box = format!("0 0 {} {}", f.width, f.height);
    let plot_bottom = f.height - f.bottom;
    let plot_right = f.width - f.right;
    let decimals = chart.y_decimals;
    let y_ticks = chart
        .y_ticks
        .into_iter()
        .map(|(y, value)| {
            view! {
                <line class="grid" x1=f.left x2=plot_right y1=y y2=y />
                <text class="tick" x=f.left - 8.0 y=y + 4.0 text-anchor="end">{format!("{value:.decimals$}")}</text>
            }
        })
        .collect_view();
    let span = match (chart.x_ticks.first(), chart.x_ticks.last()) {
        (Some(first), Some(last)) => last.1 - first.1,
        _ => 0,
    };
    let last_tick = chart.x_ticks.len().saturating_sub(1);
    let x_ticks = chart
        .x_ticks
        .into_iter()
        .enumerate()
        .map(|(i, (x, at))| {
            // The outer labels hang inward, so neither is cut at the edge.
            let anchor = match i {
                0 => "start",
                i if i == last_tick => "end",
                _ => "middle",
            };
            view! { <text class="tick" x=x y=plot_bottom + 22.0 text-anchor=anchor>{format::axis_time(at, span)}</text> }
        })
        .collect_view();
    let marks = chart
        .marks
        .iter()
        .map(|&(x, y, index)| {
            let point = points[index];
            let label = format!(
                "{} at {}: a new best, {} scored by then",
                format::loss(point.loss),
                format::datetime(point.at),
                format::count(point.scored_so_far, "submission")
            );
            view! {
                <circle class="mark" cx=x cy=y r="3.5">
                    <title>{label}</title>
                </circle>
            }
        })
        .collect_view();
    let counts = chart
        .counts
        .iter()
        .map(|label| {
            view! {
                <text class="count" x=label.x y=label.y text-anchor=label.anchor.as_str()>
                    {points[label.value].scored_so_far}
                </text>
            }
        })
        .collect_view();
    let total = chart.total;
    #[allow(clippy::cast_possible_truncation)]
    let records = format::count(points.len() as u64, "record");
    let summary = format!(
        "Best loss over time: {records}, from {} to {}; {} scored so far.",
        points
            .first()
            .map(|p| format::loss(p.loss))
            .unwrap_or_default(),
        points
            .last()
            .map(|p| format::loss(p.loss))
            .unwrap_or_default(),
        format::count(scored, "submission")
    );
    let description = "A step line of the phase's best loss, lower is better, over time. \
        Each dot is a new best; the number beside it is how many submissions had been scored then.";
    view! {
        <figure class="chart">
            <div class="chart-frame">
            <svg viewBox=view_box role="img" aria-labelledby="score-chart-title score-chart-desc" preserveAspectRatio="xMidYMid meet">
                <title id="score-chart-title">{summary.clone()}</title>
                <desc id="score-chart-desc">{description}</desc>
                {y_ticks}
                <line class="axis" x1=f.left x2=plot_right y1=plot_bottom y2=plot_bottom />
                {x_ticks}
                <path class="step" d=chart.path />
                {marks}
                {counts}
                <text class="count total" x=total.x y=total.y text-anchor=total.anchor.as_str()>
                    {total_text(total.value)}
                </text>
            </svg>
            </div>
            <figcaption>
                {summary}
                <span class="legend">" Beside each record: the submissions scored by then."</span>
            </figcaption>
        </figure>
    }
    .into_any()
}
