//! Encrypted participation end to end: `ascent-eval submit --encrypt`'s library path
//! against a real server on a real port, workers with and without the phase's
//! evaluation key, and what the server stores.

use crate::support;

use std::path::Path;

use ascent_evaluator::client::Client;
use ascent_evaluator::encryption::{self, EvaluationKey};
use ascent_evaluator::submit;
use ascent_evaluator::worker::WorkerSummary;
use ascent_server::serve::{self, RunningServer};
use ascent_server::storage::Storage;
use ascent_store::{phases, SqlitePool};
use support::{config, contributor, fixture, work, TestResult};

/// The test preset with phase 1's evaluation key set to `key` (or none), and its data.
async fn server(pool: &SqlitePool, dir: &Path, key: Option<&str>) -> TestResult<RunningServer> {
    support::logs();
    let now = ascent_store::now();
    let mut preset = support::test_preset(now)?;
    preset.phases[0].evaluation_key = key.map(str::to_owned);
    phases::load_preset(pool, &preset, now, false).await?;
    ascent_server::admin::add_data(pool, &Storage::new(dir), 1, &fixture("text_u16.bin"))
        .await
        .map_err(|e| e.to_string())?;
    Ok(serve::start(pool.clone(), config(dir, 0)?)
        .await
        .map_err(|e| e.to_string())?)
}

/// [`server`] with an evaluation key for phase 1, made in `dir`; the key and the server.
async fn keyed_server(pool: &SqlitePool, dir: &Path) -> TestResult<(EvaluationKey, RunningServer)> {
    let key = EvaluationKey::create(&dir.join("phase-1.key"))?;
    let server = server(pool, dir, Some(key.recipient())).await?;
    Ok((key, server))
}

/// A copy of a fixture checkpoint (encrypting writes beside the files).
fn copy_of(name: &str, into: &Path) -> TestResult<std::path::PathBuf> {
    let dir = into.join(name);
    std::fs::create_dir_all(&dir)?;
    for entry in std::fs::read_dir(fixture(name))? {
        let entry = entry?;
        std::fs::copy(entry.path(), dir.join(entry.file_name()))?;
    }
    Ok(dir)
}

/// `ascent-eval submit [--encrypt [--evaluation-key PIN]]` as a library call.
async fn upload(
    url: &str,
    token: &str,
    dir: &Path,
    encrypt: Option<Option<&str>>,
) -> TestResult<i64> {
    let (url, token, dir) = (url.to_owned(), token.to_owned(), dir.to_owned());
    let pin = encrypt.flatten().map(str::to_owned);
    let encrypt = encrypt.is_some();
    let created = tokio::task::spawn_blocking(move || {
        let client = Client::new(&url, Some(&token))?;
        let encryption = match encrypt {
            true => submit::Encryption::ToPhaseKey(pin.as_deref()),
            false => submit::Encryption::None,
        };
        submit::upload(&client, 1, &dir, encryption, &mut |_, _| {})
    })
    .await??;
    Ok(created.id)
}

/// Starts an upload of `files` through the API, saying they are encrypted to `to`.
async fn start_sealed(
    app: &axum::Router,
    token: &str,
    files: &[(String, Vec<u8>)],
    fingerprint: &str,
    to: &str,
) -> TestResult<support::Reply> {
    support::call(
        app,
        http::Method::POST,
        "/api/uploads",
        token,
        support::new_upload_to(1, files, fingerprint, Some(to))?,
        None,
    )
    .await
}

/// Uploads `files` said to be encrypted to `to` and finishes them; the finish's reply.
async fn submit_sealed(
    app: &axum::Router,
    token: &str,
    files: &[(String, Vec<u8>)],
    fingerprint: &str,
    to: &str,
) -> TestResult<support::Reply> {
    let started = start_sealed(app, token, files, fingerprint, to).await?;
    assert_eq!(
        started.status,
        http::StatusCode::CREATED,
        "{}",
        started.body
    );
    let status: ascent_domain::protocol::UploadStatus = started.json()?;
    support::send_all(app, token, &status.id, files).await?;
    support::finish(app, token, &status.id).await
}

