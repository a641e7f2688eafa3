//! Workers against a real server on a real port: the same `ascent-eval` worker loop a
//! GPU box runs, scoring real checkpoints; lapsed leases, late results, revoked tokens
//! and failures on our side.

use crate::support;

use std::path::Path;

use ascent_domain::protocol::{
    ClaimRequest, JobAssignment, JobOutcome, JobResult, ScoredCheckpoint, SubmissionCreated,
};
use ascent_domain::statement::{spec_sha256, verify, ScoreStatement, WorkerKey};
use ascent_evaluator::client::Client;
use ascent_evaluator::worker::WorkerSummary;
use ascent_server::http::router;
use ascent_server::serve::{self, RunningServer};
use ascent_store::{jobs, workers, SqlitePool};
use http::StatusCode;
use support::{checkpoint, config, contributor, phases_with_data, state, submit, TestResult};

async fn server(pool: &SqlitePool, dir: &Path) -> TestResult<RunningServer> {
    phases_with_data(pool, dir).await?;
    Ok(serve::start(pool.clone(), config(dir, 0)?)
        .await
        .map_err(|e| e.to_string())?)
}

/// Uploads a fixture checkpoint as `token`'s owner through the API; returns its id.
async fn submitted(
    pool: &SqlitePool,
    dir: &Path,
    token: &str,
    files: &[(String, Vec<u8>)],
    fingerprint: &str,
) -> TestResult<i64> {
    let app = router(state(pool, dir)?);
    let reply = submit(&app, token, files, fingerprint).await?;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    Ok(reply.json::<SubmissionCreated>()?.id)
}

/// Runs a worker without evaluation keys until the queue has nothing for it.
async fn work(url: &str, token: &str, cache: &Path) -> TestResult<WorkerSummary> {
    support::work(url, token, cache, &[]).await
}

/// `GET path` with the blocking client, off the runtime the server runs on.
async fn get_json(
    server: &RunningServer,
    token: Option<&str>,
    path: &str,
) -> TestResult<serde_json::Value> {
    let (url, token, path) = (server.url(), token.map(str::to_owned), path.to_owned());
    Ok(
        tokio::task::spawn_blocking(move || Client::new(&url, token.as_deref())?.get_json(&path))
            .await??,
    )
}

#[derive(Debug, sqlx::FromRow)]
struct Outcome {
    state: String,
    loss: Option<f64>,
    public_loss: Option<f64>,
    private_loss: Option<f64>,
    error: Option<String>,
    counts_toward_quota: bool,
    attempts: i64,
}

async fn outcome(pool: &SqlitePool, id: i64) -> TestResult<Outcome> {
    Ok(sqlx::query_as(
        "SELECT s.state, s.loss, s.public_loss, s.private_loss, s.error, s.counts_toward_quota, j.attempts
         FROM submissions s JOIN jobs j ON j.submission_id = s.id WHERE s.id = ?",
    )
    .bind(id)
    .fetch_one(pool)
    .await?)
}

/// The loss transformers computes for a fixture (evaluator/tests/fixtures/references.json).
fn reference(model: &str, seq_len: u64, windows: u64) -> TestResult<f64> {
    let text = std::fs::read_to_string(support::fixture("references.json"))?;
    let refs: serde_json::Value = serde_json::from_str(&text)?;
    refs["cases"]
        .as_array()
        .ok_or("no cases")?
        .iter()
        .find(|c| c["model"] == model && c["seq_len"] == seq_len && c["windows"] == windows)
        .and_then(|c| c["loss"].as_f64())
        .ok_or_else(|| "no such reference".into())
}

