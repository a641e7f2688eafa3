"""Writes the golden fixtures for ascent-evaluator's tests.

Usage: fixtures.py OUT_DIR   (normally run through scripts/golden/generate)

Each fixture is a small Llama checkpoint saved by transformers' save_pretrained, so the
files are exactly what a contributor would upload. The reference loss of a case is the
mean over windows of transformers' model(w, labels=w).loss, computed in float32 with
eager attention after reloading the checkpoint from disk (bf16-stored weights are
upcast exactly). references.json lists every case.
"""

import json
import math
import os
import shutil
import struct
import sys

import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM

MAGIC = 20240520
torch.manual_seed(20240520)
torch.set_num_threads(max(1, os.cpu_count() or 1))


def write_shard(path, tokens, u32):
    header = [0] * 256
    header[0], header[1], header[2] = MAGIC, 2 if u32 else 1, len(tokens)
    with open(path, "wb") as f:
        f.write(struct.pack("<256i", *header))
        f.write(np.asarray(tokens, dtype="<u4" if u32 else "<u2").tobytes())


def text_tokens():
    """Byte-level tokens of English text shipped with Python (public licence text)."""
    import this  # noqa: F401  (prints the Zen of Python on import)

    rot13 = "".join(this.d.get(c, c) for c in this.s)
    text = (rot13 + "\n") * 3
    return list(text.encode("utf-8"))


def randomize(model, scale=1.5):
    """Replaces the tiny default init with larger random weights so logits vary and
    the losses are far from ln(vocab); norm weights move away from 1."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            else:
                fan_in = p.shape[-1]
                p.copy_(torch.randn_like(p) * scale / math.sqrt(fan_in))


def train(model, tokens, steps, seq_len):
    data = torch.tensor(tokens, dtype=torch.long)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        starts = torch.randint(0, len(data) - seq_len, (8,))
        batch = torch.stack([data[s : s + seq_len] for s in starts])
        loss = model(batch, labels=batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return loss.item()


def reference_loss(model_dir, tokens, seq_len, windows, dtype=torch.float32):
    model = LlamaForCausalLM.from_pretrained(
        model_dir, dtype=dtype, attn_implementation="eager"
    )
    model.eval()
    losses = []
    with torch.no_grad():
        for i in range(windows):
            w = torch.tensor(tokens[i * seq_len : (i + 1) * seq_len], dtype=torch.long)[None]
            losses.append(model(w, labels=w).loss.float().item())
    return float(np.mean(losses))


def main():
    out = sys.argv[1]
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)

    text = text_tokens()
    rng = np.random.default_rng(7)
    data_u16 = text[:1100]
    write_shard(os.path.join(out, "text_u16.bin"), data_u16, u32=False)
    data_u32 = rng.integers(0, 70000, size=700).tolist()
    write_shard(os.path.join(out, "random_u32.bin"), data_u32, u32=True)
    shards = {"text_u16.bin": data_u16, "random_u32.bin": data_u32}

    base = dict(
        vocab_size=256,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=128,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=False,
    )
    specs = {
        # name: (config overrides, how to make weights, save kwargs, cases)
        "mha": ({}, "random", {}, [("text_u16.bin", 64, 8), ("text_u16.bin", 33, 5)]),
        "gqa_llama3": (
            dict(
                num_attention_heads=8,
                num_key_value_heads=2,
                max_position_embeddings=512,
                rope_theta=500000.0,
                rope_scaling=dict(
                    rope_type="llama3",
                    factor=8.0,
                    low_freq_factor=1.0,
                    high_freq_factor=4.0,
                    original_max_position_embeddings=256,  # all three llama3 bands occur at head_dim 8
                ),
            ),
            "random",
            {},
            # 257 > 2 attention blocks of 128, the last one a single row.
            [("text_u16.bin", 96, 6), ("text_u16.bin", 257, 4)],
        ),
        "tied": (
            dict(hidden_size=48, num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True),
            "random",
            {},
            [("text_u16.bin", 64, 8)],
        ),
        "trained_bf16": ({}, "trained", {"bf16": True}, [("text_u16.bin", 64, 8)]),
        "trained_sharded": (
            dict(num_key_value_heads=2, max_position_embeddings=512),
            "trained",
            {"max_shard_size": "60KB"},
            [("text_u16.bin", 64, 16), ("text_u16.bin", 300, 3)],
        ),
        "odd_head": (
            dict(hidden_size=40, num_attention_heads=5, num_key_value_heads=1, head_dim=6, intermediate_size=72),
            "random",
            {},
            [("text_u16.bin", 50, 7)],
        ),
        "vocab70k_u32": (
            dict(
                vocab_size=70000,
                hidden_size=16,
                intermediate_size=32,
                num_hidden_layers=1,
                num_attention_heads=2,
                num_key_value_heads=1,
                tie_word_embeddings=True,
            ),
            "random",
            {"bf16": True},
            [("random_u32.bin", 128, 5)],
        ),
        # Head size 64, which the GPU's flash attention kernel is built for (the others
        # here run the blocked attention there): 200 positions are 3 blocks of 64
        # queries and a partial fourth. Last, so the fixtures before it stay as they were.
        "head64": (
            dict(
                hidden_size=128,
                intermediate_size=128,
                num_attention_heads=2,
                num_key_value_heads=1,
                max_position_embeddings=256,
                tie_word_embeddings=True,
            ),
            "random",
            {},
            [("text_u16.bin", 200, 5)],
        ),
    }

    references = []
    for name, (overrides, init, save, cases) in specs.items():
        cfg = LlamaConfig(**{**base, **overrides})
        model = LlamaForCausalLM(cfg)
        randomize(model)
        if init == "trained":
            final = train(model, text, steps=150, seq_len=64)
            print(f"{name}: trained, last batch loss {final:.3f}")
        model_dir = os.path.join(out, name)
        if save.get("bf16"):
            model = model.to(torch.bfloat16)
        kwargs = {"max_shard_size": save["max_shard_size"]} if "max_shard_size" in save else {}
        model.save_pretrained(model_dir, **kwargs)
        for fname in os.listdir(model_dir):
            if fname == "generation_config.json":
                os.remove(os.path.join(model_dir, fname))
        for data, seq_len, windows in cases:
            loss = reference_loss(model_dir, shards[data], seq_len, windows)
            case = dict(model=name, data=data, seq_len=seq_len, windows=windows, loss=loss)
            if save.get("bf16"):
                # transformers computing in bf16 too, for the looser bf16 comparison.
                case["loss_bf16_compute"] = reference_loss(
                    model_dir, shards[data], seq_len, windows, dtype=torch.bfloat16
                )
            references.append(case)
            print(json.dumps(case))

    meta = dict(
        torch=torch.__version__,
        transformers=__import__("transformers").__version__,
        note="mean over windows of model(w, labels=w).loss, float32, eager attention",
        cases=references,
    )
    with open(os.path.join(out, "references.json"), "w") as f:
        json.dump(meta, f, indent=1)


if __name__ == "__main__":
    main()
