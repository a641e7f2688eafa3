//! The `ascent-eval` binary, run for real on files written into a temporary directory:
//! the success contract (exit 0, the JSON fields) and every hostile input (exit 2 with a
//! message naming the file and the problem, never a panic).

use std::path::{Path, PathBuf};
use std::process::Command;

use ascent_evaluator::safetensors::parse_header;
use ascent_evaluator::shard::encode;
use serde_json::{json, Value};
use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_ascent-eval");

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("ASCENT_SPLIT_SECRET")
        .output()
        .expect("run ascent-eval");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn score(model: &Path, data: &Path, seq_len: usize, extra: &[&str]) -> Run {
    let seq = seq_len.to_string();
    let mut args = vec![
        "score",
        "--model",
        model.to_str().expect("utf-8 path"),
        "--data",
        data.to_str().expect("utf-8 path"),
        "--seq-len",
        &seq,
    ];
    args.extend_from_slice(extra);
    run(&args)
}

/// Asserts exit status 2 and that stderr names `file` and contains `needle`.
fn assert_invalid(r: &Run, file: &str, needle: &str) {
    assert_eq!(r.code, 2, "expected exit 2; stderr: {}", r.stderr);
    assert!(
        r.stderr.contains(file),
        "stderr should name {file}: {}",
        r.stderr
    );
    assert!(
        r.stderr.to_lowercase().contains(&needle.to_lowercase()),
        "stderr should say `{needle}`: {}",
        r.stderr
    );
    assert!(!r.stderr.contains("panick"), "{}", r.stderr);
    assert!(
        r.stdout.is_empty(),
        "nothing on stdout on failure: {}",
        r.stdout
    );
}

/// A copy of a fixture checkpoint in a fresh temporary directory.
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

fn text_data() -> PathBuf {
    fixtures().join("text_u16.bin")
}

/// Tensors of a safetensors file: (name, dtype, shape, bytes), in file order.
type Tensors = Vec<(String, String, Vec<usize>, Vec<u8>)>;

fn read_tensors(path: &Path) -> Tensors {
    let bytes = std::fs::read(path).expect("read");
    let header = parse_header(path, &bytes).expect("valid fixture");
    header
        .tensors
        .iter()
        .map(|t| {
            let data = bytes[header.data_start + t.start..header.data_start + t.end].to_vec();
            (
                t.name.clone(),
                t.dtype.name().to_owned(),
                t.shape.clone(),
                data,
            )
        })
        .collect()
}