#[sqlx::test(migrations = "../migrations")]
async fn a_remote_worker_scores_good_checkpoints_and_fails_hostile_ones(
    pool: SqlitePool,
) -> TestResult {
    let dir = tempfile::tempdir()?;
    let server = server(&pool, dir.path()).await?;
    let (_, ada) = contributor(&pool, "ada").await?;
    let (_, bob) = contributor(&pool, "bob").await?;
    let good = submitted(&pool, dir.path(), &ada, &checkpoint("tied")?, "tied").await?;
    // A hostile file: a safetensors header claiming 2^60 bytes.
    let mut hostile = checkpoint("tied")?;
    for (name, bytes) in &mut hostile {
        if name == "model.safetensors" {
            bytes[..8].copy_from_slice(&(1u64 << 60).to_le_bytes());
        }
    }
    let bad = submitted(&pool, dir.path(), &bob, &hostile, "hostile").await?;

    let token = support::worker_token(&pool, "gpu-1", ascent_store::now()).await?;
    let summary = work(&server.url(), &token, &dir.path().join("cache")).await?;
    assert_eq!(
        (summary.scored, summary.invalid, summary.errors),
        (1, 1, 0),
        "{summary:?}"
    );

    let scored = outcome(&pool, good).await?;
    assert_eq!(scored.state, "scored");
    // Eight windows of 64 tokens, as transformers scores them.
    let expected = reference("tied", 64, 8)?;
    let loss = scored.loss.ok_or("no loss")?;
    assert!(
        ((loss - expected) / expected).abs() < 1e-4,
        "{loss} vs {expected}"
    );
    let (public, private) = (
        scored.public_loss.ok_or("public")?,
        scored.private_loss.ok_or("private")?,
    );
    assert!(public != private && public.min(private) <= loss && loss <= public.max(private));

    let failed = outcome(&pool, bad).await?;
    assert_eq!(failed.state, "failed");
    let message = failed.error.ok_or("no error")?;
    assert!(message.contains("model.safetensors"), "{message}");
    assert!(
        !message.contains(&dir.path().display().to_string()),
        "no worker paths: {message}"
    );
    assert!(
        failed.counts_toward_quota,
        "an invalid checkpoint uses up a submission"
    );

    // The leaderboard shows the public part while the phase is open.
    let board = get_json(&server, None, "/api/phases/1/leaderboard").await?;
    assert_eq!(board["rows"][0]["contributor"], "ada");
    assert_eq!(board["rows"][0]["best_loss"].as_f64(), Some(public));
    assert_eq!(board["total"], 1);
    // Anyone reads the report; the private part stays hidden while the phase is open.
    let report = get_json(&server, None, &format!("/api/submissions/{good}")).await?;
    assert_eq!(report["state"], "scored");
    assert_eq!(report["public_loss"].as_f64(), Some(public));
    assert!(report["private_loss"].is_null() && report["loss"].is_null());
    let theirs = get_json(&server, None, &format!("/api/submissions/{bad}")).await?;
    assert_eq!(theirs["error"], "failed", "strangers do not read the error");
    let own = get_json(&server, Some(&bob), &format!("/api/submissions/{bad}")).await?;
    assert_eq!(own["error"].as_str(), Some(message.as_str()));
    server.stop().await.map_err(|e| e.to_string())?;
    Ok(())
}

fn claim(client: &Client) -> TestResult<JobAssignment> {
    let request = ClaimRequest {
        evaluator_version: "test".into(),
        device: "cpu".into(),
        evaluation_keys: Vec::new(),
    };
    Ok(client
        .post_json::<_, JobAssignment>("/api/worker/claim", &request)?
        .ok_or("nothing to claim")?)
}

#[sqlx::test(migrations = "../migrations")]
async fn a_lapsed_lease_goes_to_another_worker_and_the_late_result_is_refused(
    pool: SqlitePool,
) -> TestResult {
    let dir = tempfile::tempdir()?;
    let server = server(&pool, dir.path()).await?;
    let (_, ada) = contributor(&pool, "ada").await?;
    let id = submitted(&pool, dir.path(), &ada, &checkpoint("tied")?, "tied").await?;
    let now = ascent_store::now();
    let lost = support::worker_token(&pool, "lost", now).await?;
    let healthy = support::worker_token(&pool, "healthy", now).await?;

    // The first worker claims the job, then goes silent.
    let url = server.url();
    let job = tokio::task::spawn_blocking(move || -> TestResult<JobAssignment> {
        claim(&Client::new(&url, Some(&lost))?)
    })
    .await??;
    assert_eq!(job.submission_id, id);
    assert_eq!(outcome(&pool, id).await?.state, "validating");

    // Its lease lapses: the job goes back in the queue, and once its backoff has passed
    // the healthy worker completes it.
    assert_eq!(jobs::reap(&pool, now + jobs::LEASE_SECONDS + 1).await?, 1);
    assert_eq!(outcome(&pool, id).await?.state, "queued");
    sqlx::query("UPDATE jobs SET available_at = 0")
        .execute(&pool)
        .await?;
    let summary = work(&server.url(), &healthy, &dir.path().join("cache")).await?;
    assert_eq!(summary.scored, 1);
    let done = outcome(&pool, id).await?;
    assert_eq!((done.state.as_str(), done.attempts), ("scored", 2));

    // The first worker comes back with a result: refused, and nothing changes.
    let url = server.url();
    let lost = support::worker_token(&pool, "lost-again", now).await?;
    let late = tokio::task::spawn_blocking(move || -> TestResult<Option<u16>> {
        let client = Client::new(&url, Some(&lost))?;
        let result = JobResult {
            lease: job.lease,
            outcome: JobOutcome::Invalid {
                message: "late".into(),
            },
        };
        Ok(client
            .post_json::<_, serde_json::Value>(
                &format!("/api/worker/jobs/{}/result", job.job_id),
                &result,
            )
            .err()
            .and_then(|e| e.status()))
    })
    .await??;
    assert_eq!(late, Some(409));
    assert_eq!(outcome(&pool, id).await?.state, "scored");
    server.stop().await.map_err(|e| e.to_string())?;
    Ok(())
}

