"""One loader for every tidy table: :func:`load_runs`.

``load_runs(PATH)`` reads a run folder, a sweep folder (every run below it) or a folder of saved
tables (the ``curves.csv``, ``phases.csv``, ... a sweep writes, or the gzipped ones kept in
experiments/results/) and returns the same :class:`Tables` for each: the tables
``grammarlab sweep`` writes. Every table carries each run's grammar columns (:data:`GRAMMAR_COLS`):
family and label (the sweep folder's ``grammars.json``, else the grammar's header, else its file
name: :mod:`grammarlab.grammar.header`), its entropy ``entropy_bits`` (bits per string, of the
run's own copy of its grammar, cached by the grammar's text) with which entropy it is
(``entropy_quantity``: ``string`` exact, ``derivational`` or ``monte-carlo``, as the header
states or the engine computes) and its standard error (``entropy_se_bits``, 0 when exact); the
phases get per-run summaries of the memorization measures. The per-run records come from
:func:`grammarlab.analysis.results.read_runs`. Nothing is written (the sweep's writer is
:func:`grammarlab.sweep.tables.aggregate`).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grammarlab.analysis.labels import read_labels
from grammarlab.analysis.results import read_runs
from grammarlab.errors import GrammarlabError
from grammarlab.grammar.entropy import analyze, derivational_entropy_bits
from grammarlab.grammar.header import HeaderFields, family_from_name, header_fields
from grammarlab.grammar.load import loads
from grammarlab.runs.folder import RunDir, find_runs, has_runs, run_id


@dataclass(frozen=True, eq=False)
class Tables:
    """Tidy tables (pandas DataFrames) of runs, one sweep's or one run's. curves: one row per
    (run, epoch, dataset) with loss (nats/token) and acc (``metrics`` is the same table);
    phases: one row per run with exact ``entropy_bits`` (bits/string) and the phase and
    memorization summaries; measures: one row per (run, epoch); per_string: the runs'
    per_string.csv rows (bits per string); per_position: the runs' per_position.csv rows (excess
    bits of the next token by position). Each table has the columns run, grammar, family, label,
    entropy_bits, entropy_quantity, entropy_se_bits, n_train, seed and model (per_string and
    per_position once the phases are known), and ``config.<key>`` for each config key that varies
    between the runs. notes: what was missing and why."""

    curves: Any
    phases: Any
    measures: Any
    per_string: Any
    notes: tuple[str, ...]
    per_position: Any = None

    @property
    def metrics(self) -> Any:
        """The curves (the name the run folder's metrics.jsonl gives them)."""
        return self.curves


_ID_COLS = ["run", "grammar", "family", "label", "entropy_bits", "entropy_quantity",
            "entropy_se_bits", "n_train", "seed", "model"]  # fmt: skip
# the per-run grammar columns load_runs adds to every table
GRAMMAR_COLS = ("family", "label", "entropy_bits", "entropy_quantity", "entropy_se_bits")


def load_runs(path: Path | str) -> Tables:
    """The tables of the run folder ``path``, of every run below it, or (a folder without runs
    that holds a saved ``phases.csv`` or ``phases.csv.gz``) the tables saved there; nothing is
    written. Unfinished runs load with the epochs they have; phases come from phases.json, else
    are computed from the metrics; a run without measures.jsonl is named in the notes."""
    import pandas as pd

    root = Path(path)
    saved = any((root / f).is_file() for f in ("phases.csv", "phases.csv.gz"))
    if saved and not has_runs(root):
        return load_saved(root)
    t = read_runs(root)
    notes = list(t.notes)
    facts, per_string, per_position, labels = {}, [], [], {}
    for run in find_runs(root):
        rid = run_id(run, root)
        facts[rid] = _grammar_facts(run, root, notes, labels)
        ps = run.read_per_string()
        if ps is not None:
            per_string.append(ps.assign(run=rid))
        pp = run.read_per_position()
        if pp is not None:
            per_position.append(pp.assign(run=rid))
    # repr, not astype(str): a key set in some runs and unset (NaN) in others varies too
    varying = [c for c in t.metrics.columns if c.startswith("config.")
               and t.metrics[c].map(repr).nunique() > 1]  # fmt: skip
    tables = []
    for df in (t.metrics, t.phases, t.measures):
        if df.empty:
            tables.append(df)
            continue
        df = df.copy()
        for col in GRAMMAR_COLS:
            df[col] = df["run"].map({rid: f[col] for rid, f in facts.items()})
        keep = [c for c in df.columns if not c.startswith("config.") or c in varying]
        front = [c for c in _ID_COLS if c in keep]  # the run's columns first
        tables.append(df[front + [c for c in keep if c not in front]])
    curves, phases, measures = tables
    ps_df = pd.concat(per_string, ignore_index=True) if per_string else pd.DataFrame()
    pp_df = pd.concat(per_position, ignore_index=True) if per_position else pd.DataFrame()
    if not phases.empty:
        phases = _add_measure_summaries(phases, measures)
        front = [c for c in _ID_COLS if c in phases.columns]
        phases = phases[front + [c for c in phases.columns if c not in front]]
        ids = phases[[c for c in _ID_COLS if c in phases.columns]]
        ps_df = ps_df.merge(ids, on="run") if not ps_df.empty else ps_df
        pp_df = pp_df.merge(ids, on="run") if not pp_df.empty else pp_df
    return Tables(curves, phases, measures, ps_df, tuple(notes), pp_df)


# the tables of a sweep, each a Tables field and the stem of its file
SAVED = ("curves", "phases", "measures", "per_string", "per_position")


def load_saved(root: Path | str) -> Tables:
    """The tables saved in ``root`` (``NAME.csv`` or ``NAME.csv.gz`` for each of :data:`SAVED`,
    as `grammarlab sweep` writes them or as experiments/results/ keeps them gzipped); a missing
    table is empty, and named in the notes if it is the curves or the phases."""
    import pandas as pd

    root, frames, notes = Path(root), [], []
    for name in SAVED:
        found = [p for p in (root / f"{name}.csv", root / f"{name}.csv.gz") if p.is_file()]
        if not found and name in ("curves", "phases"):
            notes.append(f"{root}: no saved {name}.csv")
        frames.append(_read_saved(found[0], name) if found else pd.DataFrame())
    return Tables(**dict(zip(SAVED, frames, strict=True)), notes=tuple(notes))


# the columns a saved table must have for the report and the figures to read it
SAVED_COLUMNS = {
    "curves": ("run", "epoch", "dataset", "loss"),
    "phases": ("run",),
    "measures": ("run", "epoch"),
    "per_string": ("run",),
    "per_position": ("run", "epoch", "position"),
}


def _read_saved(path: Path, name: str) -> Any:
    """A saved table, or a GrammarlabError naming the file: unreadable, not CSV, or without the
    columns of :data:`SAVED_COLUMNS`."""
    import pandas as pd

    try:
        df = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError, ValueError) as e:
        raise GrammarlabError(
            f"not a readable CSV table ({type(e).__name__}: {str(e).splitlines()[0][:200]})",
            file=str(path),
            hint=f"{name}.csv is written by `grammarlab sweep`; rewrite or remove it",
        ) from None
    missing = [c for c in SAVED_COLUMNS[name] if c not in df.columns]
    if missing:
        raise GrammarlabError(
            f"the saved {name} table lacks the column(s) {', '.join(missing)}",
            file=str(path),
            hint=f"a {name} table has {', '.join(SAVED_COLUMNS[name])} (as `grammarlab sweep` "
            "writes it); rewrite or remove it",
        )
    return df


