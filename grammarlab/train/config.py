"""Run configuration: frozen dataclasses, TOML in (``tomllib``) and out, dotted-key settings.

A config file is flat TOML: top-level keys for the run, a ``[model]`` table (a
:class:`grammarlab.train.models.ModelSpec`) and a ``[lora]`` table::

    grammar = "grammars/hierarchical.cfg"
    n_train = 8
    epochs = 100
    [model]
    preset = "pythia-tiny"
    [lora]
    rank = 0

Each field carries its one-line description and unit next to its definition (``key(doc, unit,
default)``, stored in the field's metadata); :func:`config_reference` renders them as
``docs/config.md`` (``grammarlab config-doc``). Every field is type-checked and range-checked in
``__post_init__``; a wrong one raises :class:`ConfigError` naming the field, the valid values and
(from a file) its ``file:line``. :func:`resolve` fills the ``None``/``"auto"`` defaults that depend
on the grammar or model, and the resolved config is what a run folder saves (``config.toml``), so
the folder reproduces the run.

Settings reach a config as typed values in a nested dict: a TOML file, ``--set KEY=VALUE`` (the
value read as a TOML value) and typed command-line flags are merged with :func:`set_dotted`, then
:func:`config_from_dict` builds the dataclasses. :func:`flatten_keys` and :func:`set_dotted` are the
package's one dotted-key helper.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import math
import re
import tomllib
import types
import typing
from dataclasses import MISSING, dataclass
from pathlib import Path
from typing import Any, Literal

from grammarlab.errors import ConfigError
from grammarlab.train.models import ModelSpec, default_lr

TABLES = ("model", "lora")
SEED_LIMIT = 2**63  # seeds are TOML integers (signed 64-bit) and torch.manual_seed's range
# experiment trackers a run can report to (grammarlab.runs.trackers has one module each)
TRACKERS = ("tensorboard", "wandb", "mlflow", "trackio")
# keys that change no number of a run: left out of its identity (run ids, the resume check)
NOT_IDENTITY = ("report_to",)
# The largest sets a run accepts, so that a typo (n_test = 1e9) is refused at once instead of
# filling the memory: every string of every set is held as tokens, token ids and per-token
# surprisals at once (about BYTES_PER_TOKEN bytes per token; a run also checks the total against
# the machine's memory, memory_problem), and each generate epoch samples n_generate strings
# token by token.
MAX_SET = 1_000_000  # strings per set (n_train, n_test, n_random)
MAX_GENERATE = 100_000  # strings sampled per generate epoch
# Bytes a run holds per token of its sets (measured order of magnitude, rounded up): the token
# tuple (8), int64 ids, labels and mask (24), float32 bits and bool correct per epoch written
# (5), and the micro-batch's float32 activations and logits (hidden and vocabulary widths of a
# tiny model: ~60).
BYTES_PER_TOKEN = 100
_SET_WHY = "strings per set: the bound that keeps a run's sets in memory"


def key(default: Any, unit: str, doc: str, *, factory: Any = MISSING) -> Any:
    """A config field with its default (``MISSING``: required), unit (``""``: none, e.g. a switch
    or a name) and one-line description, as docs/config.md renders them."""
    return dataclasses.field(default=default, default_factory=factory,
                             metadata={"doc": doc, "unit": unit})  # fmt: skip


@dataclass(frozen=True)
class LoraSpec:
    """The ``[lora]`` table: LoRA adapters (peft) instead of a full fine-tune."""

    rank: int = key(0, "", "adapter rank; 0 trains the full model, >= 1 trains LoRA adapters only")
    alpha: float = key(16.0, "", "LoRA scaling numerator: the adapters add (alpha / rank) * B A")
    dropout: float = key(0.0, "probability", "dropout on the adapters' input (0: deterministic)")
    targets: tuple[str, ...] | None = key(
        None, "", "module names that get adapters; unset: the family's (models.LORA_TARGETS)"
    )

    def __post_init__(self) -> None:
        _check_fields(self, "lora.")
        _require(self.rank >= 0, "lora.rank", self.rank, "an integer >= 0 (0 = no LoRA)")
        _require(self.alpha > 0 and math.isfinite(self.alpha), "lora.alpha", self.alpha,
                 "a finite number > 0")  # fmt: skip
        _require(0 <= self.dropout < 1, "lora.dropout", self.dropout, "a number in [0, 1)")
        t = self.targets
        _require(t is None or (len(t) > 0 and all(t)), "lora.targets", t,
                 "a non-empty list of module names, or unset")  # fmt: skip


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines one training run (see docs/config.md for every key).

    Defaults follow the paper "Rethinking memorization in LLMs: on learning by rote vs. with
    understanding" (Sec. 2-4, App. A.1): 8 training strings, 100 epochs, the whole set as one batch
    per epoch, linear decay to 0, the preset's learning rate.
    """

    grammar: str = key(MISSING, "path", "the grammar file (PCFG text), from the working directory")
    model: ModelSpec = key(MISSING, "", "a preset name, or a [model] table", factory=ModelSpec)
    n_train: int = key(
        8,
        "strings",
        "distinct training strings (D1; in sequential runs, D2 too); at most 1,000,000",
    )
    n_test: int | Literal["auto"] = key(
        "auto",
        "strings",
        'held-out test strings; "auto": 10 for a regular grammar, else 100; at most 1,000,000',
    )
    n_random: int = key(
        10,
        "strings",
        "strings of uniform random tokens, the grammar's length distribution; 0: none; at most "
        "1,000,000",
    )
    epochs: int = key(100, "epochs", "stage-1 epochs; one epoch is one AdamW step on the whole set")
    lr: float | None = key(
        None, "per step", "peak AdamW learning rate, decayed linearly to 0; unset: the preset's"
    )
    weight_decay: float = key(
        0.0, "per unit lr", "AdamW decoupled weight decay: each step scales weights by 1 - lr * wd"
    )
    micro_batch_size: int | None = key(
        None, "strings", "strings per forward pass (gradients accumulate); unset: the largest set"
    )
    share_prefixes: bool = key(
        True, "", "run the model once per distinct prefix (prefix_trie.py): same losses, less work"
    )
    cpu_workers: int | None = key(
        None, "threads", "threads splitting each pass on a CPU; unset: from model size and CPUs"
    )
    seed: int = key(0, "", "the default of data_seed and model_seed")
    data_seed: int | None = key(
        None, "", "seed of the datasets (train, test, random, D2); unset: seed"
    )
    model_seed: int | None = key(
        None, "", "seed of a tiny model's or LoRA's initial weights and of dropout; unset: seed"
    )
    dtype: Literal["float32", "bfloat16"] = key(
        "float32", "", "weights and compute; bfloat16 also runs on the CPU (slower there)"
    )
    device: Literal["auto", "cpu", "cuda"] = key(
        "auto", "", '"auto": cuda when available, else cpu'
    )
    compile: Literal["default", "reduce-overhead"] | None = key(
        None,
        "",
        "torch.compile the model for training and evaluation with this mode "
        '("reduce-overhead" adds CUDA graphs: a GPU run of a small model is launch-bound); '
        "unset: eager. One process only; the first epochs pay the compile",
    )
    lora: LoraSpec = key(MISSING, "", "the [lora] table (LoRA adapters)", factory=LoraSpec)
    sequential: bool = key(
        False, "", "train on D1 for epochs, then on a disjoint D2 for epochs2 (Sec. 4: forgetting)"
    )
    epochs2: int | None = key(None, "epochs", "stage-2 epochs (sequential runs); unset: epochs")
    fresh_optimizer: bool = key(True, "", "stage 2 starts a new AdamW (moments reset)")
    reset_schedule: bool = key(
        True, "", "stage 2 has its own linear decay to 0 (else one decay over both stages)"
    )
    warmup2_epochs: int | None = key(
        None,
        "epochs",
        "stage 2's first N updates ramp its lr up: update j = 1..N at j / (N + 1) of the "
        "scheduled lr; unset or 0: none",
    )
    checkpoint_every: int | None = key(
        None, "epochs", "epochs between checkpoints; unset: time-based; always at a stage's end"
    )
    checkpoint_minutes: float = key(
        30.0, "minutes", "time-based checkpoints: at most this long between two"
    )
    checkpoint_overhead: float = key(
        0.02, "share", "time-based checkpoints: at most this share of the time goes to writing"
    )
    save_final_model: bool = key(
        False,
        "",
        "also write final_model/: a Hugging Face model with tokenizer (LoRA: its adapter)",
    )
    generate_epochs: tuple[int, ...] | None = key(
        None,
        "epochs",
        "epochs (0 to the last) at which the model samples n_generate strings; unset: first, last",
    )
    n_generate: int = key(
        64, "strings", "strings sampled from the model at each generate epoch; at most 100,000"
    )
    extraction_prefix: int = key(
        32, "tokens", "prefix length of the greedy extraction test (Carlini et al.)"
    )
    report_to: tuple[str, ...] | None = key(
        None,
        "",
        "experiment trackers that also get each epoch's values, measures and the config: "
        "tensorboard, wandb, mlflow, trackio (optional extras; metrics.jsonl stays the record). "
        "Changes no number: not part of the run's identity",
    )
    unique_train: bool = key(True, "", "training strings are distinct (drawn without replacement)")
    disjoint_test: bool = key(True, "", "test strings never occur in a training set (D1 or D2)")

    def __post_init__(self) -> None:
        for name, cls, what, eg in (
            ("model", ModelSpec, "a preset name or a [model] table", 'model = "pythia-tiny"'),
            ("lora", LoraSpec, "a [lora] table", "[lora] rank = 8"),
        ):  # a value where a table belongs (lora = 3) is an error naming the key
            v = getattr(self, name)
            if not isinstance(v, (cls, dict)) and not (name == "model" and isinstance(v, str)):
                raise ConfigError(f"{name} must be {what}, got {v!r}", key=name, hint=f"e.g. {eg}")
        if isinstance(self.model, str):  # shorthand: model = "pythia-tiny"
            object.__setattr__(self, "model", ModelSpec(preset=self.model))
        if isinstance(self.model, dict):
            object.__setattr__(self, "model", _build(ModelSpec, self.model, "model."))
        if isinstance(self.lora, dict):
            object.__setattr__(self, "lora", _build(LoraSpec, self.lora, "lora."))
        _check_fields(self, "")
        _require(bool(self.grammar.strip()), "grammar", self.grammar, "the path of a grammar file")
        for name in ("n_train", "epochs", "extraction_prefix"):
            _require(getattr(self, name) >= 1, name, getattr(self, name), "an integer >= 1")
        ce = self.checkpoint_every
        _require(ce is None or ce >= 1, "checkpoint_every", ce,
                 "an integer >= 1, or unset (= time-based)")  # fmt: skip
        cm = self.checkpoint_minutes
        _require(cm > 0 and math.isfinite(cm), "checkpoint_minutes", cm, "a finite number > 0")
        co = self.checkpoint_overhead
        _require(0 < co <= 1, "checkpoint_overhead", co, "a share in (0, 1]")
        for name in ("n_random", "n_generate"):
            _require(getattr(self, name) >= 0, name, getattr(self, name), "an integer >= 0")
        for name, top, why in (("n_train", MAX_SET, _SET_WHY), ("n_test", MAX_SET, _SET_WHY),
                               ("n_random", MAX_SET, _SET_WHY),
                               ("n_generate", MAX_GENERATE, "strings sampled per generate epoch")
                               ):  # fmt: skip
            v = getattr(self, name)
            _require(v == "auto" or v <= top, name, v, f"at most {top:,} ({why})")
        for name in ("seed", "data_seed", "model_seed"):
            v = getattr(self, name)
            unset = "" if name == "seed" else ", or unset (= seed)"
            _require(v is None or 0 <= v < SEED_LIMIT, name, v,
                     f"an integer in [0, 2**63){unset}")  # fmt: skip
        _require(self.n_test == "auto" or self.n_test >= 1, "n_test", self.n_test,
                 '"auto" or an integer >= 1')  # fmt: skip
        _require(self.lr is None or (self.lr > 0 and math.isfinite(self.lr)), "lr", self.lr,
                 "a finite number > 0, or unset (= the preset's default)")  # fmt: skip
        _require(self.weight_decay >= 0 and math.isfinite(self.weight_decay), "weight_decay",
                 self.weight_decay, "a finite number >= 0 (0 = no decay)")  # fmt: skip
        mb = self.micro_batch_size
        _require(mb is None or mb >= 1, "micro_batch_size", mb, "an integer >= 1, or unset")
        cw = self.cpu_workers
        _require(cw is None or cw >= 1, "cpu_workers", cw, "an integer >= 1, or unset (= auto)")
        _require(self.epochs2 is None or self.epochs2 >= 1, "epochs2", self.epochs2,
                 "an integer >= 1, or unset (= epochs)")  # fmt: skip
        w, e2 = self.warmup2_epochs, self.epochs2 or self.epochs
        _require(w is None or w >= 0, "warmup2_epochs", w, "an integer >= 0, or unset (= 0)")
        if w and not self.sequential:
            raise ConfigError(
                f"warmup2_epochs = {w} needs a sequential run (it warms up stage 2)",
                key="warmup2_epochs",
                hint="set sequential = true, or leave warmup2_epochs unset",
            )
        _require(not w or w < e2, "warmup2_epochs", w,
                 f"fewer than the {e2} stage-2 epochs (epochs2), or unset")  # fmt: skip
        rt = self.report_to
        _require(rt is None or all(t in TRACKERS for t in rt), "report_to", rt,
                 f"a list of trackers among {', '.join(TRACKERS)}, or unset")  # fmt: skip
        ge, total = self.generate_epochs, self.total_epochs
        _require(ge is None or all(0 <= e <= total for e in ge), "generate_epochs", ge,
                 f"a list of epochs >= 0 and <= the run's last epoch {total}")  # fmt: skip

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
        raise ConfigError(f"{name} must be {valid}, got {value!r}", key=name)


