"""The capacity experiment's configuration: one frozen dataclass per table of the TOML file.

A config file (``experiments/capacity_cpu.toml`` is the default grid)::

    name = "capacity_cpu"
    alphabet_size = 16        # V: letters of the uniform random grammar
    length = 16               # L: letters per string; a string carries L log2 V bits
    dataset_sizes = [4, 8, 16, 32, 64, 128, 256]
    seeds = [0, 1]
    dtypes = ["float32", "bfloat16"]
    n_test = 256

    [train]                   # TrainSpec
    batch_size = 64
    max_steps = 4000
    ...

    [saturation]              # SaturationSpec
    window = 3
    ...

    [[models]]                # one ModelSpec (grammarlab.train.models) per model size
    preset = "pythia-tiny"
    hidden_size = 16
    num_layers = 1
    num_heads = 2
    intermediate_size = 64

Why the CPU default is V = 16, L = 16 and not Morris et al.'s V = 2048, L = 64: a CPU core
trains only a few thousand minibatch steps per run within the hour, which saturates only
1-layer models of a few thousand parameters; their measured capacity (docs/capacity.md) is
some hundreds to thousands of bits, so 64-bit strings put it at tens of strings, and a dataset
from well below to well above it is seen hundreds of times per run. ``alphabet_size`` may
exceed 26: the grammar's terminals are then named t0, t1, ...
(:func:`grammarlab.grammar.families.alphabet`); the GPU grid uses Morris et al.'s 2048.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from grammarlab.errors import ConfigError
from grammarlab.grammar.families import MAX_INDEXED
from grammarlab.train.config import read_config_file
from grammarlab.train.models import MAX_POSITIONS, PRESETS, ModelSpec

DTYPES = ("float32", "bfloat16")
MAX_ALPHABET = MAX_INDEXED  # random_grammar: letters a..z up to 26 symbols, then t0, t1, ...
MAX_LENGTH = MAX_POSITIONS - 2  # a tiny model's positions hold bos + L letters + eos
MAX_SEED = 2**32 - 1  # torch.manual_seed and numpy's seed streams take every seed up to here
MAX_STRINGS = 2**21  # training + test strings of one run (~2M: 0.3 GB of token ids at L = 64)


def _positive_int(name: str, v: Any, lo: int = 1) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise ConfigError(f"{name} must be an integer >= {lo}, got {v!r}")


def _number(name: str, v: Any, lo: float, hi: float = math.inf, lo_open: bool = False) -> None:
    ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    if ok:
        ok = (v > lo if lo_open else v >= lo) and v <= hi
    if not ok:
        rng = f"{'>' if lo_open else '>='} {lo}" + (f" and <= {hi}" if hi < math.inf else "")
        raise ConfigError(f"{name} must be a number {rng}, got {v!r}")


@dataclass(frozen=True)
class TrainSpec:
    """The ``[train]`` table: minibatch AdamW from scratch with a fixed step budget.

    ``batch_size``: strings per step (a dataset smaller than that is the whole batch).
    ``max_steps``: the step budget; a run stops earlier when it saturates.
    ``lr``: peak learning rate, reached linearly over ``warmup_steps``, then constant (a schedule
    tied to the budget would itself end the growth; a constant lr lets saturation decide).
    ``weight_decay``: AdamW's decoupled decay (0 = Adam, as Morris et al. train).
    ``eval_every``: steps between measurements of the memorized bits.
    ``eval_batch_size``: strings per forward pass when measuring.
    """

    batch_size: int = 64
    max_steps: int = 4000
    lr: float = 3e-3
    warmup_steps: int = 100
    weight_decay: float = 0.0
    beta2: float = 0.99
    eval_every: int = 200
    eval_batch_size: int = 512

    def __post_init__(self) -> None:
        for name in ("batch_size", "max_steps", "eval_every", "eval_batch_size"):
            _positive_int(f"train.{name}", getattr(self, name))
        _positive_int("train.warmup_steps", self.warmup_steps, lo=0)
        _number("train.lr", self.lr, 0.0, lo_open=True)
        _number("train.weight_decay", self.weight_decay, 0.0)
        _number("train.beta2", self.beta2, 0.0, 1.0, lo_open=True)
        if self.beta2 >= 1.0:
            raise ConfigError(f"train.beta2 must be < 1, got {self.beta2!r}")


@dataclass(frozen=True)
class SaturationSpec:
    """The ``[saturation]`` table: when a run has stopped memorizing.

    A run is saturated at an evaluation when its best total of memorized bits (clipped) so far
    exceeds its best total ``window`` evaluations earlier by at most ``rel_tol`` (a fraction) of
    it, and at least ``min_steps`` steps were taken (the first steps learn the uniform
    distribution and memorize nothing, a flat start that is not a plateau). See
    :mod:`.saturation`.
    """

    window: int = 3
    rel_tol: float = 0.01
    min_steps: int = 1000

    def __post_init__(self) -> None:
        _positive_int("saturation.window", self.window)
        _positive_int("saturation.min_steps", self.min_steps, lo=0)
        _number("saturation.rel_tol", self.rel_tol, 0.0, 1.0)


@dataclass(frozen=True)
class CapacityConfig:
    """A capacity grid: every model of ``models`` x ``dataset_sizes`` x ``seeds`` x ``dtypes``.

    ``alphabet_size`` V (2..65536; letters a..z up to 26, t0, t1, ... beyond) and ``length`` L:
    the uniform random grammar; every string has exactly L log2 V bits of surprisal.
    ``dataset_sizes``: training strings per run (distinct).
    ``seeds``: each seed draws the model's weights, the training and test strings and the batch
    order. ``dtypes``: "float32" and/or "bfloat16" (parameters, activations and optimizer state
    all stored in that type, on the CPU too). ``n_test``: fresh strings (disjoint from the
    training set) for the test loss and membership inference; each run uses min(n_test, N) of
    them so the two classes are balanced. ``device``: "cpu", "cuda" or "auto" (CUDA when
    available).
    """

    models: tuple[ModelSpec, ...]
    dataset_sizes: tuple[int, ...]
    name: str = "capacity"
    alphabet_size: int = 16
    length: int = 32
    seeds: tuple[int, ...] = (0,)
    dtypes: tuple[str, ...] = ("float32",)
    n_test: int = 256
    device: str = "cpu"
    train: TrainSpec = field(default_factory=TrainSpec)
    saturation: SaturationSpec = field(default_factory=SaturationSpec)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not re.fullmatch(r"[\w.-]+", self.name):
            raise ConfigError(f"name must be a word (letters, digits, _ . -), got {self.name!r}")
        if not (isinstance(self.alphabet_size, int) and 2 <= self.alphabet_size <= MAX_ALPHABET):
            raise ConfigError(
                f"alphabet_size must be an integer 2..{MAX_ALPHABET}, got {self.alphabet_size!r}",
                hint="letters a..z up to 26 symbols, t0, t1, ... beyond (Morris et al.: 2048)",
            )
        _positive_int("length", self.length)
        if self.length > MAX_LENGTH:
            raise ConfigError(
                f"length must be <= {MAX_LENGTH}, got {self.length!r}",
                hint=f"the tiny models have {MAX_POSITIONS} positions: bos, L letters, eos "
                "(Morris et al.: L = 64)",
            )
        _positive_int("n_test", self.n_test)
        if self.device not in ("cpu", "cuda", "auto"):
            raise ConfigError(f'device must be "cpu", "cuda" or "auto", got {self.device!r}')
        for name in ("models", "dataset_sizes", "seeds", "dtypes"):
            v = getattr(self, name)
            if not isinstance(v, list | tuple) or not v:
                raise ConfigError(f"{name} must be a non-empty list, got {v!r}")
            object.__setattr__(self, name, tuple(v))
        for n in self.dataset_sizes:
            _positive_int("dataset_sizes[]", n, lo=2)
        # distinct strings the grammar has, without forming V^L (an integer of L log10 V digits)
        distinct = math.inf if self.length * math.log2(self.alphabet_size) > 64 else (
            self.alphabet_size**self.length)  # fmt: skip
        for n in self.dataset_sizes:
            need = n + min(self.n_test, n)
            if need > min(MAX_STRINGS, distinct):
                why = (f"the grammar has only {distinct} distinct strings" if need > distinct
                       else f"at most {MAX_STRINGS} strings per run (memory)")  # fmt: skip
                raise ConfigError(
                    f"dataset_sizes[] {n} plus min(n_test, {n}) test strings is {need}: {why}"
                )
        for s in self.seeds:
            _positive_int("seeds[]", s, lo=0)
            if s > MAX_SEED:
                raise ConfigError(f"seeds[] must be <= {MAX_SEED} (2^32 - 1), got {s!r}")
        for d in self.dtypes:
            if d not in DTYPES:
                raise ConfigError(f"dtypes[] must be one of {', '.join(DTYPES)}, got {d!r}")
        for name in ("dataset_sizes", "seeds", "dtypes"):
            v = getattr(self, name)
            if len(set(v)) != len(v):
                raise ConfigError(f"{name} has repeated values: {list(v)}")
        for m in self.models:
            if not isinstance(m, ModelSpec) or PRESETS.get(m.preset) is None:
                raise ConfigError(f"models[] must be tiny presets, got {m!r}")
            if PRESETS[m.preset].source != "tiny":
                tiny = ", ".join(n for n, p in PRESETS.items() if p.source == "tiny")
                raise ConfigError(
                    f"models[].preset {m.preset!r} is pretrained; the capacity experiment trains "
                    "from scratch",
                    hint=f"use a tiny preset: {tiny}",
                )
        if len(set(self.models)) != len(self.models):
            raise ConfigError("models has the same model twice")
        if not isinstance(self.train, TrainSpec) or not isinstance(self.saturation, SaturationSpec):
            raise ConfigError("train and saturation must be tables")  # fmt: skip

    @property
    def string_bits(self) -> float:
        """Exact surprisal of every string of the uniform grammar: L log2 V bits (the end token
        costs 0 bits, as every string has length L)."""
        return self.length * math.log2(self.alphabet_size)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists and dicts) that :func:`config_from_dict` reads back."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "models":
                out[f.name] = [_spec_dict(m) for m in v]
            elif f.name in ("train", "saturation"):
                out[f.name] = {g.name: getattr(v, g.name) for g in fields(v)}
            else:
                out[f.name] = list(v) if isinstance(v, tuple) else v
        return out


def _spec_dict(m: ModelSpec) -> dict[str, Any]:
    return {f.name: getattr(m, f.name) for f in fields(m) if getattr(m, f.name) is not None}


def _table(cls: type, data: Any, prefix: str, where: dict[str, dict[str, Any]]) -> Any:
    """``cls(**data)``, naming an unknown key or a wrong value with its file:line when known."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.[]')} must be a table, got {data!r}")
    names = [f.name for f in fields(cls)]
    for key in data:
        if key not in names:
            raise ConfigError(f"unknown config key '{prefix}{key}'",
                              hint=f"valid keys: {', '.join(names)}",
                              **where.get(prefix + key, {}))  # fmt: skip
    try:
        return cls(**data)
    except ConfigError as e:
        d = e.diagnostics[0]
        key = d.message.split(" ", 1)[0].removeprefix(prefix)
        loc = where.get(prefix + key, {})
        if loc and d.file == "grammarlab":
            raise ConfigError(d.message, hint=d.hint, **loc) from None
        raise
    except TypeError as e:  # a required key missing
        raise ConfigError(f"{prefix}{e}", hint=f"valid keys: {', '.join(names)}") from None


