//! Token shards: the held-out data format.
//!
//! A shard is 256 little-endian `i32` header words — `[0]` the magic 20240520, `[1]` the
//! version (1: tokens are `u16`, 2: tokens are `u32`), `[2]` the token count — followed
//! by exactly that many little-endian tokens. A file shorter than declared is truncated,
//! one longer has bytes after the declared count; both are refused, as is any token not
//! below the model's vocabulary size.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{EvalError, Result};
use crate::mapped::{map_file, Mmap};

/// The first header word of every token shard.
pub const MAGIC: i32 = 20240520;
/// Header size in bytes: 256 `i32` words.
pub const HEADER_BYTES: usize = 256 * 4;

/// A validated, memory-mapped token shard.
pub struct TokenShard {
    path: PathBuf,
    map: Mmap,
    width: usize,
    len: usize,
}

impl std::fmt::Debug for TokenShard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenShard")
            .field("path", &self.path)
            .field("width", &self.width)
            .field("len", &self.len)
            .finish()
    }
}

impl TokenShard {
    /// Opens `path` and validates its header and length (not yet the token values; see
    /// [`TokenShard::check_vocab`]).
    pub fn open(path: &Path) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(|e| EvalError::io(path, e))?;
        if !meta.is_file() {
            return Err(EvalError::ShardLength {
                path: path.to_owned(),
                message: "not a regular file".into(),
            });
        }
        if meta.len() < HEADER_BYTES as u64 {
            return Err(EvalError::Truncated {
                path: path.to_owned(),
                message: format!(
                    "{} bytes is shorter than the {HEADER_BYTES}-byte token shard header",
                    meta.len()
                ),
            });
        }
        let map = map_file(path)?;
        let word = |i: usize| {
            let b = &map[i * 4..i * 4 + 4];
            i32::from_le_bytes([b[0], b[1], b[2], b[3]])
        };
        if word(0) != MAGIC {
            return Err(EvalError::BadMagic {
                path: path.to_owned(),
                found: word(0),
            });
        }
        let width = match word(1) {
            1 => 2,
            2 => 4,
            found => {
                return Err(EvalError::BadVersion {
                    path: path.to_owned(),
                    found,
                })
            }
        };
        let declared = word(2);
        let Ok(count) = usize::try_from(declared) else {
            return Err(EvalError::ShardLength {
                path: path.to_owned(),
                message: format!("negative token count {declared} in the header"),
            });
        };
        // Cannot overflow: count < 2^31 and width ≤ 4.
        let expected = HEADER_BYTES as u64 + (count * width) as u64;
        let actual = map.len() as u64;
        if actual < expected {
            return Err(EvalError::Truncated {
                path: path.to_owned(),
                message: format!(
                    "header declares {count} tokens ({expected} bytes in all) but the file has {actual} bytes"
                ),
            });
        }
        if actual > expected {
            return Err(EvalError::ShardLength {
                path: path.to_owned(),
                message: format!(
                    "{} bytes after the {count} tokens the header declares",
                    actual - expected
                ),
            });
        }
        Ok(TokenShard {
            path: path.to_owned(),
            map,
            width,
            len: count,
        })
    }

    /// The file this shard was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the shard holds no tokens.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes per token (2 or 4).
    pub fn token_width(&self) -> usize {
        self.width
    }

    /// Refuses the shard unless every token is below `vocab_size`.
    pub fn check_vocab(&self, vocab_size: usize) -> Result<()> {
        let data = &self.map[HEADER_BYTES..];
        let position = match self.width {
            2 => data
                .chunks_exact(2)
                .position(|c| usize::from(u16::from_le_bytes([c[0], c[1]])) >= vocab_size),
            _ => data
                .chunks_exact(4)
                .position(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize >= vocab_size),
        };
        match position {
            None => Ok(()),
            Some(position) => Err(EvalError::TokenOutOfRange {
                path: self.path.clone(),
                position: position as u64,
                token: self.token(position),
                vocab_size: u32::try_from(vocab_size).unwrap_or(u32::MAX),
            }),
        }
    }

    /// The token at `index`. Panics if out of range, like slice indexing; callers index
    /// only below [`TokenShard::len`].
    pub fn token(&self, index: usize) -> u32 {
        let at = HEADER_BYTES + index * self.width;
        let b = &self.map[at..at + self.width];
        match self.width {
            2 => u32::from(u16::from_le_bytes([b[0], b[1]])),
            _ => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        }
    }

    /// Appends tokens `start..start + len` to `out`.
    pub fn extend_window(&self, start: usize, len: usize, out: &mut Vec<u32>) {
        out.extend((start..start + len).map(|i| self.token(i)));
    }

    /// SHA-256 of the whole file, header included.
    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(&self.map[..]))
    }
}

