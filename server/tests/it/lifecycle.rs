//! A whole phase over HTTP, with real scoring: contributors submit, an organizer
//! changes the advancement rule, closes the phase, reviews the private ranking and
//! promotes; the promoted may enter phase 2 and the others may not. Every organizer
//! action is refused to everyone else and leaves an audit entry.

use crate::support;

use std::path::Path;

use ascent_app::functions::phase_admin::PhaseForm;
use ascent_domain::protocol::SubmissionCreated;
use ascent_domain::views::Role;
use ascent_server::http::router;
use ascent_server::serve;
use ascent_server::storage::Storage;
use ascent_store::{audit, phases, SqlitePool};
use axum::body::Body;
use axum::Router;
use http::{Method, StatusCode};
use support::{
    account, call, contributor, demo_checkpoint, phases_with_data, scored_all, server_fn, state,
    submit_to, Reply, TestResult,
};

async fn audit_count(pool: &SqlitePool) -> TestResult<usize> {
    Ok(audit::recent(pool, 1000, None).await?.len())
}

async fn phase_state(pool: &SqlitePool, number: u8) -> TestResult<String> {
    Ok(
        sqlx::query_scalar("SELECT state FROM phases WHERE number = ?")
            .bind(i64::from(number))
            .fetch_one(pool)
            .await?,
    )
}

async fn get(app: &Router, token: &str, path: &str) -> TestResult<Reply> {
    call(app, Method::GET, path, token, Body::empty(), None).await
}

