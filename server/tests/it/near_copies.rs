//! Near-copy detection end to end: a contributor uploads another's checkpoint with a
//! little noise added; the worker fingerprints every checkpoint it scores, the copy is
//! flagged for organizers with its similarity, and independent work is not.

use crate::support;

use ascent_domain::protocol::SubmissionCreated;
use ascent_domain::views::{Role, SubmissionView};
use ascent_server::http::router;
use ascent_server::serve;
use axum::body::Body;
use http::{Method, StatusCode};
use sqlx::SqlitePool;
use support::{
    account, call, contributor, demo_checkpoint, phases_with_data, scored_all, state, submit_to,
    TestResult,
};

/// `files` with every f32 weight of `model.safetensors` moved by up to ±1% of itself.
fn perturbed(files: &[(String, Vec<u8>)]) -> TestResult<Vec<(String, Vec<u8>)>> {
    let mut out = files.to_vec();
    let (_, bytes) = out
        .iter_mut()
        .find(|(name, _)| name == "model.safetensors")
        .ok_or("model.safetensors")?;
    let header_len = u64::from_le_bytes(bytes[..8].try_into()?) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len])?;
    let data = 8 + header_len;
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for (name, tensor) in header.as_object().ok_or("header")? {
        if name == "__metadata__" || tensor["dtype"] != "F32" {
            continue;
        }
        let start = tensor["data_offsets"][0].as_u64().ok_or("offset")? as usize;
        let end = tensor["data_offsets"][1].as_u64().ok_or("offset")? as usize;
        for chunk in bytes[data + start..data + end].chunks_exact_mut(4) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = (state % 2001) as f32 / 1000.0 - 1.0;
            let value = f32::from_le_bytes(chunk.try_into()?) * (1.0 + 0.01 * noise);
            chunk.copy_from_slice(&value.to_le_bytes());
        }
    }
    Ok(out)
}

#[sqlx::test(migrations = "../migrations")]
async fn a_perturbed_copy_is_flagged_and_independent_work_is_not(pool: SqlitePool) -> TestResult {
    let dir = tempfile::tempdir()?;
    phases_with_data(&pool, dir.path()).await?;
    let server = serve::start(pool.clone(), support::config(dir.path(), 1)?)
        .await
        .map_err(|e| e.to_string())?;
    let app = router(state(&pool, dir.path())?);
    let (_, org) = account(&pool, "org", Role::Organizer).await?;
    let original = demo_checkpoint("p1-ada-first")?;
    let mut ids = Vec::new();
    for (handle, files) in [
        ("ada", original.clone()),
        ("basil", demo_checkpoint("p1-basil-first")?),
        ("mallory", perturbed(&original)?),
    ] {
        let (_, token) = contributor(&pool, handle).await?;
        let reply = submit_to(&app, &token, 1, &files, handle).await?;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "{handle}: {}",
            reply.body
        );
        ids.push(reply.json::<SubmissionCreated>()?.id);
    }
    scored_all(&pool).await?;

    let reply = call(
        &app,
        Method::GET,
        "/api/organizer/search_submissions?text=&disqualified_only=false&near_copies_only=true",
        &org,
        Body::empty(),
        None,
    )
    .await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let flagged: Vec<SubmissionView> = reply.json()?;
    assert_eq!(flagged.len(), 1, "only the copy: {flagged:?}");
    let copy = &flagged[0];
    assert_eq!((copy.id, copy.handle.as_str()), (ids[2], "mallory"));
    assert_eq!(copy.state, "scored", "flagged for review, not refused");
    let near = copy.near_copy.as_ref().ok_or("near copy")?;
    assert_eq!((near.submission, near.handle.as_str()), (ids[0], "ada"));
    assert!(
        near.similarity > 0.99 && near.similarity <= 1.0 + 1e-9,
        "{}",
        near.similarity
    );

    // The same search without the filter shows the independent checkpoint unflagged.
    let reply = call(
        &app,
        Method::GET,
        "/api/organizer/search_submissions?text=basil&disqualified_only=false&near_copies_only=false",
        &org,
        Body::empty(),
        None,
    )
    .await?;
    let basil: Vec<SubmissionView> = reply.json()?;
    assert_eq!(basil.len(), 1);
    assert_eq!(basil[0].near_copy, None);
    // Flags are for organizers: public submission pages and profiles never carry them.
    let public = ascent_store::profiles::submission(&pool, ids[2])
        .await?
        .ok_or("submission")?;
    assert_eq!(public.near_copy, None);
    let audit = ascent_store::audit::recent(&pool, 100, None).await?;
    assert!(
        audit.iter().any(|e| e.action == "near copy flagged"),
        "{audit:?}"
    );
    server.stop().await.map_err(|e| e.to_string())?;
    Ok(())
}
