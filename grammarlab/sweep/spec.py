"""Sweeps: a base run config times a grid of values, run ids, executors, tidy tables.

A sweep file (TOML) has a ``[base]`` table (the keys of a train config), a ``[grid]`` table
mapping dotted config keys to lists of values (``n_train = [8, 64]``, ``"lora.rank" = [4, 8]``,
``model = [{preset = "pythia-tiny"}, ...]``; a table value is merged into the config), and any
number of ``[[derive]]`` tables that write grammars into ``<out>/grammars/`` and add them to the
grammar axis:

* ``grammar = "g.cfg"`` + ``entropy_bits = [...]`` (+ ``method = "temper"|"skew"``, ``toward``):
  :func:`grammarlab.grammar.tune.tune` of the base grammar to each target entropy (bits per string);
* ``family = "hierarchical"`` + ``p = [...]``, or ``family = "random"`` + ``alphabet_size``
  (+ ``length``, ``oversample``, ``oversample_prob`` / ``target_bits``; any may be a list):
  the grammar families of "Rethinking memorization in LLMs: on learning by rote vs. with
  understanding" (:mod:`grammarlab.grammar.families`).

Every point of the Cartesian product is one run in ``<out>/<run_id>/``; ``run_id`` is the readable
values of the axes plus 8 hex digits of a SHA-256 over the config *and the grammar file's text*,
so editing a grammar gives a new run instead of reusing one trained on the old text.

A ``[resources]`` table (all keys optional) says what each run gets on a cluster
(:class:`Resources`, read by the ``slurm`` executor of :mod:`grammarlab.sweep.slurm`)::

    [resources]
    gpus_per_run = 1        # 0: CPU-only runs; > 1: accelerate launch (accelerate_config)
    cpus_per_run = 4
    mem_gb = 64             # host memory per run
    time_min = 120          # per task; past it the task is requeued and resumes
    partition = "gpu"
    account = "my-lab"
    qos = "normal"
    constraint = "h100"
    max_parallel = 16       # array tasks running at once
    max_requeues = 5        # preemptions/timeouts before a run is given up
    setup = ["module load cuda/12.4"]   # shell lines before each task
    accelerate_config = "configs/accelerate/fsdp_llama3_8b_1x8.yaml"
    wait = true             # false: submit and return (rerun the sweep to collect tables)
    cluster = "slurm"       # or "local" (submitit's local processes); unset: slurm if present

The table is a property of the sweep (:attr:`Sweep.resources`), never of its runs: it does not
enter the run ids, so the same grid on another cluster finds its finished runs.

This module owns the sweep file format only; running a sweep is :mod:`grammarlab.sweep.execute`
(jobs: :mod:`grammarlab.sweep.jobs`) and its tidy tables are :mod:`grammarlab.sweep.tables`.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grammarlab.errors import ConfigError, GrammarlabError
from grammarlab.grammar.families import hierarchical_grammar, random_grammar
from grammarlab.grammar.load import load
from grammarlab.grammar.tune import length_warning, tune
from grammarlab.io import write_text_atomic
from grammarlab.train.config import (
    NOT_IDENTITY,
    TrainConfig,
    config_from_dict,
    flatten_keys,
    merge_settings,
    resolve,
)

SWEEP_KEYS = {"name", "out", "base", "grid", "derive", "resources"}
RESOURCES = "resources"  # the table of a sweep file that Resources reads
CLUSTERS = ("slurm", "local", "debug")  # submitit's executors (local: processes, no Slurm)
_SAFE = re.compile(r"[^A-Za-z0-9_.=+-]+")


@dataclass(frozen=True)
class SweepRun:
    """One point of a sweep: its id, folder and resolved config."""

    run_id: str
    run_dir: Path
    config: TrainConfig
    point: tuple[tuple[str, Any], ...]  # (dotted key, value) of the grid axes


@dataclass(frozen=True)
class Resources:
    """The ``[resources]`` table of a sweep file: what each run of the sweep gets."""

    gpus_per_run: int = 1
    cpus_per_run: int = 4
    mem_gb: float | None = None
    time_min: int = 120
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    max_parallel: int | None = None
    max_requeues: int = 5
    setup: tuple[str, ...] = ()
    accelerate_config: str | None = None
    wait: bool = True
    cluster: str | None = None  # submitit's: slurm | local | debug; None: slurm if it exists

    def __post_init__(self) -> None:
        object.__setattr__(self, "setup", tuple(self.setup))
        checks = {
            "gpus_per_run": (int, lambda v: v >= 0, "an integer >= 0"),
            "cpus_per_run": (int, lambda v: v >= 1, "an integer >= 1"),
            "time_min": (int, lambda v: v >= 1, "an integer >= 1 (minutes)"),
            "max_requeues": (int, lambda v: v >= 0, "an integer >= 0"),
            "max_parallel": (int, lambda v: v >= 1, "an integer >= 1, or unset"),
            "mem_gb": ((int, float), lambda v: v > 0, "a number > 0 (GB), or unset"),
            "wait": (bool, lambda v: True, "true or false"),
        }
        for name, (tp, ok, valid) in checks.items():
            v = getattr(self, name)
            if v is None and name in ("max_parallel", "mem_gb"):
                continue
            if isinstance(v, bool) != (tp is bool) or not isinstance(v, tp) or not ok(v):
                raise ConfigError(f"resources.{name} must be {valid}, got {v!r}")
        for name in ("partition", "account", "qos", "constraint", "accelerate_config"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, str) or not v.strip()):
                raise ConfigError(f"resources.{name} must be a non-empty string, got {v!r}")
        if self.cluster not in (None, *CLUSTERS):
            raise ConfigError(f"resources.cluster must be one of {', '.join(CLUSTERS)} or unset, "
                              f"got {self.cluster!r}")  # fmt: skip
        if not all(isinstance(s, str) for s in self.setup):
            raise ConfigError("resources.setup must be a list of shell lines (strings)")
        if self.gpus_per_run > 1 and self.accelerate_config is None:
            raise ConfigError(
                f"resources.gpus_per_run = {self.gpus_per_run} needs an accelerate config",
                hint='set resources.accelerate_config = "configs/accelerate/...yaml"',
            )


def resources_from_dict(data: dict[str, Any], source: str = "<sweep>") -> Resources:
    """A :class:`Resources` from a ``[resources]`` table; unknown keys are errors."""
    names = [f.name for f in dataclasses.fields(Resources)]
    for key in data:
        if key not in names:
            raise ConfigError(f"unknown key resources.{key}", file=source,
                              hint=f"valid keys in [resources]: {', '.join(names)}")  # fmt: skip
    try:
        return Resources(**data)
    except ConfigError as e:
        d = e.diagnostics[0]
        raise ConfigError(d.message, file=source, hint=d.hint) from None


@dataclass(frozen=True)
class Sweep:
    """An expanded sweep: its name, output folder, runs (in grid order) and the resources each
    run gets on a cluster (the ``[resources]`` table; defaults when the file has none)."""

    name: str
    root: Path
    runs: tuple[SweepRun, ...]
    resources: Resources = Resources()


# ----------------------------------------------------------------------------- expansion


def load_sweep(path: Path | str, out: Path | str | None = None, runs_dir: str = "runs") -> Sweep:
    """Read and expand a sweep file; derived grammars are written under ``<out>/grammars``.

    ``out`` defaults to the file's ``out`` key, else ``runs/<name>`` (name: the ``name`` key,
    else the file stem). Relative grammar paths are relative to the sweep file's folder."""
    path = Path(path)
    try:
        spec = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GrammarlabError("no such sweep file", file=str(path)) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"invalid TOML: {e}", file=str(path)) from None
    name = str(spec.get("name", path.stem))
    root = Path(out or spec.get("out") or Path(runs_dir) / name)
    return expand(spec, root, base_dir=path.parent, source=str(path), name=name)


