"""Sweeps: a base run config times a grid of values, run ids, executors, tidy tables.

A sweep file (TOML) has a ``[base]`` table (the keys of a train config), a ``[grid]`` table
mapping dotted config keys to lists of values (``n_train = [8, 64]``, ``"lora.rank" = [4, 8]``,
``model = [{preset = "pythia-tiny"}, ...]``; a table value is merged into the config), and any
number of ``[[derive]]`` tables that write grammars into ``<out>/grammars/`` and add them to the
grammar axis:

* ``grammar = "g.cfg"`` + ``entropy_bits = [...]`` (+ ``method = "temper"|"skew"``, ``toward``,
  ``entropy = "string"|"derivational"|"monte-carlo"``, ``mc_samples``, ``seed``):
  :func:`grammarlab.grammar.tune.tune` of the base grammar to each target entropy, in bits: the
  exact string entropy (the default, refused where it cannot be computed exactly), the
  derivational entropy (exact, an upper bound of the string entropy) or the seeded Monte Carlo
  estimate of the string entropy (the tuned header states it with its standard error);
* ``generator = "hierarchical"`` (or ``family = "hierarchical"``, which is then also the
  grammars' family) + ``p = [...]``, or
  ``"random"`` + ``alphabet_size`` (+ ``length``, ``oversample``, ``oversample_prob`` /
  ``target_bits``; any may be a list): the grammar families of "Rethinking memorization in LLMs:
  on learning by rote vs. with understanding" (:mod:`grammarlab.grammar.families`).

``name`` (a file-name prefix: letters, digits, ``_.=+-``) names the written files. A grammar's
family and label, which the tables, figures and report use, come from the sweep file when it
sets them (a ``[[derive]]`` table's ``family`` / ``label``, or a grid entry written as a table
``{file = "dyck.cfg", family = "dyck", label = "Dyck-2"}``), else from the grammar's header
(:mod:`grammarlab.grammar.header`), else from the file name; ``label`` may be a template of the
entry's values (``"Dyck-2, H = {entropy_bits}"``) or a list with one label per grammar. The
sweep writes what its file sets into ``<out>/grammars.json`` (:data:`LABELS`), which the tables
read.

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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grammarlab.analysis.labels import LABELS, read_labels  # noqa: F401 - re-exported
from grammarlab.errors import ConfigError, GrammarlabError
from grammarlab.grammar.families import hierarchical_grammar, random_grammar
from grammarlab.grammar.load import load, loads
from grammarlab.grammar.tune import QUANTITIES, MonteCarloBudget, length_warning, tune
from grammarlab.io import write_json_atomic, write_text_atomic
from grammarlab.train.config import (
    NOT_IDENTITY,
    TrainConfig,
    config_from_dict,
    flatten_keys,
    merge_settings,
    resolve,
)

SWEEP_KEYS = {"name", "out", "base", "grid", "derive", "resources"}
GENERATORS = {"hierarchical": hierarchical_grammar, "random": random_grammar}
# the keys of a [[derive]] table that tunes a grammar (the others go to the generators)
TUNE_KEYS = {"name", "grammar", "entropy_bits", "method", "toward", "entropy", "mc_samples",
             "seed", "family", "label"}  # fmt: skip
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=+-]*$")
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
class SweepGrammar:
    """A grammar of the sweep's grammar axis: its absolute path, its text when the sweep derives
    it (None: a file of the user's), and the family and label that the sweep file sets (None:
    from the grammar's header, else from the file name)."""

    path: str
    text: str | None = None
    family: str | None = None
    label: str | None = None


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
        # one shell line may be given as a string (a string is not split into characters)
        setup = (self.setup,) if isinstance(self.setup, str) else self.setup
        if not isinstance(setup, (list, tuple)):
            raise ConfigError(f"resources.setup must be a list of shell lines, got {setup!r}")
        object.__setattr__(self, "setup", tuple(setup))
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
    grammars: tuple[SweepGrammar, ...] = ()


# ----------------------------------------------------------------------------- expansion


def load_sweep(
    path: Path | str,
    out: Path | str | None = None,
    runs_dir: str = "runs",
    write: bool = True,
) -> Sweep:
    """Read and expand a sweep file; derived grammars are written under ``<out>/grammars`` and
    the families and labels the file sets into ``<out>/grammars.json`` (``write=False``: nothing
    is written, as for a dry run; the run ids are the same).

    ``out`` defaults to the file's ``out`` key, else ``runs/<name>`` (name: the ``name`` key,
    else the file stem). Relative grammar paths are relative to the sweep file's folder."""
    path = Path(path)
    hint = "give the path of a sweep file (TOML), e.g. examples/entropy_sweep.toml"
    if path.is_dir():
        raise ConfigError("is a directory, not a sweep file", file=str(path), hint=hint)
    try:
        spec = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GrammarlabError("no such sweep file", file=str(path), hint=hint) from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"not a UTF-8 text file ({e.reason} at byte {e.start})",
                          file=str(path), hint=hint) from None  # fmt: skip
    except OSError as e:
        raise ConfigError(f"cannot read the sweep file: {e.strerror}", file=str(path)) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"invalid TOML: {e}", file=str(path)) from None
    name = spec.get("name", path.stem)
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"name must be a non-empty string, got {name!r}", file=str(path))
    if "out" in spec and not (isinstance(spec["out"], str) and spec["out"].strip()):
        raise ConfigError(f"out must be a folder path, got {spec['out']!r}", file=str(path))
    root = Path(out or spec.get("out") or Path(runs_dir) / name)
    if root.exists() and not root.is_dir():
        raise ConfigError(
            f"the sweep folder {root} is a file",
            file="--out" if out else str(path),
            hint="the sweep folder holds the runs and tables: name a folder (new or existing)",
        )
    return expand(spec, root, base_dir=path.parent, source=str(path), name=name, write=write)


