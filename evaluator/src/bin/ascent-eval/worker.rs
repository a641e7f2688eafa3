//! `ascent-eval worker`: score submissions for a server until stopped (Ctrl-C).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ascent_evaluator::encryption::EvaluationKey;
use ascent_evaluator::placement;
use ascent_evaluator::worker::{self, key, WorkerOptions};

use crate::DtypeArg;

#[derive(clap::Args)]
pub struct WorkerArgs {
    /// The Ascent server, e.g. https://ascent.example.
    #[arg(long, value_name = "URL")]
    server: String,
    /// Worker token (ascw_…); prefer the environment variable, command lines are visible
    /// to other users.
    #[arg(long, env = "ASCENT_WORKER_TOKEN", hide_env_values = true)]
    token: String,
    /// Download cache (default: $XDG_CACHE_HOME/ascent or ~/.cache/ascent); one worker
    /// per directory.
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// cpu, cuda, cuda:N, or several GPUs to split each model across (cuda:0,cuda:1),
    /// as for `score`.
    #[arg(long, value_name = "DEVICES", default_value = "cpu")]
    device: String,
    /// Compute dtype.
    #[arg(long, value_enum, default_value_t = DtypeArg::F32)]
    dtype: DtypeArg,
    /// Copy each transformer layer to the device only while it runs (as `score
    /// --stream-layers`): for checkpoints larger than the device's memory.
    #[arg(long)]
    stream_layers: bool,
    /// Seconds between claims while the queue is empty.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    poll: u64,
    /// Exit after one job, or at once if the queue is empty.
    #[arg(long)]
    once: bool,
    /// The worker's signing key (created if missing; default: worker.key in the cache).
    /// Its public half must be registered with the token: see `ascent-eval key`.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// A phase's evaluation key (an age identity file from `ascent-eval evaluation-key`):
    /// the worker is then given that phase's encrypted submissions. Repeat for more phases.
    #[arg(long = "evaluation-key", value_name = "FILE")]
    evaluation_keys: Vec<PathBuf>,
}

