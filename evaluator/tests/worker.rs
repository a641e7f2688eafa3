//! The worker loop against a small scripted stand-in for the server's worker API
//! (std only, loopback): a job is downloaded, scored and reported; an invalid
//! checkpoint is reported without the worker's paths; a lost lease cancels the job and
//! nothing is reported. The real server's end-to-end tests live in `server/tests`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ascent_domain::limits::ModelLimits;
use ascent_domain::protocol::{JobAssignment, JobData, JobFile, JobOutcome, JobResult};
use ascent_evaluator::worker::{run, WorkerOptions};
use sha2::{Digest, Sha256};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

struct Request {
    method: String,
    path: String,
    headers: String,
    body: Vec<u8>,
}

struct Answer {
    status: u16,
    body: Vec<u8>,
    /// Pause between 1 KiB pieces of the body (a slow transfer).
    pace: Option<Duration>,
}

impl Answer {
    fn json(status: u16, value: &impl serde::Serialize) -> Answer {
        Answer {
            status,
            body: serde_json::to_vec(value).expect("json"),
            pace: None,
        }
    }
    fn empty(status: u16) -> Answer {
        Answer {
            status,
            body: Vec::new(),
            pace: None,
        }
    }
}

type Route = dyn Fn(&Request) -> Answer + Send + Sync;
/// Checkpoint files by name.
type Files = Vec<(String, Vec<u8>)>;

/// Serves every connection on its own thread with `route`; returns the base URL and the
/// requests seen.
fn serve(route: Arc<Route>) -> (String, Arc<Mutex<Vec<Request>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming().take(200) {
            let Ok(stream) = stream else { return };
            let route = Arc::clone(&route);
            let log = Arc::clone(&log);
            std::thread::spawn(move || handle(stream, &*route, &log));
        }
    });
    (url, seen)
}

fn handle(stream: TcpStream, route: &Route, log: &Mutex<Vec<Request>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut first = String::new();
    if reader.read_line(&mut first).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = first.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut headers = String::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        headers.push_str(&lower);
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let request = Request {
        method,
        path,
        headers,
        body,
    };
    let answer = route(&request);
    log.lock().expect("log").push(request);
    let mut out = stream;
    let head = format!(
        "HTTP/1.1 {} X\r\ncontent-length: {}\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n",
        answer.status,
        answer.body.len()
    );
    let _ = out.write_all(head.as_bytes());
    match answer.pace {
        None => {
            let _ = out.write_all(&answer.body);
        }
        Some(pause) => {
            for piece in answer.body.chunks(1024) {
                if out.write_all(piece).is_err() {
                    return;
                }
                let _ = out.flush();
                std::thread::sleep(pause);
            }
        }
    }
    let _ = out.flush();
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A job for the `mha` fixture on `text_u16.bin`, under `limits`.
fn job(limits: ModelLimits, lease_seconds: u64) -> (JobAssignment, Files, Vec<u8>) {
    let files: Files = ["config.json", "model.safetensors"]
        .iter()
        .map(|n| {
            (
                n.to_string(),
                std::fs::read(fixtures().join("mha").join(n)).expect("fixture"),
            )
        })
        .collect();
    let data = std::fs::read(fixtures().join("text_u16.bin")).expect("data");
    let assignment = JobAssignment {
        job_id: 7,
        submission_id: 42,
        phase: 1,
        lease: "lease-7".into(),
        lease_seconds,
        time_limit_seconds: 600,
        files: files
            .iter()
            .map(|(name, bytes)| JobFile {
                name: name.clone(),
                bytes: bytes.len() as u64,
                sha256: sha256(bytes),
            })
            .collect(),
        data: JobData {
            sha256: sha256(&data),
            bytes: data.len() as u64,
        },
        seq_len: 64,
        windows: 2,
        limits,
        encrypted_to: None,
    };
    (assignment, files, data)
}

fn limits(vocab_size: u32) -> ModelLimits {
    ModelLimits {
        architecture: "llama".into(),
        vocab_size,
        max_parameters: 10_000_000,
        min_context: 64,
    }
}

/// Routes the worker API for one job; `heartbeat` answers heartbeats, `pace` slows the
/// weights download.
fn worker_api(
    assignment: JobAssignment,
    files: Files,
    data: Vec<u8>,
    heartbeat: u16,
    pace: Option<Duration>,
) -> Arc<Route> {
    let claims = AtomicUsize::new(0);
    Arc::new(move |r: &Request| {
        let job = format!("/api/worker/jobs/{}", assignment.job_id);
        match (r.method.as_str(), r.path.as_str()) {
            ("POST", "/api/worker/claim") => {
                if claims.fetch_add(1, Ordering::SeqCst) == 0 {
                    Answer::json(200, &assignment)
                } else {
                    Answer::empty(204)
                }
            }
            ("POST", p) if p == format!("{job}/heartbeat") => {
                if heartbeat == 200 {
                    Answer::json(
                        200,
                        &serde_json::json!({"lease_seconds": assignment.lease_seconds}),
                    )
                } else {
                    Answer::json(heartbeat, &serde_json::json!({"error": "lease lost"}))
                }
            }
            ("POST", p) if p == format!("{job}/result") => {
                Answer::json(200, &serde_json::json!({}))
            }
            ("GET", p) if p == format!("/api/worker/data/{}", assignment.data.sha256) => Answer {
                status: 200,
                body: data.clone(),
                pace: None,
            },
            ("GET", p) => match files.iter().find(|(n, _)| p == format!("{job}/files/{n}")) {
                Some((name, bytes)) => Answer {
                    status: 200,
                    body: bytes.clone(),
                    pace: pace.filter(|_| name.ends_with(".safetensors")),
                },
                None => Answer::json(404, &serde_json::json!({"error": "no such file"})),
            },
            _ => Answer::json(404, &serde_json::json!({"error": "no route"})),
        }
    })
}

fn options(url: &str, cache: &Path) -> WorkerOptions {
    let key = ascent_domain::statement::WorkerKey::from_secret([1; 32]);
    let mut o = WorkerOptions::new(url, "ascw_test", cache.to_owned(), key);
    o.poll_interval = Duration::from_millis(50);
    o.once = true;
    o
}

fn results(seen: &Mutex<Vec<Request>>) -> Vec<JobResult> {
    seen.lock()
        .expect("seen")
        .iter()
        .filter(|r| r.path.ends_with("/result"))
        .map(|r| serde_json::from_slice(&r.body).expect("a JobResult"))
        .collect()
}

#[test]
fn a_job_is_downloaded_scored_and_reported() {
    let (assignment, files, data) = job(limits(256), 60);
    let data_sha = assignment.data.sha256.clone();
    let (url, seen) = serve(worker_api(assignment, files, data, 200, None));
    let cache = tempfile::tempdir().expect("tempdir");
    let summary = run(&options(&url, cache.path()), &AtomicBool::new(false)).expect("worker runs");
    assert_eq!(summary.scored, 1, "{summary:?}");

    let results = results(&seen);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].lease, "lease-7");
    let JobOutcome::Scored(scored) = &results[0].outcome else {
        panic!("scored: {:?}", results[0].outcome)
    };
    assert_eq!(scored.window_nll.len(), 2);
    assert!(scored.window_nll.iter().all(|v| v.is_finite() && *v > 0.0));
    assert_eq!(scored.data_sha256, data_sha);
    assert_eq!(scored.seq_len, 64);
    assert_eq!(scored.evaluator_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(
        (scored.device.as_str(), scored.dtype.as_str()),
        ("cpu", "f32")
    );

    // Every worker call carries the token; downloads carry the lease.
    for r in seen.lock().expect("seen").iter() {
        assert!(
            r.headers.contains("authorization: bearer ascw_test"),
            "{}",
            r.path
        );
        if r.method == "GET" {
            assert!(r.headers.contains("x-ascent-lease: lease-7"), "{}", r.path);
        }
    }
    // The job directory is gone; the data stays cached by its hash.
    assert!(!cache.path().join("jobs/7").exists());
    assert!(cache.path().join(format!("data/{data_sha}.bin")).is_file());
}

