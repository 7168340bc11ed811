"""A trained run's model, restored from its folder, and the surprisal of strings under it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from grammarlab.errors import GrammarlabError
from grammarlab.runs.folder import RunDir
from grammarlab.train.config import resolve
from grammarlab.train.evaluate import encode_set, evaluate_set
from grammarlab.train.loop import build_model
from grammarlab.train.prefix_trie import supports


def load_run_model(run_dir: str | Path | RunDir):
    """(model, TokenMap, device) of a run: the config's model (LoRA included) with the latest
    checkpoint's weights, on the CPU in float32. Reads only the folder (its config, its copy of
    the grammar, its checkpoint), so it works from any working directory."""
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(Path(run_dir))
    cfg = run.read_config()
    if cfg is None:
        raise GrammarlabError("not a run folder: no config.toml", file=str(run),
                              hint="give the folder of a grammarlab train run")  # fmt: skip
    grammar = run.read_grammar()
    model, tmap = build_model(resolve(cfg, grammar), grammar.terminals, "cpu", torch.float32)
    run.load_checkpoint(model)
    return model, tmap, "cpu"


def score_strings(
    run_dir: str | Path, strings: Sequence[tuple[str, ...]]
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Surprisal of ``strings`` under a run's model (the latest checkpoint): bits per string
    (end token included) and bits per predicted token (length L + 1 each)."""
    model, tmap, device = load_run_model(run_dir)
    model.eval()
    res = evaluate_set(model, encode_set("score", strings, tmap, device), 64, supports(model))
    per_token = [res.token_bits[i, : len(s) + 1].copy() for i, s in enumerate(strings)]
    return res.string_bits, per_token
