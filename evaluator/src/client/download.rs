//! Resumable, verified downloads: bytes go to `<file>.partial`, a broken transfer
//! resumes with `Range: bytes=N-`, and the file gets its real name (an atomic rename)
//! only once its size and SHA-256 are what the server promised.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};
use ureq::http::Method;

use super::{status_error, Client, ClientError};

/// What the file must be.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The name to use in messages (not a local path).
    pub name: &'a str,
    pub bytes: u64,
    /// Lowercase hex SHA-256.
    pub sha256: &'a str,
}

/// What to do given how much of the file is already here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumePlan {
    /// Every byte is here: verify it.
    Complete,
    /// Ask for the bytes from this offset on (0: the whole file).
    Fetch { from: u64 },
    /// More bytes than the file has: what is here is wrong; start again.
    Restart,
}

/// Decides from the length of the partial file and the expected size.
pub fn resume_plan(have: u64, expected: u64) -> ResumePlan {
    use std::cmp::Ordering::*;
    match have.cmp(&expected) {
        Equal => ResumePlan::Complete,
        Less => ResumePlan::Fetch { from: have },
        Greater => ResumePlan::Restart,
    }
}

/// Where the body of an answer to a (possibly ranged) request starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeStart {
    /// The body continues the partial file.
    Append,
    /// The body is the whole file (the server ignored the range): start over.
    Truncate,
}

/// Reads a download answer: `206` must start exactly at `from` (`Content-Range: bytes
/// from-…/…`); `200` is the whole file. Anything else is not a download.
pub fn range_start(
    status: u16,
    from: u64,
    content_range: Option<&str>,
) -> Result<RangeStart, String> {
    match status {
        200 => Ok(RangeStart::Truncate),
        206 => {
            let range = content_range.ok_or("206 without Content-Range")?;
            let start = range
                .trim()
                .strip_prefix("bytes ")
                .and_then(|r| r.split('-').next())
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| format!("unreadable Content-Range {range:?}"))?;
            if start == from {
                Ok(RangeStart::Append)
            } else {
                Err(format!("asked for bytes from {from}, got {range:?}"))
            }
        }
        other => Err(format!("status {other} is not a download")),
    }
}

/// Downloads `path` from `client`'s server into `dest`, resuming from `<dest>.partial`,
/// retrying broken transfers, and checking size and SHA-256 before the final rename. A
/// file that does not match is deleted and reported as [`ClientError::Integrity`].
/// `progress` receives the bytes present so far; `cancel` stops the transfer (the
/// partial file stays for next time).
pub fn download(
    client: &Client,
    path: &str,
    headers: &[(&str, &str)],
    dest: &Path,
    expected: Expected<'_>,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(u64),
) -> Result<(), ClientError> {
    let partial = partial_path(dest);
    let mut retry = 0;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(ClientError::Cancelled);
        }
        let have = match std::fs::metadata(&partial) {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(ClientError::io(&partial, e)),
        };
        progress(have);
        let from = match resume_plan(have, expected.bytes) {
            ResumePlan::Complete => break,
            ResumePlan::Fetch { from } => from,
            ResumePlan::Restart => {
                remove(&partial)?;
                0
            }
        };
        let fetched = fetch_from(
            client, path, headers, &partial, from, expected, cancel, progress,
        )
        .and_then(|received| match received {
            // An answer that ends early without an error and gives nothing: retry it
            // like a broken connection, so a bad server cannot keep us looping.
            0 if from > 0 || expected.bytes > 0 => Err(ClientError::Transport {
                url: client.url(path),
                source: ureq::Error::Io(std::io::ErrorKind::UnexpectedEof.into()),
            }),
            _ => Ok(()),
        });
        match fetched {
            Ok(()) => retry = 0,
            Err(e) if e.is_retryable() => {
                let Some(wait) = client.backoff().delay(retry) else {
                    return Err(e);
                };
                tracing::warn!(error = %e, retry = retry + 1, ?wait, file = expected.name, "download: retrying");
                std::thread::sleep(wait);
                retry += 1;
            }
            Err(e) => return Err(e),
        }
    }
    if let Err(e) = verify(&partial, expected) {
        remove(&partial)?;
        return Err(e);
    }
    std::fs::rename(&partial, dest).map_err(|e| ClientError::io(dest, e))
}