#[sqlx::test(migrations = "../migrations")]
async fn failures_on_our_side_are_retried_then_do_not_count(pool: SqlitePool) -> TestResult {
    let dir = tempfile::tempdir()?;
    let server = server(&pool, dir.path()).await?;
    let (_, ada) = contributor(&pool, "ada").await?;
    let id = submitted(&pool, dir.path(), &ada, &checkpoint("tied")?, "tied").await?;
    let token = support::worker_token(&pool, "flaky", ascent_store::now()).await?;
    for attempt in 1..=3 {
        let url = server.url();
        let token = token.clone();
        tokio::task::spawn_blocking(move || -> TestResult {
            let client = Client::new(&url, Some(&token))?;
            let job = claim(&client)?;
            let result = JobResult {
                lease: job.lease,
                outcome: JobOutcome::Error {
                    message: "disk full".into(),
                },
            };
            client.post_json::<_, serde_json::Value>(
                &format!("/api/worker/jobs/{}/result", job.job_id),
                &result,
            )?;
            Ok(())
        })
        .await??;
        let now = outcome(&pool, id).await?;
        assert_eq!(now.attempts, attempt);
        if attempt < 3 {
            assert_eq!(now.state, "queued");
            sqlx::query("UPDATE jobs SET available_at = 0")
                .execute(&pool)
                .await?;
        }
    }
    let failed = outcome(&pool, id).await?;
    assert_eq!(failed.state, "failed");
    assert!(!failed.counts_toward_quota);
    let message = failed.error.ok_or("no message")?;
    assert!(
        message.contains("on our side") && message.contains("disk full"),
        "{message}"
    );
    server.stop().await.map_err(|e| e.to_string())?;
    Ok(())
}

#[sqlx::test(migrations = "../migrations")]
async fn a_revoked_worker_is_refused(pool: SqlitePool) -> TestResult {
    let dir = tempfile::tempdir()?;
    let server = server(&pool, dir.path()).await?;
    let (_, ada) = contributor(&pool, "ada").await?;
    submitted(&pool, dir.path(), &ada, &checkpoint("tied")?, "tied").await?;
    let now = ascent_store::now();
    let token = support::worker_token(&pool, "retired", now).await?;
    let id = workers::list(&pool, now)
        .await?
        .into_iter()
        .find(|w| w.name == "retired")
        .ok_or("listed")?
        .id;
    workers::revoke(&pool, id, None, now).await?;
    let result = work(&server.url(), &token, &dir.path().join("cache")).await;
    let error = result
        .expect_err("a revoked worker cannot work")
        .to_string();
    assert!(
        error.contains("revoked") || error.contains("401"),
        "{error}"
    );
    let queued: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM jobs WHERE finished_at IS NULL AND lease_hash IS NULL",
    )
    .fetch_one(&pool)
    .await?;
    assert_eq!(queued, 1, "the job waits for a worker that may run it");
    server.stop().await.map_err(|e| e.to_string())?;
    Ok(())
}

