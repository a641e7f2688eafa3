//! Hydrates the server-rendered page in the browser: the page works before this
//! loads, and becomes interactive once it has.

use wasm_bindgen::prelude::wasm_bindgen;

#[wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(ascent_app::App);
    // A marker for people and tests alike: the page is now interactive.
    if let Some(body) = leptos::prelude::document().body() {
        let _ = body.set_attribute("data-hydrated", "");
    }
}
