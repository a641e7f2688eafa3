//! A phase's leaderboard table, with paging.

use ascent_domain::format;
use ascent_domain::views::Leaderboard;
use leptos::prelude::*;

use crate::functions::phases::LEADERBOARD_PAGE;

#[component]
pub fn LeaderboardTable(board: Leaderboard) -> impl IntoView {
    if board.rows.is_empty() {
        let message = if board.total == 0 {
            "No scored submissions yet. The leaderboard fills as soon as the first checkpoint is scored."
        } else {
            "This page of the leaderboard is empty."
        };
        return view! { <p class="empty">{message}</p> }.into_any();
    }
    let phase = board.phase;
    let page = board.offset / LEADERBOARD_PAGE + 1;
    let pages = board.total.div_ceil(LEADERBOARD_PAGE);
    let rows = board
        .rows
        .into_iter()
        .map(|row| {
            let profile = format!("/contributors/{}", row.handle);
            let submission = format!("/submissions/{}", row.submission_id);
            view! {
                <tr>
                    <td class="num rank">{row.rank}</td>
                    <td>
                        <a href=profile>{row.handle}</a>
                    </td>
                    <td class="num">
                        <a href=submission>{format::loss(row.loss)}</a>
                        {row.interval.map(|i| view! {
                            <span class="interval" title="Bootstrap 95% interval over the scored windows: overlapping intervals mean the gap may be noise">
                                {interval(Some(i))}
                            </span>
                        })}
                    </td>
                    <td class="num">{format!("{:.2}", row.perplexity)}</td>
                    <td class="num">{format::parameters(row.parameters)}</td>
                    <td class="num">{row.submissions}</td>
                    <td class="when" title=format::datetime(row.last_improvement_at)>{format::date(row.last_improvement_at)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table class="leaderboard">
                <thead>
                    <tr>
                        <th class="num" scope="col">"Rank"</th>
                        <th scope="col">"Contributor"</th>
                        <th class="num" scope="col" title="Mean cross-entropy in nats per token; lower is better. Below it, for the leading rows, the bootstrap 95% interval">"Best loss"</th>
                        <th class="num" scope="col">"Perplexity"</th>
                        <th class="num" scope="col">"Parameters"</th>
                        <th class="num" scope="col">"Submissions"</th>
                        <th scope="col" title="When the contributor's best score was achieved">"Improved"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
        {(pages > 1)
            .then(|| {
                let link = move |p: u64| format!("/phases/{phase}?page={p}");
                view! {
                    <nav class="pager" aria-label="Leaderboard pages">
                        {(page > 1).then(|| view! { <a href=link(page - 1)>"← Previous"</a> })}
                        <span>{format!("Page {page} of {pages}")}</span>
                        {(page < pages).then(|| view! { <a href=link(page + 1)>"Next →"</a> })}
                    </nav>
                }
            })}
    }
    .into_any()
}

/// A bootstrap interval as a table shows it: `2.2891–2.3140`, or a dash.
pub fn interval(interval: Option<(f64, f64)>) -> String {
    interval.map_or_else(
        || "—".to_owned(),
        |(low, high)| format!("{}–{}", format::loss(low), format::loss(high)),
    )
}
