//! The signed-in person's notifications, newest first, with "mark all as read".

use ascent_domain::format;
use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::forms::{action_error, CsrfField, FormError};
use crate::functions::notifications::{my_notifications, MarkNotificationsRead};
use crate::functions::AppError;

#[component]
pub fn NotificationsPage() -> impl IntoView {
    let mark = ServerAction::<MarkNotificationsRead>::new();
    let list = Resource::new(move || mark.version().get(), |_| my_notifications());
    view! {
        <Title text="Notifications" />
        <section class="profile-header">
            <h1>"Notifications"</h1>
        </section>
        <section class="panel">
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match list.await {
                        Ok(items) if items.is_empty() => view! {
                            <p class="empty">"Nothing yet. You will hear here when a phase you took part in is decided."</p>
                        }
                        .into_any(),
                        Ok(items) => {
                            let unread = items.iter().any(|n| !n.read);
                            let rows = items
                                .into_iter()
                                .map(|n| view! {
                                    <li class:unread=!n.read>
                                        <a href=n.link>{n.text}</a>
                                        <span class="when">{format::datetime(n.at)}</span>
                                    </li>
                                })
                                .collect_view();
                            view! {
                                <ul class="notifications">{rows}</ul>
                                {unread.then(|| view! {
                                    <ActionForm action=mark attr:class="inline-form">
                                        <CsrfField />
                                        <button type="submit" class="button small">"Mark all as read"</button>
                                    </ActionForm>
                                })}
                                <FormError error=action_error(mark) />
                            }
                            .into_any()
                        }
                        Err(AppError::Unauthenticated) => view! {
                            <p><a class="button" href="/login?next=/notifications">"Log in to see your notifications"</a></p>
                        }
                        .into_any(),
                        Err(e) => view! { <p class="form-error">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}