def expand(
    spec: dict[str, Any],
    root: Path | str,
    base_dir: Path | str = ".",
    source: str = "<sweep>",
    name: str | None = None,
) -> Sweep:
    """The runs of a parsed sweep spec (see the module docstring)."""
    root, base_dir = Path(root), Path(base_dir)
    unknown = set(spec) - SWEEP_KEYS
    if unknown:
        raise ConfigError(f"unknown sweep key(s) {sorted(unknown)}", file=source,
                          hint=f"a sweep file has {sorted(SWEEP_KEYS)}")  # fmt: skip
    table = spec.get(RESOURCES, {})
    if not isinstance(table, dict):
        raise ConfigError(f"[{RESOURCES}] must be a table", file=source)
    resources = resources_from_dict(table, source)
    base = copy.deepcopy(spec.get("base", {}))
    if not isinstance(base, dict):
        raise ConfigError("[base] must be a table", file=source)
    axes = flatten_keys(spec.get("grid", {}))
    for key, values in axes.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"grid.{key} must be a non-empty list of values", file=source,
                              hint=f'e.g. {key} = [1, 2] (or "{key}" = [...])')  # fmt: skip
    derived = [p for d in _as_list(spec.get("derive", []), source) for p in
               derive_grammars(d, root / "grammars", base_dir, source)]  # fmt: skip
    if "grammar" in axes:
        axes["grammar"] = [_abs(g, base_dir) for g in axes["grammar"]] + derived
    elif derived:
        axes = {"grammar": derived, **axes}
    if "grammar" in base:
        base["grammar"] = _abs(base["grammar"], base_dir)
    runs, seen = [], {}
    keys = list(axes)
    for values in itertools.product(*(axes[k] for k in keys)):
        cfg = merge_settings(base, dict(zip(keys, values, strict=True)))
        if "grammar" not in cfg:
            raise ConfigError("no grammar: set base.grammar, grid.grammar or a [[derive]]",
                              file=source)  # fmt: skip
        point = tuple((k, v) for k, v in zip(keys, values, strict=True) if len(axes[k]) > 1)
        config = resolve_config(cfg, source)
        rid = run_id(config, point)
        if rid in seen:
            raise ConfigError(f"two grid points give the same run {rid}", file=source,
                              hint="a grid axis lists the same value twice")  # fmt: skip
        seen[rid] = True
        runs.append(SweepRun(rid, root / rid, config, point))
    return Sweep(name or root.name, root, tuple(runs), resources)