/// `checkpoint`'s files encrypted to `recipient`, as (name, bytes) for the upload API.
fn sealed_files(checkpoint: &Path, recipient: &str) -> TestResult<Vec<(String, Vec<u8>)>> {
    let files = submit::checkpoint_files(checkpoint)?;
    submit::seal(checkpoint, &files, recipient)?
        .iter()
        .map(|f| Ok((f.name.clone(), std::fs::read(&f.path)?)))
        .collect()
}

#[derive(Debug, PartialEq, sqlx::FromRow)]
struct Scored {
    state: String,
    encrypted: bool,
    window_nll: Option<String>,
    weights_sha256: Option<String>,
    loss: Option<f64>,
    error: Option<String>,
}

async fn scored(pool: &SqlitePool, id: i64) -> TestResult<Scored> {
    Ok(sqlx::query_as(
        "SELECT state, encrypted_to IS NOT NULL AS encrypted, window_nll, weights_sha256, loss, error
         FROM submissions WHERE id = ?",
    )
    .bind(id)
    .fetch_one(pool)
    .await?)
}

#[sqlx::test(migrations = "../migrations")]
async fn an_encrypted_checkpoint_scores_exactly_as_the_plain_one_and_only_with_the_key(
    pool: SqlitePool,
) -> TestResult {
    let dir = tempfile::tempdir()?;
    let (key, server) = keyed_server(&pool, dir.path()).await?;
    let (_, ada) = contributor(&pool, "ada").await?;
    let checkpoint = copy_of("tied", dir.path())?;
    let plain = upload(&server.url(), &ada, &checkpoint, None).await?;
    // Pinned to the key the organizers announced: the server gives the same one.
    let sealed = upload(
        &server.url(),
        &ada,
        &checkpoint,
        Some(Some(key.recipient())),
    )
    .await?;

    // The server holds ciphertext only: age files, none of the plain bytes.
    let upload_id: String = sqlx::query_scalar("SELECT upload_id FROM submissions WHERE id = ?")
        .bind(sealed)
        .fetch_one(&pool)
        .await?;
    let stored = Storage::new(dir.path()).checkpoint_dir(&upload_id);
    let mut names: Vec<String> = std::fs::read_dir(&stored)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    assert_eq!(names, ["config.json.age", "model.safetensors.age"]);
    let config_plain = std::fs::read(checkpoint.join("config.json"))?;
    for name in &names {
        let bytes = std::fs::read(stored.join(name))?;
        assert!(bytes.starts_with(b"age-encryption.org/v1\n"), "{name}");
        assert!(
            !bytes.windows(32).any(|w| w == &config_plain[..32]),
            "{name} holds plaintext"
        );
    }

    let token = support::worker_token(&pool, "no-key", ascent_store::now()).await?;
    // A worker without the key is not given the encrypted submission at all.
    let cache = dir.path().join("cache-a");
    let summary = work(&server.url(), &token, &cache, &[]).await?;
    assert_eq!((summary.scored, summary.invalid, summary.errors), (1, 0, 0));
    assert_eq!(scored(&pool, sealed).await?.state, "queued");
    // Nor is one holding another phase's key.
    let other = EvaluationKey::generate();
    let summary = work(&server.url(), &token, &cache, &[other]).await?;
    assert_eq!(summary, WorkerSummary::default());
    assert_eq!(scored(&pool, sealed).await?.state, "queued");

    // With the key it scores, and exactly as the plain files scored.
    let summary = work(&server.url(), &token, &dir.path().join("cache-b"), &[key]).await?;
    assert_eq!((summary.scored, summary.invalid, summary.errors), (1, 0, 0));
    let (a, b) = (scored(&pool, plain).await?, scored(&pool, sealed).await?);
    assert_eq!((a.state.as_str(), b.state.as_str()), ("scored", "scored"));
    assert!(!a.encrypted && b.encrypted);
    assert!(a.window_nll.is_some() && a.loss.is_some());
    assert_eq!(
        a.window_nll, b.window_nll,
        "every window's loss is identical"
    );
    assert_eq!(a.loss, b.loss);
    assert_eq!(
        a.weights_sha256, b.weights_sha256,
        "the weights are the same"
    );
    // The worker deleted its decrypted copy with the job.
    assert_eq!(
        std::fs::read_dir(dir.path().join("cache-b/jobs"))?.count(),
        0
    );

    // The report says so, and the encrypted files are kept beside the checkpoint for a
    // resumed upload.
    let client = Client::new(&server.url(), None)?;
    let report: serde_json::Value = tokio::task::spawn_blocking(move || {
        client.get_json::<serde_json::Value>(&format!("/api/submissions/{sealed}"))
    })
    .await??;
    assert_eq!(report["encrypted"], true);
    assert!(checkpoint
        .join(submit::SEALED_DIR)
        .join("model.safetensors.age")
        .is_file());
    server.stop().await.map_err(|e| e.to_string())?;
    Ok(())
}

