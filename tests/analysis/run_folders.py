"""Synthetic finished run folders (docs/runs.md layout) for the analysis and CLI tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

GRAMMAR = "S -> A A [1.0]\nA -> 'a' [0.5] | 'b' [0.5]\n"
# ratio test/train: e0 1.0, e1 1.0, e2 1.2, e3 2.0 -> onset 2; min test 1.0 at e1 -> gen end 1
TRAIN = [2.0, 1.0, 1.0, 0.5]
TEST = [2.0, 1.0, 1.2, 1.0]


def write_run(run: Path, train=TRAIN, test=TEST, seed=0, extra_line: str = "") -> None:
    """A finished-looking run folder: config, env, metrics, data, one surprisals file."""
    (run / "data").mkdir(parents=True)
    (run / "grammar.cfg").write_text(GRAMMAR)
    (run / "config.toml").write_text(
        f'grammar = "grammars/ab.cfg"\nmodel = "tiny"\n[data]\nn_train = 2\nseed = {seed}\n'
    )
    (run / "env.json").write_text(json.dumps({"n_params": 10, "n_trainable_params": 10}))
    recs = [
        {"epoch": e, "stage": 1, "lr": 0.1, "train_loss": a, "test_loss": b, "random_loss": 3.0,
         "train_acc": 0.5, "test_acc": 0.4, "random_acc": 0.1}
        for e, (a, b) in enumerate(zip(train, test, strict=True))
    ]  # fmt: skip
    text = "".join(json.dumps(r) + "\n" for r in recs) + extra_line
    (run / "metrics.jsonl").write_text(text)
    (run / "data" / "train.txt").write_text("a a\na b\n")
    (run / "data" / "test.txt").write_text("b a\nb b\n")
    (run / "surprisals").mkdir()
    bits = np.array([[1.0, 1.0, 0.0], [0.5, 0.5, 0.0]], np.float32)
    np.savez(run / "surprisals" / "epoch_0003.npz", train_bits=bits, test_bits=bits + 1)
