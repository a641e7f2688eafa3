//! Hugging Face Llama `config.json`: parsing, bounds, and what the config implies.
//!
//! Only what this evaluator computes exactly is accepted: `model_type` `llama`, SiLU MLP,
//! no biases, grouped-query attention through `num_key_value_heads`, optional explicit
//! `head_dim`, tied or untied embeddings, RoPE with `rope_theta` at the top level or in
//! `rope_parameters` (transformers 5), and `rope_scaling` of type `llama3`. Anything else
//! is refused with a message rather than silently scored as something it is not. Every
//! size is bounded before it can drive an allocation, and the exact parameter count is
//! derived here so phase limits can be checked before a weight is read.

use std::path::Path;

use ascent_domain::limits::ModelLimits;
use serde_json::Value;

use crate::error::{EvalError, Result};

/// Largest `config.json` we read; real ones are a few KB.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

// Bounds on config values. Generous for any Llama that exists, small enough that no
// product of them overflows u64 and that a hostile config fails here, not in an allocator.
const MAX_HIDDEN: u64 = 1 << 16;
const MAX_INTERMEDIATE: u64 = 1 << 20;
const MAX_LAYERS: u64 = 1 << 10;
const MAX_HEADS: u64 = 1 << 10;
const MAX_HEAD_DIM: u64 = 1 << 10;
const MAX_VOCAB: u64 = 1 << 24;
const MAX_POSITIONS: u64 = 1 << 22;

/// RoPE frequency scaling as Llama 3.1 defines it.
#[derive(Debug, Clone, PartialEq)]
pub struct Llama3RopeScaling {
    pub factor: f64,
    pub low_freq_factor: f64,
    pub high_freq_factor: f64,
    pub original_max_position_embeddings: f64,
}

/// A validated Llama configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub vocab_size: usize,
    pub max_position_embeddings: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: Option<Llama3RopeScaling>,
    pub tie_word_embeddings: bool,
}