/// `<dest>.partial`.
pub fn partial_path(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// One request for the bytes from `from` on, appended to `partial`; returns how many
/// arrived.
#[allow(clippy::too_many_arguments)]
fn fetch_from(
    client: &Client,
    path: &str,
    headers: &[(&str, &str)],
    partial: &Path,
    from: u64,
    expected: Expected<'_>,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, ClientError> {
    let range = format!("bytes={from}-");
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    if from > 0 {
        all.push(("range", &range));
    }
    let url = client.url(path);
    let mut response = client.send(Method::GET, path, &all, ())?;
    let status = response.status().as_u16();
    if status == 416 && from > 0 {
        // Our partial file does not fit the server's: start over.
        tracing::warn!(
            file = expected.name,
            "range {range} not satisfiable; restarting"
        );
        remove(partial)?;
        return Ok(0);
    }
    if !response.status().is_success() {
        return Err(status_error(url, response));
    }
    let content_range = response
        .headers()
        .get("content-range")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let start = range_start(status, from, content_range.as_deref()).map_err(|message| {
        ClientError::Decode {
            url: url.clone(),
            message,
        }
    })?;
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(partial)
        .map_err(|e| ClientError::io(partial, e))?;
    let mut have = from;
    if start == RangeStart::Truncate {
        file.set_len(0).map_err(|e| ClientError::io(partial, e))?;
        have = 0;
    }
    let mut reader = response.body_mut().as_reader();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(ClientError::Cancelled);
        }
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(ClientError::Transport {
                    url,
                    source: ureq::Error::Io(e),
                })
            }
        };
        if have + n as u64 > expected.bytes {
            drop(file);
            remove(partial)?;
            return Err(ClientError::Integrity {
                name: expected.name.to_owned(),
                message: format!(
                    "the server sent more than the {} bytes promised",
                    expected.bytes
                ),
            });
        }
        file.write_all(&buf[..n])
            .map_err(|e| ClientError::io(partial, e))?;
        have += n as u64;
        progress(have);
    }
    file.flush().map_err(|e| ClientError::io(partial, e))?;
    Ok(have.saturating_sub(from))
}

/// Checks the size and SHA-256 of a complete file.
pub fn verify(path: &Path, expected: Expected<'_>) -> Result<(), ClientError> {
    let (bytes, sha256) = sha256_file(path)?;
    if bytes != expected.bytes {
        return Err(ClientError::Integrity {
            name: expected.name.to_owned(),
            message: format!("{bytes} bytes received, {} expected", expected.bytes),
        });
    }
    if !sha256.eq_ignore_ascii_case(expected.sha256) {
        return Err(ClientError::Integrity {
            name: expected.name.to_owned(),
            message: format!(
                "SHA-256 is {sha256}, the server promised {}",
                expected.sha256
            ),
        });
    }
    Ok(())
}

/// Length and lowercase hex SHA-256 of a file, read in blocks.
pub fn sha256_file(path: &Path) -> Result<(u64, String), ClientError> {
    let mut file = File::open(path).map_err(|e| ClientError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ClientError::io(path, e)),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((total, hex::encode(hasher.finalize())))
}

fn remove(path: &Path) -> Result<(), ClientError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ClientError::io(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_from_what_is_already_here() {
        assert_eq!(resume_plan(0, 10), ResumePlan::Fetch { from: 0 });
        assert_eq!(resume_plan(4, 10), ResumePlan::Fetch { from: 4 });
        assert_eq!(resume_plan(10, 10), ResumePlan::Complete);
        assert_eq!(resume_plan(11, 10), ResumePlan::Restart);
        assert_eq!(resume_plan(0, 0), ResumePlan::Complete);
    }

    #[test]
    fn ranged_answers_must_start_where_we_asked() {
        assert_eq!(range_start(200, 0, None), Ok(RangeStart::Truncate));
        assert_eq!(range_start(200, 500, None), Ok(RangeStart::Truncate));
        assert_eq!(
            range_start(206, 500, Some("bytes 500-999/1000")),
            Ok(RangeStart::Append)
        );
        assert!(range_start(206, 500, Some("bytes 0-999/1000")).is_err());
        assert!(range_start(206, 500, None).is_err());
        assert!(range_start(206, 500, Some("items 500-999/1000")).is_err());
        assert!(range_start(304, 0, None).is_err());
    }

    #[test]
    fn verification_checks_size_and_hash() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f.bin");
        std::fs::write(&path, b"abc").expect("write");
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let ok = Expected {
            name: "f.bin",
            bytes: 3,
            sha256: abc,
        };
        verify(&path, ok).expect("matches");
        let e = verify(&path, Expected { bytes: 4, ..ok }).expect_err("size");
        assert!(
            e.to_string().contains("3 bytes received, 4 expected"),
            "{e}"
        );
        let e = verify(
            &path,
            Expected {
                sha256: &"0".repeat(64),
                ..ok
            },
        )
        .expect_err("hash");
        assert!(matches!(e, ClientError::Integrity { .. }), "{e}");
        assert_eq!(partial_path(&path), dir.path().join("f.bin.partial"));
    }
}
