//! Safetensors files and shard indexes, validated before anything is allocated from them.
//!
//! The format is an 8-byte little-endian header length, a JSON header mapping tensor
//! names to `{dtype, shape, data_offsets}`, then the data section. This module parses the
//! header itself rather than trusting a library: the length is bounded, the JSON is
//! strict (duplicate keys refused, see [`crate::json`]), every entry's byte size must
//! equal its dtype size times its element count, and the tensors must tile the data
//! section exactly — in bounds, no overlap, no gap, nothing after the last one. An index
//! (`model.safetensors.index.json`) may only name plain `.safetensors` files inside the
//! checkpoint directory. Pickle files are recognised by name and by magic bytes and are
//! refused; they are never opened as pickle.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{EvalError, Result};

/// Largest header accepted. Real headers take ~150 bytes per tensor, so this allows
/// hundreds of thousands of tensors while keeping a hostile header's parse tree small.
pub const MAX_HEADER_BYTES: u64 = 32 << 20;

/// Largest rank accepted for a tensor; Llama weights have rank 1 or 2.
const MAX_RANK: usize = 8;

/// The element types the safetensors format defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    Bool,
    U8,
    I8,
    F8E5M2,
    F8E4M3,
    I16,
    U16,
    F16,
    BF16,
    I32,
    U32,
    F32,
    I64,
    U64,
    F64,
}

impl Dtype {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "BOOL" => Dtype::Bool,
            "U8" => Dtype::U8,
            "I8" => Dtype::I8,
            "F8_E5M2" => Dtype::F8E5M2,
            "F8_E4M3" => Dtype::F8E4M3,
            "I16" => Dtype::I16,
            "U16" => Dtype::U16,
            "F16" => Dtype::F16,
            "BF16" => Dtype::BF16,
            "I32" => Dtype::I32,
            "U32" => Dtype::U32,
            "F32" => Dtype::F32,
            "I64" => Dtype::I64,
            "U64" => Dtype::U64,
            "F64" => Dtype::F64,
            _ => return None,
        })
    }

    /// The name as it is spelled in a safetensors header.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::Bool => "BOOL",
            Dtype::U8 => "U8",
            Dtype::I8 => "I8",
            Dtype::F8E5M2 => "F8_E5M2",
            Dtype::F8E4M3 => "F8_E4M3",
            Dtype::I16 => "I16",
            Dtype::U16 => "U16",
            Dtype::F16 => "F16",
            Dtype::BF16 => "BF16",
            Dtype::I32 => "I32",
            Dtype::U32 => "U32",
            Dtype::F32 => "F32",
            Dtype::I64 => "I64",
            Dtype::U64 => "U64",
            Dtype::F64 => "F64",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> u64 {
        match self {
            Dtype::Bool | Dtype::U8 | Dtype::I8 | Dtype::F8E5M2 | Dtype::F8E4M3 => 1,
            Dtype::I16 | Dtype::U16 | Dtype::F16 | Dtype::BF16 => 2,
            Dtype::I32 | Dtype::U32 | Dtype::F32 => 4,
            Dtype::I64 | Dtype::U64 | Dtype::F64 => 8,
        }
    }
}

/// One validated tensor entry; offsets are relative to the start of the data section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub start: usize,
    pub end: usize,
}

/// A validated safetensors header.
#[derive(Debug, Clone)]
pub struct Header {
    /// Tensors in data-section order.
    pub tensors: Vec<TensorInfo>,
    /// Byte offset of the data section in the file (8 + header length).
    pub data_start: usize,
}

/// Whether a file name is one of the pickle-based checkpoint formats we refuse.
pub fn is_pickle_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"]
        .iter()
        .any(|ext| lower.ends_with(ext))
}

/// Whether bytes look like a torch.save zip archive or a raw pickle stream.
fn looks_like_pickle(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04")
        || (bytes.len() >= 2 && bytes[0] == 0x80 && (2..=5).contains(&bytes[1]))
}