def _describe(tp: Any) -> str:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) is Literal:
        return " or ".join(json.dumps(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) in (tuple, list):
        plural = {int: "integers", float: "numbers", str: "strings"}
        return f"a list of {plural.get(typing.get_args(tp)[0], 'values')}"
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
            raise ConfigError(f"{prefix}{f.name} must be {_describe(tp)}, got {value!r}",
                              key=prefix + f.name) from None  # fmt: skip


# ----------------------------------------------------------------------------- dotted keys


def flatten_keys(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested tables -> ``{dotted key: leaf}`` (``{"model": {"preset": "x"}}`` ->
    ``{"model.preset": "x"}``); lists and scalars are leaves."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten_keys(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def set_dotted(d: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``a.b.c`` in a nested dict, in place, making the tables on the way; a dict value is
    merged into the table already there."""
    *parents, leaf = dotted.split(".")
    for p in parents:
        d = d.setdefault(p, {})
        if not isinstance(d, dict):
            raise ConfigError(f"key {dotted!r}: {p!r} is a value, not a table", key=dotted)
    if isinstance(value, dict) and isinstance(d.get(leaf), dict):
        d[leaf] = {**d[leaf], **copy.deepcopy(value)}
    else:
        d[leaf] = copy.deepcopy(value)


def config_fields() -> dict[str, dataclasses.Field]:
    """Every config key (dotted for the tables) -> its dataclass field, in definition order."""
    out: dict[str, dataclasses.Field] = {}
    for f in dataclasses.fields(TrainConfig):
        table = {"model": ModelSpec, "lora": LoraSpec}.get(f.name)
        out[f.name] = f
        if table is not None:
            out.update({f"{f.name}.{g.name}": g for g in dataclasses.fields(table)})
    return out


def _unknown_key(name: str, valid: list[str], loc: dict[str, Any]) -> ConfigError:
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'?" if close else "valid keys: " + ", ".join(valid)
    return ConfigError(f"unknown config key '{name}'", hint=hint, key=name, **loc)


def check_key(dotted: str, loc: dict[str, Any] | None = None) -> None:
    """Refuse a dotted key that names no config field (with a "did you mean")."""
    valid = list(config_fields())
    if dotted not in valid:
        raise _unknown_key(dotted, valid, loc or {})


def parse_set(item: str) -> tuple[str, Any]:
    """``KEY=VALUE`` of ``--set`` -> (dotted key, value read as a TOML value: ``1e-3``, ``true``,
    ``[0, 10]``; a bare word stays a string)."""
    name, sep, raw = item.partition("=")
    name = name.strip()
    if not sep or not name:
        raise ConfigError(f"bad --set {item!r}: expected KEY=VALUE",
                          hint="e.g. --set epochs=20 --set model.hidden_size=128")  # fmt: skip
    check_key(name, {"file": f"--set {item}"})
    try:
        return name, tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return name, raw.strip()


def merge_settings(data: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """A copy of the nested config dict ``data`` with each ``{dotted key: typed value}`` set."""
    out = copy.deepcopy(data)
    if isinstance(out.get("model"), str):  # the shorthand model = "NAME" is the table's preset
        out["model"] = {"preset": out["model"]}
    for dotted, value in settings.items():
        set_dotted(out, dotted, value)
    return out


def apply_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """A copy of ``data`` with each ``--set`` string ``KEY=VALUE`` applied (:func:`parse_set`)."""
    return merge_settings(data, dict(parse_set(o) for o in overrides))


# ----------------------------------------------------------------------------- building


def _build(cls: type, data: dict[str, Any], prefix: str, where: dict[str, Any] | None = None):
    """``cls(**data)`` with unknown keys reported (name, "did you mean", file:line)."""
    where = where or {}
    names = [f.name for f in dataclasses.fields(cls)]
    for k in data:
        if k not in names:
            raise _unknown_key(prefix + k, [prefix + n for n in names], where.get(prefix + k, {}))
    if "model" in data and not isinstance(data["model"], (str, dict, ModelSpec)):
        raise ConfigError("model must be a preset name or a table: [model] preset = \"...\"",
                          **where.get("model", {}))  # fmt: skip
    try:
        return cls(**data)
    except ConfigError as e:
        d = e.diagnostics[0]
        name = getattr(e, "key", None) or d.message.split(" ", 1)[0]  # ModelSpec's errors: no key
        loc = where.get(name if "." in name or not prefix else prefix + name, {})
        if loc and d.file == "grammarlab":
            raise ConfigError(d.message, hint=d.hint, key=name, **loc) from None
        raise
    except TypeError as e:  # a required field missing
        raise ConfigError(f"{prefix}{e}", hint=f"valid keys: {', '.join(names)}") from None


def config_from_dict(data: dict[str, Any], where: dict[str, Any] | None = None) -> TrainConfig:
    """A :class:`TrainConfig` from a nested dict of typed values (TOML tables as dicts).
    ``where``: dotted key -> ``{"file": ..., "line": ...}``, the origin named in error messages."""
    data = dict(data)
    if "grammar" not in data:
        raise ConfigError("the config needs a grammar (the path of a grammar file)",
                          hint='set grammar = "FILE" or pass --grammar FILE')  # fmt: skip
    for table, cls in (("model", ModelSpec), ("lora", LoraSpec)):
        if isinstance(data.get(table), dict):
            data[table] = _build(cls, data[table], table + ".", where)
    return _build(TrainConfig, data, "", where)


# ----------------------------------------------------------------------------- TOML in and out


def key_lines(text: str, source: str) -> dict[str, dict[str, Any]]:
    """Dotted key -> {file, line} of each ``key = value`` line of a TOML text (the first
    occurrence; ``[table]`` and ``[[array of tables]]`` headers prefix the keys), for error
    messages that name the line."""
    out: dict[str, dict[str, Any]] = {}
    table = ""
    for i, line in enumerate(text.splitlines(), start=1):
        if m := re.match(r"\s*\[\[?\s*([\w.-]+)\s*\]\]?", line):
            table = m.group(1) + "."
        elif m := re.match(r"\s*([\w-]+)\s*=", line):
            out.setdefault(table + m.group(1), {"file": source, "line": i})
    return out


def read_config_file(path: str | Path, kind: str = "run config"
                     ) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    """A config file's nested dict of values and where each key is (dotted key -> file, line);
    a missing, unreadable or invalid file is a :class:`ConfigError` naming it (``kind``: what
    the file should be, for the hints)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("no such config file", file=str(p),
                          hint=f"give the path of a TOML {kind}") from None  # fmt: skip
    except IsADirectoryError:
        raise ConfigError("a folder, not a config file", file=str(p),
                          hint="give the path of a TOML run config (a run folder's is "
                          f"{p / 'config.toml'})") from None  # fmt: skip
    except UnicodeDecodeError as e:
        raise ConfigError(f"not UTF-8 text ({e.reason} at byte {e.start})", file=str(p),
                          hint=f"a {kind} is a TOML text file") from None  # fmt: skip
    except OSError as e:
        raise ConfigError(f"cannot read the config file: {e.strerror}", file=str(p)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        raise ConfigError(f"invalid TOML: {e}", file=str(p),
                          line=int(m.group(1)) if m else None) from None  # fmt: skip
    return data, key_lines(text, str(p))


def load_config(
    path: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    where: dict[str, Any] | None = None,
) -> TrainConfig:
    """Read a TOML config file and apply ``--set`` strings ``KEY=VALUE`` (dotted keys). ``where``
    names the origin of keys in error messages (default: the file's lines, ``--set KEY=VALUE``)."""
    data, lines = read_config_file(path)
    lines.update({o.partition("=")[0].strip(): {"file": f"--set {o}"} for o in overrides})
    return config_from_dict(apply_overrides(data, overrides), {**lines, **(where or {})})


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


def memory_problem(cfg: TrainConfig, expected_length: float, memory_bytes: int) -> str:
    """'' when the sets of the resolved ``cfg`` fit in ``memory_bytes``, else why not: each set's
    strings take about ``expected_length + 2`` tokens (the grammar's mean string length, bos and
    eos) of :data:`BYTES_PER_TOKEN` bytes each, and a run may use half the machine's memory."""
    n = cfg.n_train * (2 if cfg.sequential else 1) + int(cfg.n_test) + cfg.n_random
    need = n * (expected_length + 2) * BYTES_PER_TOKEN
    if need <= memory_bytes / 2:
        return ""
    return (
        f"the sets hold about {n:,} strings of {expected_length:.4g} tokens on average, "
        f"about {need / 2**30:.3g} GiB at {BYTES_PER_TOKEN} bytes per token, more than half "
        f"of this machine's {memory_bytes / 2**30:.3g} GiB"
    )


def diff_configs(a: TrainConfig, b: TrainConfig) -> list[str]:
    """Dotted keys whose values differ between two configs."""
    fa, fb = flatten_keys(a.to_dict()), flatten_keys(b.to_dict())
    keys = (fa.keys() | fb.keys()) - set(NOT_IDENTITY)
    return sorted(k for k in keys if fa.get(k) != fb.get(k))


# ----------------------------------------------------------------------------- the reference


# The [model] table's fields are defined in models.py (ModelSpec). A field documents itself with
# metadata {"doc": ..., "unit": ...} (what key() makes); these stand in for ModelSpec's fields
# until they carry their own.
def field_doc(dotted: str) -> tuple[str, str]:
    """(one-line description, unit) of a config key (dotted for the tables)."""
    f = config_fields()[dotted]
    if "doc" in f.metadata:
        return f.metadata["doc"], f.metadata.get("unit", "")
    raise KeyError(f"config key {dotted!r} has no description")


def _default_text(f: dataclasses.Field) -> str:
    if f.default_factory is not MISSING:
        return "(table)"
    if f.default is MISSING:
        return "(required)"
    return "unset" if f.default is None else f"`{_toml_value(f.default)}`"


def config_reference() -> str:
    """docs/config.md: every config key with its type, default, unit and description (Markdown)."""
    hints = {
        "": typing.get_type_hints(TrainConfig),
        "model.": typing.get_type_hints(ModelSpec),
        "lora.": typing.get_type_hints(LoraSpec),
    }
    sections = {"": "Top-level keys", "model.": "`[model]`", "lora.": "`[lora]`"}
    rows: dict[str, list[str]] = {p: [] for p in sections}
    for dotted, f in config_fields().items():
        prefix = dotted[: dotted.index(".") + 1] if "." in dotted else ""
        if not prefix and f.name in TABLES:
            continue
        doc, unit = field_doc(dotted)
        typ = _describe(hints[prefix][f.name]).replace("|", "\\|")
        rows[prefix].append(f"| `{dotted}` | {typ} | {_default_text(f)} | {unit or '-'} | {doc} |")
    out = [
        "# Run config reference",
        "",
        "<!-- Generated by `grammarlab config-doc` from the field definitions in",
        "grammarlab/train/config.py; do not edit by hand (a test checks that it is in sync). -->",
        "",
        'A run config is a TOML file: top-level keys, a `[model]` table (or `model = "PRESET"`)',
        "and a `[lora]` table. `grammarlab train CONFIG.toml` reads it; `--set KEY=VALUE` sets any",
        "key (dotted for the tables: `--set model.hidden_size=128`; the value is read as a TOML",
        "value), and the flags `--grammar`, `--model`, `--n-train`, `--epochs`, `--seed`, `--lr`,",
        "`--lora-rank` and `--sequential` set the keys they name. Later wins: file, then `--set`,",
        "then flags. Keys left unset are filled when the run starts (`resolve`), and the resolved",
        "config is saved in the run folder as `config.toml`. A sweep file's `[base]` and `[grid]`",
        "use the same keys.",
        "",
        "Units: an epoch is one optimizer step on the whole training set; seeds are integers in",
        '[0, 2**63); "unset" means the key is left out of the file.',
    ]
    for prefix, title in sections.items():
        out += ["", f"## {title}", "", "| key | type | default | unit | description |",
                "|---|---|---|---|---|", *rows[prefix]]  # fmt: skip
    return "\n".join(out) + "\n"
