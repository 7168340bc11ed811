"""Run configuration: frozen dataclasses, TOML in (``tomllib``) and out, ``--set`` overrides.

A config file is flat TOML: top-level keys for the run, a ``[model]`` table (a
:class:`grammarlab.train.models.ModelSpec`) and a ``[lora]`` table::

    grammar = "grammars/hierarchical.cfg"
    n_train = 8
    epochs = 100
    [model]
    preset = "pythia-tiny"
    [lora]
    rank = 0

Every field is type-checked and range-checked in ``__post_init__``; a wrong one raises
:class:`ConfigError` naming the field, the valid values and (from a file) its ``file:line``.
:func:`resolve` fills the ``None``/``"auto"`` defaults that depend on the grammar or model, and
the resolved config is what a run folder saves (``config.toml``), so the folder reproduces the run.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from grammarlab.errors import ConfigError
from grammarlab.train.models import ModelSpec

TABLES = ("model", "lora")


@dataclass(frozen=True)
class LoraSpec:
    """The ``[lora]`` table. ``rank = 0`` trains the full model; ``rank >= 1`` trains peft LoRA
    adapters only. ``targets``: module names (None: the family's defaults in models.py)."""

    rank: int = 0
    alpha: float = 16.0
    dropout: float = 0.0
    targets: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        _check_fields(self, "lora.")
        if self.targets is not None:
            object.__setattr__(self, "targets", tuple(self.targets))
        _require(self.rank >= 0, "lora.rank", self.rank, "an integer >= 0 (0 = no LoRA)")
        _require(self.alpha > 0, "lora.alpha", self.alpha, "a number > 0")
        _require(0 <= self.dropout < 1, "lora.dropout", self.dropout, "a number in [0, 1)")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines one training run (see docs/architecture.md for the outputs).

    Defaults follow the paper (seed 002, Sec. 2-4, App. A.1): 8 training strings, 100 epochs,
    the whole set as one batch per epoch, linear decay to 0, the preset's learning rate.
    """

    grammar: str  # path of the grammar file
    model: ModelSpec = field(default_factory=ModelSpec)
    n_train: int = 8  # distinct training strings (D1 in sequential runs)
    n_test: int | Literal["auto"] = "auto"  # auto: 10 for a regular grammar, else 100 (paper)
    n_random: int = 10  # uniform random strings with the grammar's length distribution
    epochs: int = 100  # optimizer steps of stage 1 (one per epoch)
    lr: float | None = None  # None: the preset's default (models.default_lr)
    weight_decay: float = 0.0  # AdamW
    micro_batch_size: int | None = None  # strings per forward pass; None: the whole set
    share_prefixes: bool = True  # run the model once per distinct prefix (prefix_trie.py)
    cpu_workers: int | None = None  # threads splitting each epoch's strings; None: auto
    seed: int = 0
    data_seed: int | None = None  # None: seed; draws the datasets
    model_seed: int | None = None  # None: seed; draws the tiny model's (or LoRA's) init
    dtype: Literal["float32", "bfloat16"] = "float32"  # bfloat16 only on a GPU
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: cuda when available
    lora: LoraSpec = field(default_factory=LoraSpec)
    sequential: bool = False  # paper Sec. 4: train on D1, then on D2
    epochs2: int | None = None  # stage-2 epochs; None: epochs
    fresh_optimizer: bool = True  # stage 2 starts a new AdamW (moments reset)
    reset_schedule: bool = True  # stage 2 has its own linear decay (else one decay over both)
    checkpoint_every: int = 1  # epochs between checkpoints (always at the end of a stage)
    save_final_model: bool = False  # also write final_model/ (save_pretrained + tokens.json)
    generate_epochs: tuple[int, ...] | None = None  # None: first and last epoch
    n_generate: int = 64  # strings sampled from the model at each generate epoch
    extraction_prefix: int = 32  # prefix tokens for the greedy extraction test (Carlini et al.)
    unique_train: bool = True  # distinct training strings
    disjoint_test: bool = True  # test strings never in the training set(s)

    def __post_init__(self) -> None:
        if isinstance(self.model, str):  # shorthand: model = "pythia-tiny"
            object.__setattr__(self, "model", ModelSpec(preset=self.model))
        if isinstance(self.model, dict):
            object.__setattr__(self, "model", _build(ModelSpec, self.model, "model."))
        if isinstance(self.lora, dict):
            object.__setattr__(self, "lora", _build(LoraSpec, self.lora, "lora."))
        _check_fields(self, "")
        if self.generate_epochs is not None:
            object.__setattr__(self, "generate_epochs", tuple(self.generate_epochs))
        _require(bool(self.grammar.strip()), "grammar", self.grammar, "the path of a grammar file")
        for name in ("n_train", "epochs", "checkpoint_every", "extraction_prefix"):
            _require(getattr(self, name) >= 1, name, getattr(self, name), "an integer >= 1")
        for name in ("n_random", "n_generate", "seed"):
            _require(getattr(self, name) >= 0, name, getattr(self, name), "an integer >= 0")
        for name in ("data_seed", "model_seed"):
            v = getattr(self, name)
            _require(v is None or v >= 0, name, v, "an integer >= 0, or unset (= seed)")
        _require(self.n_test == "auto" or self.n_test >= 1, "n_test", self.n_test,
                 '"auto" or an integer >= 1')  # fmt: skip
        _require(self.lr is None or (self.lr > 0 and math.isfinite(self.lr)), "lr", self.lr,
                 "a finite number > 0, or unset (= the preset's default)")  # fmt: skip
        _require(self.weight_decay >= 0, "weight_decay", self.weight_decay, "a number >= 0")
        mb = self.micro_batch_size
        _require(mb is None or mb >= 1, "micro_batch_size", mb, "an integer >= 1, or unset")
        cw = self.cpu_workers
        _require(cw is None or cw >= 1, "cpu_workers", cw, "an integer >= 1, or unset (= auto)")
        _require(self.epochs2 is None or self.epochs2 >= 1, "epochs2", self.epochs2,
                 "an integer >= 1, or unset (= epochs)")  # fmt: skip
        ge = self.generate_epochs
        _require(ge is None or all(e >= 0 for e in ge), "generate_epochs", ge,
                 "a list of epochs >= 0")  # fmt: skip

    @property
    def total_epochs(self) -> int:
        """Last epoch of the run: epochs, plus epochs2 in sequential runs."""
        return self.epochs + ((self.epochs2 or self.epochs) if self.sequential else 0)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tables as dicts, tuples as lists, unset values omitted)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if dataclasses.is_dataclass(v):
                v = {k: _plain(x) for k, x in dataclasses.asdict(v).items() if x is not None}
            if v is not None:
                out[f.name] = _plain(v)
        return out


def _plain(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


# ----------------------------------------------------------------------------- type checking


def _require(ok: bool, name: str, value: Any, valid: str) -> None:
    if not ok:
        raise ConfigError(f"{name} must be {valid}, got {value!r}")


def _describe(tp: Any) -> str:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) is Literal:
        return " or ".join(json.dumps(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) in (tuple, list):
        return f"a list of {_describe(typing.get_args(tp)[0])}"
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    return names.get(tp, "unset" if tp is type(None) else str(tp))


def _coerce(value: Any, tp: Any) -> Any:
    """``value`` as type ``tp``, or raise TypeError. Strings from ``--set`` are accepted for
    lists (comma-separated) and ``none`` for optional fields."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if arg is type(None) and (value is None or value == "none"):
                return None
        for arg in typing.get_args(tp):
            if arg is not type(None):
                try:
                    return _coerce(value, arg)
                except TypeError:
                    pass
        raise TypeError
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        raise TypeError
    if origin in (tuple, list):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
            elem = typing.get_args(tp)[0]
            value = [int(v) if elem is int and re.fullmatch(r"-?\d+", v) else v for v in value]
        if not isinstance(value, (list, tuple)):
            raise TypeError
        return tuple(_coerce(v, typing.get_args(tp)[0]) for v in value)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp in (bool, str) and isinstance(value, tp):
        return value
    raise TypeError


def _check_fields(obj: Any, prefix: str) -> None:
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            continue
        value = getattr(obj, f.name)
        try:
            object.__setattr__(obj, f.name, _coerce(value, tp))
        except TypeError:
            raise ConfigError(f"{prefix}{f.name} must be {_describe(tp)}, got {value!r}") from None


def _build(cls: type, data: dict[str, Any], prefix: str, where: dict[str, Any] | None = None):
    """``cls(**data)`` with unknown keys reported (name, valid keys, file:line)."""
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            raise ConfigError(
                f"unknown config key '{prefix}{key}'",
                hint=f"valid keys{' in [' + prefix[:-1] + ']' if prefix else ''}: "
                + ", ".join(names),
                **(where or {}).get(prefix + key, {}),
            )
    if "model" in data and not isinstance(data["model"], (str, dict, ModelSpec)):
        raise ConfigError("model must be a preset name or a table: [model] preset = \"...\"",
                          **(where or {}).get("model", {}))  # fmt: skip
    try:
        return cls(**data)
    except ConfigError as e:
        msg = e.diagnostics[0].message
        key = msg.split(" ", 1)[0]
        loc = (where or {}).get(key if "." in key or not prefix else prefix + key, {})
        if loc and e.diagnostics[0].file == "grammarlab":
            raise ConfigError(msg, hint=e.diagnostics[0].hint, **loc) from None
        raise
    except TypeError as e:  # a required field missing
        raise ConfigError(f"{prefix}{e}", hint=f"valid keys: {', '.join(names)}") from None


def config_from_dict(data: dict[str, Any], where: dict[str, Any] | None = None) -> TrainConfig:
    """A :class:`TrainConfig` from a nested dict (TOML tables as dicts)."""
    data = dict(data)
    if "grammar" not in data:
        raise ConfigError("the config needs a grammar (the path of a grammar file)",
                          hint='set grammar = "FILE" or pass --grammar FILE')  # fmt: skip
    for table, cls in (("model", ModelSpec), ("lora", LoraSpec)):
        if isinstance(data.get(table), dict):
            data[table] = _build(cls, data[table], table + ".", where)
    return _build(TrainConfig, data, "", where)


# ----------------------------------------------------------------------------- TOML in and out


def _key_lines(text: str, source: str) -> dict[str, dict[str, Any]]:
    """Dotted key -> {file, line} of each ``key = value`` line (flat tables only)."""
    out: dict[str, dict[str, Any]] = {}
    table = ""
    for i, line in enumerate(text.splitlines(), start=1):
        if m := re.match(r"\s*\[\s*([\w.-]+)\s*\]", line):
            table = m.group(1) + "."
        elif m := re.match(r"\s*([\w-]+)\s*=", line):
            out.setdefault(table + m.group(1), {"file": source, "line": i})
    return out


def load_config(
    path: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    where: dict[str, Any] | None = None,
) -> TrainConfig:
    """Read a TOML config file and apply ``key=value`` overrides (dotted keys). ``where`` names
    the origin of override keys in error messages (default ``--set KEY=VALUE``)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"no such config file: {p}", file=str(p)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        raise ConfigError(f"invalid TOML: {e}", file=str(p),
                          line=int(m.group(1)) if m else None) from None  # fmt: skip
    lines = _key_lines(text, str(p))
    lines.update({o.partition("=")[0].strip(): {"file": f"--set {o}"} for o in overrides})
    return config_from_dict(apply_overrides(data, overrides), {**lines, **(where or {})})


def apply_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """A copy of ``data`` with each ``key=value`` set (``model.hidden_size=128``). Values are
    read as TOML values when they parse (``1e-3``, ``true``, ``[0, 10]``), else as strings."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"bad --set {item!r}: expected key=value",
                              hint="e.g. --set epochs=20 --set model.hidden_size=128")  # fmt: skip
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()
        parts = key.split(".")
        if len(parts) > 2 or (len(parts) == 2 and parts[0] not in TABLES):
            raise ConfigError(
                f"bad --set key {key!r}", hint=f"dotted keys start with one of: {', '.join(TABLES)}"
            )
        if len(parts) == 2:
            out.setdefault(parts[0], {})
            out[parts[0]] = {**out[parts[0]], parts[1]: value}
        else:
            out[key] = value
    return out


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return (
            "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
        )
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string for everything JSON escapes
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def dumps_config(cfg: TrainConfig) -> str:
    """The config as TOML text (unset values omitted; tomllib reads it back to an equal config)."""
    data = cfg.to_dict()
    lines = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for table in TABLES:
        lines += ["", f"[{table}]"] + [f"{k} = {_toml_value(v)}" for k, v in data[table].items()]
    return "\n".join(lines) + "\n"


