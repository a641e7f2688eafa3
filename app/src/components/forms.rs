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

/// Where a form's error comes from: its action's last result when the page is hydrated,
/// or, when the form was posted without JavaScript, the URL the server sent the browser
/// back to (`__err`), if that names this form's server function (`__path`): a page with
/// several forms shows the error under the one that failed.
#[derive(Clone, Copy)]
pub struct ActionError {
    error: Signal<Option<AppError>>,
    path: &'static str,
}

/// The error of the last submission of a form: see [`ActionError`].
#[component]
pub fn FormError(error: ActionError) -> impl IntoView {
    let query = use_query_map();
    let from_url = move || {
        let query = query.read();
        (query.get("__path").as_deref() == Some(error.path))
            .then(|| query.get("__err"))
            .flatten()
            .map(|encoded| ServerFnUrlError::<AppError>::decode_err(&encoded))
    };
    move || {
        error.error.get().or_else(from_url).map(|e| {
            view! {
                <p class="form-error" role="alert">
                    {e.to_string()}
                </p>
            }
        })
    }
}

/// The errors of an action's form, for `FormError`.
pub fn action_error<I, O>(action: ServerAction<I>) -> ActionError
where
    I: leptos::server_fn::ServerFn<Output = O, Error = AppError> + Clone + Send + Sync + 'static,
    O: Clone + Send + Sync + 'static,
{
    ActionError {
        error: Signal::derive(move || action.value().get().and_then(Result::err)),
        path: I::PATH,
    }
}

/// The errors of a plain HTML form posting to server function `I` (no action): only
/// those the server sends back in the URL.
pub fn posted_error<I: leptos::server_fn::ServerFn>() -> ActionError {
    ActionError {
        error: Signal::derive(|| None),
        path: I::PATH,
    }
}
