//! The scoring protocol.
//!
//! The data is cut into consecutive non-overlapping windows of N tokens from token 0 and
//! the tail shorter than N is dropped. In each window positions 1..N-1 are predicted
//! causally; the score is the mean cross-entropy in nats over all predicted tokens (equal
//! to the mean over windows of transformers' `model(w, labels=w).loss`, since every
//! window predicts the same number of tokens). Windows are assigned to the public or
//! private part by [`crate::split`], and each part's loss is reported beside the whole.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use crate::error::{EvalError, Result};
use crate::loss::{chunk_rows, window_nll};
use crate::model::Llama;
use crate::shard::TokenShard;
use crate::split::{window_part, Part};

/// How to split windows into public and private parts.
#[derive(Debug, Clone)]
pub struct SplitSpec {
    pub secret: Vec<u8>,
    pub public_share: f64,
}

/// What to score.
#[derive(Debug, Clone)]
pub struct ScoreRequest {
    /// Window length N.
    pub seq_len: usize,
    /// Score only the first K windows; all that fit when `None`.
    pub windows: Option<usize>,
    /// Windows per forward pass. Does not change the result.
    pub batch: usize,
    pub split: Option<SplitSpec>,
}

/// The loss of a set of windows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PartScore {
    /// Mean cross-entropy in nats per predicted token.
    pub loss: f64,
    pub windows: usize,
    pub tokens_scored: u64,
}

/// The result of scoring a checkpoint on a token shard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    /// Mean cross-entropy in nats per predicted token, over all windows.
    pub loss: f64,
    /// e^loss.
    pub perplexity: f64,
    /// loss / ln 2.
    pub bits_per_token: f64,
    /// windows × (N − 1).
    pub tokens_scored: u64,
    pub windows: usize,
    pub seq_len: usize,
    /// Loss over the public windows (absent without a split, or when none is public).
    pub public: Option<PartScore>,
    /// Loss over the private windows (absent without a split, or when none is private).
    pub private: Option<PartScore>,
    /// Sum of the cross-entropy over each window's predicted tokens, in window order:
    /// what a worker reports, so the server can split the windows with a secret the
    /// worker never sees.
    #[serde(skip)]
    pub window_nll: Vec<f64>,
}

/// Checks a request against the model's context and the data; returns the number of
/// windows to score.
pub fn plan_windows(
    request: &ScoreRequest,
    max_positions: usize,
    config_path: &Path,
    data_path: &Path,
    tokens: usize,
) -> Result<usize> {
    let n = request.seq_len;
    if n < 2 {
        return Err(EvalError::Protocol {
            path: data_path.to_owned(),
            message: format!("--seq-len {n} is below 2; a window must predict at least one token"),
        });
    }
    if n > max_positions {
        return Err(EvalError::Protocol {
            path: config_path.to_owned(),
            message: format!(
                "--seq-len {n} exceeds the model's max_position_embeddings of {max_positions}"
            ),
        });
    }
    if request.batch == 0 {
        return Err(EvalError::Protocol {
            path: data_path.to_owned(),
            message: "--batch must be at least 1".into(),
        });
    }
    let available = tokens / n;
    if available == 0 {
        return Err(EvalError::Protocol {
            path: data_path.to_owned(),
            message: format!("{tokens} tokens are shorter than one window of {n}"),
        });
    }
    match request.windows {
        None => Ok(available),
        Some(0) => Err(EvalError::Protocol {
            path: data_path.to_owned(),
            message: "--windows 0 scores nothing; ask for at least one window".into(),
        }),
        Some(k) if k > available => Err(EvalError::Protocol {
            path: data_path.to_owned(),
            message: format!(
                "--windows {k} is more than the {available} windows of {n} tokens the data holds ({tokens} tokens)"
            ),
        }),
        Some(k) => Ok(k),
    }
}

/// Scores `windows` windows of `shard` with `model`, calling `progress` with the number
/// of windows done after each batch. When `cancel` is set (checked before every batch)
/// the run stops with [`EvalError::Cancelled`].
pub fn score(
    model: &Llama,
    shard: &TokenShard,
    request: &ScoreRequest,
    windows: usize,
    cancel: Option<&AtomicBool>,
    progress: &mut dyn FnMut(usize),
) -> Result<Score> {
    let n = request.seq_len;
    let mut nll = Vec::with_capacity(windows);
    // Never more than the windows requested, whatever --batch says.
    let mut tokens = Vec::with_capacity(request.batch.min(windows) * n);
    let mut first = 0;
    while first < windows {
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(EvalError::Cancelled);
        }
        let count = request.batch.min(windows - first);
        tokens.clear();
        shard.extend_window(first * n, count * n, &mut tokens);
        let rows = chunk_rows(model.head_device(), model.config().vocab_size);
        let sums = window_nll(model, &tokens, count, n, rows)?;
        if let Some(bad) = sums.iter().position(|v| !v.is_finite()) {
            return Err(EvalError::NonFiniteLoss {
                dtype: format!("{:?}", model.dtype()).to_lowercase(),
                window: first + bad,
            });
        }
        nll.extend(sums);
        first += count;
        progress(first);
    }
    Ok(summarize(&nll, n, request.split.as_ref()))
}