#[sqlx::test(migrations = "../migrations")]
async fn files_for_another_key_fail_as_the_contributors_and_half_encrypted_is_refused(
    pool: SqlitePool,
) -> TestResult {
    let dir = tempfile::tempdir()?;
    let (key, server) = keyed_server(&pool, dir.path()).await?;
    let (_, bob) = contributor(&pool, "bob").await?;
    // Sealed to a key that is not the phase's, but sent saying it is (a broken client).
    let checkpoint = copy_of("tied", dir.path())?;
    let bytes = sealed_files(&checkpoint, EvaluationKey::generate().recipient())?;
    let app = ascent_server::http::router(support::state(&pool, dir.path())?);
    let reply = submit_sealed(&app, &bob, &bytes, "wrong-key", key.recipient()).await?;
    assert_eq!(reply.status, http::StatusCode::CREATED, "{}", reply.body);
    let id = reply
        .json::<ascent_domain::protocol::SubmissionCreated>()?
        .id;

    let token = support::worker_token(&pool, "w", ascent_store::now()).await?;
    let summary = work(
        &server.url(),
        &token,
        &dir.path().join("cache"),
        std::slice::from_ref(&key),
    )
    .await?;
    assert_eq!((summary.scored, summary.invalid), (0, 1));
    let failed = scored(&pool, id).await?;
    assert_eq!(failed.state, "failed");
    assert_eq!(
        failed.error.as_deref(),
        Some("config.json.age: not encrypted to the phase's evaluation key")
    );

    // Half encrypted is refused at the door.
    let mixed = [
        bytes[0].clone(),
        (
            "model.safetensors".to_owned(),
            std::fs::read(checkpoint.join("model.safetensors"))?,
        ),
    ];
    let reply = start_sealed(&app, &bob, &mixed, "mixed", key.recipient()).await?;
    assert_eq!(reply.status, http::StatusCode::CONFLICT, "{}", reply.body);
    assert!(reply.body.contains("encrypted whole"), "{}", reply.body);
    // Encrypted files that do not say their key are refused too.
    let reply = support::start(&app, &bob, &bytes, "unsaid").await?;
    assert_eq!(reply.status, http::StatusCode::CONFLICT, "{}", reply.body);
    assert!(reply.body.contains("encrypted_to"), "{}", reply.body);
    server.stop().await.map_err(|e| e.to_string())?;
    Ok(())
}

