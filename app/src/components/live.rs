//! Following a server-sent event stream from a hydrated page (`EventSource`): the page
//! is complete without it, and updates itself in place once the WebAssembly runs.

#[cfg(feature = "hydrate")]
use leptos::prelude::*;

/// While the calling component lives, listens to `event` on the stream at `url()`
/// (reopened when the URL changes; `None` listens to nothing) and calls `on_message`
/// with each event's data; `on_message` answers whether to keep listening. Does nothing
/// on the server.
pub fn follow_events(
    url: impl Fn() -> Option<String> + 'static,
    event: &'static str,
    on_message: impl Fn(String) -> bool + Clone + 'static,
) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::closure::Closure;
        use wasm_bindgen::JsCast;
        use web_sys::{EventSource, MessageEvent};

        type Open = Option<(EventSource, Closure<dyn FnMut(MessageEvent)>)>;
        let current: StoredValue<Open, LocalStorage> = StoredValue::new_local(None);
        let close = move || {
            current.try_update_value(|open| {
                if let Some((source, _listener)) = open.take() {
                    source.close();
                }
            });
        };
        Effect::new(move |_| {
            close();
            let Some(url) = url() else { return };
            let Ok(source) = EventSource::new(&url) else {
                return;
            };
            let on_message = on_message.clone();
            let this = source.clone();
            let listener = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
                let data = e.data().as_string().unwrap_or_default();
                if !on_message(data) {
                    // A finished stream would otherwise be reopened by the browser.
                    this.close();
                }
            });
            if source
                .add_event_listener_with_callback(event, listener.as_ref().unchecked_ref())
                .is_ok()
            {
                current.set_value(Some((source, listener)));
            } else {
                source.close();
            }
        });
        on_cleanup(close);
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = (url, event, on_message);
    }
}
