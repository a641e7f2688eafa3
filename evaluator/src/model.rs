//! Our own Llama forward pass in candle, with hidden states and logits at every position.
//!
//! candle-transformers' stock Llama returns only the last position's logits (it is built
//! for generation); scoring needs every position, batched over windows, and a way to
//! stop before the LM head so the loss can run it in chunks (see [`crate::loss`]). The
//! computation follows Hugging Face's `LlamaForCausalLM` in eager mode: RMSNorm in f32,
//! rotary embeddings with `rotate_half` (non-interleaved) and cos/sin computed in f32,
//! grouped-query attention, causal softmax in f32, SwiGLU MLP.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};

use crate::checkpoint::Checkpoint;
use crate::config::LlamaConfig;
use crate::error::{EvalError, Result};

struct Layer {
    input_norm: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    o: Tensor,
    post_norm: Tensor,
    gate: Tensor,
    up: Tensor,
    down: Tensor,
}

/// A Llama model ready to run: weights in the compute dtype, norms in f32.
pub struct Llama {
    config: LlamaConfig,
    dtype: DType,
    device: Device,
    embed: Tensor,
    layers: Vec<Layer>,
    norm: Tensor,
    lm_head: Tensor,
}

impl Llama {
    /// Builds the model from a loaded checkpoint, taking its weights.
    pub fn from_checkpoint(checkpoint: Checkpoint) -> Result<Self> {
        let Checkpoint {
            config,
            mut weights,
            ..
        } = checkpoint;
        let embed = take(&mut weights, "model.embed_tokens.weight")?;
        let dtype = embed.dtype();
        let device = embed.device().clone();
        // Norm weights stay in f32: the normalisation is computed in f32 as in
        // transformers, and they are tiny.
        let norm_weight = |w: &mut HashMap<String, Tensor>, name: &str| -> Result<Tensor> {
            Ok(take(w, name)?.to_dtype(DType::F32)?)
        };
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let p = format!("model.layers.{l}");
            layers.push(Layer {
                input_norm: norm_weight(&mut weights, &format!("{p}.input_layernorm.weight"))?,
                q: take(&mut weights, &format!("{p}.self_attn.q_proj.weight"))?,
                k: take(&mut weights, &format!("{p}.self_attn.k_proj.weight"))?,
                v: take(&mut weights, &format!("{p}.self_attn.v_proj.weight"))?,
                o: take(&mut weights, &format!("{p}.self_attn.o_proj.weight"))?,
                post_norm: norm_weight(
                    &mut weights,
                    &format!("{p}.post_attention_layernorm.weight"),
                )?,
                gate: take(&mut weights, &format!("{p}.mlp.gate_proj.weight"))?,
                up: take(&mut weights, &format!("{p}.mlp.up_proj.weight"))?,
                down: take(&mut weights, &format!("{p}.mlp.down_proj.weight"))?,
            });
        }
        let norm = norm_weight(&mut weights, "model.norm.weight")?;
        let lm_head = if config.tie_word_embeddings {
            // Same storage, not a copy.
            embed.clone()
        } else {
            take(&mut weights, "lm_head.weight")?
        };
        Ok(Llama {
            config,
            dtype,
            device,
            embed,
            layers,
            norm,
            lm_head,
        })
    }

    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The output projection, `[vocab, hidden]`.
    pub fn lm_head(&self) -> &Tensor {
        &self.lm_head
    }

    /// Final-normed hidden states `[batch, seq, hidden]` (compute dtype) for token ids
    /// `[batch, seq]` (u32): everything but the LM head.
    pub fn hidden_states(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let c = &self.config;
        let h = c.hidden_size;
        let (cos, sin) = self.rope_tables(t)?;
        let mask = causal_mask(t, &self.device)?;
        let mut x = self.embed.embedding(&ids.flatten_all()?)?; // [b*t, h]
        for layer in &self.layers {
            x = self.layer(layer, &x, b, t, &cos, &sin, &mask)?;
        }
        let x = self.rms_norm(&x, &self.norm)?;
        Ok(x.reshape((b, t, h))?)
    }

    /// Logits `[batch, seq, vocab]` at every position. Materialises the full logits; the
    /// scorer uses [`Llama::hidden_states`] and a chunked head instead.
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let hidden = self
            .hidden_states(ids)?
            .reshape((b * t, self.config.hidden_size))?;
        let logits = hidden.matmul(&self.lm_head.t()?)?;
        Ok(logits.reshape((b, t, self.config.vocab_size))?)
    }

    #[allow(clippy::too_many_arguments)]
    fn layer(
        &self,
        layer: &Layer,
        x: &Tensor,
        b: usize,
        t: usize,
        cos: &Tensor,
        sin: &Tensor,
        mask: &Tensor,
    ) -> Result<Tensor> {
        let c = &self.config;
        let (nh, nkv, hd) = (c.num_attention_heads, c.num_key_value_heads, c.head_dim);

        let hn = self.rms_norm(x, &layer.input_norm)?;
        let heads = |w: &Tensor, n: usize| -> Result<Tensor> {
            Ok(linear(&hn, w)?
                .reshape((b, t, n, hd))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let q = candle_nn::rotary_emb::rope(&heads(&layer.q, nh)?, cos, sin)?;
        let k = candle_nn::rotary_emb::rope(&heads(&layer.k, nkv)?, cos, sin)?;
        let v = heads(&layer.v, nkv)?;
        let (k, v) = if nh == nkv {
            (k, v)
        } else {
            (repeat_kv(&k, nh / nkv)?, repeat_kv(&v, nh / nkv)?)
        };

        let scale = 1.0 / (hd as f64).sqrt();
        let scores = (q.matmul(&k.t()?)? * scale)?.to_dtype(DType::F32)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores.broadcast_add(mask)?)?;
        let attn = probs.to_dtype(self.dtype)?.matmul(&v)?; // [b, nh, t, hd]
        let attn = attn.transpose(1, 2)?.reshape((b * t, nh * hd))?;
        let x = (x + linear(&attn, &layer.o)?)?;

        let hn = self.rms_norm(&x, &layer.post_norm)?;
        let gated = (candle_nn::ops::silu(&linear(&hn, &layer.gate)?)? * linear(&hn, &layer.up)?)?;
        Ok((x + linear(&gated, &layer.down)?)?)
    }

    /// RMSNorm computed in f32 whatever the compute dtype, as transformers does.
    fn rms_norm(&self, x: &Tensor, weight: &Tensor) -> Result<Tensor> {
        let eps = self.config.rms_norm_eps as f32;
        if self.dtype == DType::F32 {
            Ok(candle_nn::ops::rms_norm(x, weight, eps)?)
        } else {
            let y = candle_nn::ops::rms_norm(&x.to_dtype(DType::F32)?, weight, eps)?;
            Ok(y.to_dtype(self.dtype)?)
        }
    }

    /// cos and sin tables `[t, head_dim / 2]` in the compute dtype.
    fn rope_tables(&self, t: usize) -> Result<(Tensor, Tensor)> {
        let inv_freq = inverse_frequencies(&self.config);
        let half = inv_freq.len();
        let mut cos = Vec::with_capacity(t * half);
        let mut sin = Vec::with_capacity(t * half);
        for pos in 0..t {
            for &f in &inv_freq {
                // transformers multiplies in f32; so do we, for the same angles.
                let angle = pos as f32 * f;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
        let cos = Tensor::from_vec(cos, (t, half), &self.device)?.to_dtype(self.dtype)?;
        let sin = Tensor::from_vec(sin, (t, half), &self.device)?.to_dtype(self.dtype)?;
        Ok((cos, sin))
    }
}

/// RoPE inverse frequencies (f32, as transformers computes them), with llama3 scaling
/// applied when the config asks for it.
pub fn inverse_frequencies(config: &LlamaConfig) -> Vec<f32> {
    let dim = config.head_dim;
    let base = config.rope_theta as f32;
    let mut inv: Vec<f32> = (0..dim / 2)
        .map(|i| 1.0 / base.powf((2 * i) as f32 / dim as f32))
        .collect();
    if let Some(s) = &config.rope_scaling {
        let factor = s.factor as f32;
        let low = s.low_freq_factor as f32;
        let high = s.high_freq_factor as f32;
        let old_context = s.original_max_position_embeddings as f32;
        let low_freq_wavelen = old_context / low;
        let high_freq_wavelen = old_context / high;
        for f in &mut inv {
            let wavelen = 2.0 * std::f32::consts::PI / *f;
            *f = if wavelen > low_freq_wavelen {
                *f / factor
            } else if wavelen < high_freq_wavelen {
                *f
            } else {
                let smooth = (old_context / wavelen - low) / (high - low);
                (1.0 - smooth) * *f / factor + smooth * *f
            };
        }
    }
    inv
}

/// `x [n, in] · wᵀ` for a weight stored `[out, in]` as in PyTorch.
fn linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    Ok(x.matmul(&w.t()?)?)
}

/// Repeats each key/value head `n` times: `[b, kv, t, d]` → `[b, kv·n, t, d]`, with query
/// head `h` reading key/value head `h / n` as transformers does.
fn repeat_kv(x: &Tensor, n: usize) -> Result<Tensor> {
    let (b, kv, t, d) = x.dims4()?;
    Ok(x.unsqueeze(2)?
        .expand((b, kv, n, t, d))?
        .reshape((b, kv * n, t, d))?)
}

/// Additive causal mask `[t, t]`: 0 on and below the diagonal, -inf above.
fn causal_mask(t: usize, device: &Device) -> Result<Tensor> {
    let mask: Vec<f32> = (0..t)
        .flat_map(|i| (0..t).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Ok(Tensor::from_vec(mask, (t, t), device)?)
}

fn take(weights: &mut HashMap<String, Tensor>, name: &str) -> Result<Tensor> {
    // The checkpoint was validated against the same config, so absence is our bug.
    weights
        .remove(name)
        .ok_or_else(|| EvalError::Internal(format!("validated checkpoint lacks `{name}`")))
}