#[sqlx::test(migrations = "../migrations")]
async fn a_job_past_its_time_limit_is_taken_back(pool: SqlitePool) -> TestResult {
    let dir = tempfile::tempdir()?;
    let server = server(&pool, dir.path()).await?;
    let (_, ada) = contributor(&pool, "ada").await?;
    let id = submitted(&pool, dir.path(), &ada, &checkpoint("tied")?, "tied").await?;
    let token = support::worker_token(&pool, "slow", ascent_store::now()).await?;
    let url = server.url();
    let job =
        tokio::task::spawn_blocking(move || claim(&Client::new(&url, Some(&token))?)).await??;
    assert_eq!(job.time_limit_seconds, 600, "the demo preset's 10 minutes");
    // Heartbeats keep the lease alive, but the deadline passes.
    let late = ascent_store::now() + 601;
    sqlx::query("UPDATE jobs SET lease_expires_at = ?")
        .bind(late + 30)
        .execute(&pool)
        .await?;
    assert_eq!(jobs::reap(&pool, late).await?, 1);
    let back = outcome(&pool, id).await?;
    assert_eq!(back.state, "queued");
    let reason: Option<String> =
        sqlx::query_scalar("SELECT last_error FROM jobs WHERE submission_id = ?")
            .bind(id)
            .fetch_one(&pool)
            .await?;
    assert!(reason.is_some_and(|r| r.contains("limit of 10 minutes")));
    server.stop().await.map_err(|e| e.to_string())?;
    Ok(())
}

/// A scored result as a worker would send it for `job`, signed with `key`.
fn signed_result(job: &JobAssignment, key: &WorkerKey, window_nll: Vec<f64>) -> ScoredCheckpoint {
    let mut scored = ScoredCheckpoint {
        window_nll,
        seq_len: job.seq_len,
        parameters: 1_000,
        weights_sha256: "ab".repeat(32),
        data_sha256: job.data.sha256.clone(),
        evaluator_version: "test".into(),
        device: "cpu".into(),
        dtype: "f32".into(),
        seconds: 0.1,
        scored_at: ascent_store::now(),
        signature: String::new(),
        fingerprint: Vec::new(),
    };
    let spec = spec_sha256(
        job.seq_len,
        job.windows,
        &job.data.sha256,
        job.limits.max_parameters,
    );
    scored.signature = key.sign(&ScoreStatement::of(job.submission_id, &spec, &scored));
    scored
}

#[sqlx::test(migrations = "../migrations")]
async fn only_a_score_signed_with_the_workers_registered_key_is_accepted(
    pool: SqlitePool,
) -> TestResult {
    let dir = tempfile::tempdir()?;
    let server = server(&pool, dir.path()).await?;
    let (_, ada) = contributor(&pool, "ada").await?;
    let id = submitted(&pool, dir.path(), &ada, &checkpoint("tied")?, "tied").await?;
    let key = support::worker_key();
    let token = workers::create(
        &pool,
        "signer",
        &key.public_hex(),
        None,
        ascent_store::now(),
    )
    .await?;
    let url = server.url();
    let signer = key.clone();
    let statuses = tokio::task::spawn_blocking(move || -> TestResult<Vec<Option<u16>>> {
        let key = signer;
        let client = Client::new(&url, Some(&token))?;
        let job = claim(&client)?;
        let losses = vec![200.0; job.windows as usize];
        let post = |scored: ScoredCheckpoint| {
            let result = JobResult {
                lease: job.lease.clone(),
                outcome: JobOutcome::Scored(scored),
            };
            match client.post_json::<_, serde_json::Value>(
                &format!("/api/worker/jobs/{}/result", job.job_id),
                &result,
            ) {
                Ok(_) => Some(204),
                Err(e) => e.status(),
            }
        };
        // Signed by another key: a forgery.
        let forged = signed_result(&job, &WorkerKey::from_secret([7; 32]), losses.clone());
        // Signed by the worker, then altered: one window made better.
        let mut altered = signed_result(&job, &key, losses.clone());
        altered.window_nll[0] = 100.0;
        // Signed for another submission.
        let mut elsewhere = job.clone();
        elsewhere.submission_id += 1;
        let misplaced = signed_result(&elsewhere, &key, losses.clone());
        let honest = signed_result(&job, &key, losses);
        Ok(vec![
            post(forged),
            post(altered),
            post(misplaced),
            post(honest),
        ])
    })
    .await??;
    assert_eq!(statuses, [Some(403), Some(403), Some(403), Some(204)]);

    // The accepted statement is kept with its signature, and anyone can check it.
    let (statement, signature, public_key, loss): (String, String, String, f64) = sqlx::query_as(
        "SELECT score_statement, score_signature, score_key, loss FROM submissions WHERE id = ?",
    )
    .bind(id)
    .fetch_one(&pool)
    .await?;
    assert_eq!(public_key, key.public_hex());
    assert_eq!(verify(&statement, &signature, &public_key), Ok(()));
    let parsed: ScoreStatement = serde_json::from_str(&statement)?;
    assert_eq!(parsed.submission_id, id);
    assert!(
        (parsed.loss - loss).abs() < 1e-12,
        "{} vs {loss}",
        parsed.loss
    );
    server.stop().await.map_err(|e| e.to_string())?;
    Ok(())
}

