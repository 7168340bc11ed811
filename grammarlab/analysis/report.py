"""The findings report: the paper's claims one by one, judged on the tidy tables of runs.

Pure functions from tables (:func:`grammarlab.sweep.tables.collect`: ``phases`` one row per run,
``curves`` one row per (run, epoch, dataset)) to :class:`Finding` objects, and
:func:`render_markdown` to the text of ``docs/findings.md`` (:func:`with_notes` appends a
hand-written Markdown file after it). Nothing here is tuned to agree with
the paper: each claim has one fixed rule, written in its function's docstring, and the verdict is
one of :data:`VERDICTS`.

Seeds and censoring: a *cell* is one (model, grammar, n) with its seeds. An event's cell value for
the verdicts is the **median over seeds with censored seeds counted as later than every observed
epoch** (``>E``, ``>=E``): the median is observed when fewer than half the seeds are censored,
else the cell is censored for that event. The measured lines give mean +/- sample std over the
seeds that observed the event and how many did not (:func:`grammarlab.analysis.phases.
summarize_event`). Losses are nats/token (Eq. 1), excess bits per string.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grammarlab.analysis.phases import DEFAULT_THRESHOLD, event_status, summarize_event
from grammarlab.grammar.header import family_from_name

HOLDS = "holds"
PARTLY = "holds partly"
NOT = "does not hold at this scale"
CENSORED = "cannot be judged (censored)"
NO_DATA = "cannot be judged (no runs for it)"
VERDICTS = (HOLDS, PARTLY, NOT, CENSORED, NO_DATA)


@dataclass(frozen=True)
class Finding:
    """One claim: what the paper says (with its numbers where it gives them), what was measured
    (one line per cell), the verdict, and where it holds when it holds partly."""

    key: str
    claim: str
    paper: str
    measured: tuple[str, ...]
    verdict: str
    where: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())
    n_cells: int = 0  # cells (model, grammar or family, n) looked at
    n_censored_cells: int = 0  # of them, not judged (censored)


def combine(cells: Sequence[tuple[str, bool | str | None]]) -> tuple[str, tuple[str, ...]]:
    """Verdict over cells (name, True = holds there, ``"partly"`` = holds there in part, False =
    does not, None = censored there): no cells -> no data; no judged cell -> censored; all judged
    hold -> holds; some hold or hold in part -> partly (where: the names, "(in part)" added);
    none -> does not hold."""
    if not cells:
        return NO_DATA, ()
    judged = [(n, ok) for n, ok in cells if ok is not None]
    if not judged:
        return CENSORED, ()
    if all(ok is True for _, ok in judged):
        return HOLDS, tuple(n for n, _ in judged)
    where = tuple(n if ok is True else f"{n} (in part)" for n, ok in judged
                  if ok is True or ok == PART)  # fmt: skip
    return (PARTLY, where) if where else (NOT, ())


PART = "partly"


def _finding(verdict_cells: Sequence[tuple[str, Any]], *args: Any) -> Finding:
    """A Finding with the counts of cells looked at and of cells censored."""
    cens = sum(ok is None for _, ok in verdict_cells)
    return Finding(*args, n_cells=len(verdict_cells), n_censored_cells=cens)


# ----------------------------------------------------------------------------- cells


def _records(df: Any) -> list[dict[str, Any]]:
    return [] if df is None or len(df) == 0 else df.to_dict("records")


def _col(r: dict[str, Any], key: str, default: Any = None) -> Any:
    v = r.get(key, default)
    return default if v is None or (isinstance(v, float) and math.isnan(v)) else v


def family_of(grammar: str) -> str:
    """A grammar's family when the tables have no ``family`` column (set by the sweep file or
    the grammar's header, :func:`_family`): its name up to the first ``_`` (``random_l26`` ->
    ``random``), the one fallback rule of :func:`grammarlab.grammar.header.family_from_name`."""
    return family_from_name(grammar)


def cells(phases: Any, keys: Sequence[str] = ("model", "grammar", "n_train")) -> dict:
    """Runs grouped by ``keys`` (missing keys count as one value): {key tuple: [rows]}."""
    out: dict[tuple, list[dict[str, Any]]] = {}
    for r in _records(phases):
        k = tuple(_col(r, c, "-") if c != "family" else _family(r) for c in keys)
        out.setdefault(k, []).append(r)
    return dict(sorted(out.items(), key=lambda kv: tuple(map(str, kv[0]))))


def _family(r: dict[str, Any]) -> str:
    return str(_col(r, "family", None) or family_of(_col(r, "grammar", "-")))


def event_median(rows: Sequence[dict[str, Any]], event: str) -> float | None:
    """Median of the event over seeds, censored seeds counted as +inf; None when the median is
    censored (at least half the seeds) or no seed has the event."""
    vals = []
    for r in rows:
        status, e, _ = event_status(r, event)
        if status == "observed" and e is not None:
            vals.append(e)
        elif status == "censored":
            vals.append(math.inf)
    if not vals:
        return None
    m = float(np.median(vals))
    return None if math.isinf(m) or math.isnan(m) else m


def event_rank(rows: Sequence[dict[str, Any]], event: str) -> float | None:
    """Like :func:`event_median` but +inf for a censored median ("later than E"); None only when
    no seed has the event."""
    vals = []
    for r in rows:
        status, e, _ = event_status(r, event)
        if status == "observed" and e is not None:
            vals.append(e)
        elif status == "censored":
            vals.append(math.inf)
    return float(np.median(vals)) if vals else None


def value_summary(rows: Sequence[dict[str, Any]], key: str, digits: int = 3) -> str:
    """``mean +/- std (k seeds)`` of a numeric column (sample std, ddof = 1)."""
    v = np.array([float(_col(r, key, math.nan)) for r in rows], dtype=np.float64)
    v = v[np.isfinite(v)]
    if not v.size:
        return "-"
    sd = f" +/- {v.std(ddof=1):.{digits}g}" if v.size > 1 else ""
    return f"{v.mean():.{digits}g}{sd} ({v.size} seed{'s' if v.size > 1 else ''})"


def _mean(rows: Sequence[dict[str, Any]], key: str) -> float | None:
    v = np.array([float(_col(r, key, math.nan)) for r in rows], dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else None


def _name(k: tuple) -> str:
    return ", ".join(str(x) for x in k if x != "-")


def _n_label(n: Any) -> str:
    return f"n = {int(n)}" if isinstance(n, (int, float)) and math.isfinite(n) else f"n = {n}"


# ----------------------------------------------------------------------------- the claims


def judge_overlap(phases: Any, curves: Any = None) -> Finding:
    """Two overlapping phases. Per cell: the seeds where both events are observed are judged;
    the cell holds when most of them have the onset strictly before the end of generalization,
    does not when most do not, is censored when no seed has both observed (an overlap with a
    censored end of generalization is counted, not claimed)."""
    lines, verdict_cells = [], []
    for k, rows in cells(phases).items():
        both = [r for r in rows if _observed(r, "memorization_onset")
                and _observed(r, "generalization_end")]  # fmt: skip
        over = sum(bool(_col(r, "overlap", False)) for r in both)
        cens = sum(bool(_col(r, "overlap_censored", False)) for r in rows)
        on = summarize_event(rows, "memorization_onset").label()
        ge = summarize_event(rows, "generalization_end").label()
        lines.append(f"{_name(k)}: onset {on}; end of generalization {ge}; overlap in {over} of "
                     f"{len(both)} seeds with both observed ({cens} more only with a censored "
                     "end of generalization)")  # fmt: skip
        verdict_cells.append((_name(k), None if not both else over * 2 > len(both)))
    verdict, where = combine(verdict_cells)
    return _finding(verdict_cells,
        "overlap", "Two overlapping phases: memorization starts before generalization ends",
        "Memorization starts (test/train loss > 1.05, cross) before the test loss reaches its "
        "minimum (triangle) in all models and grammars of Fig. 2; Pythia-1B, random grammar, "
        "n = 8: onset epoch 9, end of generalization epoch 20 (Llama3-8B 6 / 16, "
        "Mistral-NeMo-12B 5 / 16).",
        tuple(lines), verdict, where,
    )  # fmt: skip


def _observed(r: dict[str, Any], event: str) -> bool:
    return event_status(r, event)[0] == "observed"


def judge_training_size(phases: Any, curves: Any = None) -> Finding:
    """Larger n delays the onset and lowers the minimum test loss. Per (model, grammar) with two
    or more n, the smallest against the largest n: the onset part holds when the larger n's
    censoring-aware median onset is later (a censored ">E" is later than an observed onset;
    both censored: not judged); the loss part when the larger n's mean minimum test loss is
    lower (when that minimum is right-censored it is an upper bound, so a higher value there is
    not judged). The grammar holds when both parts hold, in part when one does (the other failing
    or not judged), not when no judged part holds, censored when neither can be judged."""
    lines, verdict_cells = [], []
    for k, rows in cells(phases, ("model", "grammar")).items():
        by_n = cells(rows_to_frame(rows), ("n_train",))
        if len(by_n) < 2:
            continue
        ns = sorted(by_n, key=lambda t: float(t[0]))
        small, large = by_n[ns[0]], by_n[ns[-1]]
        a, b = event_rank(small, "memorization_onset"), event_rank(large, "memorization_onset")
        delay = None if a is None or b is None or (math.isinf(a) and math.isinf(b)) else b > a
        la, lb = _mean(small, "min_test_loss"), _mean(large, "min_test_loss")
        large_cens = all(event_status(r, "generalization_end")[0] == "censored" for r in large)
        lower = None if la is None or lb is None else lb < la
        if lower is False and large_cens:
            lower = None
        ok: bool | str | None = None  # both parts hold: True; one: in part; none: False
        if delay is not None or lower is not None:
            held = (delay is True) + (lower is True)
            ok = True if held == 2 else PART if held == 1 else False
        lines.append(
            f"{_name(k)}: onset {_n_label(ns[0][0])} "
            f"{summarize_event(small, 'memorization_onset').label()}, {_n_label(ns[-1][0])} "
            f"{summarize_event(large, 'memorization_onset').label()}; min test loss "
            f"{value_summary(small, 'min_test_loss')} vs {value_summary(large, 'min_test_loss')}"
            f" nats/token -> later onset: {_yn(delay)}, lower minimum: {_yn(lower)}"
        )
        verdict_cells.append((_name(k), ok))
    verdict, where = combine(verdict_cells)
    return _finding(verdict_cells,
        "training_size", "A larger training set delays memorization and lowers the test loss",
        "Pythia-1B, random grammar: onset epoch 9 (n = 8) vs 20 (n = 64), test loss 3.24 vs "
        "3.15; hierarchical grammar: onset 9 vs 25, test loss 1.46 vs 0.59.",
        tuple(lines), verdict, where,
    )  # fmt: skip


def rows_to_frame(rows: Sequence[dict[str, Any]]) -> Any:
    import pandas as pd

    return pd.DataFrame(list(rows))


def _yn(v: bool | None) -> str:
    return "not judged (censored)" if v is None else ("yes" if v else "no")


def judge_sequential(phases: Any, curves: Any = None) -> Finding:
    """Sequential training re-generalizes, then forgets D1. Per sequential cell, each seed:
    re-generalized = D1's loss came within tolerance of the stage-2 minimum test loss (a D1
    plateau) with that minimum observed; forgot = the forgetting epoch observed (D1 within
    tolerance of the test loss from then to the end). The cell holds when most seeds do both,
    does not when most do neither, is censored when no seed's forgetting is observed and none
    re-generalized. A cell whose median one-step D1 jump at the stage switch is at least half of
    D1's whole stage-2 rise is noted as an optimizer shock and holds at most partly."""
    seq = [r for r in _records(phases) if bool(_col(r, "sequential", False))]
    lines, verdict_cells, notes = [], [], []
    final_d1 = _final_loss(curves, "d1")
    for k, rows in cells(rows_to_frame(seq) if seq else None).items():
        regen = [int(_col(r, "d1_plateau_count", 0) or 0) > 0
                 and _observed(r, "regeneralization") for r in rows]  # fmt: skip
        forgot = [_observed(r, "forgetting") for r in rows]
        both = sum(a and b for a, b in zip(regen, forgot, strict=True))
        shares = []
        for r in rows:
            jump, before = _col(r, "switch_d1_change"), _col(r, "switch_d1_loss_before")
            end = final_d1.get(r.get("run"))
            if jump is not None and before is not None and end is not None and end > before:
                shares.append(jump / (end - before))
        shock = bool(shares) and float(np.median(shares)) >= 0.5
        lines.append(
            f"{_name(k)}: re-generalized in {sum(regen)} of {len(rows)} seeds, forgetting "
            f"{summarize_event(rows, 'forgetting').label()}; one-step D1 change at the switch "
            f"{value_summary(rows, 'switch_d1_change')} nats/token"
            + (f" = median {np.median(shares):.0%} of D1's stage-2 rise" if shares else "")
        )
        ok: bool | str | None = None
        if any(forgot) or any(regen):
            ok = both * 2 > len(rows)
        if ok is True and shock:
            notes.append(f"{_name(k)}: D1 jumps at the stage switch (optimizer shock); the "
                         "forgetting is not gradual as in the paper's Fig. 4")  # fmt: skip
            ok = PART
        verdict_cells.append((_name(k), ok))
    verdict, where = combine(verdict_cells)
    return _finding(verdict_cells,
        "sequential", "Sequential training re-generalizes, then forgets the first training set",
        "After switching to D2 the test loss falls back to its earlier minimum while D1's loss "
        "rises from ~0 to a plateau near that minimum, then follows the test loss up (Fig. 4, "
        "100 epochs per stage, n = 8; no epochs given).",
        tuple(lines), verdict, where, tuple(notes),
    )  # fmt: skip