def expand(
    spec: dict[str, Any],
    root: Path | str,
    base_dir: Path | str = ".",
    source: str = "<sweep>",
    name: str | None = None,
    write: bool = True,
) -> Sweep:
    """The runs of a parsed sweep spec (see the module docstring); with ``write``, the derived
    grammars and the labels file are written into ``root`` (else nothing is written)."""
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
    grid = spec.get("grid", {})
    if not isinstance(grid, dict):
        raise ConfigError(f"[grid] must be a table of keys and lists of values, got {grid!r}",
                          file=source, hint="e.g. [grid] n_train = [8, 64]")  # fmt: skip
    axes = flatten_keys(grid)
    for key, values in axes.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"grid.{key} must be a non-empty list of values", file=source,
                              hint=f'e.g. {key} = [1, 2] (or "{key}" = [...])')  # fmt: skip
    folder = root / "grammars"
    derived = [p for d in _as_list(spec.get("derive", []), source) for p in
               derive_grammars(d, folder, base_dir, source)]  # fmt: skip
    axis = [_entry(g, base_dir, source, "grid.grammar") for g in axes.get("grammar", [])]
    axis += derived
    if "grammar" in axes:
        axes["grammar"] = [g.path for g in axis]
    elif derived:
        axes = {"grammar": [g.path for g in axis], **axes}
    grammars = axis
    if "grammar" in base:
        grammars = [_entry(base["grammar"], base_dir, source, "base.grammar"), *axis]
        base["grammar"] = grammars[0].path
    texts = {g.path: g.text for g in grammars if g.text is not None}
    if write:
        _check_inside(folder, root, source)
        with writing(root):
            for g in derived:
                _write_grammar(Path(g.path), g.text)
    runs, seen = [], {}
    keys = list(axes)
    for values in itertools.product(*(axes[k] for k in keys)):
        cfg = merge_settings(base, dict(zip(keys, values, strict=True)))
        if "grammar" not in cfg:
            raise ConfigError("no grammar: set base.grammar, grid.grammar or a [[derive]]",
                              file=source)  # fmt: skip
        point = tuple((k, v) for k, v in zip(keys, values, strict=True) if len(axes[k]) > 1)
        config = resolve_config(cfg, source, texts)
        rid = run_id(config, point, texts)
        if rid in seen:
            raise ConfigError(f"two grid points give the same run {rid}", file=source,
                              hint="a grid axis lists the same value twice")  # fmt: skip
        seen[rid] = True
        runs.append(SweepRun(rid, root / rid, config, point))
    used = {r.config.grammar for r in runs}
    grammars = [g for g in grammars if g.path in used]
    if write:
        with writing(root):
            write_labels(root, grammars)
    return Sweep(name or root.name, root, tuple(runs), resources, tuple(grammars))


