//! The server-rendered SVG chart of a phase's best score over time.

use ascent_domain::format;
use ascent_domain::views::ScorePoint;
use leptos::prelude::*;

use crate::chart::{step_chart, Frame};

#[component]
pub fn ScoreChart(points: Vec<ScorePoint>, start: i64, end: i64) -> impl IntoView {
    let Some(chart) = step_chart(&points, start, end, Frame::default()) else {
        return view! {
            <p class="empty">"The chart of the best score over time starts with the first scored submission."</p>
        }
        .into_any();
    };
    let f = chart.frame;
    let view_box = format!("0 0 {} {}", f.width, f.height);
    let plot_bottom = f.height - f.bottom;
    let plot_right = f.width - f.right;
    let y_ticks = chart
        .y_ticks
        .into_iter()
        .map(|(y, value)| {
            view! {
                <line class="grid" x1=f.left x2=plot_right y1=y y2=y />
                <text class="tick" x=f.left - 8.0 y=y + 4.0 text-anchor="end">{format!("{value:.2}")}</text>
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
                "{} at {}",
                format::loss(point.loss),
                format::datetime(point.at)
            );
            view! {
                <circle class="mark" cx=x cy=y r="3.5">
                    <title>{label}</title>
                </circle>
            }
        })
        .collect_view();
    let summary = format!(
        "Best loss over time: {} records, from {} to {}.",
        points.len(),
        points
            .first()
            .map(|p| format::loss(p.loss))
            .unwrap_or_default(),
        points
            .last()
            .map(|p| format::loss(p.loss))
            .unwrap_or_default()
    );
    view! {
        <figure class="chart">
            <svg viewBox=view_box role="img" aria-label=summary.clone() preserveAspectRatio="xMidYMid meet">
                {y_ticks}
                <line class="axis" x1=f.left x2=plot_right y1=plot_bottom y2=plot_bottom />
                {x_ticks}
                <path class="step" d=chart.path />
                {marks}
            </svg>
            <figcaption>{summary}</figcaption>
        </figure>
    }
    .into_any()
}