def _final_loss(curves: Any, dataset: str) -> dict[str, float]:
    """Last recorded loss of ``dataset`` per run (nats/token)."""
    if curves is None or len(curves) == 0 or "dataset" not in curves:
        return {}
    d = curves[curves.dataset == dataset].dropna(subset=["loss"]).sort_values("epoch")
    return d.groupby("run").loss.last().to_dict()


def _monotone(values: Sequence[float | None], increasing: bool) -> bool | None:
    """Every adjacent pair in the given direction (strictly); None when a pair cannot be
    compared (a missing value, or two infinite = two censored)."""
    if len(values) < 2 or any(v is None for v in values):
        return None
    out = True
    for a, b in zip(values, values[1:], strict=False):
        if math.isinf(a) and math.isinf(b):  # type: ignore[arg-type]
            return None
        out &= (b > a) if increasing else (b < a)  # type: ignore[operator]
    return bool(out)


def _entropy_cells(phases: Any) -> dict[tuple, list[list[dict[str, Any]]]]:
    """(model, family, n) -> the grammars' seed groups sorted by exact entropy (bits/string);
    only cells with two or more grammars of known entropy."""
    out = {}
    for k, rows in cells(phases, ("model", "family", "n_train")).items():
        by_g = cells(rows_to_frame(rows), ("grammar",))
        groups = [g for g in by_g.values() if _mean(g, "entropy_bits") is not None]
        if len(groups) >= 2:
            out[k] = sorted(groups, key=lambda g: _mean(g, "entropy_bits"))  # type: ignore
    return out


