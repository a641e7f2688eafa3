//! Resumable, verified downloads against a tiny scripted HTTP responder on a loopback
//! port (std only): a transfer cut in the middle resumes with `Range`, a wrong hash
//! leaves nothing behind, a 404 is not retried.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ascent_evaluator::client::{download, partial_path, Backoff, Client, ClientError, Expected};
use sha2::{Digest, Sha256};

/// One scripted answer: status line, extra headers, body, and whether to cut the body
/// after this many bytes (closing the connection mid-transfer).
struct Answer {
    status: &'static str,
    headers: Vec<String>,
    body: Vec<u8>,
    cut_after: Option<usize>,
}

/// Serves `answers` in order, one per connection; returns the server URL and the
/// request heads it saw.
fn serve(answers: Vec<Answer>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for answer in answers {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line.to_ascii_lowercase());
            }
            log.lock().expect("log").push(head);
            let mut out = stream;
            let mut response = format!(
                "HTTP/1.1 {}\r\ncontent-length: {}\r\nconnection: close\r\n",
                answer.status,
                answer.body.len()
            );
            for h in &answer.headers {
                response.push_str(h);
                response.push_str("\r\n");
            }
            response.push_str("\r\n");
            let _ = out.write_all(response.as_bytes());
            let end = answer.cut_after.unwrap_or(answer.body.len());
            let _ = out.write_all(&answer.body[..end]);
            let _ = out.flush();
        }
    });
    (url, seen)
}

fn client(url: &str) -> Client {
    Client::new(url, Some("ascw_test"))
        .expect("client")
        .with_backoff(Backoff {
            first: Duration::from_millis(1),
            max: Duration::from_millis(5),
            retries: 3,
        })
}

fn content() -> Vec<u8> {
    (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[test]
fn a_broken_transfer_resumes_where_it_stopped() {
    let body = content();
    let half = 40_000;
    let (url, seen) = serve(vec![
        Answer {
            status: "200 OK",
            headers: vec![],
            body: body.clone(),
            cut_after: Some(half),
        },
        Answer {
            status: "206 Partial Content",
            headers: vec![format!("content-range: bytes {half}-99999/100000")],
            body: body[half..].to_vec(),
            cut_after: None,
        },
    ]);
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("model.safetensors");
    let hash = sha256(&body);
    let mut last = 0;
    download(
        &client(&url),
        "/api/worker/jobs/1/files/model.safetensors",
        &[("x-ascent-lease", "lease-1")],
        &dest,
        Expected {
            name: "model.safetensors",
            bytes: 100_000,
            sha256: &hash,
        },
        &AtomicBool::new(false),
        &mut |have| last = have,
    )
    .expect("download");
    assert_eq!(std::fs::read(&dest).expect("read"), body);
    assert!(!partial_path(&dest).exists());
    assert_eq!(last, 100_000);
    let seen = seen.lock().expect("seen");
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen[0].contains("authorization: bearer ascw_test"),
        "{}",
        seen[0]
    );
    assert!(seen[0].contains("x-ascent-lease: lease-1"), "{}", seen[0]);
    assert!(!seen[0].contains("range:"), "{}", seen[0]);
    assert!(
        seen[1].contains(&format!("range: bytes={half}-")),
        "{}",
        seen[1]
    );
}

#[test]
fn a_wrong_hash_deletes_the_partial_file_and_fails() {
    let body = content();
    let (url, _) = serve(vec![Answer {
        status: "200 OK",
        headers: vec![],
        body: body.clone(),
        cut_after: None,
    }]);
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("data.bin");
    let wrong = sha256(b"something else");
    let e = download(
        &client(&url),
        "/api/worker/data/x",
        &[],
        &dest,
        Expected {
            name: "held-out data",
            bytes: 100_000,
            sha256: &wrong,
        },
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .expect_err("wrong hash");
    assert!(matches!(e, ClientError::Integrity { .. }), "{e}");
    assert!(!dest.exists() && !partial_path(&dest).exists());
}

#[test]
fn a_missing_file_is_not_retried() {
    let (url, seen) = serve(vec![Answer {
        status: "404 Not Found",
        headers: vec!["content-type: application/json".into()],
        body: br#"{"error":"no such file"}"#.to_vec(),
        cut_after: None,
    }]);
    let dir = tempfile::tempdir().expect("tempdir");
    let e = download(
        &client(&url),
        "/api/worker/jobs/1/files/config.json",
        &[],
        &dir.path().join("config.json"),
        Expected {
            name: "config.json",
            bytes: 10,
            sha256: &"0".repeat(64),
        },
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .expect_err("404");
    assert_eq!(e.status(), Some(404));
    assert_eq!(e.message(), "no such file");
    assert_eq!(seen.lock().expect("seen").len(), 1);
}

#[test]
fn a_cancelled_download_keeps_its_partial_file_for_later() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("f.bin");
    std::fs::write(partial_path(&dest), b"abc").expect("write");
    let e = download(
        &client("http://127.0.0.1:9"),
        "/x",
        &[],
        &dest,
        Expected {
            name: "f.bin",
            bytes: 10,
            sha256: &"0".repeat(64),
        },
        &AtomicBool::new(true),
        &mut |_| {},
    )
    .expect_err("cancelled");
    assert!(matches!(e, ClientError::Cancelled));
    assert_eq!(std::fs::read(partial_path(&dest)).expect("kept"), b"abc");
}
