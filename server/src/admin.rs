//! Organizer commands run from a shell on the server (`ascent admin …`).

use std::io::BufRead;
use std::path::Path;

use anyhow::{bail, Context};
use ascent_domain::account::{Email, Handle, Password};
use ascent_domain::preset::{parse_preset, Preset};
use ascent_evaluator::shard::TokenShard;
use ascent_store::datasets::{self, Dataset};
use ascent_store::phases::LoadOutcome;
use ascent_store::{accounts, phases, workers, SqlitePool};

use crate::storage::{hash_file, Storage};

fn read_preset(path: &Path) -> anyhow::Result<Preset> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_preset(&text, ascent_store::now())
        .map_err(|e| anyhow::anyhow!("{} is not a valid preset: {e}", path.display()))
}

/// Validates a preset file without touching the database.
pub fn check_preset(path: &Path) -> anyhow::Result<String> {
    let preset = read_preset(path)?;
    Ok(format!(
        "{} is a valid preset: {:?} with {} phases",
        path.display(),
        preset.name,
        preset.phases.len()
    ))
}

/// Validates a preset file and loads its seven phases.
pub async fn load_phases(pool: &SqlitePool, path: &Path, replace: bool) -> anyhow::Result<String> {
    let preset = read_preset(path)?;
    let outcome = phases::load_preset(pool, &preset, ascent_store::now(), replace).await?;
    for phase in &preset.phases {
        ensure_split(pool, phase.number).await?;
    }
    Ok(match outcome {
        LoadOutcome::Loaded => format!("loaded the {} phases of preset {:?}", preset.phases.len(), preset.name),
        LoadOutcome::AlreadyLoaded { preset: existing } => format!(
            "phases from preset {existing:?} are already loaded; kept them (pass --replace to overwrite)"
        ),
    })
}

/// Where the organizer's password comes from.
pub enum PasswordSource {
    /// `ASCENT_ORGANIZER_PASSWORD`.
    Env(String),
    /// The first line of standard input.
    Stdin,
}

/// Creates the organizer account, or promotes an existing account to organizer.
pub async fn create_organizer(
    pool: &SqlitePool,
    email: &str,
    handle: Option<&str>,
    password: PasswordSource,
) -> anyhow::Result<String> {
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("{e}"))?;
    let default_handle = email
        .as_str()
        .split('@')
        .next()
        .unwrap_or_default()
        .replace('.', "-");
    let handle = Handle::parse(handle.unwrap_or(&default_handle))
        .map_err(|e| anyhow::anyhow!("{e} (pass --handle)"))?;
    let password = match password {
        PasswordSource::Env(value) => value,
        PasswordSource::Stdin => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("cannot read the password from stdin")?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    if password.is_empty() {
        bail!("no password: set ASCENT_ORGANIZER_PASSWORD or write it on standard input");
    }
    let password = Password::parse(&password).map_err(|e| anyhow::anyhow!("{e}"))?;
    let created = accounts::ensure_organizer(pool, &email, &handle, &password).await?;
    Ok(if created {
        format!("created organizer {} ({})", email.as_str(), handle.as_str())
    } else {
        format!(
            "{} is now an organizer (existing account; password unchanged)",
            email.as_str()
        )
    })
}

/// Validates a token shard, stores it by hash and makes it phase `phase`'s held-out
/// data. Refuses tokens outside the phase's vocabulary.
pub async fn add_data(
    pool: &SqlitePool,
    storage: &Storage,
    phase: u8,
    file: &Path,
) -> anyhow::Result<String> {
    let name = file.file_name().map_or_else(
        || "held-out".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    let data = store_data(pool, storage, phase, file, &name, None, false)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(format!(
        "phase {phase} now scores on {} ({} tokens, sha256 {})",
        file.display(),
        data.tokens,
        data.sha256
    ))
}

/// Why held-out data was not attached.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Not a valid token shard for the phase: the organizer's file is at fault.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] ascent_store::StoreError),
    #[error("{0}")]
    Io(String),
}