impl LlamaConfig {
    /// Reads and validates `config.json` at `path`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| EvalError::io(path, e))?;
        let len = file.metadata().map_err(|e| EvalError::io(path, e))?.len();
        if len > MAX_CONFIG_BYTES {
            return Err(config_err(
                path,
                format!("config of {len} bytes exceeds the limit of {MAX_CONFIG_BYTES}"),
            ));
        }
        let bytes = std::fs::read(path).map_err(|e| EvalError::io(path, e))?;
        Self::from_json_bytes(path, &bytes)
    }

    /// Validates a config given as JSON bytes; `path` only names it in errors.
    pub fn from_json_bytes(path: &Path, bytes: &[u8]) -> Result<Self> {
        let value = crate::json::parse_strict(path, bytes)?;
        let obj = value
            .as_object()
            .ok_or_else(|| config_err(path, "config must be a JSON object".into()))?;
        let r = Reader { path, obj };

        let model_type = r.string("model_type")?;
        match model_type.as_deref() {
            Some("llama") => {}
            Some(other) => {
                return Err(config_err(
                    path,
                    format!("model_type `{other}` is not supported; only `llama` is"),
                ))
            }
            None => return Err(config_err(path, "model_type is missing".into())),
        }
        if let Some(act) = r.string("hidden_act")? {
            if act != "silu" {
                return Err(config_err(
                    path,
                    format!("hidden_act `{act}` is not supported; only `silu` is"),
                ));
            }
        }
        for key in ["attention_bias", "mlp_bias"] {
            if r.bool(key)? == Some(true) {
                return Err(config_err(path, format!("{key} = true is not supported")));
            }
        }
        if let Some(tp) = r.uint("pretraining_tp")? {
            if tp != 1 {
                return Err(config_err(
                    path,
                    format!("pretraining_tp = {tp} is not supported; only 1 is"),
                ));
            }
        }

        let hidden = r.bounded("hidden_size", MAX_HIDDEN)?;
        let intermediate = r.bounded("intermediate_size", MAX_INTERMEDIATE)?;
        let layers = r.bounded("num_hidden_layers", MAX_LAYERS)?;
        let heads = r.bounded("num_attention_heads", MAX_HEADS)?;
        let kv_heads = match r.uint("num_key_value_heads")? {
            None => heads,
            Some(v) => in_range(path, "num_key_value_heads", v, MAX_HEADS)?,
        };
        if heads % kv_heads != 0 {
            return Err(config_err(
                path,
                format!("num_attention_heads ({heads}) is not a multiple of num_key_value_heads ({kv_heads})"),
            ));
        }
        let head_dim = match r.uint("head_dim")? {
            Some(v) => in_range(path, "head_dim", v, MAX_HEAD_DIM)?,
            None => {
                if hidden % heads != 0 {
                    return Err(config_err(
                        path,
                        format!("hidden_size ({hidden}) is not a multiple of num_attention_heads ({heads}) and no head_dim is given"),
                    ));
                }
                in_range(path, "head_dim", hidden / heads, MAX_HEAD_DIM)?
            }
        };
        if head_dim % 2 != 0 {
            return Err(config_err(
                path,
                format!("head_dim {head_dim} is odd; rotary embeddings need an even head size"),
            ));
        }
        let vocab = r.bounded("vocab_size", MAX_VOCAB)?;
        let positions = r.bounded("max_position_embeddings", MAX_POSITIONS)?;
        if positions < 2 {
            return Err(config_err(
                path,
                "max_position_embeddings must be at least 2".into(),
            ));
        }
        let rms_norm_eps = r.float("rms_norm_eps")?.unwrap_or(1e-6);
        if !(rms_norm_eps > 0.0 && rms_norm_eps < 1.0) {
            return Err(config_err(
                path,
                format!("rms_norm_eps {rms_norm_eps} is outside (0, 1)"),
            ));
        }
        let tie_word_embeddings = r.bool("tie_word_embeddings")?.unwrap_or(false);
        let (rope_theta, rope_scaling) = rope(path, obj)?;

        let config = LlamaConfig {
            hidden_size: hidden as usize,
            intermediate_size: intermediate as usize,
            num_hidden_layers: layers as usize,
            num_attention_heads: heads as usize,
            num_key_value_heads: kv_heads as usize,
            head_dim: head_dim as usize,
            vocab_size: vocab as usize,
            max_position_embeddings: positions as usize,
            rms_norm_eps,
            rope_theta,
            rope_scaling,
            tie_word_embeddings,
        };
        Ok(config)
    }

    /// The exact number of parameters this config implies, tied embeddings counted once.
    /// Cannot overflow: every factor is bounded above.
    pub fn parameter_count(&self) -> u64 {
        let h = self.hidden_size as u64;
        let v = self.vocab_size as u64;
        let embeddings = if self.tie_word_embeddings {
            v * h
        } else {
            2 * v * h
        };
        embeddings + self.num_hidden_layers as u64 * self.layer_parameters() + h
    }

    /// Parameters of one transformer layer: two norms, the attention projections and
    /// the MLP.
    pub fn layer_parameters(&self) -> u64 {
        let h = self.hidden_size as u64;
        let i = self.intermediate_size as u64;
        let q = (self.num_attention_heads * self.head_dim) as u64;
        let kv = (self.num_key_value_heads * self.head_dim) as u64;
        2 * h + h * q + 2 * h * kv + q * h + 3 * h * i
    }

    /// Every tensor this config requires, with its shape, in a stable order.
    pub fn expected_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let h = self.hidden_size;
        let q = self.num_attention_heads * self.head_dim;
        let kv = self.num_key_value_heads * self.head_dim;
        let i = self.intermediate_size;
        let mut out = vec![(
            "model.embed_tokens.weight".to_owned(),
            vec![self.vocab_size, h],
        )];
        for l in 0..self.num_hidden_layers {
            let p = format!("model.layers.{l}");
            out.push((format!("{p}.input_layernorm.weight"), vec![h]));
            out.push((format!("{p}.self_attn.q_proj.weight"), vec![q, h]));
            out.push((format!("{p}.self_attn.k_proj.weight"), vec![kv, h]));
            out.push((format!("{p}.self_attn.v_proj.weight"), vec![kv, h]));
            out.push((format!("{p}.self_attn.o_proj.weight"), vec![h, q]));
            out.push((format!("{p}.post_attention_layernorm.weight"), vec![h]));
            out.push((format!("{p}.mlp.gate_proj.weight"), vec![i, h]));
            out.push((format!("{p}.mlp.up_proj.weight"), vec![i, h]));
            out.push((format!("{p}.mlp.down_proj.weight"), vec![h, i]));
        }
        out.push(("model.norm.weight".to_owned(), vec![h]));
        if !self.tie_word_embeddings {
            out.push(("lm_head.weight".to_owned(), vec![self.vocab_size, h]));
        }
        out
    }

    /// Checks the config against a phase's model limits; `path` names the config in errors.
    pub fn check_limits(&self, path: &Path, limits: &ModelLimits) -> Result<()> {
        let fail = |message: String| EvalError::Limits {
            path: path.to_owned(),
            message,
        };
        if limits.architecture != "llama" {
            return Err(fail(format!(
                "the phase requires architecture `{}`, this evaluator scores `llama`",
                limits.architecture
            )));
        }
        if self.vocab_size != limits.vocab_size as usize {
            return Err(fail(format!(
                "vocab_size is {}, the phase requires {}",
                self.vocab_size, limits.vocab_size
            )));
        }
        let params = self.parameter_count();
        if params > limits.max_parameters {
            return Err(fail(format!(
                "{params} parameters exceed the phase cap of {}",
                limits.max_parameters
            )));
        }
        if self.max_position_embeddings < limits.min_context as usize {
            return Err(fail(format!(
                "max_position_embeddings is {}, the phase requires at least {}",
                self.max_position_embeddings, limits.min_context
            )));
        }
        Ok(())
    }
}