/// Turns per-window loss sums into a score. Pure: the same sums give the same score.
pub fn summarize(window_nll: &[f64], seq_len: usize, split: Option<&SplitSpec>) -> Score {
    let predicted = seq_len.saturating_sub(1) as u64;
    let part = |windows: &[f64]| -> Option<PartScore> {
        if windows.is_empty() {
            return None;
        }
        let tokens = windows.len() as u64 * predicted;
        Some(PartScore {
            loss: windows.iter().sum::<f64>() / tokens as f64,
            windows: windows.len(),
            tokens_scored: tokens,
        })
    };
    let whole = part(window_nll).unwrap_or(PartScore {
        loss: f64::NAN,
        windows: 0,
        tokens_scored: 0,
    });
    let (public, private) = match split {
        None => (None, None),
        Some(spec) => {
            let mut public = Vec::new();
            let mut private = Vec::new();
            for (i, &v) in window_nll.iter().enumerate() {
                match window_part(&spec.secret, i as u64, spec.public_share) {
                    Part::Public => public.push(v),
                    Part::Private => private.push(v),
                }
            }
            (part(&public), part(&private))
        }
    };
    Score {
        loss: whole.loss,
        perplexity: whole.loss.exp(),
        bits_per_token: whole.loss / std::f64::consts::LN_2,
        tokens_scored: whole.tokens_scored,
        windows: whole.windows,
        seq_len,
        public,
        private,
        window_nll: window_nll.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(seq_len: usize, windows: Option<usize>) -> ScoreRequest {
        ScoreRequest {
            seq_len,
            windows,
            batch: 4,
            split: None,
        }
    }

    fn plan(seq_len: usize, windows: Option<usize>, tokens: usize) -> Result<usize> {
        plan_windows(
            &request(seq_len, windows),
            128,
            Path::new("config.json"),
            Path::new("data.bin"),
            tokens,
        )
    }

    #[test]
    fn windows_drop_the_tail() {
        assert_eq!(plan(10, None, 105).expect("ok"), 10);
        assert_eq!(plan(10, Some(3), 105).expect("ok"), 3);
        assert_eq!(plan(2, None, 5).expect("ok"), 2);
    }

    #[test]
    fn invalid_requests_are_refused() {
        assert!(plan(1, None, 100).is_err());
        assert!(plan(129, None, 1000).is_err());
        assert!(plan(10, Some(0), 100).is_err());
        assert!(plan(10, Some(11), 105).is_err());
        let e = plan(10, None, 9).expect_err("too short");
        assert!(e.to_string().contains("shorter than one window"), "{e}");
        assert!(e.is_invalid_input());
    }

    #[test]
    fn summary_weights_every_token_equally() {
        // Two windows of 5 tokens (4 predicted each): sums 4.0 and 8.0 nats.
        let s = summarize(&[4.0, 8.0], 5, None);
        assert_eq!(s.tokens_scored, 8);
        assert!((s.loss - 1.5).abs() < 1e-12);
        assert!((s.perplexity - 1.5f64.exp()).abs() < 1e-12);
        assert!((s.bits_per_token - 1.5 / std::f64::consts::LN_2).abs() < 1e-12);
        assert!(s.public.is_none() && s.private.is_none());
    }

    #[test]
    fn split_partitions_the_windows() {
        let sums: Vec<f64> = (0..50).map(|i| i as f64).collect();
        let spec = SplitSpec {
            secret: b"phase".to_vec(),
            public_share: 0.3,
        };
        let s = summarize(&sums, 3, Some(&spec));
        let public = s.public.expect("some public");
        let private = s.private.expect("some private");
        assert_eq!(public.windows + private.windows, 50);
        let recombined = (public.loss * public.tokens_scored as f64
            + private.loss * private.tokens_scored as f64)
            / s.tokens_scored as f64;
        assert!((recombined - s.loss).abs() < 1e-12);
    }
}
