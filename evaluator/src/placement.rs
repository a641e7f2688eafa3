//! Scoring one model on several devices: which device holds which weights.
//!
//! A model too large for one GPU is split into **pipeline stages**: consecutive parts of
//! the model, each on its own device, run one after another. The hidden states move from
//! one device to the next at each boundary (a device-to-device copy of
//! `[windows × sequence, hidden]` values, small beside a layer's weights); nothing else
//! crosses. The stages do not overlap in time, so this buys memory, not speed: a model
//! needing four GPUs' memory runs at about one GPU's speed. Throughput comes from running
//! more workers.
//!
//! The split balances weights, not activations: the parts in order are the embedding,
//! each transformer layer, and (untied) the final norm with the LM head; they are cut
//! into at most one contiguous group per device so that the largest group is as small as
//! it can be ([`balanced_split`]). With tied embeddings the LM head is the embedding's
//! own tensor: the last hidden states go back to the first device for it, and no weight
//! is held twice.

use candle_core::Device;

use crate::config::LlamaConfig;
use crate::error::{EvalError, Result};

/// Most devices one evaluation may use.
pub const MAX_DEVICES: usize = 16;

/// Which device (an index into the evaluation's device list) holds each part of a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The token embedding; always the first device, where the token ids are.
    pub embed: usize,
    /// Each transformer layer's weights.
    pub layers: Vec<usize>,
    /// The final RMSNorm: with the last layer.
    pub norm: usize,
    /// The LM head, where the loss is computed: the embedding's device when tied.
    pub head: usize,
}

impl Placement {
    /// The split of `config`'s weights over `devices` devices (at least one) that makes
    /// the largest device's share as small as it can be. Fewer devices are used when
    /// the model has fewer parts than that.
    pub fn plan(config: &LlamaConfig, devices: usize) -> Placement {
        let h = config.hidden_size as u64;
        let embedding = config.vocab_size as u64 * h;
        let layer = config.layer_parameters();
        let mut parts = vec![embedding];
        parts.extend(std::iter::repeat_n(layer, config.num_hidden_layers));
        if !config.tie_word_embeddings {
            // The final norm travels with the head it feeds.
            parts.push(embedding + h);
        }
        let group = balanced_split(&parts, devices.max(1));
        let layers = group[1..=config.num_hidden_layers].to_vec();
        let (norm, head) = if config.tie_word_embeddings {
            // The head is the embedding; the norm stays with the last layer.
            (layers.last().copied().unwrap_or(group[0]), group[0])
        } else {
            (group[parts.len() - 1], group[parts.len() - 1])
        };
        Placement {
            embed: group[0],
            layers,
            norm,
            head,
        }
    }

    /// The device of tensor `name` (a Hugging Face Llama name, as validated).
    pub fn of_tensor(&self, name: &str) -> usize {
        if let Some(rest) = name.strip_prefix("model.layers.") {
            let layer = rest.split('.').next().and_then(|l| l.parse::<usize>().ok());
            if let Some(&device) = layer.and_then(|l| self.layers.get(l)) {
                return device;
            }
        }
        match name {
            "model.norm.weight" => self.norm,
            "lm_head.weight" => self.head,
            _ => self.embed,
        }
    }

    /// How many devices hold weights (the highest index used, plus one).
    pub fn devices_used(&self) -> usize {
        let highest = self.layers.iter().copied().max().unwrap_or(0);
        highest.max(self.embed).max(self.norm).max(self.head) + 1
    }
}

/// Cuts `weights` (in order) into at most `parts` contiguous groups so that the largest
/// group's sum is the smallest possible, and returns each item's group (0, 1, ...; never
/// decreasing). Groups are filled greedily up to that smallest bound, so later groups may
/// be empty when fewer suffice.
pub fn balanced_split(weights: &[u64], parts: usize) -> Vec<usize> {
    let parts = parts.max(1);
    let groups_for = |bound: u64| {
        let mut group = 0;
        let mut sum = 0u64;
        let mut of = Vec::with_capacity(weights.len());
        for &w in weights {
            if sum > 0 && sum.saturating_add(w) > bound {
                group += 1;
                sum = 0;
            }
            sum = sum.saturating_add(w);
            of.push(group);
        }
        of
    };
    let fits = |bound: u64| groups_for(bound).last().is_none_or(|&g| g < parts);
    // The smallest bound that fits lies between the largest item and the total.
    let (mut low, mut high) = (
        weights.iter().copied().max().unwrap_or(0),
        weights.iter().fold(0u64, |a, &w| a.saturating_add(w)),
    );
    while low < high {
        let mid = low + (high - low) / 2;
        if fits(mid) {
            high = mid;
        } else {
            low = mid + 1;
        }
    }
    groups_for(low)
}

