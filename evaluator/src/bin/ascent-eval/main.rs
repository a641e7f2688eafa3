//! `ascent-eval`: score a Llama checkpoint on a token shard.
//!
//! `ascent-eval score --model DIR --data FILE --seq-len N [--windows K] [--batch B]
//! [--dtype f32|bf16|f16] [--device cpu|cuda[:N][,cuda:M...]] [--json]`
//!
//! `ascent-eval validate --model DIR [--limits FILE] [--json]` runs every check without
//! scoring (for an upload, before it is queued).
//!
//! `ascent-eval worker --server URL [--token T] [--cache DIR] [--device D] [--dtype T]
//! [--once]` scores submissions for a server; `ascent-eval submit --server URL --phase N
//! [--token T] [--wait] DIR` uploads a checkpoint.
//!
//! Exit status 0 on success, 2 when the input is invalid (the message on stderr names
//! the file and what is wrong), 1 on an internal error. A panic is caught at the top and
//! reported as an internal error rather than aborting with a backtrace.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use ascent_domain::limits::ModelLimits;
use ascent_evaluator::evaluate::{evaluate, Evaluation};
use ascent_evaluator::score::{ScoreRequest, SplitSpec};
use ascent_evaluator::{checkpoint, placement};
use ascent_evaluator::{EvalError, Result};
use candle_core::DType;
use clap::{Parser, Subcommand, ValueEnum};

mod submit;
mod verify;
mod worker;

/// mimalloc keeps freed pages for reuse: with the system allocator every large
/// activation was a fresh mmap, and page faults plus zeroing took ~15% of CPU scoring.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` (value 15 in both mimalloc v2 and v3's `mi_option_e`; the
/// Rust bindings export no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Tells mimalloc never to return freed pages to the OS. Scoring frees and reallocates
/// the same large activations every layer; with the default 10 ms purge delay each
/// reallocation faulted in and zeroed fresh (huge) pages: measured on the bench model,
/// 13,700 page faults and 18% more CPU time than with purging off. Peak RSS is
/// unchanged in kind: it is still the largest working set, which is held anyway.
#[allow(unsafe_code)]
fn keep_freed_pages() {
    // SAFETY: a plain FFI call with an integer option id and value, no pointers. It runs
    // at the start of main before any other thread exists; mimalloc documents options as
    // settable at any time, and an unknown id would only be ignored.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

#[derive(Parser)]
#[command(
    name = "ascent-eval",
    version,
    about = "Validate and score Llama checkpoints for Ascent"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Score a checkpoint on a token shard: mean next-token cross-entropy in nats.
    Score(ScoreArgs),
    /// Run every check on a checkpoint (NaN/Inf included) without scoring it; report
    /// the parameter count and the weights hash.
    Validate(ValidateArgs),
    /// Score submissions for an Ascent server until stopped (Ctrl-C).
    Worker(worker::WorkerArgs),
    /// Create the worker's signing key if needed and print its public half, which an
    /// organizer registers with the worker's token.
    Key(worker::KeyArgs),
    /// Print TEE attestation evidence bound to the worker's key, for its registration.
    Attest(worker::AttestArgs),
    /// Make a phase's evaluation key pair: the private half into FILE (for the phase's
    /// workers), the public half printed (the phase's setting; contributors encrypt to it).
    EvaluationKey(worker::EvaluationKeyArgs),
    /// Upload a checkpoint directory to a phase (resumable) and print its URL.
    Submit(submit::SubmitArgs),
    /// Check a server's public log: the hash chain, every signature, and that replaying
    /// it gives the leaderboards the server serves.
    Verify(verify::VerifyArgs),
}