def dump_config(cfg: TrainConfig, path: str | Path) -> None:
    """Write the config as TOML atomically."""
    from grammarlab.io import write_text_atomic

    write_text_atomic(path, dumps_config(cfg))


# ----------------------------------------------------------------------------- resolution


def is_regular(grammar: Any) -> bool:
    """Right-linear: every right side is terminals followed by at most one nonterminal (like the
    paper's random grammar)."""
    for r in grammar.rules:
        mask = list(r.terminal_mask)
        if False in mask[:-1]:
            return False
    return True


def resolve(cfg: TrainConfig, grammar: Any) -> TrainConfig:
    """The config with every default filled: n_test (10 for a regular grammar, else 100, the
    paper's sizes), lr (the preset's), seeds, micro_batch_size, epochs2, generate_epochs."""
    from grammarlab.train.models import default_lr

    n_test = cfg.n_test if cfg.n_test != "auto" else (10 if is_regular(grammar) else 100)
    return dataclasses.replace(
        cfg,
        n_test=n_test,
        lr=cfg.lr if cfg.lr is not None else default_lr(cfg.model),
        data_seed=cfg.seed if cfg.data_seed is None else cfg.data_seed,
        model_seed=cfg.seed if cfg.model_seed is None else cfg.model_seed,
        micro_batch_size=cfg.micro_batch_size or max(cfg.n_train, n_test, cfg.n_random, 1),
        epochs2=(cfg.epochs2 or cfg.epochs) if cfg.sequential else None,
        generate_epochs=cfg.generate_epochs
        if cfg.generate_epochs is not None
        else tuple(sorted({0, cfg.total_epochs})),
    )


def diff_configs(a: TrainConfig, b: TrainConfig) -> list[str]:
    """Dotted keys whose values differ between two configs."""

    def flat(cfg: TrainConfig) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in cfg.to_dict().items():
            if isinstance(v, dict):
                out.update({f"{k}.{kk}": vv for kk, vv in v.items()})
            else:
                out[k] = v
        return out

    fa, fb = flat(a), flat(b)
    return sorted(k for k in fa.keys() | fb.keys() if fa.get(k) != fb.get(k))