/// Parses and validates the header of a whole safetensors file given as bytes.
pub fn parse_header(path: &Path, bytes: &[u8]) -> Result<Header> {
    let file_len = bytes.len() as u64;
    let Some(len_bytes) = bytes.get(..8) else {
        return Err(EvalError::Truncated {
            path: path.to_owned(),
            message: format!(
                "{file_len} bytes is shorter than the 8-byte safetensors header length"
            ),
        });
    };
    let mut word = [0u8; 8];
    word.copy_from_slice(len_bytes);
    let header_len = u64::from_le_bytes(word);
    if header_len > MAX_HEADER_BYTES {
        if looks_like_pickle(bytes) {
            return Err(EvalError::PickleRefused {
                path: path.to_owned(),
            });
        }
        return Err(EvalError::HeaderTooLarge {
            path: path.to_owned(),
            len: header_len,
            max: MAX_HEADER_BYTES,
        });
    }
    if 8 + header_len > file_len {
        if looks_like_pickle(bytes) {
            return Err(EvalError::PickleRefused {
                path: path.to_owned(),
            });
        }
        return Err(EvalError::Truncated {
            path: path.to_owned(),
            message: format!(
                "header declares {header_len} bytes but the file holds only {} after the length",
                file_len - 8
            ),
        });
    }
    // Both fit in usize: the whole file is in memory (or mapped).
    let data_start = 8 + header_len as usize;
    let data_len = bytes.len() - data_start;
    let json = &bytes[8..data_start];
    if json.first() != Some(&b'{') {
        if looks_like_pickle(bytes) {
            return Err(EvalError::PickleRefused {
                path: path.to_owned(),
            });
        }
        return Err(EvalError::Json {
            path: path.to_owned(),
            message: "the safetensors header must start with `{`".into(),
        });
    }
    let value = crate::json::parse_strict(path, json)?;
    let Value::Object(map) = value else {
        return Err(EvalError::Json {
            path: path.to_owned(),
            message: "the header must be a JSON object".into(),
        });
    };

    let mut tensors = Vec::with_capacity(map.len());
    for (name, entry) in map {
        if name == "__metadata__" {
            let ok = entry
                .as_object()
                .is_some_and(|m| m.values().all(Value::is_string));
            if !ok {
                return Err(EvalError::Json {
                    path: path.to_owned(),
                    message: "__metadata__ must map strings to strings".into(),
                });
            }
            continue;
        }
        tensors.push(parse_entry(path, name, &entry, data_len)?);
    }

    // The tensors must tile the data section: sorted by start, each begins where the
    // previous one ended, and the last ends at the end of the file.
    tensors.sort_by_key(|t| (t.start, t.end));
    let mut cursor = 0usize;
    let mut previous: Option<&TensorInfo> = None;
    for t in &tensors {
        if t.start < cursor {
            return Err(EvalError::OverlappingTensors {
                path: path.to_owned(),
                first: previous.map(|p| p.name.clone()).unwrap_or_default(),
                second: t.name.clone(),
            });
        }
        if t.start > cursor {
            return Err(EvalError::NonContiguous {
                path: path.to_owned(),
                message: format!(
                    "{} unused bytes before tensor `{}`",
                    t.start - cursor,
                    t.name
                ),
            });
        }
        cursor = t.end;
        previous = Some(t);
    }
    if cursor != data_len {
        return Err(EvalError::NonContiguous {
            path: path.to_owned(),
            message: format!(
                "{} bytes after the last tensor belong to no tensor",
                data_len - cursor
            ),
        });
    }
    Ok(Header {
        tensors,
        data_start,
    })
}

fn parse_entry(path: &Path, name: String, entry: &Value, data_len: usize) -> Result<TensorInfo> {
    let bad = |message: String| EvalError::TensorEntry {
        path: path.to_owned(),
        tensor: name.clone(),
        message,
    };
    let obj = entry
        .as_object()
        .ok_or_else(|| bad("entry must be an object".into()))?;
    if let Some(key) = obj
        .keys()
        .find(|k| !["dtype", "shape", "data_offsets"].contains(&k.as_str()))
    {
        return Err(bad(format!("unknown field `{key}`")));
    }
    let dtype_name = obj
        .get("dtype")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("dtype must be a string".into()))?;
    let dtype =
        Dtype::parse(dtype_name).ok_or_else(|| bad(format!("unknown dtype `{dtype_name}`")))?;
    let dims = obj
        .get("shape")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("shape must be an array".into()))?;
    if dims.len() > MAX_RANK {
        return Err(bad(format!("rank {} exceeds {MAX_RANK}", dims.len())));
    }
    let mut shape = Vec::with_capacity(dims.len());
    let mut numel: u64 = 1;
    for d in dims {
        let d = d
            .as_u64()
            .ok_or_else(|| bad("shape entries must be non-negative integers".into()))?;
        numel = numel
            .checked_mul(d)
            .ok_or_else(|| bad("element count overflows".into()))?;
        shape.push(usize::try_from(d).map_err(|_| bad("dimension too large".into()))?);
    }
    let offsets = obj
        .get("data_offsets")
        .and_then(Value::as_array)
        .filter(|a| a.len() == 2)
        .ok_or_else(|| bad("data_offsets must be an array of two integers".into()))?;
    let (Some(start), Some(end)) = (offsets[0].as_u64(), offsets[1].as_u64()) else {
        return Err(bad("data_offsets must be non-negative integers".into()));
    };
    if start > end {
        return Err(bad(format!("data_offsets [{start}, {end}] are reversed")));
    }
    let nbytes = numel
        .checked_mul(dtype.size())
        .ok_or_else(|| bad("byte size overflows".into()))?;
    if end - start != nbytes {
        return Err(bad(format!(
            "{} with shape {shape:?} needs {nbytes} bytes but data_offsets [{start}, {end}] span {}",
            dtype.name(),
            end - start
        )));
    }
    if end > data_len as u64 {
        return Err(EvalError::Truncated {
            path: path.to_owned(),
            message: format!(
                "tensor `{name}` ends at byte {end} of the data section, which holds only {data_len} bytes"
            ),
        });
    }
    Ok(TensorInfo {
        name,
        dtype,
        shape,
        start: start as usize,
        end: end as usize,
    })
}