#[derive(clap::Args)]
struct ValidateArgs {
    /// Checkpoint directory: config.json plus model.safetensors or an index with shards.
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// Phase model limits as JSON, as for `score`.
    #[arg(long, value_name = "FILE")]
    limits: Option<PathBuf>,
    /// Print one JSON object on stdout instead of a human summary.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct ScoreArgs {
    /// Checkpoint directory: config.json plus model.safetensors or an index with shards.
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// Token shard (magic 20240520, u16 or u32 tokens).
    #[arg(long, value_name = "FILE")]
    data: PathBuf,
    /// Window length N; each window predicts N-1 tokens.
    #[arg(long, value_name = "N")]
    seq_len: usize,
    /// Score only the first K windows (default: every whole window).
    #[arg(long, value_name = "K")]
    windows: Option<usize>,
    /// Windows per forward pass; does not change the result.
    #[arg(long, value_name = "B", default_value_t = 8)]
    batch: usize,
    /// Compute dtype; weights are converted to it and the loss is accumulated in f64.
    #[arg(long, value_enum, default_value_t = DtypeArg::F32)]
    dtype: DtypeArg,
    /// cpu, cuda (the first GPU), cuda:N, or several GPUs to split the model across in
    /// pipeline stages, e.g. cuda:0,cuda:1 (for models larger than one GPU's memory).
    #[arg(long, value_name = "DEVICES", default_value = "cpu")]
    device: String,
    /// Keep the transformer layers in the checkpoint's files and copy each to the device
    /// only while the forward pass runs it: for models larger than the device's memory
    /// (slower; same result).
    #[arg(long)]
    stream_layers: bool,
    /// Print one JSON object on stdout instead of a human summary.
    #[arg(long)]
    json: bool,
    /// Phase model limits as JSON ({"architecture", "vocab_size", "max_parameters",
    /// "min_context"}), checked against config.json before any weight is read.
    #[arg(long, value_name = "FILE")]
    limits: Option<PathBuf>,
    /// Phase secret for the public/private split of windows (prefer the environment
    /// variable: command lines are visible to other users).
    #[arg(long, env = "ASCENT_SPLIT_SECRET", hide_env_values = true)]
    split_secret: Option<String>,
    /// Share of windows that are public, in [0, 1].
    #[arg(long, default_value_t = 0.3)]
    public_share: f64,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum DtypeArg {
    F32,
    Bf16,
    F16,
}

impl DtypeArg {
    pub(crate) fn dtype(self) -> DType {
        match self {
            DtypeArg::F32 => DType::F32,
            DtypeArg::Bf16 => DType::BF16,
            DtypeArg::F16 => DType::F16,
        }
    }
}

fn main() -> ExitCode {
    keep_freed_pages();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let invalid = e.use_stderr();
            // Help and version go to stdout with status 0; usage errors are invalid input.
            let _ = e.print();
            return ExitCode::from(if invalid { 2 } else { 0 });
        }
    };
    // A worker runs unattended: its log is its only output.
    let default_level = match cli.command {
        Command::Worker(_) => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ASCENT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    // Last resort: no input may crash the process with a panic.
    std::panic::set_hook(Box::new(|info| {
        tracing::error!("panic: {info}");
    }));
    let outcome = std::panic::catch_unwind(|| match cli.command {
        Command::Score(args) => exit_status(run_score(args)),
        Command::Validate(args) => exit_status(run_validate(args)),
        Command::Worker(args) => worker::run(args),
        Command::Key(args) => worker::key(args),
        Command::Attest(args) => worker::attest(args),
        Command::EvaluationKey(args) => worker::evaluation_key(args),
        Command::Submit(args) => submit::run(args),
        Command::Verify(args) => verify::run(args),
    });
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(_) => {
            eprintln!(
                "ascent-eval: internal error: the evaluator panicked (a bug; please report it)"
            );
            ExitCode::from(1)
        }
    }
}

/// Prints an evaluation's error; its exit status.
fn exit_status(result: Result<()>) -> u8 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("ascent-eval: {e:#}");
            e.exit_code() as u8
        }
    }
}

/// Where the layers live, from `--stream-layers`.
pub(crate) fn residency(stream_layers: bool) -> checkpoint::Residency {
    match stream_layers {
        true => checkpoint::Residency::Streamed,
        false => checkpoint::Residency::Resident,
    }
}