/// The phase-settings form as the console posts it, with one rule changed.
fn edit_fields(form: &PhaseForm) -> TestResult<Vec<(String, String)>> {
    let serde_json::Value::Object(fields) = serde_json::to_value(form)? else {
        return Err("the form is an object".into());
    };
    Ok(fields
        .into_iter()
        .map(|(k, v)| {
            (
                format!("form[{k}]"),
                v.as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect())
}

async fn setup(pool: &SqlitePool, dir: &Path) -> TestResult {
    phases_with_data(pool, dir).await?;
    let demo_data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/data/heldout.bin");
    ascent_server::admin::add_data(pool, &Storage::new(dir), 2, &demo_data)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

#[sqlx::test(migrations = "../migrations")]
async fn a_phase_opens_closes_ranks_privately_and_promotes(pool: SqlitePool) -> TestResult {
    let dir = tempfile::tempdir()?;
    setup(&pool, dir.path()).await?;
    let server = serve::start(pool.clone(), support::config(dir.path(), 1)?)
        .await
        .map_err(|e| e.to_string())?;
    let app = router(state(&pool, dir.path())?);
    let (_, org) = account(&pool, "org", Role::Organizer).await?;
    let mut tokens = Vec::new();
    for (handle, checkpoint) in [
        ("ada", "p1-ada-first"),
        ("basil", "p1-basil-first"),
        ("cleo", "p1-cleo-deep"),
    ] {
        let (_, token) = contributor(&pool, handle).await?;
        let reply = submit_to(&app, &token, 1, &demo_checkpoint(checkpoint)?, checkpoint).await?;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.json::<SubmissionCreated>()?;
        tokens.push((handle, token));
    }
    scored_all(&pool).await?;
    let board: serde_json::Value = get(&app, "", "/api/phases/1/leaderboard").await?.json()?;
    let rows = board["rows"].as_array().ok_or("rows")?;
    assert_eq!(rows.len(), 3);
    // A bootstrap interval needs at least two public windows (this phase has eight).
    let spec = phases::scoring_spec(&pool, 1).await?;
    let public_windows = ascent_domain::split::window_parts(
        spec.split_secret.as_bytes(),
        u64::from(spec.windows),
        spec.public_share,
    )
    .into_iter()
    .filter(|p| *p == ascent_domain::split::Part::Public)
    .count();
    for row in rows {
        assert_eq!(row["ci_low"].is_f64(), public_windows >= 2, "{row}");
        if let (Some(low), Some(high), Some(loss)) = (
            row["ci_low"].as_f64(),
            row["ci_high"].as_f64(),
            row["best_loss"].as_f64(),
        ) {
            assert!(low <= loss && loss <= high, "{row}");
        }
    }
    let public_order: Vec<String> = rows
        .iter()
        .map(|r| r["contributor"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        get(&app, "", "/api/phases/1/final").await?.status,
        StatusCode::CONFLICT,
        "no final ranking while open"
    );

    // Only the best two advance from now on.
    let before = audit_count(&pool).await?;
    let spec = phases::detail(&pool, 1, phases::Audience::Organizers)
        .await?
        .ok_or("phase 1")?
        .spec;
    let mut form = PhaseForm::of(&spec);
    form.advancement_value = "2".into();
    let mut fields = edit_fields(&form)?;
    fields.extend([
        ("number".into(), "1".into()),
        ("csrf_token".into(), String::new()),
        ("reason".into(), "room for two in phase 2".into()),
    ]);
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let edited = server_fn(&app, &org, "organizer/edit_phase", &fields).await?;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    assert_eq!(audit_count(&pool).await?, before + 1);
    // An edit that would change how the scored submissions were scored is refused.
    form.windows = "16".into();
    let mut fields = edit_fields(&form)?;
    fields.extend([
        ("number".into(), "1".into()),
        ("csrf_token".into(), String::new()),
        ("reason".into(), "more windows".into()),
    ]);
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let refused = server_fn(&app, &org, "organizer/edit_phase", &fields).await?;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(
        refused.body.contains("number of windows"),
        "{}",
        refused.body
    );

    // Close: submissions stop, the final ranking is the private one.
    let closed = server_fn(
        &app,
        &org,
        "organizer/move_phase",
        &[
            ("csrf_token", ""),
            ("number", "1"),
            ("to", "closed"),
            ("reason", "the prototype phase is over"),
        ],
    )
    .await?;
    assert_eq!(closed.status, StatusCode::OK, "{}", closed.body);
    assert_eq!(phase_state(&pool, 1).await?, "closed");
    let late = support::start_in(
        &app,
        &tokens[0].1,
        1,
        &demo_checkpoint("p1-ada-wide")?,
        "late",
    )
    .await?;
    assert_eq!(late.status, StatusCode::FORBIDDEN, "{}", late.body);
    assert!(late.body.contains("closed"), "{}", late.body);

    let provisional: serde_json::Value = get(&app, "", "/api/phases/1/final").await?.json()?;
    assert_eq!(provisional["provisional"], true);
    let finals = provisional["rows"].as_array().ok_or("rows")?;
    assert_eq!(finals.len(), 3);
    let private: Vec<f64> = finals
        .iter()
        .filter_map(|r| r["private_loss"].as_f64())
        .collect();
    assert!(
        private.windows(2).all(|w| w[0] <= w[1]),
        "ranked by the private loss: {private:?}"
    );
    for row in finals {
        let handle = row["contributor"].as_str().unwrap_or_default();
        let public_rank = public_order
            .iter()
            .position(|h| h == handle)
            .ok_or("ranked")?
            + 1;
        assert_eq!(
            row["public_rank"].as_u64(),
            Some(public_rank as u64),
            "{handle}"
        );
    }
    let advancing: Vec<String> = finals
        .iter()
        .filter(|r| r["advances"] == true)
        .map(|r| r["contributor"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(advancing.len(), 2, "top 2 proposed");
    let left_out = finals[2]["contributor"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    // Weights stay closed until the phase is finalized.
    let winner_submission = finals[0]["submission_id"].as_i64().ok_or("id")?;
    let early = get(
        &app,
        "",
        &format!("/api/submissions/{winner_submission}/files/config.json"),
    )
    .await?;
    assert_eq!(early.status, StatusCode::NOT_FOUND, "{}", early.body);

    let before = audit_count(&pool).await?;
    let promoted = server_fn(
        &app,
        &org,
        "organizer/finalize_phase",
        &[
            ("csrf_token", ""),
            ("number", "1"),
            ("reason", "reviewed; no objections"),
        ],
    )
    .await?;
    assert_eq!(promoted.status, StatusCode::OK, "{}", promoted.body);
    assert_eq!(promoted.json::<Vec<String>>()?, advancing);
    assert!(
        audit_count(&pool).await? >= before + 2,
        "the move and the promotion"
    );
    let phase: serde_json::Value = get(&app, "", "/api/phases/1").await?.json()?;
    assert_eq!(phase["state"], "finalized");
    assert_eq!(phase["promoted"], serde_json::json!(advancing));
    // Rewards: phase 1's 1,000 points, shared by place between the two who advance.
    let ledger = get(&app, &org, "/api/rewards").await?;
    assert_eq!(ledger.status, StatusCode::OK, "{}", ledger.body);
    let granted: Vec<(String, i64)> = ledger
        .json::<Vec<serde_json::Value>>()?
        .iter()
        .map(|e| {
            (
                e["contributor"].as_str().unwrap_or_default().to_owned(),
                e["points"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        granted,
        vec![(advancing[0].clone(), 667), (advancing[1].clone(), 333)]
    );
    // The ledger holds payout accounts: organizers only.
    let refused = get(&app, &tokens[0].1, "/api/rewards.csv").await?;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        get(&app, "", "/api/rewards").await?.status,
        StatusCode::UNAUTHORIZED
    );
    // The winner says where to be paid; a malformed account is refused and changes nothing.
    let winner_token = &tokens
        .iter()
        .find(|(h, _)| *h == advancing[0])
        .ok_or("winner token")?
        .1;
    let bad = server_fn(
        &app,
        winner_token,
        "profile/payout_account",
        &[("csrf_token", ""), ("account", "Not An Account")],
    )
    .await?;
    assert!(!bad.status.is_success(), "{}", bad.body);
    assert!(bad.body.contains("NEAR account id"), "{}", bad.body);
    let set = server_fn(
        &app,
        winner_token,
        "profile/payout_account",
        &[("csrf_token", ""), ("account", " winner.near ")],
    )
    .await?;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let csv = get(&app, &org, "/api/rewards.csv").await?;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.body
            .starts_with("phase,rank,contributor,points,rule,granted_at,payout_account\n"),
        "{}",
        csv.body
    );
    assert!(
        csv.body
            .contains(&format!("1,1,{},667,rank_weighted,", advancing[0])),
        "{}",
        csv.body
    );
    assert!(csv.body.contains(",winner.near\n"), "{}", csv.body);

    let csv = get(&app, "", "/api/phases/1/advancement.csv").await?;
    assert_eq!(
        csv.body.lines().count(),
        3,
        "a header and two rows: {}",
        csv.body
    );

    // Finalized: the split secret is published and the promoted checkpoints are open.
    let secret = phase["split_secret"].as_str().ok_or("a published secret")?;
    assert_eq!(secret, phases::scoring_spec(&pool, 1).await?.split_secret);
    let winner = finals[0]["contributor"].as_str().ok_or("winner")?;
    let checkpoint = match winner {
        "ada" => "p1-ada-first",
        "basil" => "p1-basil-first",
        _ => "p1-cleo-deep",
    };
    let file = get(
        &app,
        "",
        &format!("/api/submissions/{winner_submission}/files/config.json"),
    )
    .await?;
    assert_eq!(file.status, StatusCode::OK);
    let original = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../demo/checkpoints")
            .join(checkpoint)
            .join("config.json"),
    )?;
    assert_eq!(file.body, original, "the winner's own file");
    let card = get(
        &app,
        "",
        &format!("/api/submissions/{winner_submission}/model-card.md"),
    )
    .await?;
    assert!(card.body.contains("finished #1 of 3"), "{}", card.body);
    let left_out_submission = finals[2]["submission_id"].as_i64().ok_or("id")?;
    let closed = get(
        &app,
        "",
        &format!("/api/submissions/{left_out_submission}/files/config.json"),
    )
    .await?;
    assert_eq!(
        closed.status,
        StatusCode::NOT_FOUND,
        "not promoted: not published"
    );

    // Phase 2 opens; only the promoted may enter.
    let opened = server_fn(
        &app,
        &org,
        "organizer/move_phase",
        &[
            ("csrf_token", ""),
            ("number", "2"),
            ("to", "open"),
            ("reason", "phase 1 is final"),
        ],
    )
    .await?;
    assert_eq!(opened.status, StatusCode::OK, "{}", opened.body);
    for (handle, token) in &tokens {
        let reply =
            support::start_in(&app, token, 2, &demo_checkpoint("p2-cleo-wide")?, handle).await?;
        if advancing.iter().any(|h| h == handle) {
            assert_eq!(
                reply.status,
                StatusCode::CREATED,
                "{handle}: {}",
                reply.body
            );
        } else {
            assert_eq!(*handle, left_out);
            assert_eq!(
                reply.status,
                StatusCode::FORBIDDEN,
                "{handle}: {}",
                reply.body
            );
            assert!(reply.body.contains("phase 1"), "{}", reply.body);
        }
    }

    // The one left out is invited (say, their best run was lost to an outage): now they
    // may enter, and the public log says why.
    let invite = |reason: &'static str| {
        vec![
            ("csrf_token", ""),
            ("number", "2"),
            ("handle", left_out.as_str()),
            ("reason", reason),
        ]
    };
    let invited = server_fn(
        &app,
        &org,
        "organizer/invite",
        &invite("scored after an outage"),
    )
    .await?;
    assert_eq!(invited.status, StatusCode::OK, "{}", invited.body);
    let again = server_fn(&app, &org, "organizer/invite", &invite("twice")).await?;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", again.body);
    assert!(
        again.body.contains("already enter phase 2"),
        "{}",
        again.body
    );
    let token = &tokens
        .iter()
        .find(|(h, _)| *h == left_out)
        .ok_or("left out")?
        .1;
    let reply =
        support::start_in(&app, token, 2, &demo_checkpoint("p2-cleo-wide")?, "invited").await?;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let logged: String = sqlx::query_scalar("SELECT body FROM public_log WHERE kind = 'invited'")
        .fetch_one(&pool)
        .await?;
    assert!(logged.contains("scored after an outage"), "{logged}");
    server.stop().await.map_err(|e| e.to_string())?;
    Ok(())
}

#[sqlx::test(migrations = "../migrations")]
async fn organizer_actions_are_refused_to_everyone_else(pool: SqlitePool) -> TestResult {
    let dir = tempfile::tempdir()?;
    setup(&pool, dir.path()).await?;
    let app = router(state(&pool, dir.path())?);
    let (_, ada) = contributor(&pool, "ada").await?;
    let reply = submit_to(&app, &ada, 1, &demo_checkpoint("p1-ada-first")?, "ada").await?;
    let id = reply.json::<SubmissionCreated>()?.id.to_string();
    let form = PhaseForm::of(
        &phases::detail(&pool, 2, phases::Audience::Organizers)
            .await?
            .ok_or("phase 2")?
            .spec,
    );
    let mut edit = edit_fields(&form)?;
    edit.extend([
        ("number".into(), "2".into()),
        ("csrf_token".into(), String::new()),
        ("reason".into(), "x".into()),
    ]);
    let edit: Vec<(&str, &str)> = edit.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let key = support::worker_key().public_hex();
    let worker =
        ascent_store::workers::create(&pool, "gpu-1", &key, None, ascent_store::now()).await?;
    let worker_id: i64 = sqlx::query_scalar("SELECT id FROM workers WHERE name = 'gpu-1'")
        .fetch_one(&pool)
        .await?;
    let worker_id = worker_id.to_string();
    let actions: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "organizer/move_phase",
            vec![
                ("csrf_token", ""),
                ("number", "1"),
                ("to", "closed"),
                ("reason", "x"),
            ],
        ),
        ("organizer/edit_phase", edit),
        (
            "organizer/adjust_advancement",
            vec![
                ("csrf_token", ""),
                ("number", "1"),
                ("handle", "ada"),
                ("advance", "add"),
                ("reason", "x"),
            ],
        ),
        (
            "organizer/finalize_phase",
            vec![("csrf_token", ""), ("number", "1"), ("reason", "x")],
        ),
        (
            "organizer/disqualify",
            vec![("csrf_token", ""), ("id", &id), ("reason", "x")],
        ),
        (
            "organizer/rerun",
            vec![("csrf_token", ""), ("id", &id), ("reason", "x")],
        ),
        (
            "organizer/invite",
            vec![
                ("csrf_token", ""),
                ("number", "2"),
                ("handle", "ada"),
                ("reason", "x"),
            ],
        ),
        (
            "organizer/create_worker",
            vec![("csrf_token", ""), ("name", "mine"), ("public_key", &key)],
        ),
        (
            "organizer/revoke_worker",
            vec![("csrf_token", ""), ("id", &worker_id)],
        ),
    ];
    let reads = [
        "/api/organizer/queue",
        "/api/organizer/phase_review?number=1",
        "/api/organizer/search_submissions?text=ada&disqualified_only=false",
        "/api/organizer/audit",
    ];
    let before = audit_count(&pool).await?;
    for token in ["", ada.as_str()] {
        for (endpoint, fields) in &actions {
            let reply = server_fn(&app, token, endpoint, fields).await?;
            assert!(
                reply.status.is_client_error() || reply.status.is_redirection(),
                "{endpoint} as {token:?}: {} {}",
                reply.status,
                reply.body
            );
        }
        for path in reads {
            let reply = get(&app, token, path).await?;
            assert!(
                reply.status.is_client_error() || reply.status.is_redirection(),
                "{path} as {token:?}: {} {}",
                reply.status,
                reply.body
            );
            assert!(
                !reply.body.contains("ada@example.org") && !reply.body.contains("\"subject\""),
                "{}",
                reply.body
            );
        }
    }
    assert_eq!(audit_count(&pool).await?, before, "nothing happened");
    // The worker still works, and no other was made.
    assert!(
        ascent_store::workers::authenticate(&pool, &worker, ascent_store::now())
            .await?
            .is_some()
    );
    let workers: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM workers WHERE name != 'built-in'")
        .fetch_one(&pool)
        .await?;
    assert_eq!(workers, 1);
    assert_eq!(phase_state(&pool, 1).await?, "open");
    let disqualified: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM submissions WHERE disqualified = 1")
            .fetch_one(&pool)
            .await?;
    assert_eq!(disqualified, 0);
    Ok(())
}

#[sqlx::test(migrations = "../migrations")]
async fn submissions_received_before_the_close_are_still_scored(pool: SqlitePool) -> TestResult {
    let dir = tempfile::tempdir()?;
    setup(&pool, dir.path()).await?;
    let app = router(state(&pool, dir.path())?);
    let (org, _) = account(&pool, "org", Role::Organizer).await?;
    let (_, ada) = contributor(&pool, "ada").await?;
    let reply = submit_to(&app, &ada, 1, &demo_checkpoint("p1-ada-first")?, "ada").await?;
    let id = reply.json::<SubmissionCreated>()?.id;
    ascent_store::lifecycle::move_phase(
        &pool,
        1,
        ascent_domain::PhaseState::Closed,
        org,
        "closing",
        ascent_store::now(),
    )
    .await?;
    let refused = server_fn(&app, "", "organizer/finalize_phase", &[]).await?;
    assert!(!refused.status.is_success());
    assert!(matches!(
        ascent_store::lifecycle::finalize(&pool, 1, org, "too early", ascent_store::now()).await,
        Err(ascent_store::StoreError::Refused(_))
    ));

    // A worker comes up after the close and scores what was received before it.
    let server = serve::start(pool.clone(), support::config(dir.path(), 1)?)
        .await
        .map_err(|e| e.to_string())?;
    scored_all(&pool).await?;
    server.stop().await.map_err(|e| e.to_string())?;
    let board = ascent_store::lifecycle::final_board(&pool, 1)
        .await?
        .ok_or("closed")?;
    assert_eq!(board.pending, 0);
    assert_eq!(board.rows.len(), 1);
    assert_eq!(board.rows[0].submission_id, id);
    ascent_store::lifecycle::finalize(&pool, 1, org, "all scored", ascent_store::now()).await?;
    Ok(())
}