/// The held-out data path shared by the CLI and the console: checks that `file` is a
/// token shard whose tokens fit phase `phase`'s vocabulary, stores it by hash (copied;
/// moved if `file` is a `temporary` of ours, never an organizer's own file), attaches it
/// ([`datasets::attach`]: never over data that scored submissions) and makes sure the
/// phase's split gives both parts a window. `by`: the organizer, for the audit log. A
/// stored file that ends up attached to nothing (the attachment refused) is removed.
/// Returns the data as registered (a known hash keeps the name it was first given).
pub async fn store_data(
    pool: &SqlitePool,
    storage: &Storage,
    phase: u8,
    file: &Path,
    name: &str,
    by: Option<i64>,
    temporary: bool,
) -> Result<Dataset, DataError> {
    let summary = phases::summaries(pool, phases::Audience::Organizers)
        .await?
        .into_iter()
        .find(|p| p.number == phase)
        .ok_or_else(|| {
            ascent_store::StoreError::NotFound(format!(
                "there is no phase {phase}; load a preset first"
            ))
        })?;
    let vocab = summary.vocab_size as usize;
    let source = file.to_owned();
    // Reading a shard of up to 8 GiB is blocking work.
    let tokens = tokio::task::spawn_blocking(move || {
        let shard = TokenShard::open(&source)?;
        shard.check_vocab(vocab)?;
        Ok::<_, ascent_evaluator::EvalError>(shard.len())
    })
    .await
    .map_err(|e| DataError::Io(format!("checking the shard: {e}")))?
    .map_err(|e| {
        if e.is_invalid_input() {
            DataError::Invalid(e.to_string())
        } else {
            DataError::Io(e.to_string())
        }
    })?;
    let io = |what: &str, e: &dyn std::fmt::Display| DataError::Io(format!("{what}: {e}"));
    let (sha256, bytes) = hash_file(file)
        .await
        .map_err(|e| io(&format!("cannot read {}", file.display()), &e))?;
    let target = storage.dataset_file(&sha256);
    let created = !target.exists();
    if created {
        let (source, target) = (file.to_owned(), target.clone());
        tokio::task::spawn_blocking(move || place(&source, &target, temporary))
            .await
            .map_err(|e| DataError::Io(format!("storing the shard: {e}")))??;
    }
    let data = Dataset {
        sha256,
        name: name.to_owned(),
        bytes: i64::try_from(bytes).map_err(|e| io("size", &e))?,
        tokens: i64::try_from(tokens).map_err(|e| io("tokens", &e))?,
        added_at: ascent_store::now(),
    };
    if let Err(e) = datasets::attach(pool, phase, &data, by).await {
        if created
            && !datasets::is_registered(pool, &data.sha256)
                .await
                .unwrap_or(true)
        {
            let _ = std::fs::remove_file(&target);
        }
        return Err(e.into());
    }
    phases::ensure_split(pool, phase).await?;
    Ok(datasets::of_phase(pool, phase).await?.unwrap_or(data))
}

/// Puts a shard at its hash-named `target`: a rename for our own temporary, else a copy
/// through a uniquely named partial file in the same folder (two copies of one shard
/// never write the same partial file), renamed into place.
fn place(source: &Path, target: &Path, temporary: bool) -> Result<(), DataError> {
    let io = |what: String, e: std::io::Error| DataError::Io(format!("{what}: {e}"));
    let dir = target
        .parent()
        .ok_or_else(|| DataError::Io("dataset path has no parent".into()))?;
    std::fs::create_dir_all(dir).map_err(|e| io(format!("cannot create {}", dir.display()), e))?;
    if temporary && std::fs::rename(source, target).is_ok() {
        return Ok(());
    }
    let unique = ascent_store::random_token()?;
    let partial = target.with_extension(format!("partial-{}", &unique[..16]));
    let copied = std::fs::copy(source, &partial)
        .map_err(|e| io(format!("cannot copy {}", source.display()), e))
        .and_then(|_| {
            std::fs::rename(&partial, target)
                .map_err(|e| io(format!("cannot store {}", target.display()), e))
        });
    if copied.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    copied
}

/// Makes sure a phase's split secret gives both parts a window (`store::phases::ensure_split`).
pub async fn ensure_split(pool: &SqlitePool, phase: u8) -> anyhow::Result<()> {
    Ok(phases::ensure_split(pool, phase).await?)
}

/// Registers a remote worker with its public key; prints its token once.
pub async fn create_worker(
    pool: &SqlitePool,
    name: &str,
    public_key: &str,
    evidence: Option<&str>,
    dev_attestation: bool,
) -> anyhow::Result<String> {
    let verifiers = ascent_domain::attestation::verifiers(dev_attestation);
    let attested = evidence
        .map(|e| ascent_domain::attestation::verify(e, public_key, &verifiers))
        .transpose()
        .context("attestation refused")?;
    let attestation = attested.zip(evidence.map(str::trim));
    let token = workers::create_attested(
        pool,
        name,
        public_key,
        attestation,
        None,
        ascent_store::now(),
    )
    .await?;
    let attestation = attested.map_or_else(String::new, |k| format!(" Attested: {}.", k.label()));
    Ok(format!(
        "worker {name:?} registered; it signs its scores with key {}.{attestation} Its token (shown only now):\n{token}\nRun: ascent-eval worker --server URL --token {token}",
        public_key.trim()
    ))
}

/// Revokes a worker by name.
pub async fn revoke_worker(pool: &SqlitePool, name: &str) -> anyhow::Result<String> {
    let now = ascent_store::now();
    let worker = workers::list(pool, now)
        .await?
        .into_iter()
        .find(|w| w.name == name && w.revoked_at.is_none())
        .with_context(|| format!("there is no active worker named {name:?}"))?;
    workers::revoke(pool, worker.id, None, now).await?;
    Ok(format!("worker {name:?} revoked"))
}

/// Issues a password reset link for `handle` (see `ascent_store::resets`).
pub async fn reset_link(
    pool: &SqlitePool,
    handle: &str,
    reason: &str,
    site: &str,
) -> anyhow::Result<String> {
    let (viewer, token) =
        ascent_store::resets::issue(pool, handle, None, reason, ascent_store::now()).await?;
    Ok(format!(
        "password reset link for {} (works once, for {} minutes; it signs out every browser of the account):\n{}",
        viewer.handle,
        ascent_store::resets::RESET_SECS / 60,
        ascent_app::routes::reset_password::link(site, &token)
    ))
}