/// Writes a well-formed safetensors file holding `tensors`.
fn write_tensors(path: &Path, tensors: &Tensors) {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, dtype, shape, bytes) in tensors {
        let start = data.len();
        data.extend_from_slice(bytes);
        header.insert(
            name.clone(),
            json!({"dtype": dtype, "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    write_raw(path, &Value::Object(header).to_string(), &data);
}

/// Writes a safetensors file from a raw header string (which may be hostile).
fn write_raw(path: &Path, header: &str, data: &[u8]) {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    std::fs::write(path, out).expect("write");
}

fn write_data(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write data");
    path
}

fn reference(model: &str, seq_len: usize) -> (usize, f64) {
    let refs: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("references.json")).expect("refs"),
    )
    .expect("json");
    let case = refs["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|c| c["model"] == model && c["seq_len"] == seq_len)
        .expect("case");
    (
        case["windows"].as_u64().expect("windows") as usize,
        case["loss"].as_f64().expect("loss"),
    )
}

// ---------------------------------------------------------------- success contract

#[test]
fn json_output_follows_the_contract() {
    let (windows, loss) = reference("trained_sharded", 64);
    let k = windows.to_string();
    let r = score(
        &fixtures().join("trained_sharded"),
        &text_data(),
        64,
        &["--windows", &k, "--batch", "5", "--json"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(r.stdout.trim()).expect("one JSON object");
    let ours = v["loss"].as_f64().expect("loss");
    assert!((ours - loss).abs() / loss < 1e-4, "{ours} vs {loss}");
    assert_eq!(v["windows"], windows);
    assert_eq!(v["tokens_scored"], windows * 63);
    assert!((v["perplexity"].as_f64().expect("ppl") - ours.exp()).abs() < 1e-9);
    assert!(
        (v["bits_per_token"].as_f64().expect("bpt") - ours / std::f64::consts::LN_2).abs() < 1e-9
    );
    assert_eq!(v["parameters"], 106_816);
    assert_eq!(v["dtype"], "f32");
    assert_eq!(v["device"], "cpu");
    assert!(v["seconds"].as_f64().expect("seconds") > 0.0);
    assert!(v["tokens_per_second"].as_f64().expect("tps") > 0.0);
    assert_eq!(v["weights_sha256"].as_str().expect("hash").len(), 64);
    assert_eq!(v["data_sha256"].as_str().expect("hash").len(), 64);
    assert!(v["public"].is_null() && v["private"].is_null());

    // The same run with the layers streamed: the same loss and hashes, to the bit.
    let streamed = score(
        &fixtures().join("trained_sharded"),
        &text_data(),
        64,
        &["--windows", &k, "--batch", "5", "--json", "--stream-layers"],
    );
    assert_eq!(streamed.code, 0, "{}", streamed.stderr);
    let s: Value = serde_json::from_str(streamed.stdout.trim()).expect("one JSON object");
    for field in [
        "loss",
        "tokens_scored",
        "weights_sha256",
        "data_sha256",
        "parameters",
    ] {
        assert_eq!(s[field], v[field], "{field}");
    }
}

#[test]
fn default_windows_use_all_the_data_and_the_split_is_reported() {
    // 1100 tokens / 64 = 17 whole windows; the 12-token tail is dropped.
    let out = Command::new(BIN)
        .args(["score", "--model"])
        .arg(fixtures().join("mha"))
        .arg("--data")
        .arg(text_data())
        .args(["--seq-len", "64", "--json", "--public-share", "0.5"])
        .env("ASCENT_SPLIT_SECRET", "phase-1-secret")
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["windows"], 17);
    assert_eq!(v["tokens_scored"], 17 * 63);
    let public = v["public"]["windows"].as_u64().expect("public part");
    let private = v["private"]["windows"].as_u64().expect("private part");
    assert_eq!(public + private, 17);
    let whole = v["loss"].as_f64().expect("loss");
    let recombined = (v["public"]["loss"].as_f64().expect("p") * public as f64
        + v["private"]["loss"].as_f64().expect("q") * private as f64)
        / 17.0;
    assert!((recombined - whole).abs() < 1e-9);
}

#[test]
fn human_output_and_bf16() {
    let r = score(
        &fixtures().join("trained_bf16"),
        &text_data(),
        64,
        &["--dtype", "bf16"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("loss"), "{}", r.stdout);
    assert!(r.stdout.contains("bf16, cpu"), "{}", r.stdout);
}

#[test]
fn weights_hash_ignores_sharding() {
    let (_tmp, dir) = copy_fixture("mha");
    let tensors = read_tensors(&dir.join("model.safetensors"));
    std::fs::remove_file(dir.join("model.safetensors")).expect("rm");
    let (a, b) = tensors.split_at(tensors.len() / 2);
    write_tensors(&dir.join("part-a.safetensors"), &a.to_vec());
    write_tensors(&dir.join("part-b.safetensors"), &b.to_vec());
    let mut map = serde_json::Map::new();
    for (name, ..) in a {
        map.insert(name.clone(), json!("part-a.safetensors"));
    }
    for (name, ..) in b {
        map.insert(name.clone(), json!("part-b.safetensors"));
    }
    std::fs::write(
        dir.join("model.safetensors.index.json"),
        json!({"metadata": {}, "weight_map": map}).to_string(),
    )
    .expect("index");
    let args = ["--windows", "2", "--json"];
    let resharded = score(&dir, &text_data(), 64, &args);
    let original = score(&fixtures().join("mha"), &text_data(), 64, &args);
    assert_eq!(resharded.code, 0, "{}", resharded.stderr);
    let x: Value = serde_json::from_str(&resharded.stdout).expect("json");
    let y: Value = serde_json::from_str(&original.stdout).expect("json");
    assert_eq!(x["weights_sha256"], y["weights_sha256"]);
    assert_eq!(x["loss"], y["loss"]);
    let other = score(&fixtures().join("tied"), &text_data(), 64, &args);
    let z: Value = serde_json::from_str(&other.stdout).expect("json");
    assert_ne!(x["weights_sha256"], z["weights_sha256"]);
}

// ---------------------------------------------------------------- hostile checkpoints

#[test]
fn truncated_weights() {
    let (_tmp, dir) = copy_fixture("mha");
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).expect("read");
    std::fs::write(&path, &bytes[..bytes.len() - 100]).expect("write");
    assert_invalid(
        &score(&dir, &text_data(), 64, &[]),
        "model.safetensors",
        "truncated",
    );
    std::fs::write(&path, &bytes[..5]).expect("write");
    assert_invalid(
        &score(&dir, &text_data(), 64, &[]),
        "model.safetensors",
        "truncated",
    );
}

#[test]
fn pickle_files_are_refused_unopened() {
    let (_tmp, dir) = copy_fixture("mha");
    std::fs::remove_file(dir.join("model.safetensors")).expect("rm");
    // A pickle that would run a shell command if it were ever unpickled.
    std::fs::write(
        dir.join("pytorch_model.bin"),
        b"\x80\x04\x95\x1f\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06system\x93\x8c\x07touch x\x85R.",
    )
    .expect("write");
    assert_invalid(
        &score(&dir, &text_data(), 64, &[]),
        "pytorch_model.bin",
        "pickle",
    );

    // A torch.save zip archive renamed to model.safetensors.
    let (_tmp2, dir2) = copy_fixture("mha");
    std::fs::write(
        dir2.join("model.safetensors"),
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00archive/data.pkl",
    )
    .expect("write");
    assert_invalid(
        &score(&dir2, &text_data(), 64, &[]),
        "model.safetensors",
        "pickle",
    );
}

#[test]
fn duplicate_keys_are_refused() {
    let (_tmp, dir) = copy_fixture("mha");
    let path = dir.join("model.safetensors");
    let tensors = read_tensors(&path);
    // Valid JSON whose last duplicate would silently win in serde_json.
    let mut header = String::from("{");
    let mut data = Vec::new();
    for (name, dtype, shape, bytes) in &tensors {
        let start = data.len();
        data.extend_from_slice(bytes);
        header.push_str(&format!(
            "\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape:?},\"data_offsets\":[{start},{}]}},",
            data.len()
        ));
    }
    let (name, dtype, shape, bytes) = &tensors[0];
    let start = data.len();
    data.extend_from_slice(bytes);
    header.push_str(&format!(
        "\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape:?},\"data_offsets\":[{start},{}]}}}}",
        data.len()
    ));
    write_raw(&path, &header, &data);
    assert_invalid(
        &score(&dir, &text_data(), 64, &[]),
        "model.safetensors",
        "duplicate key",
    );
}

#[test]
fn overlapping_offsets_are_refused() {
    let (_tmp, dir) = copy_fixture("mha");
    let path = dir.join("model.safetensors");
    let tensors = read_tensors(&path);
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (i, (name, dtype, shape, bytes)) in tensors.iter().enumerate() {
        // The second tensor starts 4 bytes inside the first.
        let start = if i == 1 { data.len() - 4 } else { data.len() };
        if i == 1 {
            data.truncate(start);
        }
        data.extend_from_slice(bytes);
        header.insert(
            name.clone(),
            json!({"dtype": dtype, "shape": shape, "data_offsets": [start, start + bytes.len()]}),
        );
    }
    write_raw(&path, &Value::Object(header).to_string(), &data);
    assert_invalid(
        &score(&dir, &text_data(), 64, &[]),
        "model.safetensors",
        "overlap",
    );
}

#[test]
fn oversized_header_is_refused_before_allocation() {
    let (_tmp, dir) = copy_fixture("mha");
    let path = dir.join("model.safetensors");
    let mut bytes = (1u64 << 40).to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    std::fs::write(&path, bytes).expect("write");
    assert_invalid(
        &score(&dir, &text_data(), 64, &[]),
        "model.safetensors",
        "exceeds the limit",
    );
}

#[test]
fn shape_mismatch_is_refused() {
    let (_tmp, dir) = copy_fixture("mha");
    let cfg_path = dir.join("config.json");
    let mut cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).expect("cfg")).expect("json");
    cfg["intermediate_size"] = json!(96);
    std::fs::write(&cfg_path, cfg.to_string()).expect("write");
    let r = score(&dir, &text_data(), 64, &[]);
    assert_invalid(&r, "model.safetensors", "the config implies");
    assert!(
        r.stderr.contains("96"),
        "names the implied size: {}",
        r.stderr
    );
}

#[test]
fn missing_and_extra_tensors_are_refused() {
    let (_tmp, dir) = copy_fixture("mha");
    let path = dir.join("model.safetensors");
    let tensors = read_tensors(&path);
    let without: Tensors = tensors
        .iter()
        .filter(|t| t.0 != "model.layers.1.mlp.up_proj.weight")
        .cloned()
        .collect();
    write_tensors(&path, &without);
    assert_invalid(
        &score(&dir, &text_data(), 64, &[]),
        "model.safetensors",
        "missing tensor `model.layers.1.mlp.up_proj.weight`",
    );

    let mut extra = tensors.clone();
    extra.push((
        "model.layers.0.self_attn.rotary_emb.inv_freq".into(),
        "F32".into(),
        vec![8],
        vec![0u8; 32],
    ));
    write_tensors(&path, &extra);
    assert_invalid(
        &score(&dir, &text_data(), 64, &[]),
        "model.safetensors",
        "unexpected tensor",
    );

    // A tied checkpoint must not carry its own lm_head.
    let (_tmp2, tied) = copy_fixture("tied");
    let tpath = tied.join("model.safetensors");
    let mut t = read_tensors(&tpath);
    let embed = t
        .iter()
        .find(|x| x.0 == "model.embed_tokens.weight")
        .cloned()
        .expect("embed");
    t.push(("lm_head.weight".into(), embed.1, embed.2, embed.3));
    write_tensors(&tpath, &t);
    assert_invalid(
        &score(&tied, &text_data(), 64, &[]),
        "model.safetensors",
        "unexpected tensor `lm_head.weight`",
    );
}

#[test]
fn non_finite_weights_are_refused() {
    for (fixture, value) in [
        ("mha", f32::NAN.to_le_bytes().to_vec()),
        ("trained_bf16", vec![0x80, 0x7f]),
    ] {
        let (_tmp, dir) = copy_fixture(fixture);
        let path = dir.join("model.safetensors");
        let mut tensors = read_tensors(&path);
        let target = tensors
            .iter_mut()
            .find(|t| t.0 == "model.layers.0.self_attn.k_proj.weight")
            .expect("k_proj");
        target.3[8..8 + value.len()].copy_from_slice(&value);
        write_tensors(&path, &tensors);
        assert_invalid(
            &score(&dir, &text_data(), 64, &[]),
            "model.safetensors",
            "NaN or infinite",
        );
    }
}

#[test]
fn shard_paths_must_stay_in_the_directory() {
    for shard in [
        "../model-00001-of-00009.safetensors",
        "/etc/passwd",
        "sub/x.safetensors",
        "model.bin",
    ] {
        let (tmp, dir) = copy_fixture("trained_sharded");
        // A real file outside the checkpoint, so only confinement can refuse it.
        std::fs::copy(
            dir.join("model-00001-of-00009.safetensors"),
            tmp.path().join("model-00001-of-00009.safetensors"),
        )
        .expect("copy");
        let index_path = dir.join("model.safetensors.index.json");
        let mut index: Value =
            serde_json::from_str(&std::fs::read_to_string(&index_path).expect("index"))
                .expect("json");
        index["weight_map"]["model.embed_tokens.weight"] = json!(shard);
        std::fs::write(&index_path, index.to_string()).expect("write");
        let r = score(&dir, &text_data(), 64, &[]);
        let (file, needle) = if shard.ends_with(".bin") {
            ("model.bin", "pickle")
        } else {
            (
                "model.safetensors.index.json",
                "inside the checkpoint directory",
            )
        };
        assert_invalid(&r, file, needle);
    }
}

#[cfg(unix)]
#[test]
fn symlinked_shard_outside_the_directory_is_refused() {
    let (tmp, dir) = copy_fixture("trained_sharded");
    let outside = tmp.path().join("outside.safetensors");
    std::fs::rename(dir.join("model-00001-of-00009.safetensors"), &outside).expect("move");
    std::os::unix::fs::symlink(&outside, dir.join("model-00001-of-00009.safetensors"))
        .expect("symlink");
    assert_invalid(
        &score(&dir, &text_data(), 64, &[]),
        "model.safetensors.index.json",
        "inside the checkpoint directory",
    );
}

#[test]
fn config_over_the_phase_limits_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let limits = tmp.path().join("limits.json");
    std::fs::write(
        &limits,
        json!({"architecture": "llama", "vocab_size": 256, "max_parameters": 100_000, "min_context": 64}).to_string(),
    )
    .expect("write");
    let lim = limits.to_str().expect("utf-8");
    let r = score(
        &fixtures().join("trained_sharded"),
        &text_data(),
        64,
        &["--limits", lim],
    );
    assert_invalid(
        &r,
        "config.json",
        "106816 parameters exceed the phase cap of 100000",
    );

    // A config claiming an enormous model is refused from the config alone.
    let (_tmp, dir) = copy_fixture("mha");
    let cfg_path = dir.join("config.json");
    let mut cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).expect("cfg")).expect("json");
    cfg["hidden_size"] = json!(65536);
    cfg["num_hidden_layers"] = json!(1024);
    cfg["num_attention_heads"] = json!(512);
    cfg["num_key_value_heads"] = json!(512);
    cfg["intermediate_size"] = json!(1 << 20);
    std::fs::write(&cfg_path, cfg.to_string()).expect("write");
    assert_invalid(
        &score(&dir, &text_data(), 64, &["--limits", lim]),
        "config.json",
        "exceed the phase cap",
    );
    // Without limits, it fails on the first tensor whose shape disagrees, still before allocating.
    assert_invalid(
        &score(&dir, &text_data(), 64, &[]),
        "model.safetensors",
        "has shape",
    );
}