@contextmanager
def writing(root: Path) -> Iterator[None]:
    """Writes into the sweep folder ``root``: an OSError (read-only, full disk, a file in the
    way) becomes one GrammarlabError naming the path."""
    try:
        yield
    except OSError as e:
        raise GrammarlabError(
            f"cannot write into the sweep folder: {e.strerror}",
            file=str(e.filename or root),
            hint="the sweep folder (--out, or the file's out) must be a folder you can write to",
        ) from None


def write_labels(root: Path, grammars: list[SweepGrammar]) -> None:
    """``<root>/grammars.json``: the family and label the sweep file sets for each grammar (by
    its absolute path, as the runs' configs name it); rewritten only when it changes."""
    table = {g.path: {k: v for k, v in (("family", g.family), ("label", g.label)) if v}
             for g in grammars if g.family or g.label}  # fmt: skip
    path = root / LABELS
    new = {"grammars": table}
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        old = None
    if old != new and (table or path.exists()):
        write_json_atomic(path, new)


def _check_inside(folder: Path, root: Path, source: str) -> None:
    """Refuse a grammars folder that leads out of the sweep folder (a symlink)."""
    if folder.exists() or folder.is_symlink():
        inside = folder.resolve().is_relative_to(root.resolve())
        if not inside or not folder.is_dir():
            raise ConfigError(
                f"{folder} is not a folder inside the sweep folder {root}",
                file=source,
                hint="derived grammars are written into <out>/grammars: remove what is there",
            )


def _as_list(v: Any, source: str) -> list[dict[str, Any]]:
    items = v if isinstance(v, list) else [v]
    if not all(isinstance(x, dict) for x in items):
        raise ConfigError("derive must be [[derive]] tables", file=source)
    return items


def _entry(v: Any, base_dir: Path, source: str, key: str) -> SweepGrammar:
    """A grammar entry of the grid or the base: a path, or a table ``{file, family, label}``."""
    if isinstance(v, dict):
        bad = set(v) - {"file", "family", "label"}
        if bad or "file" not in v:
            raise ConfigError(f"{key}: a grammar entry table has file (required), family and "
                              f"label, got {sorted(v)}", file=source)  # fmt: skip
        for k in ("family", "label"):
            if k in v and not (isinstance(v[k], str) and v[k].strip()):
                raise ConfigError(f"{key}: {k} must be a non-empty string, got {v[k]!r}",
                                  file=source)  # fmt: skip
        return SweepGrammar(_abs(v["file"], base_dir, source, key), None, v.get("family"),
                            v.get("label"))  # fmt: skip
    return SweepGrammar(_abs(v, base_dir, source, key))


def _abs(p: Any, base_dir: Path, source: str = "<sweep>", key: str = "grammar") -> str:
    if not isinstance(p, str):
        raise ConfigError(f"{key}: a grammar must be a file path, got {p!r}", file=source)
    q = Path(p).expanduser()
    if not q.is_absolute():
        q = base_dir / q if (base_dir / q).exists() or not q.exists() else q
    return str(q.resolve())


