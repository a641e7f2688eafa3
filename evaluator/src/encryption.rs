//! Encrypted checkpoints: a phase's evaluation key, and checkpoint files encrypted to it
//! with [age](https://age-encryption.org/v1) (X25519 recipients, the `age` crate; no
//! cryptography of our own).
//!
//! - The organizer makes the key pair once per phase on a worker machine
//!   (`ascent-eval evaluation-key FILE`), gives FILE (the private half) only to the
//!   phase's workers, and saves the printed recipient (`age1…`) as the phase's evaluation
//!   key.
//! - `ascent-eval submit --encrypt` encrypts each checkpoint file to that recipient
//!   (`NAME.age`) before it leaves the contributor's machine; the server stores, sizes and
//!   hashes ciphertext only.
//! - A worker started with `--evaluation-key FILE` decrypts in its own job folder (on
//!   its local disk, never the server's storage) and deletes the plaintext with the job.

use std::fs::File;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};

/// How far into a file its age header must end. A header for one X25519 recipient is
/// about 200 bytes; age itself reads a header of any length (and re-parses it line by
/// line), so a hostile file with a huge header would cost a worker memory and hours.
pub const MAX_HEADER_BYTES: usize = 64 << 10;

use age::secrecy::ExposeSecret;
use age::x25519::{Identity, Recipient};
use ascent_domain::encryption::{check_recipient, FILE_KEY_BYTES};

/// What went wrong with a key or an encrypted file.
#[derive(Debug, thiserror::Error)]
pub enum EncryptionError {
    /// Reading or writing a local file (ours, not the contributor's).
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    KeyFile { path: PathBuf, message: String },
    #[error("{0}")]
    Recipient(String),
    /// The file is an age file, but not for the key it should be encrypted to.
    #[error("{name}: not encrypted to the phase's evaluation key")]
    OtherKey { name: String },
    /// A file key given to open the file is not its key (the header's MAC fails).
    #[error("{name}: the file key given does not open it")]
    WrongFileKey { name: String },
    /// Not an age file, or one that was altered or cut short.
    #[error("{name}: not a whole age-encrypted file ({message})")]
    Corrupt { name: String, message: String },
    #[error("decryption cancelled")]
    Cancelled,
}

impl EncryptionError {
    fn io(path: &Path, source: std::io::Error) -> EncryptionError {
        EncryptionError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Whether the contributor's file is at fault (rather than this machine).
    pub fn is_contributors(&self) -> bool {
        matches!(
            self,
            EncryptionError::OtherKey { .. } | EncryptionError::Corrupt { .. }
        )
    }
}

/// The private half of an evaluation key, with its public recipient.
#[derive(Clone)]
pub struct EvaluationKey {
    identity: Identity,
    recipient: String,
}

impl std::fmt::Debug for EvaluationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EvaluationKey({})", self.recipient)
    }
}

impl EvaluationKey {
    pub fn generate() -> EvaluationKey {
        EvaluationKey::from_identity(Identity::generate())
    }

    fn from_identity(identity: Identity) -> EvaluationKey {
        let recipient = identity.to_public().to_string();
        EvaluationKey {
            identity,
            recipient,
        }
    }

    /// The public half (`age1…`): the phase's evaluation key.
    pub fn recipient(&self) -> &str {
        &self.recipient
    }

    /// Writes a new key to `path` (which must not exist), readable by its owner only, in
    /// age-keygen's format; returns it.
    pub fn create(path: &Path) -> Result<EvaluationKey, EncryptionError> {
        let key = EvaluationKey::generate();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(path)
            .map_err(|e| EncryptionError::io(path, e))?;
        let text = format!(
            "# An Ascent phase evaluation key (age X25519). Keep it on the phase's workers only.\n\
             # public key: {}\n{}\n",
            key.recipient,
            key.identity.to_string().expose_secret()
        );
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| EncryptionError::io(path, e))?;
        Ok(key)
    }

    /// Reads the keys in an age identity file (`AGE-SECRET-KEY-1…` lines; `#` comments
    /// and blank lines are skipped).
    pub fn load(path: &Path) -> Result<Vec<EvaluationKey>, EncryptionError> {
        let text = std::fs::read_to_string(path).map_err(|e| EncryptionError::io(path, e))?;
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let identity = Identity::from_str(line).map_err(|e| EncryptionError::KeyFile {
                path: path.to_path_buf(),
                message: format!("line {}: not an age X25519 secret key ({e})", n + 1),
            })?;
            keys.push(EvaluationKey::from_identity(identity));
        }
        if keys.is_empty() {
            return Err(EncryptionError::KeyFile {
                path: path.to_path_buf(),
                message: "no AGE-SECRET-KEY-1… line: make one with `ascent-eval evaluation-key`"
                    .into(),
            });
        }
        Ok(keys)
    }
}

