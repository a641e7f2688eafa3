//! Loading a Hugging Face Llama checkpoint directory, validating it completely first.
//!
//! Order matters: refuse pickle files, read and bound the config (and check it against
//! the phase limits), parse and validate every safetensors header, and match the tensor
//! set and shapes against what the config implies — all before a single weight is
//! copied. Only then are the memory-mapped tensors scanned for NaN/Inf, hashed and
//! converted to the scoring dtype, one at a time, releasing each mapped range once it
//! has been copied so peak memory stays near the size of the converted weights.
//!
//! `weights_sha256` is a canonical hash of the tensors, independent of how they are
//! sharded or how the header is formatted: SHA-256 over the tensors sorted by name, each
//! contributing its name, dtype, shape and the SHA-256 of its bytes. Two uploads with the
//! same tensor bytes have the same hash.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use ascent_domain::fingerprint;
use ascent_domain::limits::ModelLimits;
use candle_core::{DType, Device, Tensor};
use sha2::{Digest, Sha256};

use crate::config::LlamaConfig;
use crate::error::{EvalError, Result};
use crate::mapped::{map_file_kept, release_pages};
use crate::placement::Placement;
use crate::safetensors::{first_non_finite, is_pickle_name, parse_header, Dtype, TensorInfo};

/// File names inside a checkpoint directory.
pub const CONFIG_FILE: &str = "config.json";
pub const SINGLE_FILE: &str = "model.safetensors";
pub const INDEX_FILE: &str = "model.safetensors.index.json";

/// Most entries a checkpoint directory may hold; real ones have a handful of files.
const MAX_DIR_ENTRIES: usize = 10_000;

/// Where a checkpoint's transformer layers are kept while it is scored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Residency {
    /// Every weight on its scoring device, loaded once.
    #[default]
    Resident,
    /// Layers stay in their memory-mapped files and are copied to their device one at a
    /// time as the forward pass reaches them (`LayerStore`; the next one is read from
    /// the files while the current one runs), so a model larger than the device's
    /// memory can be scored: only one layer, the embedding, the final norm and the LM
    /// head are on a device at once. Slower: every batch copies every layer.
    Streamed,
}

/// A validated checkpoint whose weights are loaded in the scoring dtype.
pub struct Checkpoint {
    pub dir: PathBuf,
    pub config: LlamaConfig,
    /// The scoring devices, and which of them holds which weights.
    pub devices: Vec<Device>,
    pub placement: Placement,
    /// Weights by Hugging Face name, in the scoring dtype, each on its device (the
    /// transformer layers' only when they are resident).
    pub weights: HashMap<String, Tensor>,
    /// The transformer layers' weights, when they are streamed.
    pub layers: Option<LayerStore>,
    /// Exact parameter count (a tied embedding counted once).
    pub parameters: u64,
    /// Canonical hash of the tensors; see the module documentation.
    pub weights_sha256: String,
    /// Bytes of weights as stored in the files.
    pub stored_bytes: u64,
    /// Near-copy fingerprint (`domain::fingerprint`).
    pub fingerprint: Vec<f32>,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("dir", &self.dir)
            .field("parameters", &self.parameters)
            .field("weights_sha256", &self.weights_sha256)
            .finish_non_exhaustive()
    }
}

/// Whether tensor `name` belongs to a transformer layer.
fn in_a_layer(name: &str) -> bool {
    name.starts_with("model.layers.")
}

/// Tensors of a validated checkpoint read from their mapped files on demand, each
/// converted to the scoring dtype (`Residency::Streamed`).
/// Their bytes were checked (NaN/Inf) and hashed when the checkpoint was loaded.
pub struct LayerStore {
    files: Vec<WeightFile>,
    /// Tensor name → (file, tensor) positions.
    index: HashMap<String, (usize, usize)>,
    dtype: DType,
}

impl LayerStore {
    /// Tensor `name` in the scoring dtype in host memory, read from its file (the part of
    /// streaming that may wait on the disk; see `model`'s prefetch). Its device copy is
    /// the caller's.
    pub fn host_tensor(&self, name: &str) -> Result<Tensor> {
        let &(f, t) = self
            .index
            .get(name)
            .ok_or_else(|| EvalError::Internal(format!("streamed tensor {name} is not stored")))?;
        let (file, info) = (&self.files[f], &self.files[f].tensors[t]);
        // The bytes were checked and hashed at load; written since, they would be other
        // weights than the ones reported.
        if stamp(&file.file).ok() != Some(file.stamp) {
            return Err(EvalError::Internal(format!(
                "{} changed on disk after it was checked and hashed; scoring stopped",
                file.path.display()
            )));
        }
        let start = file.data_start + info.start;
        let bytes = &file.map[start..file.data_start + info.end];
        let tensor = to_tensor(info, bytes, self.dtype, &Device::Cpu)?;
        // The copy is made: the mapped pages need not stay in memory.
        release_pages(&file.map, start, bytes.len());
        Ok(tensor)
    }
}