def derive_grammars(
    d: dict[str, Any], folder: Path, base_dir: Path, source: str
) -> list[SweepGrammar]:
    """The grammars of one ``[[derive]]`` table, in order, as they would be written into
    ``folder`` (nothing is written here: :func:`expand` writes them unless it is a dry run)."""
    d = dict(d)
    prefix = d.pop("name", None)
    if prefix is not None and not (isinstance(prefix, str) and _NAME.match(prefix)):
        raise ConfigError(
            f"derive.name must be a file-name prefix, got {prefix!r}",
            file=source,
            hint="letters, digits and _ . = + - (not starting with a dot): the derived grammars "
            "are written into <out>/grammars/, never elsewhere",
        )
    if "grammar" in d:
        return _tuned_grammars(d, prefix, folder, base_dir, source)
    # generator = "random" (+ family = a label family) or, as before, family = "random"
    gen = d.pop("generator") if "generator" in d else d.pop("family", None)
    family = d.pop("family", None) or gen
    if gen is None:
        raise ConfigError("a [[derive]] table needs generator = ..., or grammar and entropy_bits",
                          file=source)  # fmt: skip
    if not isinstance(family, str) or not family.strip():
        raise ConfigError(f"derive.family must be a non-empty string, got {family!r}", file=source)
    if not isinstance(gen, str) or gen not in GENERATORS:
        raise ConfigError(f"unknown generator {gen!r}", file=source,
                          hint=" | ".join(GENERATORS))  # fmt: skip
    label = d.pop("label", None)
    keys = list(d)
    lists = [d[k] if isinstance(d[k], list) else [d[k]] for k in keys]
    points = [dict(zip(keys, values, strict=True)) for values in itertools.product(*lists)]
    labels = _labels(label, points, source)
    out = []
    for kw, lab in zip(points, labels, strict=True):
        # name by the values that vary (the list-valued keys)
        tag = "_".join(f"{_short(k)}{_fmt(kw[k])}" for k in keys if isinstance(d[k], list))
        try:
            g = GENERATORS[gen](**kw)
        except TypeError as e:
            raise ConfigError(f"derive {gen}: {e}", file=source) from None
        stem = "_".join(x for x in (prefix or gen, tag) if x)
        out.append(SweepGrammar(_inside(folder, stem, source), g.to_text(), family, lab))
    return out


def _tuned_grammars(
    d: dict[str, Any], prefix: str | None, folder: Path, base_dir: Path, source: str
) -> list[SweepGrammar]:
    """The grammars of a ``[[derive]]`` table that tunes ``grammar`` to ``entropy_bits``."""
    bad = set(d) - TUNE_KEYS
    if bad:
        raise ConfigError(f"unknown [[derive]] key(s) {sorted(bad)} for tuning a grammar",
                          file=source, hint=f"valid: {', '.join(sorted(TUNE_KEYS))}")  # fmt: skip
    if "entropy_bits" not in d:
        raise ConfigError("a [[derive]] table with a grammar needs entropy_bits (targets, bits)",
                          file=source)  # fmt: skip
    targets = d["entropy_bits"] if isinstance(d["entropy_bits"], list) else [d["entropy_bits"]]
    for t in targets:
        if isinstance(t, bool) or not isinstance(t, (int, float)):
            raise ConfigError(f"derive.entropy_bits must be numbers (bits), got {t!r}",
                              file=source, hint="e.g. entropy_bits = [20.0, 30.0]")  # fmt: skip
    if not targets:
        raise ConfigError("derive.entropy_bits is an empty list", file=source)
    quantity = d.get("entropy", "string")
    if quantity not in QUANTITIES:
        raise ConfigError(f"derive.entropy must be one of {', '.join(QUANTITIES)}, got "
                          f"{quantity!r}", file=source)  # fmt: skip
    for k in ("method", "toward", "family"):
        if k in d and not isinstance(d[k], str):
            raise ConfigError(f"derive.{k} must be a string, got {d[k]!r}", file=source)
    try:
        mc = MonteCarloBudget(**{k: d[v] for k, v in (("samples", "mc_samples"), ("seed", "seed"))
                                 if v in d})  # fmt: skip
    except GrammarlabError as e:
        raise ConfigError(f"derive: {e.diagnostics[0].message}", file=source) from None
    src = Path(_abs(d["grammar"], base_dir, source, "derive.grammar"))
    g = load(src)
    method, toward = d.get("method", "temper"), d.get("toward")
    labels = _labels(d.get("label"), [{"entropy_bits": t} for t in targets], source)
    out = []
    for t, lab in zip(targets, labels, strict=True):
        tuned = tune(g, float(t), method=method, toward=toward, quantity=quantity, mc=mc)
        stem = f"{prefix or src.stem}_{method}_H{_fmt(t)}"
        if quantity != "string":  # a new quantity, a new file (the default keeps its names)
            stem += f"_{quantity}"
        warning = length_warning(tuned)
        if warning:  # a long grammar makes every run of the sweep slow: say so before it starts
            print(f"{source}: warning: {stem}: {warning}", file=sys.stderr)
        out.append(SweepGrammar(_inside(folder, stem, source), tuned.to_text(), d.get("family"),
                                lab))  # fmt: skip
    return out