/// Reads a shard index and returns the tensor-to-shard map, each shard resolved to a
/// path inside `dir`.
pub fn read_index(index_path: &Path, dir: &Path) -> Result<BTreeMap<String, PathBuf>> {
    const MAX_INDEX_BYTES: u64 = 64 << 20;
    let len = std::fs::metadata(index_path)
        .map_err(|e| EvalError::io(index_path, e))?
        .len();
    if len > MAX_INDEX_BYTES {
        return Err(EvalError::Json {
            path: index_path.to_owned(),
            message: format!("index of {len} bytes exceeds the limit of {MAX_INDEX_BYTES}"),
        });
    }
    let bytes = std::fs::read(index_path).map_err(|e| EvalError::io(index_path, e))?;
    let value = crate::json::parse_strict(index_path, &bytes)?;
    let weight_map = value
        .get("weight_map")
        .and_then(Value::as_object)
        .ok_or_else(|| EvalError::Json {
            path: index_path.to_owned(),
            message: "weight_map must be an object mapping tensor names to shard files".into(),
        })?;
    let canonical_dir = dir.canonicalize().map_err(|e| EvalError::io(dir, e))?;
    let mut resolved: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut shards: BTreeMap<String, PathBuf> = BTreeMap::new();
    for (tensor, shard) in weight_map {
        let shard = shard.as_str().ok_or_else(|| EvalError::Json {
            path: index_path.to_owned(),
            message: format!("weight_map[`{tensor}`] must be a file name"),
        })?;
        let path = match shards.get(shard) {
            Some(p) => p.clone(),
            None => {
                let p = resolve_shard(index_path, &canonical_dir, shard)?;
                shards.insert(shard.to_owned(), p.clone());
                p
            }
        };
        resolved.insert(tensor.clone(), path);
    }
    Ok(resolved)
}

/// Resolves a shard name from an index, refusing anything but a plain `.safetensors` file
/// directly inside the checkpoint directory (no separators, no `..`, no symlink out).
fn resolve_shard(index_path: &Path, canonical_dir: &Path, shard: &str) -> Result<PathBuf> {
    let escape = || EvalError::ShardEscape {
        path: index_path.to_owned(),
        shard: shard.to_owned(),
    };
    if is_pickle_name(shard) {
        return Err(EvalError::PickleRefused {
            path: canonical_dir.join(shard),
        });
    }
    let plain = !shard.is_empty()
        && !shard.starts_with('.')
        && !shard.contains(['/', '\\', '\0', ':'])
        && shard.ends_with(".safetensors");
    if !plain {
        return Err(escape());
    }
    let joined = canonical_dir.join(shard);
    let canonical = joined
        .canonicalize()
        .map_err(|e| EvalError::io(&joined, e))?;
    if canonical.parent() != Some(canonical_dir) || !canonical.is_file() {
        return Err(escape());
    }
    Ok(canonical)
}

