//! Organizer commands run from a shell on the server (`ascent admin …`).

use std::io::BufRead;
use std::path::Path;

use anyhow::{bail, Context};
use ascent_domain::account::{Email, Handle, Password};
use ascent_domain::preset::{parse_preset, Preset};
use ascent_store::phases::LoadOutcome;
use ascent_store::{accounts, phases, SqlitePool};

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
    Ok(match phases::load_preset(pool, &preset, ascent_store::now(), replace).await? {
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