#[test]
fn unsupported_configs_are_refused() {
    for (key, value, needle) in [
        ("model_type", json!("mistral"), "model_type `mistral`"),
        (
            "rope_parameters",
            json!({"rope_type": "yarn", "factor": 4.0, "rope_theta": 10000.0}),
            "rope type `yarn`",
        ),
        ("hidden_act", json!("gelu"), "hidden_act `gelu`"),
        ("attention_bias", json!(true), "attention_bias"),
    ] {
        let (_tmp, dir) = copy_fixture("mha");
        let cfg_path = dir.join("config.json");
        let mut cfg: Value =
            serde_json::from_str(&std::fs::read_to_string(&cfg_path).expect("cfg")).expect("json");
        cfg[key] = value;
        std::fs::write(&cfg_path, cfg.to_string()).expect("write");
        assert_invalid(&score(&dir, &text_data(), 64, &[]), "config.json", needle);
    }
}

// ---------------------------------------------------------------- hostile data and requests

#[test]
fn hostile_data_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let model = fixtures().join("mha");
    let good = encode(&(0..200).map(|i| i % 256).collect::<Vec<u32>>(), false).expect("encode");

    let mut bad_magic = good.clone();
    bad_magic[..4].copy_from_slice(&1234i32.to_le_bytes());
    let p = write_data(tmp.path(), "magic.bin", &bad_magic);
    assert_invalid(
        &score(&model, &p, 64, &[]),
        "magic.bin",
        "magic number is 1234",
    );

    let p = write_data(tmp.path(), "short.bin", &good[..good.len() - 3]);
    assert_invalid(&score(&model, &p, 64, &[]), "short.bin", "truncated");

    let mut trailing = good.clone();
    trailing.extend_from_slice(&[1, 2, 3, 4]);
    let p = write_data(tmp.path(), "trailing.bin", &trailing);
    assert_invalid(
        &score(&model, &p, 64, &[]),
        "trailing.bin",
        "4 bytes after the 200 tokens",
    );

    let p = write_data(
        tmp.path(),
        "range.bin",
        &encode(&[1, 2, 256, 3], false).expect("encode"),
    );
    assert_invalid(
        &score(&model, &p, 2, &[]),
        "range.bin",
        "token 256 at position 2 is out of range",
    );

    let p = write_data(
        tmp.path(),
        "wide.bin",
        &encode(&[1, 2, 70_000, 3], true).expect("encode"),
    );
    assert_invalid(&score(&model, &p, 2, &[]), "wide.bin", "token 70000");

    let p = write_data(
        tmp.path(),
        "tiny.bin",
        &encode(&[1, 2, 3], false).expect("encode"),
    );
    assert_invalid(
        &score(&model, &p, 64, &[]),
        "tiny.bin",
        "shorter than one window",
    );

    let p = write_data(tmp.path(), "header.bin", &good[..500]);
    assert_invalid(
        &score(&model, &p, 64, &[]),
        "header.bin",
        "shorter than the 1024-byte",
    );
}

