"""Run folders as tidy tables: :func:`load_runs` and the small readers the analysis uses.

A run folder is any folder holding ``metrics.jsonl`` (see docs/architecture.md). Readers never
fail on a run that is still being written: a half-written last line of a JSON Lines file is
ignored, missing optional files give empty results and a note.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from grammarlab.errors import GrammarlabError

# standard config columns -> config keys (leaf names) that may hold them, first found wins
CONFIG_COLUMNS = {
    "grammar": ("grammar", "grammar_path", "grammar_file", "grammar_name"),
    "entropy_bits": ("entropy_bits", "grammar_entropy_bits", "target_bits", "entropy"),
    "n_train": ("n_train", "train_size", "n_train_strings"),
    "seed": ("seed", "data_seed"),
    "model": ("model", "model_name", "preset"),
}
_EPOCH_FILE = re.compile(r"^epoch_(\d+)$")
_SERIES = re.compile(r"^(?P<dataset>.+)_(?P<kind>loss|acc)$")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Objects of a JSON Lines file; blank lines and a half-written last line are skipped, a
    broken line elsewhere is an error with its line number. Missing file: []."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    out = []
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            if i == len(lines):  # being written right now
                break
            raise GrammarlabError(f"not valid JSON: {e.msg}", file=str(path), line=i) from None
        if not isinstance(obj, dict):
            raise GrammarlabError("each line must be a JSON object", file=str(path), line=i)
        out.append(obj)
    return out


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The per-epoch objects of ``metrics.jsonl`` (error when the file is missing)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise GrammarlabError(
            "not a run folder: no metrics.jsonl", file=str(run_dir), hint="give a run folder"
        )
    recs = [r for r in read_jsonl(path) if "epoch" in r]
    if not recs:
        raise GrammarlabError("metrics.jsonl has no epochs yet", file=str(path))
    return recs


def read_env(run_dir: Path) -> dict[str, Any]:
    """``env.json`` as a dict ({} when absent or unreadable while being written)."""
    try:
        return json.loads((Path(run_dir) / "env.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def read_config(run_dir: Path) -> dict[str, Any]:
    """``config.toml`` flattened to dotted keys of scalar values ({} when absent)."""
    import tomllib  # Python >= 3.11

    path = Path(run_dir) / "config.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as e:
        raise GrammarlabError(f"invalid TOML: {e}", file=str(path)) from None
    flat: dict[str, Any] = {}

    def walk(d: dict[str, Any], prefix: str) -> None:
        for k, v in d.items():
            if isinstance(v, dict):
                walk(v, f"{prefix}{k}.")
            elif isinstance(v, (str, int, float, bool)):
                flat[f"{prefix}{k}"] = v
            elif isinstance(v, list) and all(isinstance(x, (str, int, float)) for x in v):
                flat[f"{prefix}{k}"] = ",".join(map(str, v))

    walk(data, "")
    return flat


def config_columns(flat: dict[str, Any]) -> dict[str, Any]:
    """Standard columns (grammar, entropy_bits, n_train, seed, model; None when unknown) plus every
    config value as ``config.<dotted key>``."""
    out: dict[str, Any] = {}
    for col, leaves in CONFIG_COLUMNS.items():
        out[col] = next(
            (flat[k] for leaf in leaves for k in flat if k.rsplit(".", 1)[-1] == leaf), None
        )
    if isinstance(out["grammar"], str) and "/" in out["grammar"]:
        out["grammar"] = Path(out["grammar"]).stem
    out.update({f"config.{k}": v for k, v in flat.items()})
    return out


def read_run_strings(run_dir: Path) -> dict[str, list[tuple[str, ...]]]:
    """The strings of every ``data/*.txt`` of a run, by file stem (train, test, random, train2)."""
    from grammarlab.grammar.strings import read_strings

    folder = Path(run_dir) / "data"
    return (
        {p.stem: read_strings(p) for p in sorted(folder.glob("*.txt"))} if folder.is_dir() else {}
    )


def read_grammar(run_dir: Path) -> Any:
    """The run's grammar (``grammar.cfg``, a copy of the grammar it was trained on)."""
    from grammarlab.grammar.load import load

    path = Path(run_dir) / "grammar.cfg"
    if not path.is_file():
        raise GrammarlabError("run folder has no grammar.cfg", file=str(path),
                              hint="the measures need the run's grammar")  # fmt: skip
    return load(path)


def epoch_files(folder: Path, suffix: str) -> dict[int, Path]:
    """``epoch_XXXX<suffix>`` files of a folder by epoch, sorted ({} when the folder is absent)."""
    if not Path(folder).is_dir():
        return {}
    out = {}
    for p in Path(folder).glob(f"epoch_*{suffix}"):
        m = _EPOCH_FILE.match(p.name[: -len(suffix)])
        if m:
            out[int(m.group(1))] = p
    return dict(sorted(out.items()))


def find_run_dirs(path: Path | str) -> list[Path]:
    """The run folder ``path`` itself, or every run folder below it (sorted)."""
    root = Path(path)
    if not root.exists():
        raise GrammarlabError(f"no such folder: {root}", file=str(root))
    if (root / "metrics.jsonl").is_file():
        return [root]
    runs = sorted(p.parent for p in root.rglob("metrics.jsonl"))
    if not runs:
        raise GrammarlabError(
            "no run found: no metrics.jsonl in this folder or below it", file=str(root)
        )
    return runs


def run_id(run: Path, root: Path) -> str:
    """The run's name: its path relative to the folder searched, or its own name."""
    return run.name if run == root else run.relative_to(root).as_posix()


@dataclass(frozen=True, eq=False)
class RunTables:
    """Tidy tables of one or more runs.

    metrics: one row per (run, epoch, dataset) with loss (nats/token) and acc, plus stage, lr and
    config columns. phases: one row per run (``phases_source`` says file or computed). measures:
    one row per (run, epoch) from measures.jsonl. notes: what is missing and why."""

    metrics: pd.DataFrame
    phases: pd.DataFrame
    measures: pd.DataFrame
    notes: tuple[str, ...] = ()


def _metric_rows(rid: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for r in records:
        series: dict[str, dict[str, Any]] = {}
        for k, v in r.items():
            m = _SERIES.match(k)
            if m:
                series.setdefault(m["dataset"], {})[m["kind"]] = v
        for ds, vals in series.items():
            rows.append({
                "run": rid, "epoch": int(r["epoch"]), "stage": r.get("stage", 1),
                "lr": r.get("lr"), "dataset": ds,
                "loss": _float(vals.get("loss")), "acc": _float(vals.get("acc")),
            })  # fmt: skip
    return rows


def _float(v: Any) -> float:
    return math.nan if v is None else float(v)


def load_runs(path: Path | str) -> RunTables:
    """Metrics, phases and measures of the run folder ``path``, or of every run below it.

    Phases come from phases.json, else are computed from the metrics (pure and cheap); measures
    come from measures.jsonl, else are left out with a note (``grammarlab measures RUN``
    computes them). Unfinished runs load with the epochs they have."""
    from grammarlab.analysis.phases import Curves, detect_phases

    root = Path(path)
    metrics, phases, measures, notes = [], [], [], []
    for run in find_run_dirs(root):
        rid = run_id(run, root)
        cfg = config_columns(read_config(run))
        status = (read_json_obj(run / "status.json") or {}).get("state")
        records = [r for r in read_jsonl(run / "metrics.jsonl") if "epoch" in r]
        if not records:
            notes.append(f"{rid}: no epochs recorded yet")
            continue
        metrics += [{**row, **cfg} for row in _metric_rows(rid, records)]
        ph = read_json_obj(run / "phases.json")
        source = "phases.json"
        if ph is None:
            try:
                ph, source = detect_phases(Curves.from_records(records)).to_dict(), "computed"
            except GrammarlabError as e:
                ph, source = {}, "unavailable"
                notes.append(f"{rid}: phases unavailable: {e}")
        phases.append({"run": rid, "status": status, "phases_source": source, **ph, **cfg})
        rows = read_jsonl(run / "measures.jsonl")
        if not rows:
            notes.append(f"{rid}: no measures.jsonl (run `grammarlab measures {run}`)")
        measures += [{"run": rid, **r, **cfg} for r in rows]
    return RunTables(
        pd.DataFrame(metrics), pd.DataFrame(phases), pd.DataFrame(measures), tuple(notes)
    )


def read_json_obj(path: Path) -> dict[str, Any] | None:
    """A JSON object file, or None when absent or half-written."""
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return obj if isinstance(obj, dict) else None