/// The devices named by a `--device` value: `cpu`, `cuda` (the first GPU), `cuda:N`, or
/// several GPUs separated by commas (`cuda:0,cuda:1`) to split the model across them
/// (see the module documentation). Returns the GPU ordinals, or `None` for the CPU.
pub fn parse_devices(value: &str) -> std::result::Result<Option<Vec<usize>>, String> {
    let value = value.trim();
    if value == "cpu" {
        return Ok(None);
    }
    let mut ordinals = Vec::new();
    for item in value.split(',').map(str::trim) {
        let ordinal = match item {
            "cuda" => 0,
            "cpu" => {
                return Err(format!(
                    "`{value}`: the CPU cannot be one of several devices"
                ))
            }
            _ => item
                .strip_prefix("cuda:")
                .filter(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| format!("`{item}` is not a device: use cpu, cuda or cuda:N"))?,
        };
        ordinals.push(ordinal);
    }
    if ordinals.len() > MAX_DEVICES {
        return Err(format!(
            "{} devices named; at most {MAX_DEVICES}",
            ordinals.len()
        ));
    }
    Ok(Some(ordinals))
}

/// Opens the devices of a `--device` value ([`parse_devices`]).
pub fn open_devices(value: &str) -> Result<Vec<Device>> {
    let Some(ordinals) = parse_devices(value).map_err(EvalError::Unavailable)? else {
        return Ok(vec![Device::Cpu]);
    };
    if !cfg!(feature = "cuda") {
        return Err(EvalError::Unavailable(format!(
            "--device {value}: this ascent-eval was built without the `cuda` feature"
        )));
    }
    let mut seen = Vec::new();
    ordinals
        .into_iter()
        .map(|n| {
            if seen.contains(&n) {
                tracing::warn!(
                    ordinal = n,
                    "cuda:{n} is named twice: its stages share one GPU (a test of the split, no more memory)"
                );
            }
            seen.push(n);
            Device::new_cuda(n).map_err(|e| EvalError::Unavailable(format!("--device cuda:{n}: {e}")))
        })
        .collect()
}