def _as_list(v: Any, source: str) -> list[dict[str, Any]]:
    items = v if isinstance(v, list) else [v]
    if not all(isinstance(x, dict) for x in items):
        raise ConfigError("derive must be [[derive]] tables", file=source)
    return items


def _abs(p: Any, base_dir: Path) -> str:
    if not isinstance(p, str):
        raise ConfigError(f"a grammar must be a file path, got {p!r}")
    q = Path(p).expanduser()
    if not q.is_absolute():
        q = base_dir / q if (base_dir / q).exists() or not q.exists() else q
    return str(q.resolve())


def derive_grammars(d: dict[str, Any], folder: Path, base_dir: Path, source: str) -> list[str]:
    """Write the grammars of one ``[[derive]]`` table into ``folder``; their paths, in order.

    A file is rewritten only when its text changes, so its run ids stay stable."""
    d = dict(d)
    prefix = d.pop("name", None)
    if "family" in d:
        fam = d.pop("family")
        makers = {"hierarchical": hierarchical_grammar, "random": random_grammar}
        if fam not in makers:
            raise ConfigError(f"unknown family {fam!r}", file=source, hint="hierarchical | random")
        keys = list(d)
        lists = [d[k] if isinstance(d[k], list) else [d[k]] for k in keys]
        out = []
        for values in itertools.product(*lists):
            kw = dict(zip(keys, values, strict=True))
            # name by the values that vary (the list-valued keys)
            tag = "_".join(f"{_short(k)}{_fmt(kw[k])}" for k in keys if isinstance(d[k], list))
            try:
                g = makers[fam](**kw)
            except TypeError as e:
                raise ConfigError(f"derive {fam}: {e}", file=source) from None
            stem = "_".join(x for x in (prefix or fam, tag) if x)
            out.append(_write_grammar(folder / f"{stem}.cfg", g.to_text()))
        return out
    if "grammar" not in d or "entropy_bits" not in d:
        raise ConfigError("a [[derive]] table needs family = ..., or grammar and entropy_bits",
                          file=source)  # fmt: skip
    src = Path(_abs(d["grammar"], base_dir))
    g = load(src)
    method, toward = d.get("method", "temper"), d.get("toward")
    targets = d["entropy_bits"] if isinstance(d["entropy_bits"], list) else [d["entropy_bits"]]
    out = []
    for t in targets:
        tuned = tune(g, float(t), method=method, toward=toward)
        stem = f"{prefix or src.stem}_{method}_H{_fmt(t)}"
        warning = length_warning(tuned)
        if warning:  # a long grammar makes every run of the sweep slow: say so before it starts
            print(f"{source}: warning: {stem}: {warning}", file=sys.stderr)
        out.append(_write_grammar(folder / f"{stem}.cfg", tuned.to_text()))
    return out


def _write_grammar(path: Path, text: str) -> str:
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        write_text_atomic(path, text)
    return str(path.resolve())


def _short(key: str) -> str:
    leaf = key.rsplit(".", 1)[-1]
    return {"n_train": "n", "seed": "s", "alphabet_size": "l", "entropy_bits": "H",
            "target_bits": "H", "oversample_prob": "q", "grammar": ""}.get(leaf, leaf)  # fmt: skip


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, dict):
        return "_".join(_fmt(x) for x in v.values())
    return str(v)


def resolve_config(cfg: dict[str, Any], source: str = "<sweep>") -> TrainConfig:
    """The run config of a grid point with every default filled
    (:func:`grammarlab.train.config.resolve`,
    which needs the grammar), so that equal runs get equal ids however they were written."""
    try:
        c = config_from_dict(cfg)
    except ConfigError as e:
        raise ConfigError(f"{e.diagnostics[0].message} (in a grid point of the sweep)",
                          file=source, hint=e.diagnostics[0].hint) from None  # fmt: skip
    return resolve(c, load(c.grammar))


def run_id(cfg: TrainConfig, point: tuple[tuple[str, Any], ...] = ()) -> str:
    """Readable axis values plus 8 hex digits of :func:`config_hash`."""
    parts = []
    for k, v in point:
        if k == "grammar":
            parts.append(Path(v).stem)
        else:
            parts.append(f"{_short(k)}{_fmt(v)}")
    label = _SAFE.sub("_", "-".join(parts))[:80].strip("_-")
    h = config_hash(cfg)
    return f"{label}-{h}" if label else h


def config_hash(cfg: TrainConfig) -> str:
    """8 hex digits of SHA-256 over the canonical JSON of the config, in which the grammar path
    is replaced by the SHA-256 of the grammar file's text (same text anywhere = same hash)."""
    c = {k: v for k, v in cfg.to_dict().items() if k not in NOT_IDENTITY}
    g = Path(c["grammar"])
    try:
        c["grammar"] = "sha256:" + hashlib.sha256(g.read_bytes()).hexdigest()
    except FileNotFoundError:
        raise GrammarlabError("grammar file not found", file=str(g)) from None
    blob = json.dumps(c, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:8]