def judge_entropy_generalization(phases: Any, curves: Any = None) -> Finding:
    """Lower entropy generalizes better. Per (model, family, n) with two or more grammars:
    the paper's measure, the minimum test loss (nats/token), must increase with the entropy;
    floor-corrected, the minimum excess test bits per string (model - grammar) must too, where
    measured. The cell holds when every measured one is monotone, does not when none is, and
    holds partly when one is (counted as not holding). The test loss has the entropy floor under
    it: its order alone says little across alphabets."""
    lines, verdict_cells = [], []
    for k, groups in _entropy_cells(phases).items():
        loss = _monotone([_mean(g, "min_test_loss") for g in groups], increasing=True)
        exc_vals = [_mean(g, "min_excess_test_bits") for g in groups]
        excess = _monotone(exc_vals, True) if all(v is not None for v in exc_vals) else None
        desc = "; ".join(
            f"{g[0].get('grammar')} (H {_mean(g, 'entropy_bits'):.1f} bits): min test "
            f"{value_summary(g, 'min_test_loss')}, min excess "
            f"{value_summary(g, 'min_excess_test_bits')} bits" for g in groups
        )  # fmt: skip
        # excess bits need the runs' measures (per-token surprisals): missing, not censored
        exc_text = _yn(excess) if excess is not None else "not measured (no measures)"
        lines.append(f"{_name(k)}: {desc} -> test loss rises with H: {_yn(loss)}, excess "
                     f"rises with H: {exc_text}")  # fmt: skip
        parts = [p for p in (loss, excess) if p is not None]
        verdict_cells.append((_name(k), all(parts) if parts else None))
    verdict, where = combine(verdict_cells)
    return _finding(verdict_cells,
        "entropy_generalization", "Lower entropy is easier to generalize to",
        "The lowest test loss decreases with the entropy, for alphabet size 2/7/26, 'a' "
        "oversampled to the entropies of 2 and 7 letters, and hierarchical p = 0.5/0.75/0.9 "
        "(Fig. 5, n = 8; no numbers given).",
        tuple(lines), verdict, where,
    )  # fmt: skip