/// Registers worker `name` through the console's server function, with `evidence`.
async fn register(
    app: &axum::Router,
    organizer: &str,
    name: &str,
    evidence: &str,
) -> TestResult<support::Reply> {
    support::server_fn(
        app,
        organizer,
        "organizer/create_worker",
        &[
            ("csrf_token", ""),
            ("name", name),
            ("public_key", &support::worker_key().public_hex()),
            ("evidence", evidence),
        ],
    )
    .await
}

#[sqlx::test(migrations = "../migrations")]
async fn a_phase_that_requires_attestation_takes_scores_only_from_attested_workers(
    pool: SqlitePool,
) -> TestResult {
    use ascent_domain::attestation::{development_evidence, report_data, Evidence, TeeKind};
    let dir = tempfile::tempdir()?;
    let server = server(&pool, dir.path()).await?;
    sqlx::query("UPDATE phases SET require_attestation = 1 WHERE number = 1")
        .execute(&pool)
        .await?;
    let (_, ada) = contributor(&pool, "ada").await?;
    let id = submitted(&pool, dir.path(), &ada, &checkpoint("tied")?, "tied").await?;

    // An unattested worker is given no job of the phase...
    let key = support::worker_key();
    let plain =
        workers::create(&pool, "plain", &key.public_hex(), None, ascent_store::now()).await?;
    let idle = work(&server.url(), &plain, &dir.path().join("cache-plain")).await?;
    assert_eq!(idle, WorkerSummary::default(), "nothing to claim");
    assert_eq!(outcome(&pool, id).await?.state, "queued");
    // ...and a result it holds from before the rule is refused.
    sqlx::query("UPDATE phases SET require_attestation = 0")
        .execute(&pool)
        .await?;
    let url = server.url();
    let (job, client) = {
        let (url, plain) = (url.clone(), plain.clone());
        tokio::task::spawn_blocking(move || -> TestResult<(JobAssignment, Client)> {
            let client = Client::new(&url, Some(&plain))?;
            Ok((claim(&client)?, client))
        })
        .await??
    };
    sqlx::query("UPDATE phases SET require_attestation = 1")
        .execute(&pool)
        .await?;
    let signer = key.clone();
    let refused = tokio::task::spawn_blocking(move || {
        let result = JobResult {
            lease: job.lease.clone(),
            outcome: JobOutcome::Scored(signed_result(
                &job,
                &signer,
                vec![200.0; job.windows as usize],
            )),
        };
        client
            .post_json::<_, serde_json::Value>(
                &format!("/api/worker/jobs/{}/result", job.job_id),
                &result,
            )
            .err()
            .and_then(|e| e.status())
    })
    .await?;
    assert_eq!(refused, Some(403));
    assert_ne!(outcome(&pool, id).await?.state, "scored");
    // Its job goes back to the queue when it is revoked.
    let plain_id = workers::list(&pool, ascent_store::now()).await?[0].id;
    workers::revoke(&pool, plain_id, None, ascent_store::now()).await?;
    jobs::release_worker(&pool, plain_id, ascent_store::now()).await?;
    // (Without waiting out the retry backoff, which is not what this test is about.)
    sqlx::query("UPDATE jobs SET available_at = 0")
        .execute(&pool)
        .await?;

    // Registration checks the evidence: bound to another key, or of a kind this server
    // cannot verify, it is refused and no worker is created.
    let app = router(state(&pool, dir.path())?);
    let (_, org) = support::account(&pool, "org", ascent_domain::views::Role::Organizer).await?;
    let stranger = serde_json::to_string(&development_evidence(
        &WorkerKey::from_secret([7; 32]).public_hex(),
    ))?;
    let reply = register(&app, &org, "enclave", &stranger).await?;
    assert!(
        reply.body.contains("bound to another key"),
        "{}",
        reply.body
    );
    let tdx = serde_json::to_string(&Evidence {
        kind: TeeKind::IntelTdx,
        report_data: report_data(&key.public_hex()),
        report: "AAAA".into(),
    })?;
    let reply = register(&app, &org, "enclave", &tdx).await?;
    assert!(
        reply.body.contains("no verifier for intel-tdx"),
        "{}",
        reply.body
    );
    assert!(workers::list(&pool, ascent_store::now())
        .await?
        .iter()
        .all(|w| w.name != "enclave"));

    // An attested worker (development evidence, accepted by this test server) scores it,
    // and the submission says what kind of worker did.
    let evidence = serde_json::to_string(&development_evidence(&key.public_hex()))?;
    let reply = register(&app, &org, "enclave", &evidence).await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let token: String = reply.json()?;
    let summary = work(&server.url(), &token, &dir.path().join("cache-enclave")).await?;
    assert_eq!(summary.scored, 1, "{summary:?}");
    let report = ascent_store::submissions::report(&pool, id, ascent_store::now())
        .await?
        .ok_or("report")?
        .report;
    assert_eq!(report.worker_attestation, Some(TeeKind::Development));
    server.stop().await.map_err(|e| e.to_string())?;
    Ok(())
}

