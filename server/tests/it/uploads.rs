//! The resumable upload API through the real router and a real database: offsets,
//! resuming, finishing into a queued submission, and the rules of the door.

use crate::support;

use ascent_domain::protocol::{SubmissionCreated, SubmissionReport, UploadStatus};
use ascent_server::http::router;
use ascent_store::SqlitePool;
use axum::body::Body;
use http::{Method, StatusCode};
use sha2::{Digest, Sha256};
use support::{
    call, checkpoint, contributor, new_upload, phases_with_data, start, state, submit, TestResult,
};

#[sqlx::test(migrations = "../migrations")]
async fn an_upload_resumes_from_the_servers_offset(pool: SqlitePool) -> TestResult {
    let dir = tempfile::tempdir()?;
    phases_with_data(&pool, dir.path()).await?;
    let app = router(state(&pool, dir.path())?);
    let (_, token) = contributor(&pool, "ada").await?;
    let files = checkpoint("tied")?;
    let (weights_name, weights) = files
        .iter()
        .find(|(n, _)| n == "model.safetensors")
        .ok_or("no weights")?
        .clone();

    let started = start(&app, &token, &files, "tied-v1").await?;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    let upload: UploadStatus = started.json()?;
    assert_eq!(upload.received_bytes(), 0);
    let path = format!("/api/uploads/{}/files/{weights_name}", upload.id);

    // Half the weights arrive, then the connection drops.
    let half = weights.len() / 2;
    let first = call(
        &app,
        Method::PATCH,
        &path,
        &token,
        Body::from(weights[..half].to_vec()),
        Some(0),
    )
    .await?;
    assert_eq!(
        (first.status, first.offset),
        (StatusCode::NO_CONTENT, Some(half as u64))
    );

    // A client that lost its place is told where to continue.
    let wrong = call(
        &app,
        Method::PATCH,
        &path,
        &token,
        Body::from(weights.clone()),
        Some(0),
    )
    .await?;
    assert_eq!(
        (wrong.status, wrong.offset),
        (StatusCode::CONFLICT, Some(half as u64))
    );

    // After a reload, the same fingerprint finds the same upload and its progress.
    let again: UploadStatus = start(&app, &token, &files, "tied-v1").await?.json()?;
    assert_eq!(again.id, upload.id);
    assert_eq!(again.received_bytes(), half as u64);

    // Finishing early is refused and loses nothing.
    let early = support::finish(&app, &token, &upload.id).await?;
    assert_eq!(early.status, StatusCode::CONFLICT, "{}", early.body);
    assert!(early.body.contains("not complete"), "{}", early.body);

    let rest = call(
        &app,
        Method::PATCH,
        &path,
        &token,
        Body::from(weights[half..].to_vec()),
        Some(half as u64),
    )
    .await?;
    assert_eq!(
        (rest.status, rest.offset),
        (StatusCode::NO_CONTENT, Some(weights.len() as u64))
    );
    let config = files
        .iter()
        .find(|(n, _)| n == "config.json")
        .ok_or("no config")?;
    let sent = call(
        &app,
        Method::PATCH,
        &format!("/api/uploads/{}/files/config.json", upload.id),
        &token,
        Body::from(config.1.clone()),
        Some(0),
    )
    .await?;
    assert_eq!(sent.status, StatusCode::NO_CONTENT);

    let finished = support::finish(&app, &token, &upload.id).await?;
    assert_eq!(finished.status, StatusCode::CREATED, "{}", finished.body);
    let created: SubmissionCreated = finished.json()?;
    // Finishing twice (a retry after a lost reply) gives the same submission.
    let twice: SubmissionCreated = support::finish(&app, &token, &upload.id).await?.json()?;
    assert_eq!(twice, created);

    let report: SubmissionReport = call(
        &app,
        Method::GET,
        &created.url.replace("/submissions", "/api/submissions"),
        "",
        Body::empty(),
        None,
    )
    .await?
    .json()?;
    assert_eq!(report.contributor, "ada");
    assert_eq!(report.state.as_str(), "queued");
    assert_eq!(
        report.bytes,
        Some(files.iter().map(|(_, b)| b.len() as u64).sum())
    );
    // The server hashed the weights on the way in, across the two requests.
    let stored: Option<String> =
        sqlx::query_scalar("SELECT sha256 FROM upload_files WHERE name = 'model.safetensors'")
            .fetch_one(&pool)
            .await?;
    assert_eq!(stored, Some(hex::encode(Sha256::digest(&weights))));
    let jobs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE submission_id = ?")
        .bind(created.id)
        .fetch_one(&pool)
        .await?;
    assert_eq!(jobs, 1);
    Ok(())
}

