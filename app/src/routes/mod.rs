//! One module per page.

pub mod contributor;
pub mod home;
pub mod login;
pub mod not_found;
pub mod organizer;
pub mod phase;
pub mod register;
pub mod submission;
pub mod submit;
