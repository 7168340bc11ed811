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


def check_context(model: torch.nn.Module, strings: Sequence[tuple[str, ...]],
                  source: str = "<strings>") -> None:  # fmt: skip
    """Refuse a string longer than the model's context: with bos and eos it must fit in
    ``max_position_embeddings`` positions (256 for a tiny model); a longer one would be scored
    at positions the model never had, without a word."""
    limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if not isinstance(limit, int):
        return
    for i, s in enumerate(strings, start=1):
        if len(s) + 2 > limit:
            raise GrammarlabError(
                f"a string of {len(s):,} tokens does not fit the model's context of {limit} "
                f"positions (at most {limit - 2} tokens, plus bos and eos)",
                file=source, line=i, hint="score strings no longer than the model's context",
            )  # fmt: skip


def score_strings(
    run_dir: str | Path, strings: Sequence[tuple[str, ...]], source: str = "<strings>"
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Surprisal of ``strings`` under a run's model (the latest checkpoint): bits per string
    (end token included) and bits per predicted token (length L + 1 each). A string longer than
    the model's context is refused (``source``: the file named in the error, its line)."""
    model, tmap, device = load_run_model(run_dir)
    check_context(model, strings, source)
    model.eval()
    res = evaluate_set(model, encode_set("score", strings, tmap, device), 64, supports(model))
    per_token = [res.token_bits[i, : len(s) + 1].copy() for i, s in enumerate(strings)]
    return res.string_bits, per_token