#[sqlx::test(migrations = "../migrations")]
async fn a_key_changed_mid_upload_or_not_the_pinned_one_sends_nothing_that_counts(
    pool: SqlitePool,
) -> TestResult {
    let dir = tempfile::tempdir()?;
    let (key, server) = keyed_server(&pool, dir.path()).await?;
    let (_, ada) = contributor(&pool, "ada").await?;
    let checkpoint = copy_of("tied", dir.path())?;
    // The key the server gives is in the public log with the phase's settings.
    let settings: String = sqlx::query_scalar(
        "SELECT body FROM public_log WHERE body LIKE '%\"phase_settings\"%' AND body LIKE '%\"phase\":1,%' ORDER BY seq DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await?;
    assert!(settings.contains(key.recipient()), "{settings}");

    // A contributor who expects another key sends nothing.
    let other = EvaluationKey::generate();
    let e = upload(
        &server.url(),
        &ada,
        &checkpoint,
        Some(Some(other.recipient())),
    )
    .await
    .expect_err("pinned key differs");
    assert!(e.to_string().contains("nothing was sent"), "{e}");

    // The key changes between the start of an upload and its finish (the phase has no
    // submission yet, so it may): the finish is refused, nothing is queued or counted.
    let bytes = sealed_files(&checkpoint, key.recipient())?;
    let app = ascent_server::http::router(support::state(&pool, dir.path())?);
    let started = start_sealed(&app, &ada, &bytes, "sealed", key.recipient()).await?;
    assert_eq!(
        started.status,
        http::StatusCode::CREATED,
        "{}",
        started.body
    );
    let status: ascent_domain::protocol::UploadStatus = started.json()?;
    support::send_all(&app, &ada, &status.id, &bytes).await?;
    sqlx::query("UPDATE phases SET evaluation_key = ? WHERE number = 1")
        .bind(other.recipient())
        .execute(&pool)
        .await?;
    let finish = support::finish(&app, &ada, &status.id).await?;
    assert!(!finish.status.is_success(), "{}", finish.body);
    assert!(
        finish.body.contains("encrypt them again"),
        "{}",
        finish.body
    );
    let submissions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM submissions")
        .fetch_one(&pool)
        .await?;
    assert_eq!(submissions, 0);
    server.stop().await.map_err(|e| e.to_string())?;
    Ok(())
}

#[sqlx::test(migrations = "../migrations")]
async fn a_phase_without_an_evaluation_key_takes_no_encrypted_checkpoints(
    pool: SqlitePool,
) -> TestResult {
    let dir = tempfile::tempdir()?;
    let server = server(&pool, dir.path(), None).await?;
    let (_, ada) = contributor(&pool, "ada").await?;
    let checkpoint = copy_of("tied", dir.path())?;
    // `submit --encrypt` asks for the key before encrypting or sending anything.
    let e = upload(&server.url(), &ada, &checkpoint, Some(None))
        .await
        .expect_err("no key to encrypt to");
    assert!(
        e.to_string().contains("phase 1 has no evaluation key"),
        "{e}"
    );
    assert!(!checkpoint.join(submit::SEALED_DIR).exists());
    // Encrypted files sent anyway are refused at the door.
    let to = EvaluationKey::generate();
    let bytes = sealed_files(&checkpoint, to.recipient())?;
    let app = ascent_server::http::router(support::state(&pool, dir.path())?);
    let reply = start_sealed(&app, &ada, &bytes, "sealed", to.recipient()).await?;
    assert!(!reply.status.is_success(), "{}", reply.body);
    assert!(reply.body.contains("no evaluation key"), "{}", reply.body);
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM uploads")
        .fetch_one(&pool)
        .await?;
    assert_eq!(count, 0);
    server.stop().await.map_err(|e| e.to_string())?;
    Ok(())
}

/// `POST path` with a JSON body as a worker; the status, or the answer.
async fn as_worker(
    url: &str,
    token: &str,
    path: &str,
    body: serde_json::Value,
) -> TestResult<Result<serde_json::Value, u16>> {
    let client = Client::new(url, Some(token))?;
    let path = path.to_owned();
    Ok(tokio::task::spawn_blocking(move || {
        match client.post_json::<_, serde_json::Value>(&path, &body) {
            Ok(answer) => Ok(answer.unwrap_or_default()),
            Err(e) => Err(e.status().unwrap_or(0)),
        }
    })
    .await?)
}

/// `GET path` from the public API: the body, or the status.
async fn public_get(url: &str, path: &str) -> TestResult<Result<Vec<u8>, u16>> {
    let url = format!("{url}{path}");
    tokio::task::spawn_blocking(move || {
        let response = ureq::get(&url)
            .config()
            .http_status_as_error(false)
            .build()
            .call()?;
        let status = response.status().as_u16();
        if status != 200 {
            return Ok(Err(status));
        }
        Ok(Ok(response
            .into_body()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()?))
    })
    .await?
}

/// The names of the entries of `dir`, sorted.
fn listing(dir: &Path) -> TestResult<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    Ok(names)
}

/// Moves phase 1 to `state` behind the log's back, and makes submission `id` its
/// promoted winner in the tables (or undoes that): what a dishonest server could claim.
async fn claim_promoted(pool: &SqlitePool, id: i64, state: &str, on: bool) -> TestResult {
    sqlx::query("UPDATE phases SET state = ? WHERE number = 1")
        .bind(state)
        .execute(pool)
        .await?;
    if on {
        sqlx::query(
            "INSERT INTO final_standings (phase, rank, user_id, submission_id, private_loss,
                 public_rank, public_loss, advanced)
             SELECT 1, 1, user_id, id, loss, 1, loss, 1 FROM submissions WHERE id = ?",
        )
        .bind(id)
        .execute(pool)
        .await?;
    } else {
        sqlx::query("DELETE FROM final_standings")
            .execute(pool)
            .await?;
    }
    Ok(())
}

