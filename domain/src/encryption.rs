//! Encrypted participation: the rules around a phase's evaluation key, with no
//! cryptography of their own.
//!
//! A phase may have an evaluation key: an [age](https://age-encryption.org/v1) X25519
//! recipient (`age1…`) whose private half only the phase's workers hold. A contributor who
//! wants to keep their weights from the server encrypts every checkpoint file to it
//! (`ascent-eval submit --encrypt`); the server stores and hashes the ciphertext (files
//! named `NAME.age`), and only a worker holding the key decrypts, in its private job
//! folder. The encryption itself is the `age` crate's, in the evaluator.
//!
//! What is checked here: the recipient's Bech32 encoding (HRP `age`, 32-byte key,
//! checksum), so a mistyped key is refused when the organizer saves it rather than
//! when the first contributor encrypts to it, and the file-name convention.

use thiserror::Error;

/// Suffix of an encrypted checkpoint file: `config.json.age`, `model.safetensors.age`.
pub const ENCRYPTED_SUFFIX: &str = ".age";

/// Length of an age X25519 recipient: `age1` + 52 data characters (32 bytes) + 6 checksum.
const RECIPIENT_LEN: usize = 62;
const BECH32_CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecipientError {
    #[error("an evaluation key is an age X25519 recipient: \"age1\" and 58 more characters (got {0} characters)")]
    Length(usize),
    #[error("an evaluation key starts with \"age1\" (an age X25519 recipient)")]
    Prefix,
    #[error("{0:?} is not a character of an age recipient (lowercase Bech32)")]
    Character(char),
    #[error("the evaluation key's checksum is wrong: it was mistyped or truncated")]
    Checksum,
}

/// Checks that `key` is a well-formed age X25519 recipient (`age1…`, Bech32 checksum).
pub fn check_recipient(key: &str) -> Result<(), RecipientError> {
    if key.len() != RECIPIENT_LEN {
        return Err(RecipientError::Length(key.chars().count()));
    }
    let Some(data) = key.strip_prefix("age1") else {
        return Err(RecipientError::Prefix);
    };
    let mut values = Vec::with_capacity(data.len());
    for c in data.chars() {
        let v = BECH32_CHARSET
            .iter()
            .position(|&b| char::from(b) == c)
            .ok_or(RecipientError::Character(c))?;
        values.push(v as u8);
    }
    if bech32_checksum_ok("age", &values) {
        Ok(())
    } else {
        Err(RecipientError::Checksum)
    }
}

/// BIP 173's checksum over the human-readable part and the data values (checksum
/// included): the polynomial residue must be 1.
fn bech32_checksum_ok(hrp: &str, values: &[u8]) -> bool {
    const GENERATOR: [u32; 5] = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
    let expanded = hrp
        .bytes()
        .map(|b| b >> 5)
        .chain(std::iter::once(0))
        .chain(hrp.bytes().map(|b| b & 31))
        .chain(values.iter().copied());
    let mut check: u32 = 1;
    for v in expanded {
        let top = check >> 25;
        check = ((check & 0x01ff_ffff) << 5) ^ u32::from(v);
        for (i, g) in GENERATOR.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                check ^= g;
            }
        }
    }
    check == 1
}

/// The checkpoint file an encrypted file decrypts to (`model.safetensors.age` →
/// `model.safetensors`), or `None` for a plain file.
pub fn plain_name(name: &str) -> Option<&str> {
    name.strip_suffix(ENCRYPTED_SUFFIX)
}

/// Bytes in an age file key.
pub const FILE_KEY_BYTES: usize = 16;

/// Parses an age file key written as hex (32 digits).
pub fn parse_file_key(hex_key: &str) -> Result<[u8; FILE_KEY_BYTES], String> {
    let mut key = [0u8; FILE_KEY_BYTES];
    hex::decode_to_slice(hex_key, &mut key)
        .map_err(|_| format!("a file key is {} hex digits", 2 * FILE_KEY_BYTES))?;
    Ok(key)
}

/// Whether a checkpoint's files are encrypted: `Some(true)` when every file is,
/// `Some(false)` when none is, `None` for a mix (refused: a checkpoint is encrypted whole).
pub fn all_encrypted<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<bool> {
    let mut seen: Option<bool> = None;
    for name in names {
        let encrypted = plain_name(name).is_some();
        match seen {
            Some(s) if s != encrypted => return None,
            _ => seen = Some(encrypted),
        }
    }
    Some(seen.unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Recipients printed by age-keygen (the reference implementation) and by rage.
    const GOOD: [&str; 2] = [
        "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",
        "age1lggyhqrw2nlhcxprm67z43rta597azn8gknawjehu9d9dl0jq3yqqvfafg",
    ];

    #[test]
    fn well_formed_recipients_pass() {
        for key in GOOD {
            assert_eq!(check_recipient(key), Ok(()), "{key}");
        }
    }

    #[test]
    fn a_changed_character_breaks_the_checksum() {
        let key = GOOD[0];
        for i in 4..key.len() {
            let mut bytes = key.as_bytes().to_vec();
            bytes[i] = if bytes[i] == b'q' { b'p' } else { b'q' };
            let changed = String::from_utf8(bytes).expect("ascii");
            assert_eq!(
                check_recipient(&changed),
                Err(RecipientError::Checksum),
                "{changed}"
            );
        }
    }

    #[test]
    fn other_shapes_are_refused_with_the_reason() {
        assert_eq!(check_recipient(""), Err(RecipientError::Length(0)));
        assert_eq!(
            check_recipient(&GOOD[0][..61]),
            Err(RecipientError::Length(61))
        );
        let wrong_prefix = format!("agf1{}", &GOOD[0][4..]);
        assert_eq!(check_recipient(&wrong_prefix), Err(RecipientError::Prefix));
        let upper = format!("age1{}B", &GOOD[0][4..61]);
        assert_eq!(check_recipient(&upper), Err(RecipientError::Character('B')));
        // An age secret key is never a recipient.
        assert!(check_recipient(
            "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX"
        )
        .is_err());
    }

    #[test]
    fn file_keys_are_sixteen_bytes_of_hex() {
        let key = parse_file_key("000102030405060708090a0b0c0d0e0f").expect("key");
        assert_eq!(key[15], 15);
        for bad in ["", "00", &"0".repeat(34), &"zz".repeat(16)] {
            assert!(parse_file_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn encrypted_names_and_whole_checkpoints() {
        assert_eq!(
            plain_name("model.safetensors.age"),
            Some("model.safetensors")
        );
        assert_eq!(plain_name("config.json"), None);
        assert_eq!(
            all_encrypted(["config.json.age", "model.safetensors.age"]),
            Some(true)
        );
        assert_eq!(
            all_encrypted(["config.json", "model.safetensors"]),
            Some(false)
        );
        assert_eq!(
            all_encrypted(["config.json", "model.safetensors.age"]),
            None
        );
    }
}