def judge_entropy_memorization(phases: Any, curves: Any = None) -> Finding:
    """Higher entropy is memorized faster. Per (model, family, n) with two or more grammars:
    the censoring-aware median onset must fall as the entropy rises (a censored ">E" onset is
    later than every observed one; two censored grammars cannot be ordered: the cell is
    censored)."""
    lines, verdict_cells = [], []
    for k, groups in _entropy_cells(phases).items():
        ranks = [event_rank(g, "memorization_onset") for g in groups]
        ok = _monotone(ranks, increasing=False)
        desc = "; ".join(
            f"{g[0].get('grammar')} (H {_mean(g, 'entropy_bits'):.1f}): onset "
            f"{summarize_event(g, 'memorization_onset').label()}" for g in groups
        )  # fmt: skip
        lines.append(f"{_name(k)}: {desc} -> earlier onset at higher H: {_yn(ok)}")
        verdict_cells.append((_name(k), ok))
    verdict, where = combine(verdict_cells)
    return _finding(verdict_cells,
        "entropy_memorization", "Higher entropy is easier to memorize",
        "Strings of higher-entropy grammars are memorized faster (the train loss falls sooner, "
        "Fig. 5; no numbers given).",
        tuple(lines), verdict, where,
    )  # fmt: skip


def judge_same_loss(phases: Any, curves: Any = None) -> Finding:
    """Equal training loss can mean rote or understanding (Fig. 3). Per (model, grammar) with two
    or more n, on the mean curves over seeds: the level is the larger n's mean train loss at its
    median onset; the smaller n first reaches that train loss at epoch e. Holds when the smaller
    n's test/train ratio at e is above the threshold (1.05) while the larger n at its onset is
    at most 10% above it (so one is memorizing, the other just starting); does not when the small
    n's ratio at e is at most the threshold; censored when the larger n's onset is censored or the
    smaller n never reaches the level."""
    lines, verdict_cells = [], []
    if curves is None or len(curves) == 0:
        return Finding("same_loss", _SAME_CLAIM, _SAME_PAPER, (), NO_DATA)
    mean = _mean_curves(curves)
    for k, rows in cells(phases, ("model", "grammar")).items():
        by_n = cells(rows_to_frame(rows), ("n_train",))
        if len(by_n) < 2:
            continue
        ns = sorted(by_n, key=lambda t: float(t[0]))
        large = by_n[ns[-1]]
        onset = event_median(large, "memorization_onset")
        ms = mean.get((*k, ns[0][0]))
        ml = mean.get((*k, ns[-1][0]))
        if onset is None or ms is None or ml is None or onset not in ml.index:
            lines.append(f"{_name(k)}: the larger n's onset is censored or its curves are "
                         "missing; not judged")  # fmt: skip
            verdict_cells.append((_name(k), None))
            continue
        level = float(ml.loc[onset, "train"])
        ratio_large = float(ml.loc[onset, "test"] / ml.loc[onset, "train"])
        reach = ms.index[ms["train"].to_numpy() <= level]
        if reach.size == 0:
            lines.append(f"{_name(k)}: {_n_label(ns[0][0])} never reaches the train loss "
                         f"{level:.3g}; not judged")  # fmt: skip
            verdict_cells.append((_name(k), None))
            continue
        e = reach[0]
        ratio_small = float(ms.loc[e, "test"] / ms.loc[e, "train"])
        ok = ratio_small > DEFAULT_THRESHOLD and ratio_large <= DEFAULT_THRESHOLD * 1.1
        lines.append(
            f"{_name(k)}: train loss {level:.3g} nats/token is reached by {_n_label(ns[-1][0])} "
            f"at its onset (epoch {onset:g}, test/train {ratio_large:.3f}) and by "
            f"{_n_label(ns[0][0])} at epoch {e} (test/train {ratio_small:.3f}) -> rote for the "
            f"small n and understanding for the large n at the same train loss: {_yn(ok)}"
        )
        verdict_cells.append((_name(k), ok))
    verdict, where = combine(verdict_cells)
    return _finding(
        verdict_cells, "same_loss", _SAME_CLAIM, _SAME_PAPER, tuple(lines), verdict, where
    )


