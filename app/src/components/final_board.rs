//! A closed phase's final ranking: private loss, its interval, the place on the public
//! board and the movement since, and who advances (and why, where an organizer changed
//! the rule's proposal). Organizers get a form per row to adjust the list.

use ascent_domain::format;
use ascent_domain::views::{FinalBoard, FinalRow};
use ascent_domain::PhaseState;
use leptos::prelude::*;

use crate::components::forms::CsrfField;
use crate::components::leaderboard::interval;
use crate::functions::phase_admin::AdjustAdvancement;

/// `▲ 2`, `▼ 1` or `–`, with a sentence for screen readers and tooltips.
fn movement(row: &FinalRow) -> impl IntoView {
    let (class, text, title) = match row.movement {
        0 => (
            "move same",
            "–".to_owned(),
            "same place as on the public board".to_owned(),
        ),
        n if n > 0 => (
            "move up",
            format!("▲ {n}"),
            format!("up {n} from the public board"),
        ),
        n => (
            "move down",
            format!("▼ {}", -n),
            format!("down {} from the public board", -n),
        ),
    };
    view! { <span class=class title=title.clone() aria-label=title>{text}</span> }
}

fn verdict(row: &FinalRow) -> impl IntoView {
    match (&row.adjustment, row.advances) {
        (None, true) => view! { <span class="badge advances">"advances"</span> }.into_any(),
        (None, false) => view! { <span class="muted">"—"</span> }.into_any(),
        (Some(why), true) => view! {
            <span class="badge advances" title=why.clone()>"advances"</span>
            <span class="adjusted">{format!("added by organizers: {why}")}</span>
        }
        .into_any(),
        (Some(why), false) => view! {
            <span class="badge removed" title=why.clone()>"does not advance"</span>
            <span class="adjusted">{format!("removed by organizers: {why}")}</span>
        }
        .into_any(),
    }
}

/// The table. With `adjust`, each row of a closed phase gets an add/remove form.
#[component]
pub fn FinalTable(
    board: FinalBoard,
    #[prop(optional)] adjust: Option<ServerAction<AdjustAdvancement>>,
) -> impl IntoView {
    if board.rows.is_empty() {
        return view! { <p class="empty">"Nobody was scored in this phase."</p> }.into_any();
    }
    let phase = board.phase;
    let editable = adjust.filter(|_| board.state == PhaseState::Closed);
    let rows = board
        .rows
        .into_iter()
        .map(|row| {
            let profile = format!("/contributors/{}", row.handle);
            let submission = format!("/submissions/{}", row.submission_id);
            let handle = row.handle.clone();
            let advances = row.advances;
            let form = editable.map(move |action| {
                let (advance, label) = if advances { ("remove", "Remove") } else { ("add", "Add") };
                let aria = format!("{label} {handle}");
                view! {
                    <ActionForm action attr:class="inline adjust-form">
                        <CsrfField />
                        <input type="hidden" name="number" value=phase />
                        <input type="hidden" name="handle" value=handle.clone() />
                        <input type="hidden" name="advance" value=advance />
                        <input type="text" name="reason" placeholder="reason (required)" required maxlength="500" aria-label=format!("Reason to {advance} {handle}") />
                        <button type="submit" class="button small" aria-label=aria>{label}</button>
                    </ActionForm>
                }
            });
            view! {
                <tr class:advancing=row.advances>
                    <td class="num rank">{row.rank}</td>
                    <td><a href=profile>{row.handle.clone()}</a></td>
                    <td class="num"><a href=submission>{format::loss(row.private_loss)}</a></td>
                    <td class="num interval">{interval(row.interval)}</td>
                    <td class="num">{format!("#{} · {}", row.public_rank, format::loss(row.public_loss))}</td>
                    <td class="num">{movement(&row)}</td>
                    <td class="verdict">{verdict(&row)}</td>
                    {editable.map(|_| view! { <td>{form}</td> })}
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table class="leaderboard final">
                <thead>
                    <tr>
                        <th class="num" scope="col">"Rank"</th>
                        <th scope="col">"Contributor"</th>
                        <th class="num" scope="col" title="Loss on the private part of the held-out data, which decides the final ranking">"Private loss"</th>
                        <th class="num" scope="col" title="Bootstrap 95% interval over the private windows (leading rows)">"95% interval"</th>
                        <th class="num" scope="col" title="Place and loss on the public leaderboard at the close">"Public board"</th>
                        <th class="num" scope="col">"Moved"</th>
                        <th scope="col">"Next phase"</th>
                        {editable.map(|_| view! { <th scope="col">"Adjust"</th> })}
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}
