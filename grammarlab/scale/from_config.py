"""What the memory plan needs from a run config: the model's architecture, dtype, LoRA rank,
strings per epoch and per forward pass, and the length of the longest training string.

The strings are the run's own: the data sets are drawn from the config's ``data_seed`` exactly as
``grammarlab train`` draws them (train/data.py), and the longest training string (D1 and, in a
sequential run, D2) sets the padded length of the training pass. ``grammarlab plan --config``
(:func:`read_run_facts`) and bench/bench_gpu.py read a config through :func:`run_facts`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grammarlab.grammar.load import load
from grammarlab.scale.arch import Architecture, architecture_of
from grammarlab.scale.plan import Setup
from grammarlab.train.config import TrainConfig, load_config, resolve
from grammarlab.train.data import make_datasets
from grammarlab.train.models import PRESETS


@dataclass(frozen=True)
class RunFacts:
    """A run config as the plan sees it."""

    model: str  # the preset name or model directory
    arch: Architecture
    dtype: str  # float32 | bfloat16 (a run's dtype: weights, compute and AdamW states)
    lora_rank: int  # 0: full fine-tune
    n_train: int  # strings per epoch (one full batch)
    micro_batch: int  # strings per training forward pass: micro_batch_size, at most n_train
    max_len: int  # tokens of the longest training string, without bos and eos

    def setup(self) -> Setup:
        """The plan's setup of this run on one GPU (plain, or LoRA when the rank is > 0)."""
        return Setup(mode="lora" if self.lora_rank else "plain", dtype=self.dtype,
                     n_train=self.n_train, micro_batch=self.micro_batch,
                     seq_len=self.max_len + 2, lora_rank=self.lora_rank or 8)  # fmt: skip


def run_facts(cfg: TrainConfig, grammar: Any) -> RunFacts:
    """The plan's view of ``cfg`` on ``grammar`` (a tiny model's vocabulary: ``model.vocab_size``
    or the grammar's terminals + bos, eos, pad). Raises ConfigError for a model without
    architecture facts."""
    cfg = resolve(cfg, grammar)
    spec = cfg.model
    tiny = spec.preset in PRESETS and PRESETS[spec.preset].source == "tiny"
    vocab = (spec.vocab_size or len(grammar.terminals) + 3) if tiny else None
    sizes = {n: getattr(spec, n) for n in ("hidden_size", "num_layers", "num_heads",
                                           "intermediate_size")} if tiny else {}  # fmt: skip
    arch = architecture_of(spec.preset, vocab=vocab, **sizes)
    sets = make_datasets(cfg, grammar).sets
    longest = max(len(s) for name in ("train", "train2") for s in sets.get(name, []))
    return RunFacts(spec.preset, arch, cfg.dtype, cfg.lora.rank, cfg.n_train,
                    min(cfg.micro_batch_size, cfg.n_train), longest)  # fmt: skip


def read_run_facts(path: str | Path) -> RunFacts:
    """:func:`run_facts` of a run config file, read as ``grammarlab train`` reads it (a bad file
    or grammar is a ConfigError naming it)."""
    cfg = load_config(path)
    return run_facts(cfg, load(cfg.grammar))
