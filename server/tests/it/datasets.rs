//! Held-out data from the console: `PUT /api/phases/{n}/data` through the real router
//! and database. Only organizers; a broken or out-of-vocabulary shard is refused with
//! the reason and leaves the phase and the data directory as they were; a valid one is
//! stored by hash and attached (audited), and data that scored submissions is locked.

use crate::support;

use ascent_domain::views::Role;
use ascent_server::http::router;
use ascent_store::{datasets, phases, SqlitePool};
use axum::body::Body;
use axum::Router;
use http::{Method, StatusCode};
use support::{
    account, call, checkpoint, contributor, fixture, state, submit, test_preset, Reply, TestResult,
};

/// `PUT /api/phases/1/data?name=NAME` with `body`, as the holder of `token`.
async fn put(app: &Router, token: &str, name: &str, body: &[u8]) -> TestResult<Reply> {
    let path = format!("/api/phases/1/data?name={name}");
    call(
        app,
        Method::PUT,
        &path,
        token,
        Body::from(body.to_vec()),
        None,
    )
    .await
}

/// Files in the data directory's dataset folder (stored shards and anything left over).
fn stored(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("datasets"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[sqlx::test(migrations = "../migrations")]
async fn organizers_upload_held_out_data_and_bad_shards_change_nothing(
    pool: SqlitePool,
) -> TestResult {
    support::logs();
    let dir = tempfile::tempdir()?;
    let now = ascent_store::now();
    phases::load_preset(&pool, &test_preset(now)?, now, false).await?;
    let app = router(state(&pool, dir.path())?);
    let (organizer_id, organizer) = account(&pool, "olga", Role::Organizer).await?;
    let (_, ada) = contributor(&pool, "ada").await?;
    let shard = std::fs::read(fixture("text_u16.bin"))?;

    // Nobody but an organizer (an anonymous request has no session, API token or CSRF
    // token, and stops at the security layer).
    let anonymous = put(&app, "", "a.bin", &shard).await?;
    assert_eq!(
        anonymous.status,
        StatusCode::FORBIDDEN,
        "{}",
        anonymous.body
    );
    let refused = put(&app, &ada, "a.bin", &shard).await?;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);

    // Broken shards: bad magic; tokens beyond the phase's vocabulary (u32 tokens up to
    // 70,000 against the demo's 256); a bad file name. Nothing attached, nothing kept.
    let mut bad_magic = shard.clone();
    bad_magic[0] ^= 0xff;
    let reply = put(&app, &organizer, "bad.bin", &bad_magic).await?;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert!(
        reply.body.contains("bad.bin") && reply.body.contains("magic"),
        "{}",
        reply.body
    );
    let wide = std::fs::read(fixture("random_u32.bin"))?;
    let reply = put(&app, &organizer, "wide.bin", &wide).await?;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert!(reply.body.contains("vocabulary"), "{}", reply.body);
    assert!(
        !reply.body.contains("incoming"),
        "no server paths: {}",
        reply.body
    );
    let reply = put(&app, &organizer, "..%2Fx", &shard).await?;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert_eq!(datasets::of_phase(&pool, 1).await?, None);
    assert_eq!(stored(dir.path()), Vec::<String>::new());

    // A valid shard: stored by hash, attached, audited under the organizer.
    let reply = put(&app, &organizer, "text_u16.bin", &shard).await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let receipt: serde_json::Value = reply.json()?;
    let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&shard));
    assert_eq!(receipt["sha256"], sha256.as_str());
    assert_eq!(receipt["tokens"], (shard.len() as i64 - 1024) / 2);
    let data = datasets::of_phase(&pool, 1).await?.ok_or("not attached")?;
    assert_eq!(
        (data.sha256.as_str(), data.name.as_str()),
        (sha256.as_str(), "text_u16.bin")
    );
    assert_eq!(stored(dir.path()), vec![format!("{sha256}.bin")]);
    let by: Option<i64> = sqlx::query_scalar(
        "SELECT actor_id FROM audit_log WHERE action = 'held-out data attached' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await?;
    assert_eq!(by, Some(organizer_id));
    // Its hash is public before anyone can submit: every revealed score must name it.
    let log = ascent_store::public_log::page(&pool, 0, 1000).await?;
    assert!(
        log.iter()
            .any(|e| e.body.contains("\"kind\":\"held_out_data\"") && e.body.contains(&sha256)),
        "no held_out_data entry for {sha256}"
    );

    // Once a submission is in, the data it is scored on cannot change.
    let submitted = submit(&app, &ada, &checkpoint("tied")?, "tied-v1").await?;
    assert_eq!(submitted.status, StatusCode::CREATED, "{}", submitted.body);
    let mut other = shard.clone();
    let low_byte_of_last_token = other.len() - 2;
    other[low_byte_of_last_token] ^= 1;
    let reply = put(&app, &organizer, "other.bin", &other).await?;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    assert!(reply.body.contains("cannot be replaced"), "{}", reply.body);
    assert_eq!(
        datasets::of_phase(&pool, 1).await?.map(|d| d.sha256),
        Some(sha256.clone())
    );
    // The refused shard was not received at all (the lock is checked first).
    assert_eq!(stored(dir.path()), vec![format!("{sha256}.bin")]);
    // The server's CLI takes the same path; its copy, refused at attaching, is removed,
    // and the organizer's own file stays where it was.
    let own = dir.path().join("other.bin");
    std::fs::write(&own, &other)?;
    let refused = ascent_server::admin::add_data(
        &pool,
        &ascent_server::storage::Storage::new(dir.path()),
        1,
        &own,
    )
    .await;
    assert!(refused.is_err_and(|e| e.to_string().contains("cannot be replaced")));
    assert_eq!(stored(dir.path()), vec![format!("{sha256}.bin")]);
    assert!(own.exists());
    Ok(())
}
