//! Small phase elements: the state badge.

use ascent_domain::PhaseState;
use leptos::prelude::*;

#[component]
pub fn StateBadge(state: PhaseState) -> impl IntoView {
    let class = format!("badge state-{}", state.as_str());
    view! { <span class=class>{state.as_str()}</span> }
}
