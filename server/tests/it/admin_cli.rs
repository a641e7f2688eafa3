//! The `ascent admin` commands as an organizer runs them: the real binary, a fresh
//! data directory, real preset files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

struct DataDir(PathBuf);

impl DataDir {
    fn new(name: &str) -> DataDir {
        let dir = std::env::temp_dir().join(format!("ascent-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        DataDir(dir)
    }

    fn ascent(&self, args: &[&str], password: Option<&str>) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ascent"));
        command
            .args(args)
            .env("ASCENT_DATA_DIR", &self.0)
            .env("RUST_LOG", "warn");
        match password {
            Some(p) => command.env("ASCENT_ORGANIZER_PASSWORD", p),
            None => command.env_remove("ASCENT_ORGANIZER_PASSWORD"),
        };
        command.output().expect("the ascent binary runs")
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn presets_load_once_and_bad_ones_name_their_field() {
    let data = DataDir::new("presets");
    let demo = workspace().join("presets/demo.toml");
    let demo = demo.to_str().expect("utf-8 path");

    let first = data.ascent(&["admin", "phases", "load", demo], None);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(text(&first.stdout).contains("loaded the 7 phases of preset \"demo\""));
    let again = data.ascent(&["admin", "phases", "load", demo], None);
    assert!(again.status.success());
    assert!(
        text(&again.stdout).contains("already loaded"),
        "a second run reuses what exists"
    );

    let bad = data.0.join("bad.toml");
    let original =
        std::fs::read_to_string(workspace().join("presets/real.toml")).expect("real preset");
    std::fs::write(
        &bad,
        original.replacen("vocab_size = 128256", "vocab_size = 1", 3),
    )
    .expect("write");
    let refused = data.ascent(
        &["admin", "phases", "check", bad.to_str().expect("utf-8")],
        None,
    );
    assert!(!refused.status.success());
    let message = text(&refused.stderr);
    assert!(message.contains("phase[1].model.vocab_size"), "{message}");

    let real = workspace().join("presets/real.toml");
    let checked = data.ascent(
        &["admin", "phases", "check", real.to_str().expect("utf-8")],
        None,
    );
    assert!(checked.status.success(), "{}", text(&checked.stderr));
}

#[test]
fn create_organizer_bootstraps_and_refuses_weak_passwords() {
    let data = DataDir::new("organizer");
    let weak = data.ascent(
        &["admin", "create-organizer", "boss@example.org"],
        Some("short"),
    );
    assert!(!weak.status.success());
    assert!(
        text(&weak.stderr).contains("at least 10 characters"),
        "{}",
        text(&weak.stderr)
    );

    let created = data.ascent(
        &["admin", "create-organizer", "boss@example.org"],
        Some("a long enough password"),
    );
    assert!(created.status.success(), "{}", text(&created.stderr));
    assert!(text(&created.stdout).contains("created organizer boss@example.org (boss)"));

    let again = data.ascent(
        &["admin", "create-organizer", "boss@example.org"],
        Some("a long enough password"),
    );
    assert!(again.status.success());
    assert!(text(&again.stdout).contains("now an organizer"));
}