#[test]
fn an_invalid_checkpoint_is_reported_in_the_contributors_terms() {
    let (assignment, files, data) = job(limits(32_000), 60);
    let (url, seen) = serve(worker_api(assignment, files, data, 200, None));
    let cache = tempfile::tempdir().expect("tempdir");
    let summary = run(&options(&url, cache.path()), &AtomicBool::new(false)).expect("worker runs");
    assert_eq!(summary.invalid, 1, "{summary:?}");
    let results = results(&seen);
    let JobOutcome::Invalid { message } = &results[0].outcome else {
        panic!("invalid: {:?}", results[0].outcome)
    };
    assert!(
        message.starts_with("config.json: outside the phase limits"),
        "{message}"
    );
    let cache_path = cache.path().display().to_string();
    assert!(!message.contains(&cache_path), "{message}");
}

#[test]
fn a_lost_lease_cancels_the_job_and_reports_nothing() {
    let (assignment, files, data) = job(limits(256), 1);
    // About 9 s to send the weights; the first heartbeat (after 0.5 s) answers 409.
    let slow = Some(Duration::from_millis(20));
    let (url, seen) = serve(worker_api(assignment, files, data, 409, slow));
    let cache = tempfile::tempdir().expect("tempdir");
    let summary = run(&options(&url, cache.path()), &AtomicBool::new(false)).expect("worker runs");
    assert_eq!(summary.abandoned, 1, "{summary:?}");
    assert!(
        results(&seen).is_empty(),
        "nothing reported after a lost lease"
    );
    assert!(!cache.path().join("jobs/7").exists());
}

#[test]
fn an_empty_queue_ends_a_once_worker_and_a_bad_token_is_an_error() {
    let (url, _) = serve(Arc::new(|r: &Request| {
        if r.headers.contains("bearer ascw_test") {
            Answer::empty(204)
        } else {
            Answer::json(401, &serde_json::json!({"error": "unknown worker token"}))
        }
    }));
    let cache = tempfile::tempdir().expect("tempdir");
    let summary = run(&options(&url, cache.path()), &AtomicBool::new(false)).expect("runs");
    assert_eq!(summary, Default::default());

    let mut bad = options(&url, cache.path());
    bad.token = "ascw_wrong".into();
    bad.once = false;
    let e = run(&bad, &AtomicBool::new(false)).expect_err("refused");
    assert_eq!(e.status(), Some(401));
    assert_eq!(e.message(), "unknown worker token");
}
