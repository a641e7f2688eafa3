//! What `ascent-eval submit` sends from a directory, its fingerprint, and the refusals
//! that happen before anything is sent: real files in temporary directories, no server.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use ascent_evaluator::submit::{checkpoint_files, fingerprint, SubmitError};
use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_ascent-eval");

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn copy_fixture(name: &str) -> (TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join(name);
    std::fs::create_dir(&dir).expect("mkdir");
    for entry in std::fs::read_dir(fixtures().join(name)).expect("fixture") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), dir.join(entry.file_name())).expect("copy");
    }
    (tmp, dir)
}

fn names(dir: &Path) -> Vec<String> {
    checkpoint_files(dir)
        .expect("a valid checkpoint")
        .into_iter()
        .map(|f| f.name)
        .collect()
}

#[test]
fn a_single_file_checkpoint_sends_config_and_weights_only() {
    let (_tmp, dir) = copy_fixture("mha");
    std::fs::write(dir.join("tokenizer.json"), "{}").expect("write");
    std::fs::write(dir.join("README.md"), "hi").expect("write");
    assert_eq!(names(&dir), ["config.json", "model.safetensors"]);
    let files = checkpoint_files(&dir).expect("valid");
    let size = std::fs::metadata(dir.join("model.safetensors"))
        .expect("meta")
        .len();
    assert_eq!(files[1].bytes, size);
    assert_eq!(files[1].path, dir.join("model.safetensors"));
}

#[test]
fn a_sharded_checkpoint_sends_the_index_and_every_shard_it_names() {
    let (_tmp, dir) = copy_fixture("trained_sharded");
    let listed = names(&dir);
    assert_eq!(listed.len(), 2 + 9, "{listed:?}");
    assert_eq!(listed[..2], ["config.json", "model.safetensors.index.json"]);
    assert_eq!(listed[2], "model-00001-of-00009.safetensors");
    assert_eq!(listed[10], "model-00009-of-00009.safetensors");
}

#[test]
fn the_fingerprint_follows_names_sizes_and_times() {
    let (_tmp, dir) = copy_fixture("mha");
    let first = fingerprint(&checkpoint_files(&dir).expect("valid"));
    assert_eq!(first.len(), 64);
    assert_eq!(
        first,
        fingerprint(&checkpoint_files(&dir).expect("valid")),
        "stable"
    );

    let config = dir.join("config.json");
    let later = SystemTime::now() + Duration::from_secs(60);
    let file = std::fs::File::options()
        .write(true)
        .open(&config)
        .expect("open");
    file.set_modified(later).expect("touch");
    let touched = fingerprint(&checkpoint_files(&dir).expect("valid"));
    assert_ne!(first, touched, "a touched file is another upload");

    let (_tmp2, other) = copy_fixture("tied");
    assert_ne!(
        first,
        fingerprint(&checkpoint_files(&other).expect("valid"))
    );
}

#[test]
fn pickles_and_broken_directories_are_refused_before_anything_is_sent() {
    let (_tmp, dir) = copy_fixture("mha");
    std::fs::write(dir.join("pytorch_model.bin"), b"\x80\x02pickle").expect("write");
    let e = checkpoint_files(&dir).expect_err("pickle");
    assert!(matches!(e, SubmitError::Invalid(_)), "{e}");
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("pytorch_model.bin"), "{e}");
    assert!(e.to_string().contains("pickle"), "{e}");

    let (_tmp, dir) = copy_fixture("mha");
    std::fs::remove_file(dir.join("model.safetensors")).expect("rm");
    let e = checkpoint_files(&dir).expect_err("no weights");
    assert!(e.to_string().contains("no weights"), "{e}");

    let e = checkpoint_files(Path::new("/nonexistent/ascent")).expect_err("no dir");
    assert_eq!(e.exit_code(), 2);
}

#[test]
fn the_submit_command_refuses_a_pickle_with_exit_2_without_a_server() {
    let (_tmp, dir) = copy_fixture("mha");
    std::fs::write(dir.join("model.pt"), b"\x80\x02").expect("write");
    // Nothing listens on port 9 (discard); the refusal must come before any request.
    let out = Command::new(BIN)
        .args(["submit", "--server", "http://127.0.0.1:9", "--phase", "1"])
        .arg(&dir)
        .env("ASCENT_TOKEN", "asc_test")
        .output()
        .expect("run ascent-eval");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("model.pt") && stderr.contains("pickle"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn the_submit_command_needs_a_token_and_a_usable_server() {
    let (_tmp, dir) = copy_fixture("mha");
    let out = Command::new(BIN)
        .args([
            "submit",
            "--server",
            "ascent.example",
            "--phase",
            "1",
            "--token",
            "asc_x",
        ])
        .arg(&dir)
        .output()
        .expect("run ascent-eval");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("http://"));

    let out = Command::new(BIN)
        .args(["submit", "--server", "http://127.0.0.1:9", "--phase", "1"])
        .arg(&dir)
        .env_remove("ASCENT_TOKEN")
        .output()
        .expect("run ascent-eval");
    assert_eq!(
        out.status.code(),
        Some(2),
        "a missing token is a usage error"
    );
}