#[sqlx::test(migrations = "../migrations")]
async fn a_promoted_encrypted_checkpoint_is_opened_by_file_keys_and_published_as_scored(
    pool: SqlitePool,
) -> TestResult {
    let dir = tempfile::tempdir()?;
    let (key, server) = keyed_server(&pool, dir.path()).await?;
    let url = server.url();
    sqlx::query("UPDATE phases SET open_weights = 1 WHERE number = 1")
        .execute(&pool)
        .await?;
    let (org, _) = support::account(&pool, "org", ascent_domain::views::Role::Organizer).await?;
    let (ada_id, ada) = contributor(&pool, "ada").await?;
    let checkpoint = copy_of("tied", dir.path())?;
    let id = upload(&url, &ada, &checkpoint, Some(None)).await?;
    let token = support::worker_token(&pool, "keyed", ascent_store::now()).await?;
    let cache = dir.path().join("cache");
    let keys = std::slice::from_ref(&key);
    let summary = work(&url, &token, &cache, keys).await?;
    assert_eq!((summary.scored, summary.opened), (1, 0));
    let sealed_list = serde_json::json!({ "evaluation_keys": [key.recipient()] });
    let upload_id: String = sqlx::query_scalar("SELECT upload_id FROM submissions WHERE id = ?")
        .bind(id)
        .fetch_one(&pool)
        .await?;
    let stored = Storage::new(dir.path()).checkpoint_dir(&upload_id);
    // The keys a holder of the evaluation key would unwrap.
    let mut real_keys = serde_json::Map::new();
    for name in ["config.json.age", "model.safetensors.age"] {
        let bytes = std::fs::read(stored.join(name))?;
        let len = encryption::header_len(&bytes).ok_or("header")?;
        let file_key = encryption::unwrap_file_key(&bytes[..len], name, &key)?;
        real_keys.insert(name.into(), hex::encode(file_key).into());
    }
    let real_keys = serde_json::json!({ "file_keys": real_keys });

    // While the phase runs nothing is waiting to be opened, nothing opens, and the
    // ciphertext is not public.
    let listed = as_worker(&url, &token, "/api/worker/sealed", sealed_list.clone()).await?;
    assert_eq!(listed, Ok(serde_json::json!([])));
    let path = format!("/api/worker/sealed/{id}");
    assert_eq!(
        as_worker(&url, &token, &path, real_keys.clone()).await?,
        Err(404)
    );
    let sealed_url = format!("/api/submissions/{id}/sealed/model.safetensors.age");
    assert_eq!(public_get(&url, &sealed_url).await?, Err(404));

    // A server that claims the phase promoted it, where the log does not say so, gets no
    // key from the worker.
    claim_promoted(&pool, id, "finalized", true).await?;
    let listed = as_worker(&url, &token, "/api/worker/sealed", sealed_list.clone()).await?;
    assert_eq!(listed.map_err(|s| s.to_string())?[0]["submission_id"], id);
    let summary = work(&url, &token, &cache, keys).await?;
    assert_eq!(summary.opened, 0);
    let opened: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM opened_files")
        .fetch_one(&pool)
        .await?;
    assert_eq!(opened, 0);
    claim_promoted(&pool, id, "open", false).await?;

    let now = ascent_store::now();
    ascent_store::lifecycle::move_phase(
        &pool,
        1,
        ascent_domain::PhaseState::Closed,
        org,
        "end",
        now,
    )
    .await?;
    ascent_store::lifecycle::finalize(&pool, 1, org, "final", now).await?;
    // Promoted, but the server cannot read it: no download, no model card yet; the page
    // says why. Its ciphertext is public now.
    let card = format!("/api/submissions/{id}/model-card.md");
    assert_eq!(public_get(&url, &card).await?, Err(404));
    let page = format!("/submissions/{id}");
    let html = String::from_utf8(public_get(&url, &page).await?.map_err(|s| s.to_string())?)?;
    assert!(html.contains("Open weights: not opened yet"), "{html}");
    assert_eq!(
        public_get(&url, &sealed_url).await?,
        Ok(std::fs::read(stored.join("model.safetensors.age"))?)
    );

    // Made-up keys, a missing key, keys that are not hex, or files that are not the
    // scored weights open nothing and leave nothing.
    let zero_keys = serde_json::json!({ "file_keys": {
        "config.json.age": "00".repeat(16), "model.safetensors.age": "00".repeat(16) } });
    let missing = serde_json::json!({ "file_keys": { "config.json.age": "00".repeat(16) } });
    let not_hex = serde_json::json!({ "file_keys": {
        "config.json.age": "zz", "model.safetensors.age": "00".repeat(16) } });
    for body in [zero_keys, missing, not_hex] {
        assert_eq!(as_worker(&url, &token, &path, body).await?, Err(400));
    }
    let scored: String = sqlx::query_scalar("SELECT weights_sha256 FROM submissions WHERE id = ?")
        .bind(id)
        .fetch_one(&pool)
        .await?;
    sqlx::query("UPDATE submissions SET weights_sha256 = ? WHERE id = ?")
        .bind("0".repeat(64))
        .bind(id)
        .execute(&pool)
        .await?;
    assert_eq!(as_worker(&url, &token, &path, real_keys).await?, Err(400));
    sqlx::query("UPDATE submissions SET weights_sha256 = ? WHERE id = ?")
        .bind(&scored)
        .bind(id)
        .execute(&pool)
        .await?;
    assert_eq!(
        listing(&stored)?,
        ["config.json.age", "model.safetensors.age"]
    );
    assert_eq!(public_get(&url, &card).await?, Err(404));

    // The worker with the key opens it; what is published is what ada encrypted.
    let summary = work(&url, &token, &cache, keys).await?;
    assert_eq!((summary.scored, summary.opened), (0, 1));
    assert_eq!(
        listing(&cache.join("open"))?.len(),
        0,
        "its downloads are gone"
    );
    for name in ["config.json", "model.safetensors"] {
        let served = public_get(&url, &format!("/api/submissions/{id}/files/{name}")).await?;
        assert_eq!(served, Ok(std::fs::read(checkpoint.join(name))?), "{name}");
    }
    let card = String::from_utf8(public_get(&url, &card).await?.map_err(|s| s.to_string())?)?;
    assert!(card.contains("model.safetensors"), "{card}");
    assert!(
        !card.contains(".age"),
        "the card lists the plaintext: {card}"
    );
    let html = String::from_utf8(public_get(&url, &page).await?.map_err(|s| s.to_string())?)?;
    assert!(!html.contains("not opened yet"));
    assert!(html.contains(&format!("/api/submissions/{id}/files/model.safetensors")));

    // Opened once; the log holds the keys, which open the public ciphertext, and replays.
    let again = serde_json::json!({ "file_keys": {} });
    assert_eq!(as_worker(&url, &token, &path, again).await?, Err(404));
    let bodies: Vec<String> =
        sqlx::query_scalar("SELECT body FROM public_log WHERE kind = 'weights_opened'")
            .fetch_all(&pool)
            .await?;
    assert_eq!(bodies.len(), 1);
    let event: serde_json::Value = serde_json::from_str(&bodies[0])?;
    let files = event["files"].as_array().ok_or("files")?;
    assert_eq!(files.len(), 2);
    let model = files
        .iter()
        .find(|f| f["name"] == "model.safetensors")
        .ok_or("model")?;
    let logged_key = encryption_key(model["file_key"].as_str().ok_or("key")?)?;
    let public_copy = dir.path().join("public.age");
    std::fs::write(
        &public_copy,
        public_get(&url, &sealed_url)
            .await?
            .map_err(|s| s.to_string())?,
    )?;
    let decrypted = dir.path().join("decrypted");
    encryption::open_file(
        &public_copy,
        &decrypted,
        "model.safetensors.age",
        &logged_key,
    )?;
    assert_eq!(
        std::fs::read(&decrypted)?,
        std::fs::read(checkpoint.join("model.safetensors"))?
    );
    let client = Client::new(&url, None)?;
    let verified =
        tokio::task::spawn_blocking(move || ascent_evaluator::verify::verify(&client)).await?;
    assert!(verified.is_ok(), "{verified:?}");
    let news = ascent_store::notifications::of_user(&pool, ada_id, 10).await?;
    assert!(news.iter().any(|n| n.text.contains("was opened")));
    server.stop().await.map_err(|e| e.to_string())?;
    Ok(())
}

fn encryption_key(hex_key: &str) -> TestResult<[u8; 16]> {
    Ok(ascent_domain::encryption::parse_file_key(hex_key)?)
}