/// Index of the first NaN or infinite element in little-endian `bytes` of `dtype`, if
/// any. Integer dtypes have no such values.
pub fn first_non_finite(dtype: Dtype, bytes: &[u8]) -> Option<usize> {
    // An IEEE value is NaN or infinite exactly when its exponent bits are all ones.
    match dtype {
        Dtype::F32 => bytes.chunks_exact(4).position(|c| {
            u32::from_le_bytes([c[0], c[1], c[2], c[3]]) & 0x7f80_0000 == 0x7f80_0000
        }),
        Dtype::BF16 => bytes
            .chunks_exact(2)
            .position(|c| u16::from_le_bytes([c[0], c[1]]) & 0x7f80 == 0x7f80),
        Dtype::F16 => bytes
            .chunks_exact(2)
            .position(|c| u16::from_le_bytes([c[0], c[1]]) & 0x7c00 == 0x7c00),
        Dtype::F64 => bytes.chunks_exact(8).position(|c| {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            u64::from_le_bytes(w) & 0x7ff0_0000_0000_0000 == 0x7ff0_0000_0000_0000
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a safetensors file from a raw header string and a data section.
    fn file(header: &str, data: &[u8]) -> Vec<u8> {
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn parse(bytes: &[u8]) -> Result<Header> {
        parse_header(Path::new("m.safetensors"), bytes)
    }

    #[test]
    fn valid_file_is_parsed_in_offset_order() {
        let h = r#"{"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}"#;
        let header = parse(&file(h, &[0u8; 12])).expect("valid");
        assert_eq!(header.tensors.len(), 2);
        assert_eq!(header.tensors[0].name, "a");
        assert_eq!(header.tensors[1].shape, vec![2]);
        assert_eq!(header.data_start, 8 + h.len());
    }

    #[test]
    fn hostile_headers_are_refused() {
        let e = |h: &str, n: usize| parse(&file(h, &vec![0u8; n])).expect_err("refused");
        assert!(matches!(
            e(
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#,
                16
            ),
            EvalError::DuplicateKey { .. }
        ));
        assert!(matches!(
            e(
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                12
            ),
            EvalError::OverlappingTensors { .. }
        ));
        assert!(matches!(
            e(
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                12
            ),
            EvalError::NonContiguous { .. }
        ));
        assert!(matches!(
            e(
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
                9
            ),
            EvalError::NonContiguous { .. }
        ));
        assert!(matches!(
            e(
                r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
                8
            ),
            EvalError::TensorEntry { .. }
        ));
        assert!(matches!(
            e(
                r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#,
                8
            ),
            EvalError::Truncated { .. }
        ));
        assert!(matches!(
            e(
                r#"{"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}}"#,
                8
            ),
            EvalError::TensorEntry { .. }
        ));
        assert!(matches!(
            e(
                r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}}"#,
                8
            ),
            EvalError::TensorEntry { .. }
        ));
        assert!(matches!(e(r#"{"a": "#, 0), EvalError::Json { .. }));
    }

    #[test]
    fn header_length_is_bounded_and_checked() {
        let mut huge = (MAX_HEADER_BYTES + 1).to_le_bytes().to_vec();
        huge.extend_from_slice(b"{}");
        assert!(matches!(
            parse(&huge),
            Err(EvalError::HeaderTooLarge { .. })
        ));
        let mut short = 100u64.to_le_bytes().to_vec();
        short.extend_from_slice(b"{}");
        assert!(matches!(parse(&short), Err(EvalError::Truncated { .. })));
        assert!(matches!(parse(b"abc"), Err(EvalError::Truncated { .. })));
    }

    #[test]
    fn pickles_are_recognised() {
        assert!(matches!(
            parse(b"PK\x03\x04\x14\x00\x00\x00\x08\x00archive/data.pkl"),
            Err(EvalError::PickleRefused { .. })
        ));
        assert!(matches!(
            parse(b"\x80\x02}q\x00(X\x05\x00\x00\x00a.bin"),
            Err(EvalError::PickleRefused { .. })
        ));
        assert!(is_pickle_name("pytorch_model.bin"));
        assert!(is_pickle_name("consolidated.00.PTH"));
        assert!(!is_pickle_name("model.safetensors"));
    }

    /// Mutated and truncated files never panic: every outcome is Ok or a typed error.
    #[test]
    fn mutations_never_panic() {
        let h = r#"{"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[2,3],"data_offsets":[4,28]},"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}"#;
        let good = file(h, &[7u8; 28]);
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut accepted = 0;
        for _ in 0..20_000 {
            let mut bytes = good.clone();
            match next() % 4 {
                0 => bytes.truncate((next() as usize) % good.len()),
                1 => {
                    let i = (next() as usize) % bytes.len();
                    bytes[i] = next() as u8;
                }
                2 => {
                    // Printable replacements inside the JSON keep it often parseable.
                    let i = 8 + (next() as usize) % h.len();
                    bytes[i] = b"0123456789[]{},:\"FBI"[(next() as usize) % 20];
                }
                _ => {
                    let i = (next() as usize) % 8;
                    bytes[i] = next() as u8;
                }
            }
            if parse_header(Path::new("m.safetensors"), &bytes).is_ok() {
                accepted += 1;
            }
        }
        // Some mutations (e.g. in padding-free data bytes) stay valid; most do not.
        assert!(accepted < 20_000);
    }

    #[test]
    fn non_finite_values_are_found() {
        let f32s: Vec<u8> = [1.0f32, f32::NAN]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(first_non_finite(Dtype::F32, &f32s), Some(1));
        let bf: Vec<u8> = [half::bf16::from_f32(2.0), half::bf16::INFINITY]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(first_non_finite(Dtype::BF16, &bf), Some(1));
        let f16s: Vec<u8> = [half::f16::NEG_INFINITY]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(first_non_finite(Dtype::F16, &f16s), Some(0));
        let fine: Vec<u8> = [f32::MAX, -0.0, 1e-40]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(first_non_finite(Dtype::F32, &fine), None);
    }
}