#[test]
fn invalid_requests_are_refused() {
    let model = fixtures().join("mha");
    let data = text_data();
    assert_invalid(&score(&model, &data, 1, &[]), "text_u16.bin", "below 2");
    assert_invalid(
        &score(&model, &data, 129, &[]),
        "config.json",
        "max_position_embeddings of 128",
    );
    assert_invalid(
        &score(&model, &data, 64, &["--windows", "0"]),
        "text_u16.bin",
        "--windows 0",
    );
    assert_invalid(
        &score(&model, &data, 64, &["--windows", "18"]),
        "text_u16.bin",
        "17 windows",
    );
    assert_invalid(
        &score(&model, &data, 64, &["--batch", "0"]),
        "text_u16.bin",
        "--batch",
    );
    let r = score(&model, &data, 64, &["--device", "cuda"]);
    if !cfg!(feature = "cuda") {
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(
            r.stderr.contains("without the `cuda` feature"),
            "{}",
            r.stderr
        );
    }
    for (devices, needle) in [
        ("gpu", "not a device"),
        ("cuda:x", "not a device"),
        ("cpu,cuda", "the CPU cannot be one of several devices"),
    ] {
        let r = score(&model, &data, 64, &["--device", devices]);
        assert_eq!(r.code, 2, "{devices}: {}", r.stderr);
        assert!(r.stderr.contains(needle), "{devices}: {}", r.stderr);
    }
    if !cfg!(feature = "cuda") {
        let r = score(&model, &data, 64, &["--device", "cuda:0,cuda:1"]);
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(
            r.stderr.contains("without the `cuda` feature"),
            "{}",
            r.stderr
        );
    }
    // An absurd batch is clamped to the windows requested, not allocated.
    let r = score(
        &model,
        &data,
        64,
        &["--batch", "1000000000000", "--windows", "2"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = score(&model, &data, 64, &["--dtype", "f64"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = run(&[
        "score",
        "--model",
        "/nonexistent/model",
        "--data",
        "x",
        "--seq-len",
        "4",
    ]);
    assert_invalid(&r, "/nonexistent/model", "no such file");
}

#[test]
fn overflow_in_f16_is_reported_not_scored() {
    // Embeddings of magnitude ~1e5 are fine in f32 (RMSNorm rescales them) but
    // overflow f16's 65504: the f16 score must be refused, not reported as NaN.
    let (_tmp, dir) = copy_fixture("mha");
    let path = dir.join("model.safetensors");
    let mut tensors = read_tensors(&path);
    let embed = tensors
        .iter_mut()
        .find(|t| t.0 == "model.embed_tokens.weight")
        .expect("embed");
    embed.3 = embed
        .3
        .chunks_exact(4)
        .flat_map(|c| (f32::from_le_bytes([c[0], c[1], c[2], c[3]]) * 1e6).to_le_bytes())
        .collect();
    write_tensors(&path, &tensors);
    let ok = score(&dir, &text_data(), 64, &["--windows", "2", "--json"]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let r = score(
        &dir,
        &text_data(),
        64,
        &["--windows", "2", "--dtype", "f16"],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("not finite when computed in f16"),
        "{}",
        r.stderr
    );
}

#[test]
fn usage_errors_and_help() {
    let help = run(&["--help"]);
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("score"), "{}", help.stdout);
    let score_help = run(&["score", "--help"]);
    assert_eq!(score_help.code, 0);
    for flag in [
        "--model",
        "--data",
        "--seq-len",
        "--windows",
        "--batch",
        "--dtype",
        "--device",
        "--json",
    ] {
        assert!(
            score_help.stdout.contains(flag),
            "{flag} in {}",
            score_help.stdout
        );
    }
    assert_eq!(run(&["frobnicate"]).code, 2);
    assert_eq!(
        run(&["score", "--model", "x"]).code,
        2,
        "missing --data and --seq-len"
    );
    assert_eq!(run(&[]).code, 2);
}

#[test]
fn logs_go_to_stderr_and_json_stays_clean() {
    let out = Command::new(BIN)
        .args([
            "score",
            "--json",
            "--seq-len",
            "64",
            "--windows",
            "1",
            "--model",
        ])
        .arg(fixtures().join("tied"))
        .arg("--data")
        .arg(text_data())
        .env("ASCENT_LOG", "info")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("checkpoint validated and loaded"),
        "{stderr}"
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("stdout is exactly one JSON object");
    assert_eq!(v["windows"], 1);
}

#[test]
fn validate_reports_what_score_would_and_refuses_the_same() {
    let model = fixtures().join("trained_sharded");
    let m = model.to_str().expect("utf-8");
    let v = run(&["validate", "--model", m, "--json"]);
    assert_eq!(v.code, 0, "{}", v.stderr);
    let v: Value = serde_json::from_str(&v.stdout).expect("json");
    assert_eq!(v["valid"], true);
    assert_eq!(v["parameters"], 106_816);
    let s = score(&model, &text_data(), 64, &["--windows", "1", "--json"]);
    let s: Value = serde_json::from_str(&s.stdout).expect("json");
    assert_eq!(v["weights_sha256"], s["weights_sha256"]);

    let (_tmp, dir) = copy_fixture("mha");
    let path = dir.join("model.safetensors");
    let mut tensors = read_tensors(&path);
    tensors[3].3[0..4].copy_from_slice(&f32::INFINITY.to_le_bytes());
    write_tensors(&path, &tensors);
    let r = run(&["validate", "--model", dir.to_str().expect("utf-8")]);
    assert_invalid(&r, "model.safetensors", "NaN or infinite");
}