fn run_score(args: ScoreArgs) -> Result<()> {
    let devices = placement::open_devices(&args.device)?;
    let limits = args.limits.as_deref().map(read_limits).transpose()?;
    if !(0.0..=1.0).contains(&args.public_share) {
        return Err(EvalError::Unavailable(format!(
            "--public-share {} must be between 0 and 1",
            args.public_share
        )));
    }
    let evaluation = Evaluation {
        model_dir: &args.model,
        data: &args.data,
        request: ScoreRequest {
            seq_len: args.seq_len,
            windows: args.windows,
            batch: args.batch,
            split: args.split_secret.map(|s| SplitSpec {
                secret: s.into_bytes(),
                public_share: args.public_share,
            }),
        },
        limits: limits.as_ref(),
        dtype: args.dtype.dtype(),
        devices: &devices,
        residency: residency(args.stream_layers),
        cancel: None,
    };

    let mut bar: Option<indicatif::ProgressBar> = None;
    let report = evaluate(&evaluation, &mut |done, total| {
        let bar = bar.get_or_insert_with(|| progress_bar(total as u64));
        bar.set_position(done as u64);
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }

    if args.json {
        let out = serde_json::to_string(&report)
            .map_err(|e| EvalError::Internal(format!("serialising the report: {e}")))?;
        println!("{out}");
    } else {
        let s = &report.score;
        println!("loss            {:.6} nats/token", s.loss);
        println!("perplexity      {:.4}", s.perplexity);
        println!("bits per token  {:.6}", s.bits_per_token);
        if let Some(p) = s.public {
            println!("public          {:.6} ({} windows)", p.loss, p.windows);
        }
        if let Some(p) = s.private {
            println!("private         {:.6} ({} windows)", p.loss, p.windows);
        }
        println!(
            "scored          {} tokens in {} windows of {}",
            s.tokens_scored, s.windows, s.seq_len
        );
        println!("parameters      {}", report.parameters);
        println!("dtype, device   {}, {}", report.dtype, report.device);
        println!(
            "time            {:.2} s ({:.0} tokens/s scoring)",
            report.seconds, report.tokens_per_second
        );
        println!("weights sha256  {}", report.weights_sha256);
        println!("data sha256     {}", report.data_sha256);
    }
    Ok(())
}

fn run_validate(args: ValidateArgs) -> Result<()> {
    let limits = args.limits.as_deref().map(read_limits).transpose()?;
    let (config, inspection) = checkpoint::inspect(&args.model, limits.as_ref())?;
    if args.json {
        let out = serde_json::json!({
            "valid": true,
            "parameters": inspection.parameters,
            "stored_bytes": inspection.stored_bytes,
            "weights_sha256": inspection.weights_sha256,
            "vocab_size": config.vocab_size,
            "hidden_size": config.hidden_size,
            "num_hidden_layers": config.num_hidden_layers,
            "max_position_embeddings": config.max_position_embeddings,
            "tie_word_embeddings": config.tie_word_embeddings,
        });
        println!("{out}");
    } else {
        println!("valid           {}", args.model.display());
        println!("parameters      {}", inspection.parameters);
        println!(
            "architecture    llama, {} layers, hidden {}, vocab {}, context {}",
            config.num_hidden_layers,
            config.hidden_size,
            config.vocab_size,
            config.max_position_embeddings
        );
        println!("weights sha256  {}", inspection.weights_sha256);
    }
    Ok(())
}

fn read_limits(path: &std::path::Path) -> Result<ModelLimits> {
    let bytes = std::fs::read(path).map_err(|e| EvalError::Io {
        path: path.to_owned(),
        source: e,
    })?;
    let value = ascent_evaluator::json::parse_strict(path, &bytes)?;
    serde_json::from_value(value).map_err(|e| EvalError::Json {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// A progress bar on stderr, drawn only when a person is watching it.
fn progress_bar(len: u64) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} scoring [{bar:40}] {pos}/{len} windows, {per_sec}, eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