/// Parses a phase's evaluation key.
pub fn parse_recipient(key: &str) -> Result<Recipient, EncryptionError> {
    check_recipient(key).map_err(|e| EncryptionError::Recipient(e.to_string()))?;
    Recipient::from_str(key).map_err(|e| EncryptionError::Recipient(format!("{key}: {e}")))
}

/// Encrypts `src` to `recipient` into `dst`, through a temporary file beside it so a
/// broken run never leaves a truncated `dst`.
pub fn encrypt_file(src: &Path, dst: &Path, recipient: &Recipient) -> Result<(), EncryptionError> {
    let partial = dst.with_extension("partial");
    let result = (|| {
        let mut input = BufReader::new(File::open(src).map_err(|e| EncryptionError::io(src, e))?);
        let output = File::create(&partial).map_err(|e| EncryptionError::io(&partial, e))?;
        let encryptor =
            age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient))
                .map_err(|e| EncryptionError::Recipient(e.to_string()))?;
        let mut writer = encryptor
            .wrap_output(BufWriter::new(output))
            .map_err(|e| EncryptionError::io(&partial, e))?;
        copy(&mut input, &mut writer, &partial, None, |e| {
            EncryptionError::io(src, e)
        })?;
        let output = writer
            .finish()
            .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
            .map_err(|e| EncryptionError::io(&partial, e))?;
        output
            .sync_all()
            .map_err(|e| EncryptionError::io(&partial, e))?;
        std::fs::rename(&partial, dst).map_err(|e| EncryptionError::io(dst, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// Decrypts `src` (the contributor's file `name`) into `dst` with `key`. A file for
/// another key, or one that is not a whole age file, is the contributor's fault; disk
/// trouble is ours. `dst` is removed on failure, and on `cancel` (checked every MiB).
pub fn decrypt_file(
    src: &Path,
    dst: &Path,
    name: &str,
    key: &EvaluationKey,
    cancel: Option<&AtomicBool>,
) -> Result<(), EncryptionError> {
    decrypt_with(src, dst, name, &key.identity, cancel, false)
}

/// Decrypts `src` into `dst` with its age file key alone, as revealed when a promoted
/// checkpoint is opened. A wrong key fails the header's MAC (`WrongFileKey`), and every
/// chunk of the payload is authenticated (`Corrupt` if one was altered), so what comes
/// out is exactly what was encrypted.
pub fn open_file(
    src: &Path,
    dst: &Path,
    name: &str,
    file_key: &[u8; FILE_KEY_BYTES],
) -> Result<(), EncryptionError> {
    decrypt_with(src, dst, name, &KnownFileKey(*file_key), None, true)
}

/// Unwraps the age file key of the file `name` from its header (the file's first bytes,
/// through the payload nonce) with an evaluation key: what [`open_file`] needs, so a key
/// holder can let a promoted checkpoint be opened without giving away the evaluation key.
pub fn unwrap_file_key(
    header: &[u8],
    name: &str,
    key: &EvaluationKey,
) -> Result<[u8; FILE_KEY_BYTES], EncryptionError> {
    let corrupt = |message: String| EncryptionError::Corrupt {
        name: name.to_owned(),
        message,
    };
    if header.len() > MAX_HEADER_BYTES + NONCE_BYTES {
        return Err(corrupt("the header is longer than 64 KiB".into()));
    }
    let decryptor = age::Decryptor::new_buffered(header).map_err(|e| corrupt(e.to_string()))?;
    let recording = Recording {
        identity: &key.identity,
        file_key: std::sync::Mutex::new(None),
    };
    // Decrypting checks the header's MAC with the unwrapped key; the payload is not read.
    decryptor
        .decrypt(std::iter::once(&recording as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => EncryptionError::OtherKey {
                name: name.to_owned(),
            },
            e => corrupt(e.to_string()),
        })?;
    let found = recording
        .file_key
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    found.ok_or_else(|| EncryptionError::OtherKey {
        name: name.to_owned(),
    })
}

/// Bytes of the payload nonce that follows an age header.
pub const NONCE_BYTES: usize = 16;

/// How many of `head` (a file's first bytes) a key holder needs for
/// [`unwrap_file_key`]: through the header's MAC line and the payload nonce; `None` if
/// the header does not end there.
pub fn header_len(head: &[u8]) -> Option<usize> {
    let mac = head.windows(5).position(|w| w == b"\n--- ")?;
    let end = mac + 1 + head[mac + 1..].iter().position(|&b| b == b'\n')? + 1;
    (end + NONCE_BYTES <= head.len()).then_some(end + NONCE_BYTES)
}

/// An identity that holds one file key and offers it for any stanza.
struct KnownFileKey([u8; FILE_KEY_BYTES]);

impl age::Identity for KnownFileKey {
    fn unwrap_stanza(
        &self,
        _: &age_core::format::Stanza,
    ) -> Option<Result<age_core::format::FileKey, age::DecryptError>> {
        Some(Ok(age_core::format::FileKey::new(Box::new(self.0))))
    }
}

/// An evaluation key that remembers the file key it unwrapped.
struct Recording<'a> {
    identity: &'a Identity,
    file_key: std::sync::Mutex<Option<[u8; FILE_KEY_BYTES]>>,
}

impl age::Identity for Recording<'_> {
    fn unwrap_stanza(
        &self,
        stanza: &age_core::format::Stanza,
    ) -> Option<Result<age_core::format::FileKey, age::DecryptError>> {
        let unwrapped = self.identity.unwrap_stanza(stanza)?;
        if let Ok(key) = &unwrapped {
            let mut slot = self
                .file_key
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *slot = Some(*key.expose_secret());
        }
        Some(unwrapped)
    }
}

fn decrypt_with(
    src: &Path,
    dst: &Path,
    name: &str,
    identity: &dyn age::Identity,
    cancel: Option<&AtomicBool>,
    by_file_key: bool,
) -> Result<(), EncryptionError> {
    let corrupt = |message: String| EncryptionError::Corrupt {
        name: name.to_owned(),
        message,
    };
    let result = (|| {
        check_header(src, name)?;
        let input = BufReader::new(File::open(src).map_err(|e| EncryptionError::io(src, e))?);
        let decryptor = age::Decryptor::new_buffered(input).map_err(|e| match e {
            age::DecryptError::Io(e) if e.kind() != ErrorKind::UnexpectedEof => {
                EncryptionError::io(src, e)
            }
            e => corrupt(e.to_string()),
        })?;
        let mut reader = decryptor
            .decrypt(std::iter::once(identity))
            .map_err(|e| match e {
                age::DecryptError::NoMatchingKeys => EncryptionError::OtherKey {
                    name: name.to_owned(),
                },
                age::DecryptError::InvalidMac if by_file_key => EncryptionError::WrongFileKey {
                    name: name.to_owned(),
                },
                e => corrupt(e.to_string()),
            })?;
        let mut output =
            BufWriter::new(File::create(dst).map_err(|e| EncryptionError::io(dst, e))?);
        // The stream reader reports a changed or cut chunk as InvalidData/UnexpectedEof.
        copy(&mut reader, &mut output, dst, cancel, |e| match e.kind() {
            ErrorKind::InvalidData | ErrorKind::UnexpectedEof => corrupt(e.to_string()),
            _ => EncryptionError::io(src, e),
        })?;
        output
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|f| f.sync_all())
            .map_err(|e| EncryptionError::io(dst, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(dst);
    }
    result
}

/// Refuses, before age parses anything, a file that does not start with age's version
/// line or whose header does not end (`\n--- `) within [`MAX_HEADER_BYTES`].
fn check_header(src: &Path, name: &str) -> Result<(), EncryptionError> {
    let file = File::open(src).map_err(|e| EncryptionError::io(src, e))?;
    let mut head = Vec::with_capacity(MAX_HEADER_BYTES);
    file.take(MAX_HEADER_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(|e| EncryptionError::io(src, e))?;
    let corrupt = |message: &str| EncryptionError::Corrupt {
        name: name.to_owned(),
        message: message.to_owned(),
    };
    if !head.starts_with(b"age-encryption.org/v1\n") {
        return Err(corrupt("it does not start with age's version line"));
    }
    if !head.windows(5).any(|w| w == b"\n--- ") {
        return Err(corrupt("its header does not end within the first 64 KiB"));
    }
    Ok(())
}

/// Copies `input` to `output`, telling read errors (mapped by `on_read`) from write
/// errors (on `output_path`); stops when `cancel` is set.
fn copy(
    input: &mut dyn Read,
    output: &mut dyn Write,
    output_path: &Path,
    cancel: Option<&AtomicBool>,
    on_read: impl Fn(std::io::Error) -> EncryptionError,
) -> Result<(), EncryptionError> {
    let mut buf = vec![0u8; 1 << 20];
    loop {
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(EncryptionError::Cancelled);
        }
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(on_read(e)),
        };
        output
            .write_all(&buf[..n])
            .map_err(|e| EncryptionError::io(output_path, e))?;
    }
    output
        .flush()
        .map_err(|e| EncryptionError::io(output_path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, bytes: &[u8]) {
        std::fs::write(path, bytes).expect("write");
    }

    #[test]
    fn a_file_round_trips_and_the_ciphertext_hides_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = EvaluationKey::generate();
        let plain: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        write(&dir.path().join("model.safetensors"), &plain);
        let recipient = parse_recipient(key.recipient()).expect("recipient");
        let sealed = dir.path().join("model.safetensors.age");
        encrypt_file(&dir.path().join("model.safetensors"), &sealed, &recipient).expect("encrypt");
        let ciphertext = std::fs::read(&sealed).expect("read");
        assert!(ciphertext.starts_with(b"age-encryption.org/v1\n"));
        assert!(!ciphertext.windows(64).any(|w| w == &plain[1000..1064]));
        let out = dir.path().join("out");
        decrypt_file(&sealed, &out, "model.safetensors.age", &key, None).expect("decrypt");
        assert_eq!(std::fs::read(&out).expect("read"), plain);
    }

    #[test]
    fn a_file_key_unwrapped_from_the_header_alone_opens_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (key, stranger) = (EvaluationKey::generate(), EvaluationKey::generate());
        let plain: Vec<u8> = (0..200_000u32).map(|i| (i % 241) as u8).collect();
        write(&dir.path().join("model.safetensors"), &plain);
        let sealed = dir.path().join("model.safetensors.age");
        let recipient = parse_recipient(key.recipient()).expect("recipient");
        encrypt_file(&dir.path().join("model.safetensors"), &sealed, &recipient).expect("encrypt");
        let bytes = std::fs::read(&sealed).expect("read");
        let len = header_len(&bytes[..4096]).expect("the header ends early");
        assert!(
            len < 1024,
            "one recipient and age's random grease stanza: {len}"
        );
        assert_eq!(
            header_len(&bytes[..len - 1]),
            None,
            "the nonce is part of it"
        );

        let header = &bytes[..len];
        let file_key = unwrap_file_key(header, "model.safetensors.age", &key).expect("unwrap");
        let e = unwrap_file_key(header, "model.safetensors.age", &stranger).expect_err("other");
        assert!(matches!(e, EncryptionError::OtherKey { .. }), "{e}");
        let e = unwrap_file_key(&bytes[..len - 20], "m.age", &key).expect_err("cut short");
        assert!(matches!(e, EncryptionError::Corrupt { .. }), "{e}");

        let out = dir.path().join("opened");
        open_file(&sealed, &out, "model.safetensors.age", &file_key).expect("open");
        assert_eq!(std::fs::read(&out).expect("read"), plain);

        // Any other key fails the header's MAC.
        let mut wrong = file_key;
        wrong[0] ^= 1;
        let e = open_file(&sealed, &out, "model.safetensors.age", &wrong).expect_err("wrong");
        assert!(matches!(e, EncryptionError::WrongFileKey { .. }), "{e}");
        // With the right key, an altered payload chunk is caught and nothing is kept.
        let mut altered = bytes.clone();
        altered[len + 1000] ^= 1;
        write(&sealed, &altered);
        let e = open_file(&sealed, &out, "model.safetensors.age", &file_key).expect_err("altered");
        assert!(matches!(e, EncryptionError::Corrupt { .. }), "{e}");
        assert!(!out.exists(), "no partial plaintext is left behind");
    }

    #[test]
    fn another_key_or_an_altered_file_is_the_contributors_fault() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (ours, theirs) = (EvaluationKey::generate(), EvaluationKey::generate());
        write(&dir.path().join("config.json"), &[b'x'; 200_000]);
        let sealed = dir.path().join("config.json.age");
        let recipient = parse_recipient(theirs.recipient()).expect("recipient");
        encrypt_file(&dir.path().join("config.json"), &sealed, &recipient).expect("encrypt");
        let out = dir.path().join("out");
        let e = decrypt_file(&sealed, &out, "config.json.age", &ours, None).expect_err("other key");
        assert!(matches!(e, EncryptionError::OtherKey { .. }), "{e}");
        assert!(e.is_contributors());
        assert!(!out.exists());

        let mut bytes = std::fs::read(&sealed).expect("read");
        let last = bytes.len() - 10;
        bytes[last] ^= 1;
        write(&sealed, &bytes);
        let e = decrypt_file(&sealed, &out, "config.json.age", &theirs, None).expect_err("altered");
        assert!(matches!(e, EncryptionError::Corrupt { .. }), "{e}");
        assert!(!out.exists(), "no partial plaintext is left behind");

        // A header that never ends is refused before age reads it.
        let mut endless = b"age-encryption.org/v1\n-> X25519 abc\n".to_vec();
        endless.extend(std::iter::repeat_n(b"QUJD\n".as_slice(), 20_000).flatten());
        write(&sealed, &endless);
        let e = decrypt_file(&sealed, &out, "config.json.age", &theirs, None).expect_err("long");
        assert!(e.to_string().contains("header does not end within"), "{e}");
        assert!(e.is_contributors());

        // Cancelled: nothing is left behind.
        encrypt_file(&dir.path().join("config.json"), &sealed, &recipient).expect("encrypt");
        let stop = AtomicBool::new(true);
        let e = decrypt_file(&sealed, &out, "config.json.age", &theirs, Some(&stop))
            .expect_err("cancelled");
        assert!(matches!(e, EncryptionError::Cancelled), "{e}");
        assert!(!out.exists());

        write(&sealed, b"{\"not\": \"age\"}");
        let e = decrypt_file(&sealed, &out, "config.json.age", &theirs, None).expect_err("plain");
        assert!(
            e.to_string()
                .starts_with("config.json.age: not a whole age-encrypted file"),
            "{e}"
        );
    }

    #[test]
    fn key_files_are_private_and_load_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("phase-1.key");
        let key = EvaluationKey::create(&path).expect("create");
        assert!(ascent_domain::encryption::check_recipient(key.recipient()).is_ok());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let loaded = EvaluationKey::load(&path).expect("load");
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].recipient(), key.recipient());
        assert!(
            EvaluationKey::create(&path).is_err(),
            "never overwrites a key"
        );

        write(&path, b"# nothing here\n");
        assert!(EvaluationKey::load(&path).is_err());
        write(&path, key.recipient().as_bytes());
        let e = EvaluationKey::load(&path).expect_err("a public key is not a secret key");
        assert!(e.to_string().contains("line 1"), "{e}");
    }

    #[test]
    fn the_domain_check_agrees_with_age() {
        for _ in 0..50 {
            let key = EvaluationKey::generate();
            assert_eq!(check_recipient(key.recipient()), Ok(()));
        }
        assert!(parse_recipient("age1notakey").is_err());
    }
}