fn config_err(path: &Path, message: String) -> EvalError {
    EvalError::Config {
        path: path.to_owned(),
        message,
    }
}

fn in_range(path: &Path, key: &str, v: u64, max: u64) -> Result<u64> {
    if v == 0 || v > max {
        return Err(config_err(
            path,
            format!("{key} = {v} is outside the supported range 1..={max}"),
        ));
    }
    Ok(v)
}

/// Typed access to optional fields of a JSON object, with errors naming the key.
struct Reader<'a> {
    path: &'a Path,
    obj: &'a serde_json::Map<String, Value>,
}

impl Reader<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        self.obj.get(key).filter(|v| !v.is_null())
    }
    fn wrong(&self, key: &str, what: &str) -> EvalError {
        config_err(self.path, format!("{key} must be {what}"))
    }
    fn string(&self, key: &str) -> Result<Option<String>> {
        self.get(key)
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| self.wrong(key, "a string"))
            })
            .transpose()
    }
    fn bool(&self, key: &str) -> Result<Option<bool>> {
        self.get(key)
            .map(|v| v.as_bool().ok_or_else(|| self.wrong(key, "true or false")))
            .transpose()
    }
    fn uint(&self, key: &str) -> Result<Option<u64>> {
        self.get(key)
            .map(|v| {
                v.as_u64()
                    .ok_or_else(|| self.wrong(key, "a non-negative integer"))
            })
            .transpose()
    }
    fn float(&self, key: &str) -> Result<Option<f64>> {
        self.get(key)
            .map(|v| v.as_f64().ok_or_else(|| self.wrong(key, "a number")))
            .transpose()
    }
    fn bounded(&self, key: &str, max: u64) -> Result<u64> {
        let v = self
            .uint(key)?
            .ok_or_else(|| config_err(self.path, format!("{key} is missing")))?;
        in_range(self.path, key, v, max)
    }
}

const ROPE_KEYS: [&str; 7] = [
    "rope_type",
    "type",
    "rope_theta",
    "factor",
    "low_freq_factor",
    "high_freq_factor",
    "original_max_position_embeddings",
];