/// A stored tensor's bytes as a tensor in `dtype` on `device`.
fn to_tensor(t: &TensorInfo, bytes: &[u8], dtype: DType, device: &Device) -> Result<Tensor> {
    let stored = match t.dtype {
        Dtype::F32 => DType::F32,
        Dtype::BF16 => DType::BF16,
        _ => DType::F16,
    };
    Ok(
        Tensor::from_raw_buffer(bytes, stored, &t.shape, &Device::Cpu)?
            .to_dtype(dtype)?
            .to_device(device)?,
    )
}

/// A file's length and modification time: they change when it is written in place.
fn stamp(file: &std::fs::File) -> std::io::Result<(u64, std::time::SystemTime)> {
    let meta = file.metadata()?;
    Ok((meta.len(), meta.modified()?))
}

/// One safetensors file of a checkpoint with its validated header.
struct WeightFile {
    path: PathBuf,
    /// The open file behind `map`, and its [`stamp`] when it was mapped.
    file: std::fs::File,
    stamp: (u64, std::time::SystemTime),
    map: crate::mapped::Mmap,
    tensors: Vec<TensorInfo>,
    data_start: usize,
}

/// Validates the checkpoint in `dir` without loading weights: config, limits, headers,
/// tensor names and shapes. Returns the config and the opened files.
fn validate(dir: &Path, limits: Option<&ModelLimits>) -> Result<(LlamaConfig, Vec<WeightFile>)> {
    let meta = std::fs::metadata(dir).map_err(|e| EvalError::io(dir, e))?;
    if !meta.is_dir() {
        return Err(EvalError::MissingWeights {
            dir: dir.to_owned(),
        });
    }
    refuse_pickles(dir)?;

    let config_path = dir.join(CONFIG_FILE);
    let config = LlamaConfig::from_file(&config_path)?;
    if let Some(limits) = limits {
        config.check_limits(&config_path, limits)?;
    }

    let single = dir.join(SINGLE_FILE);
    let index = dir.join(INDEX_FILE);
    let files = match (single.is_file(), index.is_file()) {
        (true, true) => {
            return Err(EvalError::Config {
                path: dir.to_owned(),
                message: format!(
                    "both {SINGLE_FILE} and {INDEX_FILE} are present; keep one so it is clear which weights are scored"
                ),
            })
        }
        (true, false) => vec![open_weight_file(&single)?],
        (false, true) => open_sharded(&index, dir)?,
        (false, false) => {
            return Err(EvalError::MissingWeights {
                dir: dir.to_owned(),
            })
        }
    };

    // Tensor set and shapes against the config, before anything is copied.
    let expected: BTreeMap<String, Vec<usize>> = config.expected_tensors().into_iter().collect();
    let mut seen: BTreeMap<&str, &Path> = BTreeMap::new();
    for file in &files {
        for t in &file.tensors {
            if let Some(first) = seen.insert(&t.name, &file.path) {
                return Err(EvalError::TensorEntry {
                    path: file.path.clone(),
                    tensor: t.name.clone(),
                    message: format!("also stored in {}", first.display()),
                });
            }
            let Some(shape) = expected.get(&t.name) else {
                return Err(EvalError::UnexpectedTensor {
                    path: file.path.clone(),
                    tensor: t.name.clone(),
                });
            };
            if *shape != t.shape {
                return Err(EvalError::ShapeMismatch {
                    path: file.path.clone(),
                    tensor: t.name.clone(),
                    expected: shape.clone(),
                    found: t.shape.clone(),
                });
            }
            if !matches!(t.dtype, Dtype::F32 | Dtype::BF16 | Dtype::F16) {
                return Err(EvalError::UnsupportedDtype {
                    path: file.path.clone(),
                    tensor: t.name.clone(),
                    dtype: t.dtype.name().to_owned(),
                });
            }
        }
    }
    if let Some(missing) = expected
        .keys()
        .find(|name| !seen.contains_key(name.as_str()))
    {
        // Name the file that should have held it: the index lists a sharded checkpoint.
        let path = if index.is_file() { index } else { single };
        return Err(EvalError::MissingTensor {
            path,
            tensor: missing.clone(),
        });
    }
    Ok((config, files))
}

