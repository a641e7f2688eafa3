//! Golden tests: losses from our candle forward against transformers' (PyTorch, float32,
//! eager attention), on the checkpoints in `tests/fixtures/` written by
//! `scripts/golden/generate`. No Python is needed to run them.

use std::path::{Path, PathBuf};

use ascent_evaluator::checkpoint::{self, Residency};
use ascent_evaluator::loss::window_nll;
use ascent_evaluator::model::Llama;
use ascent_evaluator::score::{plan_windows, score, ScoreRequest};
use ascent_evaluator::shard::TokenShard;
use candle_core::{DType, Device, Tensor};
use serde::Deserialize;

#[derive(Deserialize)]
struct References {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    model: String,
    data: String,
    seq_len: usize,
    windows: usize,
    loss: f64,
    loss_bf16_compute: Option<f64>,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn references() -> Vec<Case> {
    let text = std::fs::read_to_string(fixtures().join("references.json")).expect("references");
    serde_json::from_str::<References>(&text)
        .expect("references parse")
        .cases
}

fn model(name: &str, dtype: DType, residency: Residency) -> Llama {
    let ck = checkpoint::load(
        &fixtures().join(name),
        None,
        dtype,
        &[Device::Cpu],
        residency,
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    Llama::from_checkpoint(ck).expect("model")
}

fn our_loss(case: &Case, dtype: DType, batch: usize) -> f64 {
    our_loss_with(case, dtype, batch, Residency::Resident)
}

fn our_loss_with(case: &Case, dtype: DType, batch: usize, residency: Residency) -> f64 {
    loss_of(&model(&case.model, dtype, residency), case, batch)
}

fn loss_of(model: &Llama, case: &Case, batch: usize) -> f64 {
    let shard = TokenShard::open(&fixtures().join(&case.data)).expect("shard");
    shard
        .check_vocab(model.config().vocab_size)
        .expect("tokens in range");
    let request = ScoreRequest {
        seq_len: case.seq_len,
        windows: Some(case.windows),
        batch,
        split: None,
    };
    let windows = plan_windows(
        &request,
        model.config().max_position_embeddings,
        Path::new("config.json"),
        shard.path(),
        shard.len(),
    )
    .expect("plan");
    let s = score(model, &shard, &request, windows, None, &mut |_| {}).expect("score");
    assert_eq!(s.tokens_scored, (case.windows * (case.seq_len - 1)) as u64);
    s.loss
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

#[test]
fn f32_matches_transformers_within_1e_4() {
    let cases = references();
    assert!(cases.len() >= 8, "every fixture family is covered");
    for case in &cases {
        let ours = our_loss(case, DType::F32, 4);
        let err = rel(ours, case.loss);
        println!(
            "{:16} N={:3} ours {ours:.7} transformers {:.7} rel {err:.2e}",
            case.model, case.seq_len, case.loss
        );
        assert!(
            err < 1e-4,
            "{}: {ours} vs {} (rel {err:e})",
            case.model,
            case.loss
        );
    }
}

/// Streaming the layers (`--stream-layers`) runs the same operations on the same values
/// as keeping them resident: the loss is bit-identical (every fixture in f32; bf16, which
/// converts while streaming, on the bf16-stored and the sharded ones).
#[test]
fn streamed_layers_score_exactly_as_resident_ones() {
    for case in &references() {
        let bf16 = ["trained_bf16", "trained_sharded"].contains(&case.model.as_str());
        let dtypes: &[DType] = if bf16 {
            &[DType::F32, DType::BF16]
        } else {
            &[DType::F32]
        };
        for &dtype in dtypes {
            let resident = our_loss_with(case, dtype, 4, Residency::Resident);
            let streamed = our_loss_with(case, dtype, 4, Residency::Streamed);
            assert_eq!(
                resident.to_bits(),
                streamed.to_bits(),
                "{} {dtype:?}: {resident} vs {streamed}",
                case.model
            );
        }
    }
}

/// Streamed layers really stay in the files, and a file written in place after it was
/// hashed stops the run instead of being scored.
#[test]
fn streamed_layers_stay_in_the_files_and_are_not_changed_under_the_score() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("mha");
    std::fs::create_dir(&dir).expect("mkdir");
    for name in ["config.json", "model.safetensors"] {
        std::fs::copy(fixtures().join("mha").join(name), dir.join(name)).expect("copy");
    }
    let ck = checkpoint::load(&dir, None, DType::F32, &[Device::Cpu], Residency::Streamed)
        .expect("load");
    assert!(ck.layers.is_some());
    assert!(ck.weights.keys().all(|k| !k.starts_with("model.layers.")));
    assert!(ck.weights.contains_key("model.embed_tokens.weight"));
    let model = Llama::from_checkpoint(ck).expect("model");
    let ids = Tensor::new(&[[1u32, 2, 3, 4]], &Device::Cpu).expect("ids");
    model.forward(&ids).expect("scores while unchanged");

    // Rewritten in place (same length, a weight's byte flipped), in a later clock tick.
    std::thread::sleep(std::time::Duration::from_millis(50));
    let path = dir.join("model.safetensors");
    let mut bytes = std::fs::read(&path).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&path, &bytes).expect("rewrite");
    let e = model.forward(&ids).expect_err("changed");
    assert!(e.to_string().contains("changed on disk"), "{e}");
}

/// A model split across several devices in pipeline stages scores exactly as on one:
/// tied and untied heads, resident and streamed layers. (On CPU the stages' copies are
/// no-ops; `scripts/gpu-check` runs the split across GPUs.)
#[test]
fn a_model_split_across_devices_scores_as_on_one() {
    for case in references()
        .iter()
        .filter(|c| ["tied", "gqa_llama3"].contains(&c.model.as_str()))
    {
        let one = our_loss(case, DType::F32, 3);
        for residency in [Residency::Resident, Residency::Streamed] {
            let devices = vec![Device::Cpu; 3];
            let ck = checkpoint::load(
                &fixtures().join(&case.model),
                None,
                DType::F32,
                &devices,
                residency,
            )
            .expect("load");
            assert_eq!(
                ck.placement.devices_used(),
                3,
                "{}: {:?}",
                case.model,
                ck.placement
            );
            if let Residency::Resident = residency {
                // Every weight is on the device its stage names (all CPU here, so
                // what is checked is that each name maps into the list).
                for name in ck.weights.keys() {
                    assert!(ck.placement.of_tensor(name) < 3, "{name}");
                }
            }
            let model = Llama::from_checkpoint(ck).expect("model");
            assert_eq!(model.devices().len(), 3);
            let split = loss_of(&model, case, 3);
            assert_eq!(
                split, one,
                "{} {residency:?}: split {split} against {one}",
                case.model
            );
        }
    }
}

#[test]
fn batch_size_does_not_change_the_loss() {
    for case in references()
        .iter()
        .filter(|c| ["mha", "gqa_llama3"].contains(&c.model.as_str()))
    {
        let one = our_loss(case, DType::F32, 1);
        let eight = our_loss(case, DType::F32, 8);
        let three = our_loss(case, DType::F32, 3);
        assert!(rel(one, eight) < 1e-6, "{}: {one} vs {eight}", case.model);
        assert!(rel(one, three) < 1e-6, "{}: {one} vs {three}", case.model);
    }
}

/// bf16 carries 8 significant bits (relative step 2^-8 ≈ 3.9e-3) and every matmul
/// output, activation and residual is rounded to it, so our bf16 compute and
/// transformers' bf16 compute differ from each other and from the f32 reference by
/// roughly that rounding compounded over the layers. 2e-2 relative is about five
/// rounding steps: tight enough to catch a wrong formula (which moves the loss by tens
/// of percent), loose enough for legitimate differences in rounding order.
#[test]
fn bf16_compute_is_close() {
    for case in references()
        .iter()
        .filter(|c| c.loss_bf16_compute.is_some())
    {
        let ours = our_loss(case, DType::BF16, 4);
        let theirs = case.loss_bf16_compute.unwrap_or(f64::NAN);
        println!(
            "{:16} bf16 ours {ours:.6} transformers-bf16 {theirs:.6} f32-ref {:.6}",
            case.model, case.loss
        );
        assert!(
            rel(ours, case.loss) < 2e-2,
            "{}: {ours} vs f32 {}",
            case.model,
            case.loss
        );
        assert!(
            rel(ours, theirs) < 2e-2,
            "{}: {ours} vs bf16 {theirs}",
            case.model
        );
        // f16 has 11 significant bits; the same argument gives a tighter bound.
        let f16 = our_loss(case, DType::F16, 4);
        assert!(
            rel(f16, case.loss) < 5e-3,
            "{}: f16 {f16} vs {}",
            case.model,
            case.loss
        );
    }
}

/// The chunked cross-entropy equals one computed from the full logits, however small
/// the chunks (including chunks that split a window).
#[test]
fn chunked_loss_equals_full_logits() {
    let model = model("vocab70k_u32", DType::F32, Residency::Resident);
    let shard = TokenShard::open(&fixtures().join("random_u32.bin")).expect("shard");
    let (b, t) = (3, 40);
    let mut tokens = Vec::new();
    shard.extend_window(0, b * t, &mut tokens);

    let ids = Tensor::from_slice(&tokens, (b, t), &Device::Cpu).expect("ids");
    let logits = model.forward(&ids).expect("forward"); // [b, t, vocab]
    let logits: Vec<Vec<Vec<f32>>> = logits.to_vec3().expect("to_vec3");
    let mut direct = vec![0f64; b];
    for w in 0..b {
        for p in 0..t - 1 {
            let row = &logits[w][p];
            let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
            let lse = max
                + row
                    .iter()
                    .map(|&v| (v as f64 - max).exp())
                    .sum::<f64>()
                    .ln();
            direct[w] += lse - row[tokens[w * t + p + 1] as usize] as f64;
        }
    }
    // Rows per chunk: 5 and 39 split windows of 39 predicted positions mid-way and at
    // their boundaries; 1000 is one chunk for everything.
    for chunk in [5, 39, 1000] {
        let chunked = window_nll(&model, &tokens, b, t, chunk).expect("nll");
        for w in 0..b {
            assert!(
                rel(chunked[w], direct[w]) < 1e-5,
                "chunk {chunk}: {chunked:?} vs {direct:?}"
            );
        }
    }
}

#[test]
fn parameter_counts_are_exact() {
    let dir = fixtures().join("trained_sharded");
    let index: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("model.safetensors.index.json")).expect("index"),
    )
    .expect("json");
    let ck = checkpoint::load(&dir, None, DType::F32, &[Device::Cpu], Residency::Resident)
        .expect("load");
    assert_eq!(
        Some(ck.parameters),
        index["metadata"]["total_parameters"].as_u64()
    );
    // Tied: the embedding is counted once (vocab 70000 × hidden 16 dominates).
    let tied = checkpoint::load(
        &fixtures().join("vocab70k_u32"),
        None,
        DType::F32,
        &[Device::Cpu],
        Residency::Resident,
    )
    .expect("load");
    let per_layer = 2 * 16 + 16 * 16 + 2 * 16 * 8 + 16 * 16 + 3 * 16 * 32;
    assert_eq!(tied.parameters, 70_000 * 16 + per_layer + 16);
}

