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

use crate::checkpoint::{Checkpoint, LayerStore};
use crate::config::LlamaConfig;
use crate::error::{EvalError, Result};
use crate::placement::Placement;

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

impl Layer {
    /// The same weights on `device` (nothing is copied where they already are).
    fn to_device(&self, device: &Device) -> Result<Layer> {
        let on = |t: &Tensor| t.to_device(device);
        Ok(Layer {
            input_norm: on(&self.input_norm)?,
            q: on(&self.q)?,
            k: on(&self.k)?,
            v: on(&self.v)?,
            o: on(&self.o)?,
            post_norm: on(&self.post_norm)?,
            gate: on(&self.gate)?,
            up: on(&self.up)?,
            down: on(&self.down)?,
        })
    }
}

/// The transformer layers: on the device, or copied there one at a time.
enum Layers {
    Resident(Vec<Layer>),
    Streamed(LayerStore),
}

/// A Llama model ready to run: weights in the compute dtype, norms in f32; on one device,
/// or split across several in pipeline stages ([`crate::placement`]).
pub struct Llama {
    config: LlamaConfig,
    dtype: DType,
    /// The devices that hold weights, indexed by `placement`.
    devices: Vec<Device>,
    placement: Placement,
    embed: Tensor,
    layers: Layers,
    /// The dtype of the RMSNorm weights (see `rms_norm`).
    norm_dtype: DType,
    norm: Tensor,
    lm_head: Tensor,
}

/// Layer `l`'s weights, each tensor taken from `take` by its Hugging Face name; norm
/// weights converted to `norm_dtype`.
fn build_layer(
    l: usize,
    norm_dtype: DType,
    mut take: impl FnMut(&str) -> Result<Tensor>,
) -> Result<Layer> {
    let p = format!("model.layers.{l}");
    let mut get = |name: &str| take(&format!("{p}.{name}"));
    Ok(Layer {
        input_norm: get("input_layernorm.weight")?.to_dtype(norm_dtype)?,
        q: get("self_attn.q_proj.weight")?,
        k: get("self_attn.k_proj.weight")?,
        v: get("self_attn.v_proj.weight")?,
        o: get("self_attn.o_proj.weight")?,
        post_norm: get("post_attention_layernorm.weight")?.to_dtype(norm_dtype)?,
        gate: get("mlp.gate_proj.weight")?,
        up: get("mlp.up_proj.weight")?,
        down: get("mlp.down_proj.weight")?,
    })
}