/// An organizer's re-run puts a scored submission back in the queue from its stored
/// files: its score leaves the leaderboard, a worker scores it again to the same loss,
/// it comes back, and the public log records the re-run between the two signed scores.
#[sqlx::test(migrations = "../migrations")]
async fn a_rerun_scores_the_stored_files_again(pool: SqlitePool) -> TestResult {
    let dir = tempfile::tempdir()?;
    let server = server(&pool, dir.path()).await?;
    let (_, ada) = contributor(&pool, "ada").await?;
    let (_, organizer) =
        support::account(&pool, "org", ascent_domain::views::Role::Organizer).await?;
    let id = submitted(&pool, dir.path(), &ada, &checkpoint("tied")?, "tied").await?;
    let token = support::worker_token(&pool, "gpu-1", ascent_store::now()).await?;
    let cache = dir.path().join("cache");
    assert_eq!(work(&server.url(), &token, &cache).await?.scored, 1);
    let first = outcome(&pool, id).await?;
    assert_eq!(first.state, "scored");

    let app = router(state(&pool, dir.path())?);
    let fields = [("csrf_token", ""), ("id", &*id.to_string()), ("reason", "")];
    let refused = support::server_fn(&app, &organizer, "organizer/rerun", &fields).await?;
    assert!(
        refused.body.contains("reason"),
        "a reason is required: {}",
        refused.body
    );
    let fields = [
        ("csrf_token", ""),
        ("id", &*id.to_string()),
        ("reason", "worker fault"),
    ];
    let reply = support::server_fn(&app, &organizer, "organizer/rerun", &fields).await?;
    assert!(reply.status.is_success(), "{} {}", reply.status, reply.body);

    let queued = outcome(&pool, id).await?;
    assert_eq!(
        (queued.state.as_str(), queued.loss, queued.attempts),
        ("queued", None, 0)
    );
    let board = get_json(&server, None, "/api/phases/1/leaderboard").await?;
    assert_eq!(board["total"], 0, "the old score left the standings");
    // A second re-run while it waits is refused: only scored or failed ones.
    let again = support::server_fn(&app, &organizer, "organizer/rerun", &fields).await?;
    assert!(
        again.body.contains("only a scored or failed"),
        "{}",
        again.body
    );

    assert_eq!(work(&server.url(), &token, &cache).await?.scored, 1);
    let second = outcome(&pool, id).await?;
    assert_eq!(second.state, "scored");
    assert_eq!(second.loss, first.loss, "the same files score the same");
    let board = get_json(&server, None, "/api/phases/1/leaderboard").await?;
    assert_eq!(board["rows"][0]["contributor"], "ada");
    assert_eq!(board["rows"][0]["best_loss"].as_f64(), second.public_loss);

    let kinds: Vec<String> = sqlx::query_scalar(
        "SELECT kind FROM public_log WHERE kind IN ('score_recorded', 'rerun') ORDER BY seq",
    )
    .fetch_all(&pool)
    .await?;
    assert_eq!(kinds, ["score_recorded", "rerun", "score_recorded"]);
    server.stop().await.map_err(|e| e.to_string())?;
    Ok(())
}
