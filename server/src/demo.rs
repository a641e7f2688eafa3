//! Seeding the demo: its contributors submit the checkpoints in `demo/` through the
//! same upload path the site and `ascent-eval submit` use, real workers score them, and
//! the organizer closes, ranks and promotes phase 1 through the same lifecycle the
//! console drives. Nothing here writes a score or a ranking.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use ascent_domain::account::{Email, Handle, Password};
use ascent_domain::protocol::{NewUpload, UploadFile};
use ascent_domain::views::Role;
use ascent_domain::PhaseState;
use ascent_store::{accounts, datasets, lifecycle, phases, uploads, SqlitePool, StoreError};
use serde::Deserialize;

use crate::admin::add_data;
use crate::config::Config;
use crate::serve;
use crate::storage::{hash_file, Storage};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    contributor: Vec<Contributor>,
    submission: Vec<Submission>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Contributor {
    handle: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Submission {
    handle: String,
    phase: u8,
    checkpoint: PathBuf,
}

/// How long the demo waits for its submissions to be scored.
const SCORING_TIMEOUT: Duration = Duration::from_secs(600);

/// Seeds the demo from `dir` (with `manifest.toml`, `data/heldout.bin` and the
/// checkpoints) and plays the competition up to phase 2, through the same paths people
/// use: the phase-1 contributors submit and a server with real workers scores them;
/// the organizer closes phase 1, reviews its private ranking and promotes its winners,
/// then opens phase 2, where the promoted submit. Each step looks at where the
/// competition stands, so running it again carries on where it stopped (and does
/// nothing once phase 2 has submissions).
pub async fn seed(config: &Config, pool: &SqlitePool, dir: &Path) -> anyhow::Result<String> {
    let path = dir.join("manifest.toml");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let manifest: Manifest = toml::from_str(&text)
        .with_context(|| format!("{} is not a valid manifest", path.display()))?;
    let storage = Storage::new(&config.data_dir);

    let summaries = phases::summaries(pool, phases::Audience::Organizers).await?;
    if summaries.is_empty() {
        anyhow::bail!("load the demo phases first (ascent admin phases load presets/demo.toml)");
    }
    let organizer: i64 = sqlx::query_scalar(
        "SELECT id FROM users WHERE role = 'organizer' ORDER BY id LIMIT 1",
    )
    .fetch_optional(pool)
    .await?
    .context("create the organizer first (ascent admin create-organizer): the demo's phase 1 is closed and promoted by an organizer")?;
    for phase in &summaries {
        if datasets::of_phase(pool, phase.number).await?.is_none() {
            add_data(pool, &storage, phase.number, &dir.join("data/heldout.bin")).await?;
        }
    }
    let ids = contributors(pool, &manifest).await?;

    // A server of our own, on a free loopback port, so its workers score the demo.
    let mut own = config.clone();
    own.addr = "127.0.0.1:0".parse()?;
    own.workers = own.workers.max(1);
    let server = serve::start(pool.clone(), own).await?;
    let story = play(pool, &storage, dir, &manifest, &ids, organizer).await;
    server.stop().await?;
    story
}

async fn play(
    pool: &SqlitePool,
    storage: &Storage,
    dir: &Path,
    manifest: &Manifest,
    ids: &HashMap<String, i64>,
    organizer: i64,
) -> anyhow::Result<String> {
    let mut told = Vec::new();
    let state = |n: u8| async move {
        let summaries = phases::summaries(pool, phases::Audience::Organizers).await?;
        summaries
            .into_iter()
            .find(|p| p.number == n)
            .map(|p| (p.state, p.submissions))
            .with_context(|| format!("there is no phase {n}"))
    };
    if state(1).await? == (PhaseState::Open, 0) {
        let n = submit_phase(pool, storage, dir, manifest, ids, 1).await?;
        told.push(format!("{n} phase-1 submissions uploaded"));
    }
    wait_for_scores(pool).await?;
    if state(1).await?.0 == PhaseState::Open {
        lifecycle::move_phase(
            pool,
            1,
            PhaseState::Closed,
            organizer,
            "demo: the prototype phase ends",
            ascent_store::now(),
        )
        .await?;
        told.push("phase 1 closed".into());
    }
    if state(1).await?.0 == PhaseState::Closed {
        let done = lifecycle::finalize(
            pool,
            1,
            organizer,
            "demo: the advancement list as the rule proposes it",
            ascent_store::now(),
        )
        .await?;
        told.push(format!(
            "phase 1 finalized; promoted {}",
            done.promoted.join(", ")
        ));
    }
    if state(2).await?.0 == PhaseState::Upcoming {
        lifecycle::move_phase(
            pool,
            2,
            PhaseState::Open,
            organizer,
            "demo: phase 2 opens after phase 1",
            ascent_store::now(),
        )
        .await?;
        told.push("phase 2 opened".into());
    }
    if state(2).await? == (PhaseState::Open, 0) {
        let n = submit_phase(pool, storage, dir, manifest, ids, 2).await?;
        told.push(format!("{n} phase-2 submissions uploaded"));
    }
    wait_for_scores(pool).await?;
    if told.is_empty() {
        return Ok("the demo is already seeded; kept it".into());
    }
    Ok(format!(
        "demo: {}; every submission scored by the server's workers",
        told.join("; ")
    ))
}

/// Registers the manifest's contributors (once); their ids by handle.
async fn contributors(
    pool: &SqlitePool,
    manifest: &Manifest,
) -> anyhow::Result<HashMap<String, i64>> {
    let mut ids = HashMap::new();
    for c in &manifest.contributor {
        let existing: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE handle = ?")
            .bind(&c.handle)
            .fetch_optional(pool)
            .await?;
        let id = match existing {
            Some(id) => id,
            None => {
                let handle = Handle::parse(&c.handle).map_err(|e| anyhow::anyhow!("{e}"))?;
                let email = Email::parse(&format!("{}@contributors.ascent.demo", c.handle))
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                // Demo contributors sign in with a password nobody knows; they only submit here.
                let password = Password::parse(&ascent_store::random_token()?)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                accounts::register(pool, &email, &handle, &password, Role::Contributor)
                    .await?
                    .id
            }
        };
        ids.insert(c.handle.clone(), id);
    }
    Ok(ids)
}

/// Uploads the manifest's submissions to `phase`; a contributor the door refuses (not
/// promoted, say) is skipped with a log line. Returns how many were queued.
async fn submit_phase(
    pool: &SqlitePool,
    storage: &Storage,
    dir: &Path,
    manifest: &Manifest,
    ids: &HashMap<String, i64>,
    phase: u8,
) -> anyhow::Result<usize> {
    let mut queued = 0;
    for s in manifest.submission.iter().filter(|s| s.phase == phase) {
        let user_id = *ids.get(&s.handle).with_context(|| {
            format!(
                "submission by {:?}, who is not a listed contributor",
                s.handle
            )
        })?;
        match submit(pool, storage, user_id, phase, &dir.join(&s.checkpoint)).await {
            Ok(_) => queued += 1,
            Err(error)
                if error
                    .downcast_ref::<StoreError>()
                    .is_some_and(|e| matches!(e, StoreError::Refused(_))) =>
            {
                tracing::warn!(handle = %s.handle, phase, %error, "demo submission refused; skipped");
            }
            Err(error) => return Err(error),
        }
    }
    Ok(queued)
}

/// Waits until no submission is queued or being scored.
async fn wait_for_scores(pool: &SqlitePool) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    loop {
        let waiting = ascent_store::submissions::unscored(pool).await?;
        if waiting == 0 {
            return Ok(());
        }
        if started.elapsed() > SCORING_TIMEOUT {
            anyhow::bail!(
                "{waiting} demo submissions were not scored within {} s",
                SCORING_TIMEOUT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Submits a checkpoint directory as `user_id`: start an upload, store its files with
/// their hashes, finish it into a queued submission.
async fn submit(
    pool: &SqlitePool,
    storage: &Storage,
    user_id: i64,
    phase: u8,
    checkpoint: &Path,
) -> anyhow::Result<i64> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(checkpoint)
        .with_context(|| format!("cannot read {}", checkpoint.display()))?
    {
        let entry = entry?;
        files.push(UploadFile {
            name: entry.file_name().to_string_lossy().into_owned(),
            bytes: entry.metadata()?.len(),
        });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    let now = ascent_store::now();
    let new = NewUpload {
        phase,
        files,
        fingerprint: format!("demo:{}", checkpoint.display()),
        encrypted_to: None,
    };
    let upload = uploads::start(pool, user_id, &new, now).await?;
    let target = storage.checkpoint_dir(&upload.id);
    std::fs::create_dir_all(&target)?;
    for file in &new.files {
        let destination = storage.checkpoint_file(&upload.id, &file.name);
        std::fs::copy(checkpoint.join(&file.name), &destination)?;
        let (sha256, bytes) = hash_file(&destination).await?;
        uploads::record_received(pool, &upload.id, &file.name, bytes, Some(&sha256), now).await?;
    }
    Ok(uploads::finish(pool, &upload.id, user_id, now).await?.id)
}
