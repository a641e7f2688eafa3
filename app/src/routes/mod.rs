//! One module per page.

pub mod contributor;
pub mod home;
pub mod login;
pub mod not_found;
pub mod notifications;
pub mod organizer;
pub mod organizer_audit;
pub mod organizer_phase;
pub mod organizer_submissions;
pub mod phase;
pub mod register;
pub mod reset_password;
pub mod submission;
pub mod submit;