_SAME_CLAIM = "Equal training loss can mean rote learning or understanding"
_SAME_PAPER = (
    "Pythia-1B, hierarchical grammar: at train loss 0.6 the n = 8 model's test loss is ~0.8 "
    "(memorizing) while the n = 64 model's stays ~0.6 (it just starts memorizing); the same for "
    "all three models (Fig. 3)."
)


def _mean_curves(curves: Any) -> dict[tuple, Any]:
    """(model, grammar, n) -> DataFrame epoch x {train, test} of the mean loss over seeds."""
    c = curves[curves.dataset.isin(["train", "test"])].copy()
    for col in ("model", "grammar", "n_train"):
        if col not in c:
            c[col] = "-"
        c[col] = c[col].fillna("-")
    out = {}
    for k, d in c.groupby(["model", "grammar", "n_train"], dropna=False):
        w = d.groupby(["epoch", "dataset"]).loss.mean().unstack("dataset")
        if {"train", "test"} <= set(w.columns):
            out[tuple(k)] = w
    return out


CLAIMS: dict[str, Callable[[Any, Any], Finding]] = {
    "overlap": judge_overlap,
    "training_size": judge_training_size,
    "sequential": judge_sequential,
    "entropy_generalization": judge_entropy_generalization,
    "entropy_memorization": judge_entropy_memorization,
    "same_loss": judge_same_loss,
}


