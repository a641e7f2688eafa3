//! Seeding the demo: its contributors submit the checkpoints in `demo/` through the
//! same upload path the site and `ascent-eval submit` use, so the server's workers
//! really score them. Nothing here writes a score.

use std::path::{Path, PathBuf};

use anyhow::Context;
use ascent_domain::account::{Email, Handle, Password};
use ascent_domain::protocol::{NewUpload, UploadFile};
use ascent_domain::views::Role;
use ascent_domain::PhaseState;
use ascent_store::{accounts, datasets, phases, uploads, SqlitePool};
use serde::Deserialize;

use crate::admin::add_data;
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

/// Seeds the demo from `dir` (with `manifest.toml`, `data/heldout.bin` and the
/// checkpoints). Does nothing once any submission exists, so running it again is safe.
pub async fn seed(pool: &SqlitePool, storage: &Storage, dir: &Path) -> anyhow::Result<String> {
    let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM submissions")
        .fetch_one(pool)
        .await?;
    if existing > 0 {
        return Ok(format!(
            "the demo is already seeded ({existing} submissions); kept it"
        ));
    }
    let path = dir.join("manifest.toml");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let manifest: Manifest = toml::from_str(&text)
        .with_context(|| format!("{} is not a valid manifest", path.display()))?;

    let summaries = phases::summaries(pool).await?;
    if summaries.is_empty() {
        anyhow::bail!("load the demo phases first (ascent admin phases load presets/demo.toml)");
    }
    for phase in &summaries {
        if datasets::of_phase(pool, phase.number).await?.is_none() {
            add_data(pool, storage, phase.number, &dir.join("data/heldout.bin")).await?;
        }
    }

    let mut ids = std::collections::HashMap::new();
    for c in &manifest.contributor {
        let handle = Handle::parse(&c.handle).map_err(|e| anyhow::anyhow!("{e}"))?;
        let email = Email::parse(&format!("{}@contributors.ascent.demo", c.handle))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        // Demo contributors sign in with a password nobody knows; they only submit here.
        let password =
            Password::parse(&ascent_store::random_token()?).map_err(|e| anyhow::anyhow!("{e}"))?;
        let viewer =
            accounts::register(pool, &email, &handle, &password, Role::Contributor).await?;
        ids.insert(c.handle.clone(), viewer.id);
    }

    let mut queued = 0;
    let mut later = 0;
    for s in &manifest.submission {
        let user_id = *ids.get(&s.handle).with_context(|| {
            format!(
                "submission by {:?}, who is not a listed contributor",
                s.handle
            )
        })?;
        let open = summaries
            .iter()
            .any(|p| p.number == s.phase && p.state == PhaseState::Open);
        if !open {
            later += 1;
            continue;
        }
        submit(pool, storage, user_id, s.phase, &dir.join(&s.checkpoint)).await?;
        queued += 1;
    }
    Ok(format!(
        "seeded {} contributors and queued {queued} submissions to open phases ({later} for phases not open yet were left out); the server's workers score them",
        ids.len()
    ))
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
