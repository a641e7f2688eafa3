//! Ascent's user interface: Leptos pages rendered on the server and hydrated in the
//! browser, and the server functions they call.
//!
//! - `routes/` — one module per page.
//! - `components/` — pieces shared by pages (layout, tables, the chart).
//! - `functions/` — server functions: the only way pages read or change data.
//! - `ssr` — server-side glue (request context, cookies); compiled only with `ssr`.

pub mod chart;
pub mod components;
pub mod functions;
pub mod routes;
#[cfg(feature = "ssr")]
pub mod ssr;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{path, SsrMode};

use crate::components::layout::{Footer, Header};
use crate::functions::session::{provide_session, Login, Logout, Register};
use crate::routes::{
    contributor::ContributorPage, home::HomePage, login::LoginPage, not_found::NotFound,
    notifications::NotificationsPage, organizer::OrganizerPage,
    organizer_audit::OrganizerAuditPage, organizer_phase::OrganizerPhasePage,
    organizer_submissions::OrganizerSubmissionsPage, phase::PhasePage, register::RegisterPage,
    reset_password::ResetPasswordPage, submission::SubmissionPage, submit::SubmitPage,
};

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="description" content="Ascent: an open competition that grows an open language model in seven phases." />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The application: session context, header, routes, footer.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    provide_session(
        ServerAction::<Login>::new(),
        ServerAction::<Logout>::new(),
        ServerAction::<Register>::new(),
    );
    // Pages are rendered whole before sending (async mode) so that a page can still
    // set its status (404, 403) or redirect once its data is known.
    let mode = SsrMode::Async;
    view! {
        <Stylesheet id="leptos" href="/pkg/ascent.css" />
        <Title formatter=|title: String| if title.is_empty() { "Ascent".to_owned() } else { format!("{title} · Ascent") } />
        <Router>
            <Header />
            <main id="main">
                <Routes fallback=|| view! { <NotFound /> }>
                    <Route path=path!("/") view=HomePage ssr=mode.clone() />
                    <Route path=path!("/phases/:number") view=PhasePage ssr=mode.clone() />
                    <Route path=path!("/phases/:number/submit") view=SubmitPage ssr=mode.clone() />
                    <Route path=path!("/contributors/:handle") view=ContributorPage ssr=mode.clone() />
                    <Route path=path!("/submissions/:id") view=SubmissionPage ssr=mode.clone() />
                    <Route path=path!("/login") view=LoginPage ssr=mode.clone() />
                    <Route path=path!("/notifications") view=NotificationsPage ssr=mode.clone() />
                    <Route path=path!("/register") view=RegisterPage ssr=mode.clone() />
                    <Route path=path!("/reset-password") view=ResetPasswordPage ssr=mode.clone() />
                    <Route path=path!("/organizer") view=OrganizerPage ssr=mode.clone() />
                    <Route path=path!("/organizer/phases/:number") view=OrganizerPhasePage ssr=mode.clone() />
                    <Route path=path!("/organizer/submissions") view=OrganizerSubmissionsPage ssr=mode.clone() />
                    <Route path=path!("/organizer/audit") view=OrganizerAuditPage ssr=mode />
                </Routes>
            </main>
            <Footer />
        </Router>
    }
}
