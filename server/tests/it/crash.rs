//! The real `ascent` binary killed with SIGKILL mid-upload and mid-scoring: after a
//! restart the upload resumes where the disk says it stopped, and the job completes
//! exactly once. Also the `ascent-eval submit` path end to end against the process.

use crate::support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ascent_domain::protocol::{NewUpload, SubmissionCreated, UploadFile, UploadStatus};
use ascent_evaluator::client::Client;
use ascent_evaluator::submit;
use support::process::Server;
use support::{fixture, TestResult};
use ureq::http::Method;

/// A demo-like preset whose phase 1 scores 384 windows of the demo's held-out data:
/// long enough (about a second) to be interrupted.
fn write_preset(dir: &Path) -> TestResult<PathBuf> {
    let text = include_str!("../../../presets/demo.toml")
        .replacen("max_parameters = 100_000", "max_parameters = 150_000", 1)
        .replacen("windows = 64", "windows = 384", 1);
    let path = dir.join("preset.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

fn report(client: &Client, id: i64) -> TestResult<serde_json::Value> {
    Ok(client.get_json(&format!("/api/submissions/{id}"))?)
}

fn wait_for(
    client: &Client,
    id: i64,
    done: impl Fn(&str) -> bool,
    limit: Duration,
) -> TestResult<serde_json::Value> {
    let deadline = Instant::now() + limit;
    loop {
        let now = report(client, id)?;
        if done(now["state"].as_str().unwrap_or_default()) {
            return Ok(now);
        }
        if Instant::now() > deadline {
            return Err(format!("submission {id} stuck: {now}").into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn uploads_and_jobs_survive_kill_9() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut server = Server::new(dir.path(), &write_preset(dir.path())?)?;
    let token = server.contributor("ada")?;
    server.start(0)?;
    let client = Client::new(&server.url(), Some(&token))?;

    // Mid-upload: half the weights are on disk when the server dies.
    let model = fixture("mha");
    let config = std::fs::read(model.join("config.json"))?;
    let weights = std::fs::read(model.join("model.safetensors"))?;
    let new = NewUpload {
        phase: 1,
        files: vec![
            UploadFile {
                name: "config.json".into(),
                bytes: config.len() as u64,
            },
            UploadFile {
                name: "model.safetensors".into(),
                bytes: weights.len() as u64,
            },
        ],
        fingerprint: "mha".into(),
        encrypted_to: None,
    };
    let upload: UploadStatus = client.post_json("/api/uploads", &new)?.ok_or("no upload")?;
    let half = weights.len() / 2;
    let patch = |offset: usize, bytes: &[u8], name: &str| -> TestResult<u16> {
        let path = format!("/api/uploads/{}/files/{name}", upload.id);
        let offset = offset.to_string();
        let headers = [
            ("upload-offset", offset.as_str()),
            ("content-type", "application/offset+octet-stream"),
        ];
        Ok(client
            .send(Method::PATCH, &path, &headers, bytes)?
            .status()
            .as_u16())
    };
    assert_eq!(patch(0, &weights[..half], "model.safetensors")?, 204);
    server.kill()?;

    server.start(0)?;
    let resumed: UploadStatus = client.post_json("/api/uploads", &new)?.ok_or("no upload")?;
    assert_eq!(resumed.id, upload.id, "the same upload is found again");
    let held = resumed
        .files
        .iter()
        .find(|f| f.name == "model.safetensors")
        .ok_or("file")?
        .received;
    assert_eq!(held, half as u64, "nothing lost, nothing invented");
    assert_eq!(patch(half, &weights[half..], "model.safetensors")?, 204);
    assert_eq!(patch(0, &config, "config.json")?, 204);
    let created: SubmissionCreated = client
        .post_json(
            &format!("/api/uploads/{}/finish", upload.id),
            &serde_json::json!({}),
        )?
        .ok_or("no submission")?;
    server.kill()?;

    // Mid-job: the in-process worker holds the job (validating, then scoring) when the
    // server dies.
    server.start(1)?;
    let started = Instant::now();
    let seen = wait_for(
        &client,
        created.id,
        |s| s != "queued",
        Duration::from_secs(60),
    )?;
    server.kill()?;
    eprintln!(
        "killed {:?} after the start, in state {}",
        started.elapsed(),
        seen["state"]
    );
    assert!(
        matches!(seen["state"].as_str(), Some("validating" | "scoring")),
        "the job ended before the kill; make it longer: {seen}"
    );

    server.start(1)?;
    let done = wait_for(
        &client,
        created.id,
        |s| s == "scored" || s == "failed",
        Duration::from_secs(120),
    )?;
    assert_eq!(done["state"], "scored", "{done}");
    assert_eq!(
        done["attempts"], 2,
        "the interrupted attempt and the one that finished"
    );
    let board: serde_json::Value = client.get_json("/api/phases/1/leaderboard")?;
    assert_eq!(board["total"], 1);
    assert_eq!(board["rows"][0]["submissions"], 1, "scored exactly once");
    let phases: serde_json::Value = client.get_json("/api/phases")?;
    assert_eq!(phases[0]["submissions"], 1);
    Ok(())
}

#[test]
fn ascent_eval_submit_uploads_and_waits_for_the_score() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut server = Server::new(dir.path(), &write_preset(dir.path())?)?;
    let token = server.contributor("ada")?;
    server.start(1)?;
    let client = Client::new(&server.url(), Some(&token))?;
    let mut last = (0, 0);
    let created = submit::upload(
        &client,
        1,
        &fixture("tied"),
        submit::Encryption::None,
        &mut |done, total| last = (done, total),
    )?;
    assert_eq!(last.0, last.1);
    assert!(last.1 > 0);
    let report = submit::wait(&client, created.id, Duration::from_millis(200), &mut |_| {})?;
    assert_eq!(report.state.as_str(), "scored");
    assert!(report.public_loss.is_some_and(|l| l > 0.0 && l < 10.0));
    // The same files again: the contributor's own re-upload is allowed (a new submission).
    let again = submit::upload(
        &client,
        1,
        &fixture("tied"),
        submit::Encryption::None,
        &mut |_, _| {},
    )?;
    assert_ne!(again.id, created.id);
    Ok(())
}

#[test]
fn a_worker_lost_mid_scoring_with_the_server_is_replaced_and_its_late_result_refused() -> TestResult
{
    use ascent_domain::protocol::{
        ClaimRequest, Heartbeat, JobAssignment, JobOutcome, JobResult, JobStage, LeaseRenewal,
    };

    let dir = tempfile::tempdir()?;
    let mut server = Server::new(dir.path(), &write_preset(dir.path())?)?;
    let token = server.contributor("ada")?;
    let worker_token = server.with_database(async |pool| {
        support::worker_token(pool, "doomed", ascent_store::now()).await
    })?;
    server.start(0)?;
    let client = Client::new(&server.url(), Some(&token))?;
    let created = submit::upload(
        &client,
        1,
        &fixture("mha"),
        submit::Encryption::None,
        &mut |_, _| {},
    )?;

    // A remote worker claims the job and reports that it is scoring...
    let doomed = Client::new(&server.url(), Some(&worker_token))?;
    let claim = ClaimRequest {
        evaluator_version: "test".into(),
        device: "cpu".into(),
        evaluation_keys: Vec::new(),
    };
    let job: JobAssignment = doomed
        .post_json("/api/worker/claim", &claim)?
        .ok_or("no job")?;
    let beat = Heartbeat {
        lease: job.lease.clone(),
        stage: JobStage::Scoring,
        done: 100,
        total: 384,
    };
    let _: Option<LeaseRenewal> =
        doomed.post_json(&format!("/api/worker/jobs/{}/heartbeat", job.job_id), &beat)?;
    let scoring = report(&client, created.id)?;
    assert_eq!(scoring["state"], "scoring");
    assert_eq!(scoring["progress"]["done"], 100);

    // ...then the server dies, and the worker with it. The restarted server's own
    // worker takes the job over once the lease lapses (30 s) and its backoff passes.
    server.kill()?;
    server.start(1)?;
    let done = wait_for(
        &client,
        created.id,
        |s| s == "scored" || s == "failed",
        Duration::from_secs(120),
    )?;
    assert_eq!(done["state"], "scored", "{done}");
    assert_eq!(done["attempts"], 2);

    // The lost worker's result arrives late: refused, and the score stands.
    let late = JobResult {
        lease: job.lease,
        outcome: JobOutcome::Invalid {
            message: "late".into(),
        },
    };
    let refused = doomed
        .post_json::<_, serde_json::Value>(
            &format!("/api/worker/jobs/{}/result", job.job_id),
            &late,
        )
        .err()
        .and_then(|e| e.status());
    assert_eq!(refused, Some(409));
    assert_eq!(report(&client, created.id)?["state"], "scored");
    let board: serde_json::Value = client.get_json("/api/phases/1/leaderboard")?;
    assert_eq!(board["rows"][0]["submissions"], 1, "scored exactly once");
    Ok(())
}