/// Refuses the directory if it holds any pickle-format file, whatever it is called for:
/// such files must not reach the evaluator's storage, let alone a loader.
fn refuse_pickles(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| EvalError::io(dir, e))?;
    for (count, entry) in entries.enumerate() {
        if count >= MAX_DIR_ENTRIES {
            return Err(EvalError::Config {
                path: dir.to_owned(),
                message: format!("more than {MAX_DIR_ENTRIES} files in the checkpoint directory"),
            });
        }
        let entry = entry.map_err(|e| EvalError::io(dir, e))?;
        if is_pickle_name(&entry.file_name().to_string_lossy()) {
            return Err(EvalError::PickleRefused { path: entry.path() });
        }
    }
    Ok(())
}

fn open_weight_file(path: &Path) -> Result<WeightFile> {
    let meta = std::fs::metadata(path).map_err(|e| EvalError::io(path, e))?;
    if meta.len() < 8 {
        return Err(EvalError::Truncated {
            path: path.to_owned(),
            message: format!(
                "{} bytes is shorter than the 8-byte safetensors header length",
                meta.len()
            ),
        });
    }
    let (file, map) = map_file_kept(path)?;
    let stamp = stamp(&file).map_err(|e| EvalError::io(path, e))?;
    let header = parse_header(path, &map)?;
    Ok(WeightFile {
        path: path.to_owned(),
        file,
        stamp,
        map,
        tensors: header.tensors,
        data_start: header.data_start,
    })
}

/// Opens every shard an index names and checks that each shard holds exactly the
/// tensors the index assigns to it.
fn open_sharded(index: &Path, dir: &Path) -> Result<Vec<WeightFile>> {
    let weight_map = crate::safetensors::read_index(index, dir)?;
    let mut by_shard: BTreeMap<&Path, Vec<&str>> = BTreeMap::new();
    for (tensor, shard) in &weight_map {
        by_shard.entry(shard.as_path()).or_default().push(tensor);
    }
    let mut files = Vec::with_capacity(by_shard.len());
    for (shard, names) in by_shard {
        let file = open_weight_file(shard)?;
        for t in &file.tensors {
            if weight_map.get(&t.name).map(PathBuf::as_path) != Some(shard) {
                return Err(EvalError::TensorEntry {
                    path: shard.to_owned(),
                    tensor: t.name.clone(),
                    message: format!(
                        "stored in this shard but {} does not assign it here",
                        index.display()
                    ),
                });
            }
        }
        if let Some(absent) = names
            .iter()
            .find(|n| !file.tensors.iter().any(|t| t.name == **n))
        {
            return Err(EvalError::MissingTensor {
                path: shard.to_owned(),
                tensor: (*absent).to_owned(),
            });
        }
        files.push(file);
    }
    Ok(files)
}

/// Validates the checkpoint in `dir` without loading its weights; returns the config.
pub fn validate_only(dir: &Path, limits: Option<&ModelLimits>) -> Result<LlamaConfig> {
    validate(dir, limits).map(|(config, _)| config)
}

/// What a full scan of a checkpoint establishes without keeping any weight in memory.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Inspection {
    /// Exact parameter count (a tied embedding counted once).
    pub parameters: u64,
    /// Bytes of weights as stored in the files.
    pub stored_bytes: u64,
    /// Canonical hash of the tensors; see the module documentation.
    pub weights_sha256: String,
    /// Near-copy fingerprint (`domain::fingerprint`).
    #[serde(skip)]
    pub fingerprint: Vec<f32>,
}

/// Runs every check, NaN/Inf included, and computes the parameter count and the weights
/// hash, reading each tensor once through the mapping and keeping none: what an upload
/// needs before it is queued for scoring.
pub fn inspect(dir: &Path, limits: Option<&ModelLimits>) -> Result<(LlamaConfig, Inspection)> {
    let (config, files) = validate(dir, limits)?;
    let inspection = scan(&config, &files, |_, _| Ok(()))?;
    Ok((config, inspection))
}

