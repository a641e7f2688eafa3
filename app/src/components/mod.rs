//! Pieces shared by pages.

pub mod account;
pub mod console;
pub mod final_board;
pub mod forms;
pub mod layout;
pub mod leaderboard;
pub mod live;
pub mod phase_bits;
pub mod scaling_chart;
pub mod score_chart;
pub mod secret;
pub mod tokens;
pub mod workers;
