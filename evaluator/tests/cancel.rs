//! The cancellation flag a worker sets (lost lease, time limit, shutdown) stops scoring
//! between batches, on a real fixture checkpoint.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use ascent_evaluator::checkpoint::{self, Residency};
use ascent_evaluator::evaluate::{evaluate, Evaluation};
use ascent_evaluator::model::Llama;
use ascent_evaluator::score::{score, ScoreRequest};
use ascent_evaluator::shard::TokenShard;
use ascent_evaluator::EvalError;
use candle_core::{DType, Device};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn request() -> ScoreRequest {
    ScoreRequest {
        seq_len: 64,
        windows: Some(6),
        batch: 1,
        split: None,
    }
}

#[test]
fn a_cancel_between_batches_stops_score() {
    let ck = checkpoint::load(
        &fixtures().join("mha"),
        None,
        DType::F32,
        &[Device::Cpu],
        Residency::Resident,
    )
    .expect("fixture loads");
    let model = Llama::from_checkpoint(ck).expect("model");
    let shard = TokenShard::open(&fixtures().join("text_u16.bin")).expect("shard");
    let cancel = AtomicBool::new(false);
    let mut batches = 0;
    let result = score(&model, &shard, &request(), 6, Some(&cancel), &mut |_| {
        batches += 1;
        // Cancel after the second batch, as a heartbeat thread would.
        if batches == 2 {
            cancel.store(true, Ordering::Relaxed);
        }
    });
    assert!(matches!(result, Err(EvalError::Cancelled)), "{result:?}");
    assert_eq!(batches, 2, "no batch runs after the flag is set");

    // Without a cancel the same request scores every window.
    let mut batches = 0;
    let whole = score(&model, &shard, &request(), 6, None, &mut |_| batches += 1).expect("score");
    assert_eq!((batches, whole.window_nll.len()), (6, 6));
}

#[test]
fn a_cancelled_evaluation_does_not_load_and_is_not_the_inputs_fault() {
    let cancel = AtomicBool::new(true);
    let model_dir = fixtures().join("mha");
    let data = fixtures().join("text_u16.bin");
    let evaluation = Evaluation {
        model_dir: &model_dir,
        data: &data,
        request: request(),
        limits: None,
        dtype: DType::F32,
        devices: &[Device::Cpu],
        residency: Residency::Resident,
        cancel: Some(&cancel),
    };
    let mut progressed = false;
    let e = evaluate(&evaluation, &mut |_, _| progressed = true).expect_err("cancelled");
    assert!(matches!(e, EvalError::Cancelled), "{e}");
    assert!(!progressed);
    assert!(!e.is_invalid_input());
    assert_eq!(e.exit_code(), 1);
}
