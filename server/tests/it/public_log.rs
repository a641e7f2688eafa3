//! The public log from the outside: the demo, seeded and served by the real binary,
//! verifies with `ascent-eval verify`'s checks; a score edited in the database and an
//! entry edited in the log are both reported.

use crate::support;

use std::path::{Path, PathBuf};

use ascent_evaluator::client::Client;
use ascent_evaluator::verify::{verify, VerifyError};
use support::process::Server;
use support::TestResult;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn check(server: &Server) -> TestResult<Result<ascent_evaluator::verify::Verified, String>> {
    let client = Client::new(&server.url(), None)?;
    match verify(&client) {
        Ok(verified) => Ok(Ok(verified)),
        Err(VerifyError::Discrepancy(message)) => Ok(Err(message)),
        Err(other) => Err(other.into()),
    }
}

#[test]
fn the_demo_log_verifies_and_tampering_is_reported() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut server = Server::new(dir.path(), &workspace().join("presets/demo.toml"))?;
    let organizer = server
        .ascent()
        .args([
            "admin",
            "create-organizer",
            "organizer@example.org",
            "--handle",
            "organizer",
        ])
        .env("ASCENT_ORGANIZER_PASSWORD", "a long organizer password")
        .status()?;
    assert!(organizer.success());
    server.admin(&["seed-demo", &workspace().join("demo").display().to_string()])?;
    server.start(0)?;

    let verified = check(&server)?.map_err(|d| format!("the demo's log does not verify: {d}"))?;
    // Phase 1 is finalized: its statements are public and its losses recomputed; phase
    // 2 is open: its scores are committed but sealed.
    assert!(verified.entries > 20, "{verified:?}");
    assert!(verified.signatures > 0, "{verified:?}");
    assert_eq!(verified.recomputed, verified.signatures, "{verified:?}");
    assert!(verified.sealed > 0, "{verified:?}");
    assert!(verified.rows > 0, "{verified:?}");
    assert_eq!(verified.phases, 7);
    assert_eq!(
        verified.points, 1000,
        "phase 1's budget, shared at finalization"
    );

    // A score changed in the database: the leaderboard no longer follows from the log.
    server.kill()?;
    server.with_database(async |pool| {
        sqlx::query(
            "UPDATE standings SET loss = loss * 0.9
             WHERE rowid = (SELECT rowid FROM standings WHERE phase = 2 ORDER BY loss DESC LIMIT 1)",
        )
        .execute(pool)
        .await?;
        Ok(())
    })?;
    server.start(0)?;
    let found = check(&server)?.err().unwrap_or_default();
    assert!(found.starts_with("phase 2"), "{found}");
    assert!(found.contains("the leaderboard shows"), "{found}");

    // An entry rewritten in the log (its append-only guard dropped first, as anyone
    // with the database file could): the chain breaks at that entry.
    server.kill()?;
    let edited: i64 = server.with_database(async |pool| {
        sqlx::query("DROP TRIGGER public_log_is_append_only_update")
            .execute(pool)
            .await?;
        let seq: i64 = sqlx::query_scalar(
            "SELECT MIN(seq) FROM public_log WHERE kind = 'submission_received'",
        )
        .fetch_one(pool)
        .await?;
        sqlx::query(
            "UPDATE public_log SET body = replace(body, '\"at\":', '\"at\":1') WHERE seq = ?",
        )
        .bind(seq)
        .execute(pool)
        .await?;
        Ok(seq)
    })?;
    server.start(0)?;
    let found = check(&server)?.err().unwrap_or_default();
    assert!(
        found.starts_with(&format!("log entry {edited}:")),
        "{found}"
    );
    assert!(found.contains("altered"), "{found}");
    Ok(())
}