impl Llama {
    /// Builds the model from a loaded checkpoint, taking its weights.
    pub fn from_checkpoint(checkpoint: Checkpoint) -> Result<Self> {
        let Checkpoint {
            config,
            mut devices,
            placement,
            mut weights,
            layers: streamed,
            ..
        } = checkpoint;
        devices.truncate(placement.devices_used());
        let embed = take(&mut weights, "model.embed_tokens.weight")?;
        let dtype = embed.dtype();
        // Norm weights in the dtype `rms_norm` computes with (see there): f32 on CPU, the
        // compute dtype on CUDA. They are tiny.
        let norm_dtype = if embed.device().is_cuda() {
            dtype
        } else {
            DType::F32
        };
        let layers = match streamed {
            Some(store) => Layers::Streamed(store),
            None => Layers::Resident(
                (0..config.num_hidden_layers)
                    .map(|l| build_layer(l, norm_dtype, |name| take(&mut weights, name)))
                    .collect::<Result<_>>()?,
            ),
        };
        let norm = take(&mut weights, "model.norm.weight")?.to_dtype(norm_dtype)?;
        let lm_head = if config.tie_word_embeddings {
            // Same storage, not a copy.
            embed.clone()
        } else {
            take(&mut weights, "lm_head.weight")?
        };
        Ok(Llama {
            config,
            dtype,
            devices,
            placement,
            embed,
            layers,
            norm_dtype,
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

    /// Where the token ids go: the embedding's device.
    pub fn input_device(&self) -> &Device {
        &self.devices[self.placement.embed]
    }

    /// Where [`Llama::hidden_states`] returns and the LM head is: where the loss runs.
    pub fn head_device(&self) -> &Device {
        &self.devices[self.placement.head]
    }

    /// The devices the model is split across (one, unless several were given and the
    /// model has parts enough for them).
    pub fn devices(&self) -> &[Device] {
        &self.devices
    }

    /// The output projection, `[vocab, hidden]`.
    pub fn lm_head(&self) -> &Tensor {
        &self.lm_head
    }

    /// Final-normed hidden states `[batch, seq, hidden]` (compute dtype) on the head's
    /// device for token ids `[batch, seq]` (u32) on the input device: everything but the
    /// LM head.
    pub fn hidden_states(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let h = self.config.hidden_size;
        // What the layers of each device share, decided once per forward.
        let stages = (0..self.devices.len())
            .map(|d| {
                self.placement
                    .layers
                    .contains(&d)
                    .then(|| self.stage(&self.devices[d], b, t))
                    .transpose()
            })
            .collect::<Result<Vec<_>>>()?;
        let mut x = self.embed.embedding(&ids.flatten_all()?)?; // [b*t, h]
        let mut here = self.placement.embed;
        let mut run = |l: usize, layer: &Layer, x: Tensor| -> Result<Tensor> {
            let d = self.placement.layers[l];
            let x = self.move_to(x, &mut here, d)?;
            let stage = stages[d]
                .as_ref()
                .ok_or_else(|| EvalError::Internal(format!("layer {l}: no stage on device {d}")))?;
            self.layer(layer, &x, b, t, stage)
        };
        match &self.layers {
            Layers::Resident(layers) => {
                for (l, layer) in layers.iter().enumerate() {
                    x = run(l, layer, x)?;
                }
            }
            Layers::Streamed(store) => {
                x = self.streamed_layers(store, x, |l, layer, x| {
                    let layer = layer.to_device(&self.devices[self.placement.layers[l]])?;
                    run(l, &layer, x)
                })?;
            }
        }
        x = self.move_to(x, &mut here, self.placement.norm)?;
        let x = self.rms_norm(&x, &self.norm)?;
        let x = self.move_to(x, &mut here, self.placement.head)?;
        Ok(x.reshape((b, t, h))?)
    }

    /// Runs `run(l, layer, x)` over every streamed layer in order, reading each from the
    /// files while the one before it runs: a thread reads layer `l + 1` into host memory
    /// (the disk reads, page faults and dtype conversion) and hands it over when layer `l`
    /// is done, so at most two layers are in host memory and `run`'s device copy holds
    /// one on the device. The thread stops when the consumer returns, at an error or
    /// at the end.
    fn streamed_layers(
        &self,
        store: &LayerStore,
        mut x: Tensor,
        mut run: impl FnMut(usize, Layer, Tensor) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let n = self.config.num_hidden_layers;
        let norm_dtype = self.norm_dtype;
        std::thread::scope(|scope| {
            // A rendezvous: the reader finishes layer l + 1, then waits until it is taken.
            let (give, take) = std::sync::mpsc::sync_channel::<Result<Layer>>(0);
            scope.spawn(move || {
                for l in 0..n {
                    let layer = build_layer(l, norm_dtype, |name| store.host_tensor(name));
                    let failed = layer.is_err();
                    if give.send(layer).is_err() || failed {
                        break;
                    }
                }
            });
            for l in 0..n {
                let layer = take.recv().map_err(|_| {
                    EvalError::Internal(format!("the layer reader stopped before layer {l}"))
                })??;
                x = run(l, layer, x)?;
            }
            Ok(x)
        })
    }

    /// `x`, on device `here`, moved to device `to` (a device-to-device copy between
    /// pipeline stages; nothing when they are the same).
    fn move_to(&self, x: Tensor, here: &mut usize, to: usize) -> Result<Tensor> {
        if *here == to {
            return Ok(x);
        }
        *here = to;
        Ok(x.to_device(&self.devices[to])?)
    }

    /// The RoPE tables and the attention path of the layers on `device`, for `b`
    /// windows of `t` tokens.
    fn stage(&self, device: &Device, b: usize, t: usize) -> Result<Stage> {
        let (cos, sin) = self.rope_tables(t, device)?;
        let attention = if device.is_cpu() && self.dtype == DType::F32 {
            Attention::Cpu
        } else if self.flash_here(device) {
            Attention::Flash
        } else {
            Attention::Blocked(block_masks(t, &self.mask_layout(b, device), device)?)
        };
        Ok(Stage {
            cos,
            sin,
            attention,
        })
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

    fn layer(
        &self,
        layer: &Layer,
        x: &Tensor,
        b: usize,
        t: usize,
        stage: &Stage,
    ) -> Result<Tensor> {
        let Stage {
            cos,
            sin,
            attention,
        } = stage;
        let c = &self.config;
        let (nh, nkv, hd) = (c.num_attention_heads, c.num_key_value_heads, c.head_dim);

        let hn = self.rms_norm(x, &layer.input_norm)?;
        // [b, t, heads, hd]: the projections' own layout.
        let heads = |w: &Tensor, n: usize| -> Result<Tensor> {
            Ok(linear(&hn, w)?.reshape((b, t, n, hd))?)
        };
        let scale = 1.0 / (hd as f64).sqrt();
        let attn = match attention {
            Attention::Cpu | Attention::Flash => {
                let rope = |x: Tensor| candle_nn::rotary_emb::rope_thd(&x, cos, sin);
                let q = rope(heads(&layer.q, nh)?)?;
                let k = rope(heads(&layer.k, nkv)?)?;
                let v = heads(&layer.v, nkv)?;
                let op = match attention {
                    Attention::Flash => crate::flash_attention::causal_attention,
                    _ => crate::cpu_attention::causal_attention,
                };
                op(&q, &k, &v, scale as f32)?
            }
            Attention::Blocked(masks) => {
                // [b, heads, t, hd] for candle's matmuls.
                let heads = |w: &Tensor, n: usize| -> Result<Tensor> {
                    Ok(heads(w, n)?.transpose(1, 2)?.contiguous()?)
                };
                let q = (candle_nn::rotary_emb::rope(&heads(&layer.q, nh)?, cos, sin)? * scale)?;
                let k = candle_nn::rotary_emb::rope(&heads(&layer.k, nkv)?, cos, sin)?;
                let v = heads(&layer.v, nkv)?;
                causal_attention(&q, &k, &v, masks, self.dtype)?
            }
        }; // [b, t, nh * hd]
        let attn = attn.reshape((b * t, nh * hd))?;
        let x = (x + linear(&attn, &layer.o)?)?;

        let hn = self.rms_norm(&x, &layer.post_norm)?;
        let gated = crate::swiglu::silu_mul(&linear(&hn, &layer.gate)?, &linear(&hn, &layer.up)?)?;
        Ok((x + linear(&gated, &layer.down)?)?)
    }

    /// How the attention masks are laid out for a batch of `b` windows, where attention
    /// is built from candle's ops (everywhere but f32 on CPU, which runs
    /// [`crate::cpu_attention`]): on CPU one small
    /// `[n, keys]` mask per block, broadcast over batch and heads by the add; on a GPU each
    /// block's mask expanded once per forward to the whole score tensor, because candle's
    /// broadcasting add is a strided kernel that took 40% of a bf16 forward there (ncu,
    /// H200), while an add of two contiguous tensors runs at memory speed.
    fn mask_layout(&self, b: usize, device: &Device) -> MaskLayout {
        if matches!(self.dtype, DType::F32 | DType::BF16) && fused_softmax_on(device) {
            return MaskLayout::InKernel;
        }
        if device.is_cpu() {
            MaskLayout::Broadcast
        } else {
            let c = &self.config;
            MaskLayout::Expanded {
                batch: b,
                kv_heads: c.num_key_value_heads,
                group: c.num_attention_heads / c.num_key_value_heads,
                dtype: self.dtype,
            }
        }
    }

    /// Whether attention runs as [`crate::flash_attention`]: a bf16 model with a head size
    /// the kernel is built for, on a CUDA device where it passed its self-check.
    fn flash_here(&self, device: &Device) -> bool {
        #[cfg(feature = "cuda")]
        if device.is_cuda() && crate::flash_attention::fits(self.dtype, self.config.head_dim) {
            return crate::cuda_kernels::flash_available(device);
        }
        let _ = device;
        false
    }

    /// RMSNorm computed in f32 whatever the compute dtype, and rounded once to the
    /// compute dtype. (transformers rounds the normalised value to the dtype before
    /// multiplying by the weight, a second rounding: within the bf16 golden bounds.)
    ///
    /// candle's CUDA kernel does exactly that for every dtype (it widens each element and
    /// the weight to f32, and rounds `scale · x · w` once to nearest even), so on CUDA it
    /// runs in the compute dtype directly: the same bits as widening, normalising in f32
    /// and narrowing, without two casts of the activations per norm (45 per forward of
    /// the 500M model). candle's CPU kernel computes in the dtype itself, so on CPU a
    /// non-f32 model widens first.
    fn rms_norm(&self, x: &Tensor, weight: &Tensor) -> Result<Tensor> {
        let eps = self.config.rms_norm_eps as f32;
        if self.dtype == DType::F32 || x.device().is_cuda() {
            Ok(candle_nn::ops::rms_norm(x, weight, eps)?)
        } else {
            let y = candle_nn::ops::rms_norm(&x.to_dtype(DType::F32)?, weight, eps)?;
            Ok(y.to_dtype(self.dtype)?)
        }
    }

    /// cos and sin tables `[t, head_dim / 2]` in the compute dtype on `device`.
    fn rope_tables(&self, t: usize, device: &Device) -> Result<(Tensor, Tensor)> {
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
        let cos = Tensor::from_vec(cos, (t, half), device)?.to_dtype(self.dtype)?;
        let sin = Tensor::from_vec(sin, (t, half), device)?.to_dtype(self.dtype)?;
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

/// Query rows per attention block. Blocks bound the score matrix to
/// `batch × heads × block × t` and let each block skip the keys after its last query,
/// which removes close to half the work of causal attention. On CPU 128 measured best
/// (64 and 256 were no faster, 512 was slower); a GPU wants fewer, larger kernels.
fn attention_block(device: &Device) -> usize {
    if device.is_cpu() {
        128
    } else {
        512
    }
}

/// The additive causal mask of one block of queries `start..start + n` against keys
/// `0..start + n`: 0 where the key is not after the query, -inf after. `[n, keys]` in f32
/// ([`MaskLayout::Broadcast`]), or `[b, kv_heads, group · n, keys]` in the compute dtype
/// ([`MaskLayout::Expanded`]; 0 and -inf are exact in every float type), or none where
/// the fused CUDA kernel applies it ([`MaskLayout::InKernel`]).
struct BlockMask {
    start: usize,
    len: usize,
    mask: Option<Tensor>,
}

/// Whether `causal_softmax` runs on `device`: always on CPU; on CUDA if our kernels
/// compile and pass their self-check there.
fn fused_softmax_on(device: &Device) -> bool {
    #[cfg(feature = "cuda")]
    if device.is_cuda() {
        return crate::cuda_kernels::available(device);
    }
    device.is_cpu()
}

/// What the layers on one device share in a forward pass.
struct Stage {
    /// RoPE tables `[t, head_dim / 2]`.
    cos: Tensor,
    sin: Tensor,
    attention: Attention,
}

/// How attention runs in one forward pass.
enum Attention {
    /// f32 on CPU: [`crate::cpu_attention`], one op per layer, no masks.
    Cpu,
    /// bf16 on a GPU that runs [`crate::flash_attention`]: one kernel per layer, no masks.
    Flash,
    /// candle's ops over blocks of queries ([`causal_attention`]), with these masks.
    Blocked(Vec<BlockMask>),
}

/// See [`Llama::mask_layout`].
enum MaskLayout {
    Broadcast,
    /// `causal_softmax` masks as it goes.
    InKernel,
    Expanded {
        batch: usize,
        kv_heads: usize,
        group: usize,
        dtype: DType,
    },
}

/// The masks of all attention blocks for sequence length `t`, built once per forward.
fn block_masks(t: usize, layout: &MaskLayout, device: &Device) -> Result<Vec<BlockMask>> {
    let block = attention_block(device);
    let mut masks = Vec::with_capacity(t.div_ceil(block));
    let mut start = 0;
    while start < t {
        let n = block.min(t - start);
        let keys = start + n;
        // Only the layouts that carry a mask build one: the fused softmax (the usual
        // path) needs none, and this runs every forward.
        let small = || {
            let mut mask = Vec::with_capacity(n * keys);
            for query in start..keys {
                mask.extend((0..keys).map(|j| if j > query { f32::NEG_INFINITY } else { 0.0 }));
            }
            Tensor::from_vec(mask, (n, keys), device)
        };
        let mask = match *layout {
            MaskLayout::Broadcast => Some(small()?),
            MaskLayout::InKernel => None,
            MaskLayout::Expanded {
                batch,
                kv_heads,
                group,
                dtype,
            } => Some(
                small()?
                    .to_dtype(dtype)?
                    .broadcast_as((batch, kv_heads, group, n, keys))?
                    .contiguous()?
                    .reshape((batch, kv_heads, group * n, keys))?,
            ),
        };
        masks.push(BlockMask {
            start,
            len: n,
            mask,
        });
        start += n;
    }
    Ok(masks)
}

/// Causal attention for `q [b, nh, t, d]` (already scaled by 1/√d) and `k, v [b, nkv, t, d]`,
/// returning `[b, t, nh · d]`. Query head `h` reads key/value head `h / (nh / nkv)`, as
/// transformers' `repeat_kv` does, but without copying k and v: the query heads of one
/// group are stacked as extra rows of one matmul. Scores and softmax are in f32.
fn causal_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    masks: &[BlockMask],
    dtype: DType,
) -> Result<Tensor> {
    let (b, nh, t, d) = q.dims4()?;
    let nkv = k.dim(1)?;
    let rep = nh / nkv;
    let mut blocks = Vec::with_capacity(masks.len());
    for BlockMask {
        start,
        len: n,
        mask,
    } in masks
    {
        let (start, n) = (*start, *n);
        let keys = start + n; // keys after the block's last query are masked anyway
        let qb = q
            .narrow(2, start, n)?
            .contiguous()?
            .reshape((b, nkv, rep * n, d))?;
        let kb = k.narrow(2, 0, keys)?;
        let vb = v.narrow(2, 0, keys)?;
        let scores = qb.matmul(&kb.t()?)?; // [b, nkv, rep·n, keys]
        let probs = match mask {
            Some(mask) if mask.rank() == 2 => {
                // [b, nkv, rep, n, keys]: the mask broadcasts over the stacked query heads.
                let scores = scores
                    .to_dtype(DType::F32)?
                    .reshape((b, nkv, rep, n, keys))?;
                candle_nn::ops::softmax_last_dim(&scores.broadcast_add(mask)?)?.reshape((
                    b,
                    nkv,
                    rep * n,
                    keys,
                ))?
            }
            // The expanded mask: a contiguous add in the compute dtype (exact: +0 or
            // -inf), then the softmax in f32 as above.
            Some(mask) => {
                candle_nn::ops::softmax_last_dim(&(scores + mask)?.to_dtype(DType::F32)?)?
            }
            None => fused_softmax(&scores, n, start)?,
        };
        let out = probs.to_dtype(dtype)?.matmul(&vb)?; // [b, nkv, rep·n, d]
        blocks.push(out.reshape((b, nh, n, d))?.transpose(1, 2)?); // [b, n, nh, d]
    }
    if blocks
        .iter()
        .map(|x| x.dim(1))
        .sum::<candle_core::Result<usize>>()?
        != t
    {
        return Err(EvalError::Internal(
            "attention masks do not cover the sequence".into(),
        ));
    }
    let out = if blocks.len() == 1 {
        blocks.remove(0).contiguous()?
    } else {
        Tensor::cat(&blocks, 1)?
    };
    Ok(out.reshape((b, t, nh * d))?)
}

/// The causal softmax of one block's scores in one pass (`causal_softmax`).
fn fused_softmax(scores: &Tensor, n: usize, start: usize) -> Result<Tensor> {
    Ok(scores.apply_op1_no_bwd(&crate::causal_softmax::CausalSoftmax { n, start })?)
}

fn take(weights: &mut HashMap<String, Tensor>, name: &str) -> Result<Tensor> {
    // The checkpoint was validated against the same config, so absence is our bug.
    weights
        .remove(name)
        .ok_or_else(|| EvalError::Internal(format!("validated checkpoint lacks `{name}`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocked GQA attention equals the textbook computation: k/v repeated per query
    /// head, full scores, causal mask, softmax, for a length that is not a multiple of
    /// the block and spans several blocks.
    #[test]
    fn blocked_attention_equals_naive_attention() -> Result<()> {
        let dev = Device::Cpu;
        let (b, nh, nkv, t, d) = (2, 6, 2, 300, 8);
        let q = (Tensor::randn(0f32, 1.0, (b, nh, t, d), &dev)? * 0.5)?;
        let k = Tensor::randn(0f32, 1.0, (b, nkv, t, d), &dev)?;
        let v = Tensor::randn(0f32, 1.0, (b, nkv, t, d), &dev)?;
        let ours = causal_attention(
            &q,
            &k,
            &v,
            &block_masks(t, &MaskLayout::Broadcast, &dev)?,
            DType::F32,
        )?;

        let naive = crate::cpu_attention::naive_attention(&q, &k, &v, 1.0)?;
        let diff = (ours - naive)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-5, "max difference {diff}");
        Ok(())
    }

    /// The expanded mask layout (the GPU's fallback) gives exactly what the broadcast
    /// layout gives, and the fused causal softmax (what the CPU runs) the same to
    /// rounding, in f32 and in bf16.
    #[test]
    fn every_mask_layout_gives_the_same_attention() -> Result<()> {
        let dev = Device::Cpu;
        let (b, nh, nkv, t, d) = (2, 4, 2, 200, 8);
        for dtype in [DType::F32, DType::BF16] {
            let q = (Tensor::randn(0f32, 1.0, (b, nh, t, d), &dev)? * 0.5)?.to_dtype(dtype)?;
            let k = Tensor::randn(0f32, 1.0, (b, nkv, t, d), &dev)?.to_dtype(dtype)?;
            let v = Tensor::randn(0f32, 1.0, (b, nkv, t, d), &dev)?.to_dtype(dtype)?;
            let broadcast = block_masks(t, &MaskLayout::Broadcast, &dev)?;
            let layout = MaskLayout::Expanded {
                batch: b,
                kv_heads: nkv,
                group: nh / nkv,
                dtype,
            };
            let expanded = block_masks(t, &layout, &dev)?;
            assert_eq!(
                expanded[0].mask.as_ref().map(Tensor::dims),
                Some(&[b, nkv, 2 * 128, 128][..])
            );
            let fused = block_masks(t, &MaskLayout::InKernel, &dev)?;
            assert!(fused.iter().all(|m| m.mask.is_none()));
            let one = causal_attention(&q, &k, &v, &broadcast, dtype)?.to_dtype(DType::F32)?;
            let two = causal_attention(&q, &k, &v, &expanded, dtype)?.to_dtype(DType::F32)?;
            let three = causal_attention(&q, &k, &v, &fused, dtype)?.to_dtype(DType::F32)?;
            let diff = (&one - two)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert_eq!(diff, 0.0, "expanded, {dtype:?}");
            // The fused pass sums its exponentials in another order than candle's
            // softmax: float rounding, at most a unit in the last place of the dtype.
            let diff = (one - three)?.abs()?.max_all()?.to_scalar::<f32>()?;
            let bound = if dtype == DType::F32 { 1e-5 } else { 4e-3 };
            assert!(diff < bound, "fused, {dtype:?}: {diff}");
        }
        Ok(())
    }
}