/// Validates and loads the checkpoint in `dir`, converting weights to `dtype` on
/// `devices` (at least one; several split the model as [`Placement::plan`] says), the
/// transformer layers' only as the forward pass reaches them if `Streamed`.
pub fn load(
    dir: &Path,
    limits: Option<&ModelLimits>,
    dtype: DType,
    devices: &[Device],
    residency: Residency,
) -> Result<Checkpoint> {
    if devices.is_empty() {
        return Err(EvalError::Internal("checkpoint::load: no device".into()));
    }
    let (config, files) = validate(dir, limits)?;
    let placement = Placement::plan(&config, devices.len());
    let streamed = residency == Residency::Streamed;
    let mut weights = HashMap::new();
    let inspection = scan(&config, &files, |t, bytes| {
        if !(streamed && in_a_layer(&t.name)) {
            let device = &devices[placement.of_tensor(&t.name)];
            weights.insert(t.name.clone(), to_tensor(t, bytes, dtype, device)?);
        }
        Ok(())
    })?;
    let layers = streamed.then(|| {
        let index = files
            .iter()
            .enumerate()
            .flat_map(|(f, file)| {
                file.tensors
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| in_a_layer(&t.name))
                    .map(move |(t, info)| (info.name.clone(), (f, t)))
            })
            .collect();
        LayerStore {
            files,
            index,
            dtype,
        }
    });
    Ok(Checkpoint {
        dir: dir.to_owned(),
        config,
        devices: devices.to_vec(),
        placement,
        weights,
        layers,
        parameters: inspection.parameters,
        weights_sha256: inspection.weights_sha256,
        stored_bytes: inspection.stored_bytes,
        fingerprint: inspection.fingerprint,
    })
}

/// Visits every tensor of validated `files` once: refuses NaN/Inf, hashes it, hands its
/// bytes to `each`, then releases its mapped pages. Returns the count and the hash.
fn scan(
    config: &LlamaConfig,
    files: &[WeightFile],
    mut each: impl FnMut(&TensorInfo, &[u8]) -> Result<()>,
) -> Result<Inspection> {
    let mut digests: BTreeMap<&str, (Dtype, &[usize], [u8; 32])> = BTreeMap::new();
    let mut parameters = 0u64;
    let mut stored_bytes = 0u64;
    let mut fingerprint = fingerprint::Builder::default();
    for file in files {
        for t in &file.tensors {
            let range = file.data_start + t.start..file.data_start + t.end;
            let bytes = &file.map[range.clone()];
            if let Some(index) = first_non_finite(t.dtype, bytes) {
                return Err(EvalError::NonFinite {
                    path: file.path.clone(),
                    tensor: t.name.clone(),
                    index,
                });
            }
            digests.insert(&t.name, (t.dtype, &t.shape, Sha256::digest(bytes).into()));
            fingerprint.add(&t.name, &sampled(t.dtype, bytes));
            each(t, bytes)?;
            release_pages(&file.map, range.start, range.len());
            parameters += t.shape.iter().product::<usize>() as u64;
            stored_bytes += bytes.len() as u64;
        }
    }
    if parameters != config.parameter_count() {
        // Shapes were matched against the config, so this would be our own bug.
        return Err(EvalError::Internal(format!(
            "counted {parameters} parameters, config implies {}",
            config.parameter_count()
        )));
    }
    let mut hasher = Sha256::new();
    for (name, (dtype, shape, digest)) in &digests {
        hasher.update((name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update(dtype.name().as_bytes());
        hasher.update((shape.len() as u64).to_le_bytes());
        for d in shape.iter() {
            hasher.update((*d as u64).to_le_bytes());
        }
        hasher.update(digest);
    }
    Ok(Inspection {
        parameters,
        stored_bytes,
        weights_sha256: hex::encode(hasher.finalize()),
        fingerprint: fingerprint.finish(),
    })
}

/// The values of a tensor at `fingerprint::sample_positions`, as f32.
fn sampled(dtype: Dtype, bytes: &[u8]) -> Vec<f32> {
    let width = dtype.size() as usize;
    if width == 0 {
        return Vec::new();
    }
    let len = bytes.len() / width;
    fingerprint::sample_positions(len)
        .filter_map(|i| {
            let b = bytes.get(i * width..(i + 1) * width)?;
            Some(match dtype {
                Dtype::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                Dtype::BF16 => half::bf16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32(),
                Dtype::F16 => half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32(),
                _ => return None,
            })
        })
        .collect()
}