/// How reports and the server name a device list: `cpu`, `cuda`, or `cuda ×N`.
pub fn describe(devices: &[Device]) -> String {
    match devices {
        [] | [Device::Cpu] => "cpu".to_owned(),
        [_] => "cuda".to_owned(),
        _ if devices.iter().all(Device::is_cpu) => format!("cpu ×{}", devices.len()),
        _ => format!("cuda ×{}", devices.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(layers: usize, tied: bool) -> LlamaConfig {
        let json = serde_json::json!({
            "model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
            "num_hidden_layers": layers, "num_attention_heads": 4, "num_key_value_heads": 2,
            "vocab_size": 256, "max_position_embeddings": 128, "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0, "hidden_act": "silu", "tie_word_embeddings": tied
        });
        LlamaConfig::from_json_bytes(
            std::path::Path::new("config.json"),
            json.to_string().as_bytes(),
        )
        .expect("valid config")
    }

    fn max_group(weights: &[u64], of: &[usize]) -> u64 {
        let mut sums = vec![0u64; of.iter().max().map_or(0, |m| m + 1)];
        for (w, &g) in weights.iter().zip(of) {
            sums[g] += w;
        }
        sums.into_iter().max().unwrap_or(0)
    }

    /// The smallest largest-group sum over every contiguous split, by brute force.
    fn best(weights: &[u64], parts: usize) -> u64 {
        let n = weights.len();
        let mut best = u64::MAX;
        // Each of the n-1 gaps between items is a cut or not.
        for cuts in 0u32..(1 << (n - 1)) {
            if cuts.count_ones() as usize + 1 > parts {
                continue;
            }
            let mut group = 0;
            let of: Vec<usize> = (0..n)
                .map(|i| {
                    if i > 0 && cuts & (1 << (i - 1)) != 0 {
                        group += 1;
                    }
                    group
                })
                .collect();
            best = best.min(max_group(weights, &of));
        }
        best
    }

    #[test]
    fn the_split_is_contiguous_within_bounds_and_optimal() {
        let cases: &[(&[u64], usize)] = &[
            (&[10, 1, 10], 2),
            (&[5, 5, 5, 5], 2),
            (&[5, 5, 5, 5], 3),
            (&[7, 2, 3, 9, 1, 1, 8], 3),
            (&[100, 1, 1, 1, 1, 1, 100], 4),
            (&[1, 2, 3], 8),
            (&[4], 3),
            (&[3, 3, 3, 3, 3, 3, 3, 3, 3, 12], 4),
        ];
        for &(weights, parts) in cases {
            let of = balanced_split(weights, parts);
            assert_eq!(of.len(), weights.len());
            assert_eq!(of[0], 0, "{weights:?}");
            assert!(
                of.windows(2).all(|w| w[1] == w[0] || w[1] == w[0] + 1),
                "{of:?}"
            );
            assert!(
                of.last().is_some_and(|&g| g < parts),
                "{weights:?} into {parts}: {of:?}"
            );
            assert_eq!(
                max_group(weights, &of),
                best(weights, parts),
                "{weights:?} into {parts}: {of:?}"
            );
        }
        assert_eq!(balanced_split(&[], 3), Vec::<usize>::new());
        assert_eq!(
            balanced_split(&[5, 5], 0),
            vec![0, 0],
            "zero parts means one"
        );
    }

    #[test]
    fn one_device_holds_everything() {
        for tied in [false, true] {
            let p = Placement::plan(&config(4, tied), 1);
            assert_eq!(
                p,
                Placement {
                    embed: 0,
                    layers: vec![0; 4],
                    norm: 0,
                    head: 0
                }
            );
            assert_eq!(p.devices_used(), 1);
        }
    }

    #[test]
    fn layers_are_shared_out_in_order_and_the_untied_head_goes_last() {
        let c = config(8, false);
        let p = Placement::plan(&c, 4);
        assert_eq!(p.embed, 0);
        assert!(p.layers.windows(2).all(|w| w[0] <= w[1]), "{p:?}");
        assert_eq!(p.head, 3, "{p:?}");
        assert_eq!(p.norm, p.head);
        assert_eq!(p.devices_used(), 4);
        assert_eq!(p.of_tensor("model.embed_tokens.weight"), 0);
        assert_eq!(
            p.of_tensor("model.layers.7.mlp.up_proj.weight"),
            p.layers[7]
        );
        assert_eq!(
            p.of_tensor("model.layers.0.input_layernorm.weight"),
            p.layers[0]
        );
        assert_eq!(p.of_tensor("lm_head.weight"), 3);
        assert_eq!(p.of_tensor("model.norm.weight"), 3);
    }

    #[test]
    fn a_tied_head_stays_with_the_embedding() {
        let c = config(6, true);
        let p = Placement::plan(&c, 3);
        assert_eq!((p.embed, p.head), (0, 0));
        assert_eq!(Some(&p.norm), p.layers.last());
        assert_eq!(p.norm, 2, "{p:?}");
        assert_eq!(p.of_tensor("lm_head.weight"), 0);
    }

    #[test]
    fn more_devices_than_parts_leaves_some_unused() {
        let p = Placement::plan(&config(2, true), 8);
        assert!(p.devices_used() <= 3, "{p:?}");
    }

    #[test]
    fn device_values_parse_and_bad_ones_say_why() {
        assert_eq!(parse_devices("cpu"), Ok(None));
        assert_eq!(parse_devices("cuda"), Ok(Some(vec![0])));
        assert_eq!(parse_devices("cuda:3"), Ok(Some(vec![3])));
        assert_eq!(
            parse_devices("cuda:0, cuda:1,cuda:2"),
            Ok(Some(vec![0, 1, 2]))
        );
        assert_eq!(parse_devices("cuda:0,cuda:0"), Ok(Some(vec![0, 0])));
        for bad in [
            "",
            "gpu",
            "cuda:",
            "cuda:x",
            "cuda:-1",
            "cuda:+1",
            "cpu,cuda",
            "cuda,cpu",
            "cuda:0,,cuda:1",
        ] {
            assert!(parse_devices(bad).is_err(), "{bad:?} was accepted");
        }
        let many = vec!["cuda"; MAX_DEVICES + 1].join(",");
        assert!(parse_devices(&many)
            .expect_err("too many")
            .contains("at most"));
        assert!(parse_devices("cpu,cuda")
            .expect_err("mixed")
            .contains("CPU"));
    }

    #[test]
    fn device_lists_are_described_briefly() {
        assert_eq!(describe(&[Device::Cpu]), "cpu");
        assert_eq!(describe(&[Device::Cpu, Device::Cpu]), "cpu ×2");
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_is_refused_clearly() {
        let e = open_devices("cuda:0,cuda:1")
            .expect_err("no cuda feature")
            .to_string();
        assert!(e.contains("without the `cuda` feature"), "{e}");
        assert_eq!(open_devices("cpu").expect("cpu").len(), 1);
    }
}
