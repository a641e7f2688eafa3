//! Form pieces: the CSRF field every form carries, and error messages.

use leptos::prelude::*;
use leptos::server_fn::error::ServerFnUrlError;
use leptos_router::hooks::use_query_map;

use crate::functions::session::use_session;
use crate::functions::AppError;

/// The hidden CSRF token; the server refuses a state-changing request without it.
///
/// It waits for the session in a `<Transition>` of its own, and every `<Transition>`
/// takes a hydration id. Inside the header's session `Suspend` use [`CsrfInput`]
/// instead: the server may poll that `Suspend` on another thread while a page is
/// creating its resources, and an id taken there shifts the page's resource ids, so the
/// browser looks for their data under the wrong id and cannot hydrate.
#[component]
pub fn CsrfField() -> impl IntoView {
    let session = use_session();
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                let token = session.info.await.map(|s| s.csrf_token).unwrap_or_default();
                view! { <CsrfInput token /> }
            })}
        </Transition>
    }
}

/// The hidden CSRF token, where the session has already been read.
#[component]
pub fn CsrfInput(token: String) -> impl IntoView {
    view! { <input type="hidden" name="csrf_token" value=token /> }
}

/// The error of the last submission of a form: from the action when the page is
/// hydrated, or from the URL (`__err`) when the form was posted without JavaScript.
#[component]
pub fn FormError(error: Signal<Option<AppError>>) -> impl IntoView {
    let query = use_query_map();
    let from_url = move || {
        query
            .read()
            .get("__err")
            .map(|encoded| ServerFnUrlError::<AppError>::decode_err(&encoded))
    };
    move || {
        error.get().or_else(from_url).map(|e| {
            view! {
                <p class="form-error" role="alert">
                    {e.to_string()}
                </p>
            }
        })
    }
}

/// The error of an action's last result, as a signal for `FormError`.
pub fn action_error<I, O>(action: ServerAction<I>) -> Signal<Option<AppError>>
where
    I: leptos::server_fn::ServerFn<Output = O, Error = AppError> + Clone + Send + Sync + 'static,
    O: Clone + Send + Sync + 'static,
{
    Signal::derive(move || action.value().get().and_then(Result::err))
}
