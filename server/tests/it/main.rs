//! The server's integration tests, in one test binary. Each binary links the whole server
//! and the Leptos app (about half a gigabyte in a debug build), so one binary instead of
//! one per file keeps CI's disk use and link time down.

mod support;

mod admin_cli;
mod concurrent_routers;
mod crash;
mod datasets;
mod encrypted;
mod lifecycle;
mod near_copies;
mod public_log;
mod router;
mod uploads;
mod workers;