#[derive(clap::Args)]
pub struct EvaluationKeyArgs {
    /// Where to write the new key (refused if the file exists). Give it only to the
    /// phase's workers (`ascent-eval worker --evaluation-key FILE`).
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

/// `ascent-eval evaluation-key FILE`: makes a phase's evaluation key pair, writes the
/// private half to FILE and prints the public half for the phase's settings.
pub fn evaluation_key(args: EvaluationKeyArgs) -> u8 {
    match EvaluationKey::create(&args.file) {
        Ok(key) => {
            println!("{}", key.recipient());
            eprintln!(
                "ascent-eval: wrote the private key to {} (owner-only); set the phase's evaluation key to {} and start its workers with --evaluation-key {}",
                args.file.display(),
                key.recipient(),
                args.file.display()
            );
            0
        }
        Err(e) => {
            eprintln!("ascent-eval: {e}");
            2
        }
    }
}

#[derive(clap::Args)]
pub struct KeyArgs {
    /// Where the key is kept (created if missing; default: worker.key in the cache).
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
}

/// The worker's key from `--key` or the cache, created if missing; on failure the
/// message is printed and the exit status returned.
fn load_key(arg: Option<PathBuf>) -> Result<ascent_domain::statement::WorkerKey, u8> {
    let Some(path) = arg.or_else(|| default_cache().map(|c| c.join("worker.key"))) else {
        eprintln!("ascent-eval: no key path: set --key, XDG_CACHE_HOME or HOME");
        return Err(2);
    };
    match key::load_or_create(&path) {
        Ok((key, created)) => {
            if created {
                eprintln!("ascent-eval: created the worker key {}", path.display());
            }
            Ok(key)
        }
        Err(e) => {
            eprintln!("ascent-eval: {e}");
            Err(e.exit_code() as u8)
        }
    }
}

/// `ascent-eval key`: creates the worker's key if needed and prints its public half.
pub fn key(args: KeyArgs) -> u8 {
    match load_key(args.key) {
        Ok(key) => {
            println!("{}", key.public_hex());
            eprintln!("ascent-eval: an organizer registers it: ascent admin worker create NAME --public-key {}", key.public_hex());
            0
        }
        Err(code) => code,
    }
}

#[derive(clap::Args)]
pub struct AttestArgs {
    /// The worker's key file, as for `key`.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// Development evidence: binds the key but proves nothing about the machine. Servers
    /// accept it only with ASCENT_DEV_ATTESTATION=1. (Hardware evidence from a TDX,
    /// SEV-SNP or NVIDIA confidential-computing guest is not produced here yet.)
    #[arg(long, required = true)]
    development: bool,
}

/// `ascent-eval attest --development`: prints attestation evidence for the worker's key,
/// which an organizer passes when registering the worker.
pub fn attest(args: AttestArgs) -> u8 {
    let _ = args.development;
    let key = match load_key(args.key) {
        Ok(key) => key,
        Err(code) => return code,
    };
    let evidence = ascent_domain::attestation::development_evidence(&key.public_hex());
    match serde_json::to_string(&evidence) {
        Ok(json) => {
            println!("{json}");
            eprintln!("ascent-eval: development evidence: it proves nothing about this machine; register with ascent admin worker create NAME --public-key {} --evidence FILE", key.public_hex());
            0
        }
        Err(e) => {
            eprintln!("ascent-eval: {e}");
            1
        }
    }
}

/// Set by Ctrl-C; a second Ctrl-C exits at once.
static STOP: AtomicBool = AtomicBool::new(false);

pub fn run(args: WorkerArgs) -> u8 {
    let Some(cache_dir) = args.cache.or_else(default_cache) else {
        eprintln!("ascent-eval: no cache directory: set --cache, XDG_CACHE_HOME or HOME");
        return 2;
    };
    let devices = match placement::open_devices(&args.device) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("ascent-eval: {e}");
            return e.exit_code() as u8;
        }
    };
    if let Err(e) = ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::Relaxed) {
            std::process::exit(130);
        }
        eprintln!("ascent-eval: stopping (the current job is cancelled; Ctrl-C again to quit now)");
    }) {
        tracing::warn!(error = %e, "cannot handle Ctrl-C");
    }
    let key_path = args.key.unwrap_or_else(|| cache_dir.join("worker.key"));
    let signing = match key::load_or_create(&key_path) {
        Ok((signing, created)) => {
            if created {
                eprintln!(
                    "ascent-eval: created the worker key {}; register its public half {} with this worker's token",
                    key_path.display(),
                    signing.public_hex()
                );
            }
            signing
        }
        Err(e) => {
            eprintln!("ascent-eval: {e}");
            return e.exit_code() as u8;
        }
    };
    let mut evaluation_keys = Vec::new();
    for path in &args.evaluation_keys {
        match EvaluationKey::load(path) {
            Ok(keys) => evaluation_keys.extend(keys),
            Err(e) => {
                eprintln!("ascent-eval: {e}");
                return 2;
            }
        }
    }
    let options = WorkerOptions {
        server: args.server,
        token: args.token,
        cache_dir,
        devices,
        dtype: args.dtype.dtype(),
        residency: crate::residency(args.stream_layers),
        poll_interval: Duration::from_secs(args.poll.max(1)),
        once: args.once,
        key: signing,
        evaluation_keys,
    };
    match worker::run(&options, &STOP) {
        Ok(summary) => {
            eprintln!(
                "ascent-eval: worker done: {} scored, {} invalid, {} failed, {} abandoned",
                summary.scored, summary.invalid, summary.errors, summary.abandoned
            );
            0
        }
        Err(e) => {
            eprintln!("ascent-eval: {e}");
            e.exit_code()
        }
    }
}

fn default_cache() -> Option<PathBuf> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    non_empty("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| non_empty("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .map(|base| base.join("ascent"))
}