/// Writes a token shard; used by tests and fixture tools. `u32_tokens` picks version 2.
pub fn encode(tokens: &[u32], u32_tokens: bool) -> Result<Vec<u8>> {
    let count = i32::try_from(tokens.len())
        .map_err(|_| EvalError::Internal("too many tokens for one shard".into()))?;
    let mut header = [0i32; 256];
    header[0] = MAGIC;
    header[1] = if u32_tokens { 2 } else { 1 };
    header[2] = count;
    let mut out: Vec<u8> = header.iter().flat_map(|w| w.to_le_bytes()).collect();
    for &t in tokens {
        if u32_tokens {
            out.extend_from_slice(&t.to_le_bytes());
        } else {
            let t = u16::try_from(t)
                .map_err(|_| EvalError::Internal(format!("token {t} does not fit u16")))?;
            out.extend_from_slice(&t.to_le_bytes());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("data.bin");
        std::fs::write(&path, bytes).expect("write");
        (dir, path)
    }

    #[test]
    fn round_trips_u16_and_u32() {
        for wide in [false, true] {
            let tokens: Vec<u32> = (0..100).map(|i| i * 7 % 300).collect();
            let (_d, p) = write(&encode(&tokens, wide).expect("encode"));
            let shard = TokenShard::open(&p).expect("valid");
            assert_eq!(shard.len(), 100);
            assert_eq!(shard.token_width(), if wide { 4 } else { 2 });
            let mut w = Vec::new();
            shard.extend_window(10, 5, &mut w);
            assert_eq!(w, tokens[10..15]);
            shard.check_vocab(300).expect("in range");
            assert!(matches!(
                shard.check_vocab(294),
                Err(EvalError::TokenOutOfRange {
                    token: 294,
                    position: 42,
                    ..
                })
            ));
        }
    }

    #[test]
    fn malformed_shards_are_refused() {
        let good = encode(&[1, 2, 3, 4], false).expect("encode");
        let mut bad_magic = good.clone();
        bad_magic[0] ^= 1;
        assert!(matches!(
            TokenShard::open(&write(&bad_magic).1),
            Err(EvalError::BadMagic { .. })
        ));
        let mut bad_version = good.clone();
        bad_version[4] = 3;
        assert!(matches!(
            TokenShard::open(&write(&bad_version).1),
            Err(EvalError::BadVersion { found: 3, .. })
        ));
        let (_d, p) = write(&good[..good.len() - 1]);
        assert!(matches!(
            TokenShard::open(&p),
            Err(EvalError::Truncated { .. })
        ));
        let mut trailing = good.clone();
        trailing.extend_from_slice(&[0, 0]);
        let (_d, p) = write(&trailing);
        let err = TokenShard::open(&p).expect_err("trailing bytes");
        assert!(
            err.to_string().contains("2 bytes after the 4 tokens"),
            "{err}"
        );
        let (_d, p) = write(&good[..100]);
        assert!(matches!(
            TokenShard::open(&p),
            Err(EvalError::Truncated { .. })
        ));
        let mut negative = good;
        negative[8..12].copy_from_slice(&(-1i32).to_le_bytes());
        assert!(matches!(
            TokenShard::open(&write(&negative).1),
            Err(EvalError::ShardLength { .. })
        ));
    }
}