def _grammar_facts(
    run: RunDir, root: Path, notes: list[str], labels: dict[Path, dict[str, dict[str, str]]]
) -> dict[str, Any]:
    """A run's grammar columns (:data:`GRAMMAR_COLS`): family and label from the sweep's
    grammars.json, else the grammar's header, else its file name; the entropy (bits) of the
    run's own copy of its grammar, which quantity it is and its standard error (NaN with a note
    when the grammar is missing). ``labels`` caches each folder's grammars.json."""
    text = run.grammar_text()
    try:
        cfg = run.read_config()
        path = None if cfg is None else str(cfg.grammar)
    except GrammarlabError:  # not a valid train config: its grammar key, if it has one
        try:
            g = run.config_values().get("grammar")
        except GrammarlabError:  # not TOML at all
            g = None
        path = g if isinstance(g, str) and g else None
    stem = Path(path).stem if path else "-"
    fields = HeaderFields()
    if text is not None:
        try:
            fields = header_fields(text, str(run.grammar_path))
        except GrammarlabError as e:
            notes.append(f"{e.diagnostics[0].format()}; header fields ignored")
    for folder in (root, run.path.parent):
        if folder not in labels:
            labels[folder] = read_labels(folder)
    sweep = {**labels[root], **labels[run.path.parent]}.get(path or "", {})
    out: dict[str, Any] = {
        "family": sweep.get("family") or fields.family or family_from_name(stem),
        "label": sweep.get("label") or fields.label or stem,
    }
    if text is None:
        notes.append(f"{run.grammar_path}: missing; entropy_bits left empty")
        return {**out, "entropy_bits": math.nan, "entropy_quantity": None,
                "entropy_se_bits": math.nan}  # fmt: skip
    bits = _entropy_of_text(text, str(run.grammar_path), notes)
    quantity, se = _ENTROPY_KIND.get(_key(text), (None, math.nan))
    return {**out, "entropy_bits": bits, "entropy_quantity": quantity, "entropy_se_bits": se}


