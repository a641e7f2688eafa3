//! The `ascent` server: configuration, state, the HTTP router and admin commands.
//! The binary (`main.rs`) only parses the command line and calls into here, so tests
//! drive the same router the binary serves.

pub mod admin;
pub mod config;
pub mod demo;
pub mod events;
pub mod http;
pub mod pipeline;
pub mod serve;
pub mod state;
pub mod storage;
pub mod telemetry;
