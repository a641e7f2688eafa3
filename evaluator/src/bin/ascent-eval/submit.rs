//! `ascent-eval submit`: upload a checkpoint directory to a phase, print the
//! submission's URL, and with `--wait` follow it until it is scored or failed.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use ascent_domain::protocol::SubmissionState;
use ascent_evaluator::client::Client;
use ascent_evaluator::submit::{self, SubmitError};

#[derive(clap::Args)]
pub struct SubmitArgs {
    /// The Ascent server, e.g. https://ascent.example.
    #[arg(long, value_name = "URL")]
    server: String,
    /// Phase number.
    #[arg(long, value_name = "N")]
    phase: u8,
    /// API token (asc_…, from your profile page); prefer the environment variable.
    #[arg(long, env = "ASCENT_TOKEN", hide_env_values = true)]
    token: String,
    /// Follow the submission until it is scored (exit 0) or failed (exit 1).
    #[arg(long)]
    wait: bool,
    /// Encrypt every file to the phase's evaluation key first (kept in
    /// DIR/.ascent-encrypted/): the server stores only ciphertext, and only the phase's
    /// workers can read the weights.
    #[arg(long)]
    encrypt: bool,
    /// With --encrypt: the evaluation key you expect (age1…, from the organizers); refuse
    /// to send if the server gives another.
    #[arg(long, value_name = "AGE1…", requires = "encrypt")]
    evaluation_key: Option<String>,
    /// Checkpoint directory: config.json plus model.safetensors, or
    /// model.safetensors.index.json and its shards.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

pub fn run(args: SubmitArgs) -> u8 {
    match submit(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ascent-eval: {e}");
            e.exit_code()
        }
    }
}

fn submit(args: &SubmitArgs) -> Result<u8, SubmitError> {
    let client = Client::new(&args.server, Some(&args.token))?;
    let bar = byte_bar();
    let encryption = if args.encrypt {
        submit::Encryption::ToPhaseKey(args.evaluation_key.as_deref())
    } else {
        submit::Encryption::None
    };
    let created = submit::upload(
        &client,
        args.phase,
        &args.dir,
        encryption,
        &mut |sent, total| {
            bar.set_length(total);
            bar.set_position(sent);
        },
    );
    bar.finish_and_clear();
    let created = created?;
    println!("{}{}", client.server(), created.url);
    if !args.wait {
        return Ok(0);
    }
    let mut last = None;
    let report = submit::wait(&client, created.id, Duration::from_secs(2), &mut |r| {
        let now = (r.state, r.progress.as_ref().map(|p| (p.done, p.total)));
        if last != Some(now) {
            match &r.progress {
                Some(p) if !r.state.is_final() => {
                    eprintln!("{} ({}/{})", r.state.as_str(), p.done, p.total)
                }
                _ => eprintln!("{}", r.state.as_str()),
            }
            last = Some(now);
        }
    })?;
    if report.state == SubmissionState::Failed {
        eprintln!(
            "ascent-eval: submission {} failed: {}",
            report.id,
            report.error.as_deref().unwrap_or("no reason given")
        );
        return Ok(1);
    }
    if let Some(loss) = report.loss {
        println!("loss         {loss:.6} nats/token");
    }
    if let Some(loss) = report.public_loss {
        println!("public loss  {loss:.6} nats/token");
    }
    if let Some(loss) = report.private_loss {
        println!("private loss {loss:.6} nats/token");
    }
    Ok(0)
}

/// Bytes, speed and time left on stderr, drawn only when a person is watching.
fn byte_bar() -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "uploading [{bar:40}] {bytes}/{total_bytes}, {binary_bytes_per_sec}, eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