#[sqlx::test(migrations = "../migrations")]
async fn the_door_refuses_with_reasons(pool: SqlitePool) -> TestResult {
    let dir = tempfile::tempdir()?;
    phases_with_data(&pool, dir.path()).await?;
    let app = router(state(&pool, dir.path())?);
    let (_, token) = contributor(&pool, "ada").await?;
    let files = checkpoint("tied")?;

    let anonymous = start(&app, "", &files, "x").await?;
    assert_eq!(
        anonymous.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        anonymous.body
    );
    let forged = start(&app, "asc_0000", &files, "x").await?;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);

    let pickle = vec![
        ("config.json".to_owned(), b"{}".to_vec()),
        ("pytorch_model.bin".to_owned(), vec![0; 10]),
    ];
    let refused = start(&app, &token, &pickle, "p").await?;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused.body.contains("pickle"), "{}", refused.body);

    let huge = vec![
        ("config.json".to_owned(), b"{}".to_vec()),
        ("model.safetensors".to_owned(), vec![0; 900_000]),
    ];
    let too_large = start(&app, &token, &huge, "h").await?;
    assert_eq!(too_large.status, StatusCode::FORBIDDEN);
    assert!(
        too_large.body.contains("at most 800000"),
        "{}",
        too_large.body
    );

    let phase_two = call(
        &app,
        Method::POST,
        "/api/uploads",
        &token,
        new_upload(2, &files, "two")?,
        None,
    )
    .await?;
    assert_eq!(phase_two.status, StatusCode::FORBIDDEN);
    assert!(phase_two.body.contains("not open"), "{}", phase_two.body);

    // Two a day in this preset: the third is refused before any byte is sent.
    for fingerprint in ["a", "b"] {
        let mut changed = files.clone();
        // Different bytes each time (a byte appended to the config), so not duplicates.
        changed[0].1.extend_from_slice(fingerprint.as_bytes());
        let reply = submit(&app, &token, &changed, fingerprint).await?;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }
    let third = start(&app, &token, &files, "c").await?;
    assert_eq!(third.status, StatusCode::FORBIDDEN);
    assert!(
        third.body.contains("today's 2 submissions"),
        "{}",
        third.body
    );
    Ok(())
}

#[sqlx::test(migrations = "../migrations")]
async fn another_contributors_files_are_refused(pool: SqlitePool) -> TestResult {
    let dir = tempfile::tempdir()?;
    phases_with_data(&pool, dir.path()).await?;
    let app = router(state(&pool, dir.path())?);
    let (_, ada) = contributor(&pool, "ada").await?;
    let (_, bob) = contributor(&pool, "bob").await?;
    let files = checkpoint("tied")?;
    let first = submit(&app, &ada, &files, "mine").await?;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let copy = submit(&app, &bob, &files, "copied").await?;
    assert_eq!(copy.status, StatusCode::FORBIDDEN, "{}", copy.body);
    assert!(
        copy.body.contains("identical to submission") && copy.body.contains("ada"),
        "{}",
        copy.body
    );
    // Bob's upload is kept, not lost: he can abandon it.
    let uploads: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM uploads WHERE submission_id IS NULL")
            .fetch_one(&pool)
            .await?;
    assert_eq!(uploads, 1);
    Ok(())
}

#[sqlx::test(migrations = "../migrations")]
async fn abandoned_uploads_expire_and_their_files_go(pool: SqlitePool) -> TestResult {
    let dir = tempfile::tempdir()?;
    phases_with_data(&pool, dir.path()).await?;
    let state = state(&pool, dir.path())?;
    let app = router(state.clone());
    let (_, token) = contributor(&pool, "ada").await?;
    let files = checkpoint("tied")?;
    let upload: UploadStatus = start(&app, &token, &files, "left behind").await?.json()?;
    let sent = call(
        &app,
        Method::PATCH,
        &format!("/api/uploads/{}/files/config.json", upload.id),
        &token,
        Body::from(files[0].1.clone()),
        Some(0),
    )
    .await?;
    assert_eq!(sent.status, StatusCode::NO_CONTENT);
    let folder = state.storage.checkpoint_dir(&upload.id);
    assert!(folder.join("config.json").exists());

    // Still alive: maintenance keeps it.
    ascent_server::pipeline::maintain_once(&state).await;
    assert!(folder.exists());
    // A day without a byte: it expires, rows and files.
    sqlx::query("UPDATE uploads SET expires_at = 0")
        .execute(&pool)
        .await?;
    ascent_server::pipeline::maintain_once(&state).await;
    assert!(!folder.exists());
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM upload_files")
        .fetch_one(&pool)
        .await?;
    assert_eq!(left, 0);
    let gone = call(
        &app,
        Method::GET,
        &format!("/api/uploads/{}", upload.id),
        &token,
        Body::empty(),
        None,
    )
    .await?;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    Ok(())
}

#[sqlx::test(migrations = "../migrations")]
async fn the_schedule_closes_the_door_but_queued_jobs_stay(pool: SqlitePool) -> TestResult {
    let dir = tempfile::tempdir()?;
    phases_with_data(&pool, dir.path()).await?;
    let state = state(&pool, dir.path())?;
    let app = router(state.clone());
    let (_, token) = contributor(&pool, "ada").await?;
    let files = checkpoint("tied")?;
    let queued = submit(&app, &token, &files, "before").await?;
    assert_eq!(queued.status, StatusCode::CREATED);

    // Phase 1's closing time passes.
    sqlx::query("UPDATE phases SET closes_at = ? WHERE number = 1")
        .bind(ascent_store::now() - 1)
        .execute(&pool)
        .await?;
    // The door does not wait for the maintenance loop to move the phase.
    let early = start(&app, &token, &files, "just-after").await?;
    assert_eq!(early.status, StatusCode::FORBIDDEN, "{}", early.body);
    assert!(early.body.contains("phase 1 is closed"), "{}", early.body);
    ascent_server::pipeline::maintain_once(&state).await;
    let refused = start(&app, &token, &files, "after").await?;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused.body.contains("phase 1 is closed"),
        "{}",
        refused.body
    );
    let transition: (String, String, String) = sqlx::query_as(
        "SELECT from_state, to_state, reason FROM phase_transitions WHERE phase = 1 ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await?;
    assert_eq!(
        transition,
        ("open".into(), "closed".into(), "by schedule".into())
    );
    // The submission queued before the close still waits for its score.
    let waiting: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE finished_at IS NULL")
        .fetch_one(&pool)
        .await?;
    assert_eq!(waiting, 1);
    Ok(())
}
