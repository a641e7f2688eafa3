//! `ascent-eval verify`: check a server's public log and its leaderboards.

use ascent_evaluator::client::Client;
use ascent_evaluator::verify::{verify, VerifyError};

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The Ascent server, e.g. https://ascent.example.
    #[arg(long, value_name = "URL")]
    server: String,
}

/// Exit 0 when everything checks, 1 at the first discrepancy, 3 when the server
/// cannot be read.
pub fn run(args: VerifyArgs) -> u8 {
    let client = match Client::new(&args.server, None) {
        Ok(client) => client,
        Err(e) => {
            eprintln!("ascent-eval: {e}");
            return 2;
        }
    };
    match verify(&client) {
        Ok(v) => {
            println!("log verified: {} entries, head {}", v.entries, v.head);
            println!("  {} signatures checked, {} public losses recomputed from signed windows, {} scores sealed until their phase closes", v.signatures, v.recomputed, v.sealed);
            println!(
                "  {} phases, {} leaderboard rows match the log",
                v.phases, v.rows
            );
            println!(
                "  {} reward points granted, each phase's adding up to its budget",
                v.points
            );
            0
        }
        Err(VerifyError::Discrepancy(message)) => {
            println!("DISCREPANCY: {message}");
            1
        }
        Err(e) => {
            eprintln!("ascent-eval: {e}");
            3
        }
    }
}