def _labels(label: Any, points: list[dict[str, Any]], source: str) -> list[str | None]:
    """One label per derived grammar: none, a template of the entry's values, or a list."""
    if label is None:
        return [None] * len(points)
    if isinstance(label, list):
        if len(label) != len(points) or not all(isinstance(x, str) for x in label):
            raise ConfigError(f"derive.label: a list needs one string per derived grammar "
                              f"({len(points)}), got {label!r}", file=source)  # fmt: skip
        return list(label)
    if not isinstance(label, str):
        raise ConfigError(f"derive.label must be a string or a list, got {label!r}", file=source)
    try:
        return [label.format(**p) for p in points]
    except (KeyError, IndexError, ValueError) as e:
        fields = ", ".join("{" + k + "}" for k in points[0])
        raise ConfigError(
            f"derive.label {label!r}: {type(e).__name__}: {e}",
            file=source,
            hint=f"fields: {fields}",
        ) from None


def _inside(folder: Path, stem: str, source: str) -> str:
    """The absolute path of ``<folder>/<stem>.cfg``, refused if it would lead out of it."""
    path = folder / f"{stem}.cfg"
    if "/" in stem or "\\" in stem or stem.startswith(".") or path.parent != folder:
        raise ConfigError(
            f"a derived grammar's name {stem!r} is not a file name",
            file=source,
            hint="derive.name and the derived values name files in <out>/grammars",
        )
    return str(path.resolve())


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


def resolve_config(
    cfg: dict[str, Any], source: str = "<sweep>", texts: dict[str, str] | None = None
) -> TrainConfig:
    """The run config of a grid point with every default filled
    (:func:`grammarlab.train.config.resolve`,
    which needs the grammar), so that equal runs get equal ids however they were written.
    ``texts`` holds the text of grammars not written yet (path -> text: a dry run)."""
    try:
        c = config_from_dict(cfg)
    except ConfigError as e:
        raise ConfigError(f"{e.diagnostics[0].message} (in a grid point of the sweep)",
                          file=source, hint=e.diagnostics[0].hint) from None  # fmt: skip
    text = (texts or {}).get(c.grammar)
    return resolve(c, load(c.grammar) if text is None else loads(text, c.grammar))


def run_id(
    cfg: TrainConfig,
    point: tuple[tuple[str, Any], ...] = (),
    texts: dict[str, str] | None = None,
) -> str:
    """Readable axis values plus 8 hex digits of :func:`config_hash`."""
    parts = []
    for k, v in point:
        if k == "grammar":
            parts.append(Path(v).stem)
        else:
            parts.append(f"{_short(k)}{_fmt(v)}")
    label = _SAFE.sub("_", "-".join(parts))[:80].strip("_-")
    h = config_hash(cfg, texts)
    return f"{label}-{h}" if label else h


def config_hash(cfg: TrainConfig, texts: dict[str, str] | None = None) -> str:
    """8 hex digits of SHA-256 over the canonical JSON of the config, in which the grammar path
    is replaced by the SHA-256 of the grammar file's text (same text anywhere = same hash;
    ``texts``: the text of grammars not written yet, as :func:`resolve_config`)."""
    c = {k: v for k, v in cfg.to_dict().items() if k not in NOT_IDENTITY}
    g = Path(c["grammar"])
    text = (texts or {}).get(c["grammar"])
    try:
        data = g.read_bytes() if text is None else text.encode("utf-8")
        c["grammar"] = "sha256:" + hashlib.sha256(data).hexdigest()
    except FileNotFoundError:
        raise GrammarlabError("grammar file not found", file=str(g)) from None
    blob = json.dumps(c, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:8]