_ENTROPY_CACHE: dict[str, float] = {}
# text key -> (which entropy _ENTROPY_CACHE holds, its standard error in bits)
_ENTROPY_KIND: dict[str, tuple[str, float]] = {}


def _key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _entropy_of_text(text: str, source: str, notes: list[str]) -> float:
    """The entropy of grammar text in bits, cached by content: the one its header states
    (``entropy: derivational`` is recomputed exactly, a ``monte-carlo`` value is taken as
    stated with its standard error), else the engine's string entropy, exact where it can be
    computed, else its Monte Carlo estimate (:func:`grammarlab.grammar.entropy.analyze`)."""
    key = _key(text)
    if key not in _ENTROPY_CACHE:
        try:
            g = loads(text, source)
            fields = header_fields(text, source)
            if fields.entropy == "derivational":
                bits, kind = derivational_entropy_bits(g), ("derivational", 0.0)
            elif fields.entropy == "monte-carlo" and fields.entropy_bits is not None:
                se = math.nan if fields.entropy_se_bits is None else fields.entropy_se_bits
                bits, kind = fields.entropy_bits, ("monte-carlo", se)
            else:
                rep = analyze(g)
                if rep.entropy_bits is None:
                    raise GrammarlabError(rep.entropy_method)
                bits = rep.entropy_bits
                kind = ("string", 0.0) if rep.entropy_exact else (
                    "monte-carlo", rep.entropy_stderr_bits)  # fmt: skip
            _ENTROPY_CACHE[key], _ENTROPY_KIND[key] = float(bits), kind
        except (GrammarlabError, KeyError) as e:
            notes.append(f"{source}: entropy unavailable ({e})")
            return math.nan
    return _ENTROPY_CACHE[key]


# measures.jsonl column -> (summary column, how), added to phases.csv per run
_SUMMARIES = {
    "excess_test_bits": [("min_excess_test_bits", "min"), ("final_excess_test_bits", "last")],
    "memU_train_bits_total": [("final_memU_train_bits_total", "last"),
                              ("max_memU_train_bits_total", "max")],
    "memU_test_bits_total": [("final_memU_test_bits_total", "last")],
    "memU_bits_per_param": [("final_memU_bits_per_param", "last")],
    "memU_train_bits_signed_total": [("final_memU_train_bits_signed_total", "last")],
    "memU_test_bits_signed_total": [("final_memU_test_bits_signed_total", "last")],
    "excess_test_bits_vs_untrained": [("min_excess_test_bits_vs_untrained", "min")],
    "excess_test_bits_vs_uniform": [("min_excess_test_bits_vs_uniform", "min")],
    # the baselines' own excess over the grammar: one value per run (the same every epoch)
    "untrained_excess_test_bits": [("untrained_excess_test_bits", "last")],
    "uniform_excess_test_bits": [("uniform_excess_test_bits", "last")],
    "mia_auc": [("final_mia_auc", "last"), ("max_mia_auc", "max")],
    "mia_pvalue": [("final_mia_pvalue", "last")],
}  # fmt: skip


def _add_measure_summaries(phases: Any, measures: Any) -> Any:
    """phases + per-run summaries of measures (bits); NaN where a run has no measures."""
    import pandas as pd

    phases = phases.copy()
    for col, outs in _SUMMARIES.items():
        for name, how in outs:
            phases[name] = math.nan
            if measures.empty or col not in measures.columns:
                continue
            m = measures.dropna(subset=[col]).sort_values("epoch").groupby("run")[col]
            phases[name] = phases["run"].map(getattr(m, how)()).astype(float)
    if not measures.empty and "excess_test_bits" in measures.columns:
        m = measures.dropna(subset=["excess_test_bits"])
        idx = m.groupby("run")["excess_test_bits"].idxmin()
        phases["min_excess_test_bits_epoch"] = phases["run"].map(
            pd.Series(m.loc[idx, "epoch"].to_numpy(), index=m.loc[idx, "run"].to_numpy())
        )
    return phases