def config_from_dict(data: dict[str, Any], where: dict[str, dict[str, Any]] | None = None):
    """A :class:`CapacityConfig` from nested plain data (TOML tables as dicts); ``where`` maps a
    dotted key to ``{file, line}`` for error messages."""
    where = where or {}
    data = dict(data)
    for key in ("models", "dataset_sizes"):
        if key not in data:
            raise ConfigError(f"the capacity config needs '{key}'",
                              hint="see experiments/capacity_cpu.toml")  # fmt: skip
    if not isinstance(data["models"], list):
        raise ConfigError("models must be an array of tables: [[models]] preset = \"...\"",
                          **where.get("models", {}))  # fmt: skip
    data["models"] = [_table(ModelSpec, m, "models.", where) for m in data["models"]]
    data["train"] = _table(TrainSpec, data.get("train", {}), "train.", where)
    data["saturation"] = _table(SaturationSpec, data.get("saturation", {}), "saturation.", where)
    return _table(CapacityConfig, data, "", where)


def load_config(path: str | Path) -> CapacityConfig:
    """Read and validate a capacity TOML file; errors name the file and line."""
    p = Path(path)
    data, where = read_config_file(p, "capacity config")
    try:
        return config_from_dict(data, where)
    except ConfigError as e:
        d = e.diagnostics[0]
        if d.file == "grammarlab":  # no line known: at least name the file
            raise ConfigError(d.message, hint=d.hint, file=str(p)) from None
        raise