/// The same weights with the config written the transformers-4 way (`rope_theta` at the
/// top level, llama3 scaling under `rope_scaling` with the old `type` key) score the same.
#[test]
fn transformers_4_style_config_scores_the_same() {
    let case = references()
        .into_iter()
        .find(|c| c.model == "gqa_llama3" && c.seq_len == 96)
        .expect("case");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("gqa_llama3");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::copy(
        fixtures().join("gqa_llama3/model.safetensors"),
        dir.join("model.safetensors"),
    )
    .expect("copy");
    let mut cfg: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("gqa_llama3/config.json")).expect("config"),
    )
    .expect("json");
    let mut rope = cfg["rope_parameters"].take();
    let obj = cfg.as_object_mut().expect("object");
    obj.remove("rope_parameters");
    obj.insert("rope_theta".into(), rope["rope_theta"].take());
    let rope = rope.as_object_mut().expect("rope object");
    rope.remove("rope_theta");
    let kind = rope.remove("rope_type").expect("rope_type");
    rope.insert("type".into(), kind);
    obj.insert(
        "rope_scaling".into(),
        serde_json::Value::Object(rope.clone()),
    );
    std::fs::write(dir.join("config.json"), cfg.to_string()).expect("write");

    let ck = checkpoint::load(&dir, None, DType::F32, &[Device::Cpu], Residency::Resident)
        .expect("load");
    assert!(ck.config.rope_scaling.is_some());
    assert_eq!(ck.config.rope_theta, 500000.0);
    let model = Llama::from_checkpoint(ck).expect("model");
    let shard = TokenShard::open(&fixtures().join(&case.data)).expect("shard");
    let request = ScoreRequest {
        seq_len: case.seq_len,
        windows: Some(case.windows),
        batch: 6,
        split: None,
    };
    let s = score(&model, &shard, &request, case.windows, None, &mut |_| {}).expect("score");
    assert!(rel(s.loss, case.loss) < 1e-4, "{} vs {}", s.loss, case.loss);
}