/// Reads `rope_theta` and the optional llama3 scaling from the top level, `rope_scaling`
/// (transformers 4) and `rope_parameters` (transformers 5), refusing contradictions.
fn rope(
    path: &Path,
    obj: &serde_json::Map<String, Value>,
) -> Result<(f64, Option<Llama3RopeScaling>)> {
    let top = Reader { path, obj };
    let mut theta = top.float("rope_theta")?;
    let mut scaling: Option<Llama3RopeScaling> = None;

    for section in ["rope_scaling", "rope_parameters"] {
        let Some(value) = obj.get(section).filter(|v| !v.is_null()) else {
            continue;
        };
        let params = value
            .as_object()
            .ok_or_else(|| config_err(path, format!("{section} must be an object")))?;
        if let Some(key) = params.keys().find(|k| !ROPE_KEYS.contains(&k.as_str())) {
            return Err(config_err(
                path,
                format!("{section}.{key} is not supported"),
            ));
        }
        let r = Reader { path, obj: params };
        let kind = match (r.string("rope_type")?, r.string("type")?) {
            (Some(a), Some(b)) if a != b => {
                return Err(config_err(
                    path,
                    format!("{section} names two rope types, `{a}` and `{b}`"),
                ))
            }
            (Some(a), _) | (None, Some(a)) => a,
            (None, None) => "default".to_owned(),
        };
        if let Some(t) = r.float("rope_theta")? {
            match theta {
                Some(prev) if prev != t => {
                    return Err(config_err(
                        path,
                        format!("rope_theta is given twice with different values ({prev} and {t})"),
                    ))
                }
                _ => theta = Some(t),
            }
        }
        match kind.as_str() {
            "default" => {}
            "llama3" => {
                let need = |key: &str| -> Result<f64> {
                    let v = r.float(key)?.ok_or_else(|| {
                        config_err(
                            path,
                            format!("{section}.{key} is missing for rope type llama3"),
                        )
                    })?;
                    if !(v.is_finite() && v > 0.0) {
                        return Err(config_err(
                            path,
                            format!("{section}.{key} = {v} must be a positive number"),
                        ));
                    }
                    Ok(v)
                };
                let s = Llama3RopeScaling {
                    factor: need("factor")?,
                    low_freq_factor: need("low_freq_factor")?,
                    high_freq_factor: need("high_freq_factor")?,
                    original_max_position_embeddings: need("original_max_position_embeddings")?,
                };
                if s.high_freq_factor <= s.low_freq_factor {
                    return Err(config_err(
                        path,
                        format!("{section}: high_freq_factor must exceed low_freq_factor"),
                    ));
                }
                if let Some(prev) = &scaling {
                    if *prev != s {
                        return Err(config_err(
                            path,
                            "rope_scaling and rope_parameters disagree".into(),
                        ));
                    }
                }
                scaling = Some(s);
            }
            other => {
                return Err(config_err(
                    path,
                    format!("rope type `{other}` is not supported; only default and llama3 are"),
                ))
            }
        }
    }
    let theta = theta.unwrap_or(10_000.0);
    if !(theta.is_finite() && theta > 0.0) {
        return Err(config_err(
            path,
            format!("rope_theta {theta} must be a positive number"),
        ));
    }
    Ok((theta, scaling))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({
            "model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "vocab_size": 256, "max_position_embeddings": 128, "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0, "hidden_act": "silu", "tie_word_embeddings": false
        })
    }

    fn parse(v: &Value) -> Result<LlamaConfig> {
        LlamaConfig::from_json_bytes(Path::new("config.json"), v.to_string().as_bytes())
    }

    fn message(v: &Value) -> String {
        parse(v).expect_err("must be refused").to_string()
    }

    #[test]
    fn parses_gqa_and_counts_parameters() {
        let c = parse(&base()).expect("valid");
        assert_eq!(c.num_key_value_heads, 2);
        assert_eq!(c.head_dim, 16);
        // embed + lm_head + 2 layers × (norms + q + k + v + o + mlp) + final norm
        let per_layer = 2 * 64 + 64 * 64 + 2 * 64 * 32 + 64 * 64 + 3 * 64 * 128;
        assert_eq!(c.parameter_count(), 2 * 256 * 64 + 2 * per_layer + 64);
        let total: usize = c
            .expected_tensors()
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum();
        assert_eq!(total as u64, c.parameter_count());
    }

    #[test]
    fn tied_embeddings_are_counted_once() {
        let mut v = base();
        v["tie_word_embeddings"] = json!(true);
        let c = parse(&v).expect("valid");
        assert!(!c
            .expected_tensors()
            .iter()
            .any(|(n, _)| n == "lm_head.weight"));
        let untied = parse(&base()).expect("valid");
        assert_eq!(untied.parameter_count() - c.parameter_count(), 256 * 64);
    }

    #[test]
    fn rope_theta_from_rope_parameters() {
        let mut v = base();
        v.as_object_mut().expect("object").remove("rope_theta");
        v["rope_parameters"] = json!({"rope_type": "default", "rope_theta": 500000.0});
        assert_eq!(parse(&v).expect("valid").rope_theta, 500000.0);
        v["rope_theta"] = json!(10.0);
        assert!(message(&v).contains("rope_theta is given twice"));
    }

    #[test]
    fn llama3_scaling_is_read_and_others_refused() {
        let mut v = base();
        v["rope_scaling"] = json!({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 64});
        let s = parse(&v).expect("valid").rope_scaling.expect("scaling");
        assert_eq!(s.factor, 8.0);
        v["rope_scaling"] = json!({"type": "linear", "factor": 2.0});
        assert!(message(&v).contains("rope type `linear` is not supported"));
        v["rope_scaling"] = json!({"rope_type": "yarn", "factor": 2.0});
        assert!(message(&v).contains("not supported"));
    }

    #[test]
    fn unsupported_architectures_are_refused() {
        for (key, value, needle) in [
            ("model_type", json!("mistral"), "model_type `mistral`"),
            ("hidden_act", json!("gelu"), "hidden_act `gelu`"),
            ("attention_bias", json!(true), "attention_bias"),
            ("mlp_bias", json!(true), "mlp_bias"),
            ("num_key_value_heads", json!(3), "not a multiple"),
            ("head_dim", json!(15), "odd"),
        ] {
            let mut v = base();
            v[key] = value;
            assert!(message(&v).contains(needle), "{key}: {}", message(&v));
        }
    }

    #[test]
    fn values_are_bounded() {
        for (key, value) in [
            ("hidden_size", json!(1u64 << 40)),
            ("vocab_size", json!(0)),
            ("num_hidden_layers", json!(1_000_000)),
            ("intermediate_size", json!(-1)),
            ("rms_norm_eps", json!(0.0)),
            ("max_position_embeddings", json!(1)),
        ] {
            let mut v = base();
            v[key] = value;
            assert!(parse(&v).is_err(), "{key} must be refused");
        }
        let mut v = base();
        v.as_object_mut().expect("object").remove("hidden_size");
        assert!(message(&v).contains("hidden_size is missing"));
    }

    #[test]
    fn limits_are_enforced() {
        let c = parse(&base()).expect("valid");
        let p = Path::new("config.json");
        let ok = ModelLimits {
            architecture: "llama".into(),
            vocab_size: 256,
            max_parameters: c.parameter_count(),
            min_context: 128,
        };
        c.check_limits(p, &ok).expect("within limits");
        let mut over = ok.clone();
        over.max_parameters -= 1;
        assert!(matches!(
            c.check_limits(p, &over),
            Err(EvalError::Limits { .. })
        ));
        let mut vocab = ok.clone();
        vocab.vocab_size = 32000;
        assert!(c.check_limits(p, &vocab).is_err());
        let mut ctx = ok;
        ctx.min_context = 256;
        assert!(c.check_limits(p, &ctx).is_err());
    }
}