def judge_all(phases: Any, curves: Any = None) -> list[Finding]:
    """Every claim of :data:`CLAIMS`, in the paper's order (models told apart by their source
    where two sources ran the same cell and seed: :func:`separate_sources`)."""
    phases, curves = separate_sources(phases, curves)
    return [judge(phases, curves) for judge in CLAIMS.values()]


_SEED_KEY = ("model", "grammar", "n_train", "seed")


def separate_sources(phases: Any, curves: Any = None) -> tuple[Any, Any]:
    """When two sources (``source`` column: the RUNS folders given to the report) hold the same
    (model, grammar, n, seed), they ran different settings under one model name (e.g. a tiny
    model with and without extra vocabulary); pooling them as seeds of one cell would be wrong.
    Then every model is renamed ``model [source folder]`` in both tables; else both are
    returned unchanged."""
    if phases is None or len(phases) == 0 or "source" not in phases.columns:
        return phases, curves
    key = [c for c in _SEED_KEY if c in phases.columns]
    if "seed" not in key:
        return phases, curves
    per_key = phases.astype({c: str for c in key}).groupby(key)["source"].nunique()
    if not (per_key > 1).any():
        return phases, curves

    def rename(df: Any) -> Any:
        if df is None or "source" not in getattr(df, "columns", ()):
            return df
        df = df.copy()
        label = df["source"].astype(str).map(lambda s: s.rstrip("/").rsplit("/", 1)[-1])
        model = df["model"].astype(str) if "model" in df.columns else "-"
        df["model"] = model + " [" + label + "]"
        return df

    return rename(phases), rename(curves)


# ----------------------------------------------------------------------------- the text


def render_markdown(findings: Sequence[Finding], sources: Sequence[str], context: str = "") -> str:
    """The report as Markdown: a header naming the runs it was generated from, a verdict table,
    then per claim the paper's statement, the measured lines and the verdict."""
    out = [
        "# Findings: the paper's claims at this scale",
        "",
        "Generated by `grammarlab report " + " ".join(sources) + "`; do not edit by hand.",
        "Claims are from *Rethinking memorization in LLMs: on learning by rote vs. with "
        "understanding*. Losses in nats/token, excess in bits per string; `mean +/- std` over "
        "the seeds that observed an event, censored seeds counted (`>E`: not reached by the "
        "last epoch E; `>=E`: the test loss still falling at E). The rules behind each verdict "
        "are in `grammarlab/analysis/report.py`.",
        "",
    ]
    if context:
        out += [context, ""]
    out += ["| claim | verdict |", "|---|---|"]
    out += [f"| {f.claim} | {f.verdict} |" for f in findings]
    for f in findings:
        out += ["", f"## {f.claim}", "", f"**Paper:** {f.paper}", "", "**Measured:**", ""]
        out += [f"- {line}" for line in f.measured] or ["- no runs for this claim"]
        where = f" (holds in: {'; '.join(f.where)})" if f.verdict == PARTLY else ""
        cens = (f"; {f.n_censored_cells} of {f.n_cells} cells not judged (censored)"
                if f.n_censored_cells and f.verdict != CENSORED else "")  # fmt: skip
        out += ["", f"**Verdict: {f.verdict}**{where}{cens}"]
        out += [f"- note: {n}" for n in f.notes]
    return "\n".join(out) + "\n"


def notes_marker(source: str) -> str:
    """The line between the generated report and the hand-written notes appended after it."""
    return (f"<!-- Below: {source}, appended verbatim by `grammarlab report --notes {source}`; "
            "edit that file, not this section. -->")  # fmt: skip


def with_notes(report: str, notes: str, source: str) -> str:
    """The generated report, a rule, :func:`notes_marker` naming ``source`` and the text of the
    notes file ``source``, verbatim (``report`` itself unchanged, so the generated part of the
    file reads the same with or without notes)."""
    return f"{report}\n---\n\n{notes_marker(source)}\n\n{notes}"


def context_line(phases: Any) -> str:
    """Runs, models, grammars, sizes and seeds the report rests on."""
    rows = _records(phases)
    if not rows:
        return "No runs."

    def uniq(key: str) -> str:
        return ", ".join(sorted({str(_col(r, key, "-")) for r in rows}))

    seeds = len({_col(r, "seed", "-") for r in rows})
    return (f"{len(rows)} runs; models: {uniq('model')}; grammars: {uniq('grammar')}; n: "
            f"{uniq('n_train')}; {seeds} seed value(s).")  # fmt: skip
