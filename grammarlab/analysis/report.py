"""The findings report: the paper's claims one by one, judged on the tidy tables of runs.

Pure functions from tables (:func:`grammarlab.sweep.tables.collect`: ``phases`` one row per run,
``curves`` one row per (run, epoch, dataset)) to :class:`Finding` objects, and
:func:`render_markdown` to the text of ``docs/findings.md`` (:func:`with_notes` appends a
hand-written Markdown file after it). Nothing here is tuned to agree with the paper: each claim
has one fixed rule, a one-sided test over seeds from :mod:`grammarlab.analysis.stats` (its
docstring in :data:`RULES`, printed in the report), and the verdict is one of :data:`VERDICTS`.

Cells and votes: a *cell* is one (model, grammar or family, n) with its seeds. A run counts once
(:func:`mark_duplicates`): runs with the same resolved config and grammar text (the config hash
that ends a sweep's run id) in several folders are one run, and stage 1 of a sequential run whose
stage-1 curves equal a plain run's (same model, grammar, n, seed) is that plain run; a cell whose
runs all count already in another cell is listed as the same runs and not voted. A cell needs at
least :data:`grammarlab.analysis.stats.MIN_SEEDS` finished seeds for a verdict. Runs stopped early
(status not ``done``) have provisional events: they are shown, counted apart and never tested.
Censored events are intervals (``>E``, ``>=E``) ordered only where they do not overlap. Losses are
nats/token (Eq. 1), excess bits per string.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grammarlab.analysis import stats
from grammarlab.analysis.load import BITS_PER_PARAM, collapse, load_table
from grammarlab.analysis.phases import (
    DEFAULT_THRESHOLD,
    Curves,
    detect_phases,
    event_interval,
    event_status,
    floor_corrected_onset,
    is_stopped,
    summarize_event,
)
from grammarlab.grammar.header import family_from_name

HOLDS = "holds"
PARTLY = "holds partly"
NOT = "does not hold at this scale"
NOT_ESTABLISHED = "not established"
CENSORED = "cannot be judged (censored)"
NOT_MEASURED = "cannot be judged (not measured)"
ONLY_STOPPED = "cannot be judged (only runs stopped early)"
NO_DATA = "cannot be judged (no runs for it)"
VERDICTS = (HOLDS, PARTLY, NOT, NOT_ESTABLISHED, CENSORED, NOT_MEASURED, ONLY_STOPPED, NO_DATA)
TIE = "tie"  # a cell whose test shows no direction (or too few seeds): not established
UNMEASURED = "unmeasured"  # a cell whose runs lack the measure the rule needs
STOPPED = "stopped"  # a cell with no finished run: its events are provisional


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
    n_unmeasured_cells: int = 0  # of them, without the measure the rule needs
    n_tied_cells: int = 0  # of them, tested without a significant direction (or < 3 seeds)
    n_stopped_cells: int = 0  # of them, with only runs stopped early (provisional, not tested)


def combine(cells: Sequence[tuple[str, bool | str | None]]) -> tuple[str, tuple[str, ...]]:
    """Verdict over cells (name, True = the test holds there, ``"partly"`` = in part, False = the
    test shows the opposite, :data:`TIE` = no significant direction or too few seeds, None =
    censored, :data:`UNMEASURED` = not measured, :data:`STOPPED` = only runs stopped early): no
    cells -> no data; every tested cell holds ->
    holds; some hold or hold in part -> partly (where: the names, "(in part)" added); none holds
    and some show the opposite -> does not hold; only ties -> not established; nothing tested ->
    censored (or not measured when no cell has the measure)."""
    if not cells:
        return NO_DATA, ()
    tested = [(n, ok) for n, ok in cells if ok is not None and ok not in (UNMEASURED, STOPPED)]
    if not tested:
        kinds = {ok for _, ok in cells}
        if kinds == {STOPPED}:
            return ONLY_STOPPED, ()
        return (NOT_MEASURED if kinds <= {UNMEASURED, STOPPED} else CENSORED), ()
    if all(ok is True for _, ok in tested):
        return HOLDS, tuple(n for n, _ in tested)
    where = tuple(n if ok is True else f"{n} (in part)" for n, ok in tested
                  if ok is True or ok == PART)  # fmt: skip
    if where:
        return PARTLY, where
    return (NOT, ()) if any(ok is False for _, ok in tested) else (NOT_ESTABLISHED, ())


PART = "partly"


def _finding(verdict_cells: Sequence[tuple[str, Any]], *args: Any) -> Finding:
    """A Finding with the counts of cells looked at and of cells censored."""
    cens = sum(ok is None for _, ok in verdict_cells)
    unm = sum(ok == UNMEASURED for _, ok in verdict_cells)
    tie = sum(ok == TIE for _, ok in verdict_cells)
    stop = sum(ok == STOPPED for _, ok in verdict_cells)
    return Finding(*args, n_cells=len(verdict_cells), n_censored_cells=cens,
                   n_unmeasured_cells=unm, n_tied_cells=tie, n_stopped_cells=stop)  # fmt: skip


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
    """Median of the event over the finished seeds (:func:`grammarlab.analysis.stats.
    median_over_seeds`; an even count takes the mean of the two middle values); None when the
    median is censored or no seed has the event."""
    m = stats.median_over_seeds(_intervals(rows, event))
    return m[0] if m is not None and m[0] == m[1] else None


def event_rank(rows: Sequence[dict[str, Any]], event: str) -> float | None:
    """Like :func:`event_median` but +inf for a censored median; None only when no seed has the
    event."""
    m = stats.median_over_seeds(_intervals(rows, event))
    if m is None:
        return None
    return m[0] if m[0] == m[1] else math.inf


def _intervals(rows: Sequence[dict[str, Any]], event: str) -> list[stats.Interval]:
    """The event's intervals over the finished rows (stopped runs left out)."""
    out = []
    for r in rows:
        if is_stopped(r):
            continue
        iv = event_interval(r, event)
        if iv is not None:
            out.append(iv)
    return out


def finished(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of runs that reached their end (status done or unknown)."""
    return [r for r in rows if not is_stopped(r)]


def _stopped_note(rows: Sequence[dict[str, Any]]) -> str:
    st = [r for r in rows if is_stopped(r)]
    if not st:
        return ""
    at = "/".join(sorted({str(_col(r, "last_epoch", "?")) for r in st}))
    return f"; {len(st)} stopped early (at epoch {at}: provisional, not tested)"


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


# ----------------------------------------------------------------------------- one run, one vote

_HASH = re.compile(r"-([0-9a-f]{8})$")


def config_id(run: Any) -> str:
    """A run's identity: the config hash that ends a sweep's run id (resolved config with the
    grammar's text hashed, seed included: the same hash in two folders is the same run), else the
    run id itself (after the report's ``folder/`` prefix)."""
    last = str(run).rstrip("/").rsplit("/", 1)[-1]
    m = _HASH.search(last)
    return m.group(1) if m else str(run)


def _stage1_curves(curves: Any) -> dict[str, Any]:
    """run -> stage-1 (epoch, train, test) losses as one float64 array, for equality tests."""
    return {
        run: np.column_stack([w.index.to_numpy(np.float64), w["train"], w["test"]])
        for run, w in _run_curves(curves).items()
    }


def mark_duplicates(phases: Any, curves: Any = None) -> Any:
    """phases + ``config_id`` (:func:`config_id`), ``duplicate_of`` (the run counted instead: the
    first run of the same config id; for a sequential run, a plain run of the same model,
    grammar, n and seed whose stage-1 train and test curves are equal to it epoch by epoch, where
    the same arithmetic ran twice) and ``vote_id`` (the id its stage-1 events count under).
    ``seq_vote_id`` is the id for sequential claims (the config id: stage 2 is its own run)."""
    if phases is None or len(phases) == 0 or "run" not in phases:
        return phases
    df = phases.copy().reset_index(drop=True)
    src = df["source"].astype(str) if "source" in df else pd_str(df, "")
    df["config_id"] = [cid if cid != str(run) else f"{s}//{run}"  # no hash: the folder's run
                       for run, s, cid in zip(df["run"], src, df["run"].map(config_id),
                                              strict=True)]  # fmt: skip
    first: dict[str, str] = {}
    dup = []
    for run, cid in zip(df["run"], df["config_id"], strict=True):
        dup.append(first.get(cid))
        first.setdefault(cid, run)
    df["duplicate_of"] = dup
    df["vote_id"] = df["config_id"]
    df["seq_vote_id"] = df["config_id"]
    seq = df.get("sequential", False)
    seq = seq.map(lambda v: str(v).strip().lower() in ("true", "1")) if hasattr(seq, "map") else seq
    if not bool(np.any(seq)):
        return df
    s1 = _stage1_curves(curves)
    key = [c for c in ("model", "grammar", "n_train", "seed") if c in df]
    plain = df[~seq]
    for i in np.flatnonzero(seq.to_numpy()):
        r = df.iloc[i]
        mine = s1.get(r["run"])
        if mine is None:
            continue
        same = plain
        for k in key:
            same = same[same[k].astype(str) == str(r[k])]
        for _, p in same.iterrows():
            other = s1.get(p["run"])
            if other is not None and other.shape == mine.shape and np.array_equal(other, mine):
                df.loc[i, "vote_id"] = p["config_id"]
                if df.loc[i, "duplicate_of"] is None:
                    df.loc[i, "duplicate_of"] = p["run"]
                break
    return df


def pd_str(df: Any, value: str) -> Any:
    """A column of ``value`` for every row of ``df``."""
    return df.index.map(lambda _: value)


def voting_cells(
    phases: Any, keys: Sequence[str], id_col: str = "vote_id"
) -> tuple[dict, list[str]]:
    """:func:`cells`, then one vote per run: within a cell a run counted twice keeps its first
    row; a cell whose runs all count in an earlier cell is dropped, with a line saying so."""
    kept: dict[tuple, list[dict[str, Any]]] = {}
    ids: dict[tuple, set] = {}
    lines = []
    for k, rows in cells(phases, keys).items():
        seen, uniq = set(), []
        for r in rows:
            rid = _col(r, id_col, None) or (_col(r, "source", ""), _col(r, "run", id(r)))
            if rid not in seen:
                seen.add(rid)
                uniq.append(r)
        twin = next((k2 for k2, s in ids.items() if seen <= s), None)
        if twin is not None:
            lines.append(f"{_name(k)}: the same runs as {_name(twin)} (counted once)")
            continue
        kept[k], ids[k] = uniq, seen
    return kept, lines


# ----------------------------------------------------------------------------- the claims


def _test_cell(test: stats.SignTest, k_seeds: int) -> bool | str | None:
    """A sign test's cell value: None when no pair could be ordered (censored), :data:`TIE`
    with fewer than MIN_SEEDS seeds or no significant direction, True / False by direction."""
    if test.n_up + test.n_down + test.n_ties == 0:
        return None
    if k_seeds < stats.MIN_SEEDS:
        return TIE
    d = stats.direction(test)
    return True if d > 0 else False if d < 0 else TIE


def _only_stopped(name: str, rows: Sequence[dict[str, Any]], events: Sequence[str]) -> str:
    """The line of a cell with no finished run: its events as provisional, not tested."""
    ev = "; ".join(f"{e.replace('_', ' ')} {summarize_event(rows, e).label()}" for e in events)
    return f"{name}: {ev}; no finished run: not tested"


def _too_few(k: int) -> str:
    return f" (only {k} finished seed{'s' if k != 1 else ''}: fewer than {stats.MIN_SEEDS})" \
        if k < stats.MIN_SEEDS else ""  # fmt: skip


def judge_overlap(phases: Any, curves: Any = None) -> Finding:
    """Two overlapping phases. Per cell (model, grammar, n), over its finished seeds: the paired
    one-sided sign test of "onset before the end of generalization" (an onset observed before a
    minimum still falling at E is ordered; an onset censored >E against an observed minimum is
    ordered the other way; two censored events are not); holds when p <= 0.05, does not when
    the opposite p <= 0.05, else not established; effect: median (end of generalization -
    onset) with a 95% bootstrap interval."""
    lines, verdict_cells = [], []
    kept, same = voting_cells(phases, ("model", "grammar", "n_train"))
    for k, rows in kept.items():
        fin = finished(rows)
        if not fin:
            lines.append(_only_stopped(_name(k), rows, ("memorization_onset",
                                                        "generalization_end")))  # fmt: skip
            verdict_cells.append((_name(k), STOPPED))
            continue
        pairs = [(a, b) for r in fin
                 if (a := event_interval(r, "memorization_onset")) is not None
                 and (b := event_interval(r, "generalization_end")) is not None]  # fmt: skip
        test = stats.sign_test(pairs)
        eff = stats.median_interval(stats.paired_differences(pairs))
        on = summarize_event(rows, "memorization_onset").label()
        ge = summarize_event(rows, "generalization_end").label()
        lines.append(f"{_name(k)}: onset {on}; end of generalization {ge}; "
                     f"{test.label('onset first', 'onset later')}; median end - onset "
                     f"{eff.label()} epochs{_too_few(len(fin))}")  # fmt: skip
        verdict_cells.append((_name(k), _test_cell(test, len(fin))))
    verdict, where = combine(verdict_cells)
    return _finding(verdict_cells,
        "overlap", "Two overlapping phases: memorization starts before generalization ends",
        "Memorization starts (test/train loss > 1.05, cross) before the test loss reaches its "
        "minimum (triangle) in all models and grammars of Fig. 2; Pythia-1B, random grammar, "
        "n = 8: onset epoch 9, end of generalization epoch 20 (Llama3-8B 6 / 16, "
        "Mistral-NeMo-12B 5 / 16).",
        tuple(lines + same), verdict, where,
    )  # fmt: skip


def _loss_interval(r: dict[str, Any], key: str, censor_event: str) -> stats.Interval | None:
    """A minimum loss as an interval: the value, or ``[0, v]`` when the minimum is at the last
    epoch (still falling: the true minimum is lower)."""
    v = _col(r, key, None)
    if v is None:
        return None
    v = float(v)
    return (0.0, v) if event_status(r, censor_event)[0] == "censored" else (v, v)


def _by_seed(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(_col(r, "seed", i)): r for i, r in enumerate(rows)}


def judge_training_size(phases: Any, curves: Any = None) -> Finding:
    """Larger n delays the onset and lowers the minimum test loss. Per (model, grammar) with two
    or more n, the smallest against the largest n, paired by seed over the finished seeds both
    have: two one-sided sign tests, "the larger n's onset is later" and "the larger n's minimum
    test loss is lower" (a censored onset >E is later than an observed one; a minimum still
    falling at E is an upper bound). Holds when both tests have p <= 0.05, in part when one does,
    does not when neither does and one shows the opposite, else not established."""
    lines, verdict_cells = [], []
    kept, same = voting_cells(phases, ("model", "grammar"))
    for k, rows in kept.items():
        by_n = cells(rows_to_frame(rows), ("n_train",))
        if len(by_n) < 2:
            continue
        ns = sorted(by_n, key=lambda t: float(t[0]))
        small, large = _by_seed(finished(by_n[ns[0]])), _by_seed(finished(by_n[ns[-1]]))
        common = sorted(set(small) & set(large))
        on_pairs, loss_pairs = [], []
        for sd in common:
            a, b = small[sd], large[sd]
            ia, ib = (
                event_interval(a, "memorization_onset"),
                event_interval(b, "memorization_onset"),
            )
            if ia is not None and ib is not None:
                on_pairs.append((ia, ib))
            la = _loss_interval(a, "min_test_loss", "generalization_end")
            lb = _loss_interval(b, "min_test_loss", "generalization_end")
            if la is not None and lb is not None:
                loss_pairs.append((lb, la))  # "up": the small n's minimum above the large n's
        t_on, t_loss = stats.sign_test(on_pairs), stats.sign_test(loss_pairs)
        parts = [_test_cell(t_on, len(common)), _test_cell(t_loss, len(common))]
        ok: bool | str | None
        if all(p is None for p in parts):
            ok = None
        else:
            held = sum(p is True for p in parts)
            ok = (True if held == 2 else PART if held == 1
                  else False if any(p is False for p in parts) else TIE)  # fmt: skip
        lines.append(
            f"{_name(k)}: onset {_n_label(ns[0][0])} "
            f"{summarize_event(by_n[ns[0]], 'memorization_onset').label()}, {_n_label(ns[-1][0])} "
            f"{summarize_event(by_n[ns[-1]], 'memorization_onset').label()} "
            f"({t_on.label('later', 'earlier')}); min test loss "
            f"{value_summary(finished(by_n[ns[0]]), 'min_test_loss')} vs "
            f"{value_summary(finished(by_n[ns[-1]]), 'min_test_loss')} nats/token "
            f"({t_loss.label('lower', 'higher')}){_too_few(len(common))}"
        )
        verdict_cells.append((_name(k), ok))
    verdict, where = combine(verdict_cells)
    return _finding(verdict_cells,
        "training_size", "A larger training set delays memorization and lowers the test loss",
        "Pythia-1B, random grammar: onset epoch 9 (n = 8) vs 20 (n = 64), test loss 3.24 vs "
        "3.15; hierarchical grammar: onset 9 vs 25, test loss 1.46 vs 0.59.",
        tuple(lines + same), verdict, where,
    )  # fmt: skip


def rows_to_frame(rows: Sequence[dict[str, Any]]) -> Any:
    import pandas as pd

    return pd.DataFrame(list(rows))


def _yn(v: bool | None) -> str:
    return "not judged (censored)" if v is None else ("yes" if v else "no")


FORGET_SHARE = 0.5  # forgetting: at least half of D1's advantage over the test loss lost


def forgetting_table(phases: Any, curves: Any) -> dict[str, dict[str, Any]]:
    """run -> ``forgetting_share_final``, ``forgetting_half_epoch`` / ``_censored`` and
    ``last_epoch`` of each sequential run: from its phases row when it has them, else recomputed
    from its curves (:func:`grammarlab.analysis.phases.detect_phases` on the d1, train and test
    losses by stage)."""
    out: dict[str, dict[str, Any]] = {}
    rows = [r for r in _records(phases) if _truthy(_col(r, "sequential", False))]
    need = {r["run"] for r in rows if _col(r, "forgetting_share_final") is None}
    if need and curves is not None and len(curves) and "dataset" in curves:
        c = curves[curves.run.isin(need)]
        for run, d in c.groupby("run"):
            w = d.pivot_table(index="epoch", columns="dataset", values="loss", aggfunc="first")
            st = d.groupby("epoch")["stage"].first() if "stage" in d else None
            if not {"train", "test", "d1"} <= set(w.columns) or st is None:
                continue
            cv = Curves(epoch=w.index.to_numpy(), train_loss=w["train"].to_numpy(),
                        test_loss=w["test"].to_numpy(), stage=st.loc[w.index].to_numpy(),
                        d1_loss=w["d1"].to_numpy(),
                        d2_loss=w["d2"].to_numpy() if "d2" in w else None)  # fmt: skip
            ph = detect_phases(cv).to_dict()
            out[run] = {k: ph[k] for k in ("forgetting_share_final", "forgetting_half_epoch",
                                           "forgetting_half_censored", "last_epoch")}  # fmt: skip
    for r in rows:
        if r["run"] not in out:
            out[r["run"]] = {
                k: _col(r, k)
                for k in (
                    "forgetting_share_final",
                    "forgetting_half_epoch",
                    "forgetting_half_censored",
                    "last_epoch",
                )
            }
    return out


def _truthy(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes")
    return bool(v) and not (isinstance(v, float) and math.isnan(v))


def judge_sequential(phases: Any, curves: Any = None) -> Finding:
    """Sequential training re-generalizes, then forgets D1. Per sequential cell, over its
    finished seeds: re-generalization = the stage-2 minimum test loss at or below the stage-1
    minimum plus its standard error (the sample std of the cell's stage-1 minima over sqrt of
    the seeds), one-sided sign test over seeds; forgetting = the share of D1's advantage over the
    test loss lost by the last epoch (``1 - (test - d1) / (test - d1 at the end of stage 1)``,
    a curve per seed) above one half, one-sided sign test; the sustained event is the first
    stage-2 epoch from which at least half is lost to the end. Holds when both tests have
    p <= 0.05, in part when one does; a cell whose median one-step D1 jump at the stage switch
    is at least half of D1's whole stage-2 rise is noted as an optimizer shock and holds at
    most partly."""
    seq = [r for r in _records(phases) if _truthy(_col(r, "sequential", False))]
    lines, verdict_cells, notes = [], [], []
    final_d1 = _final_loss(curves, "d1")
    forget = forgetting_table(rows_to_frame(seq) if seq else None, curves)
    kept, same = voting_cells(rows_to_frame(seq) if seq else None,
                              ("model", "grammar", "n_train"), "seq_vote_id")  # fmt: skip
    for k, rows in kept.items():
        fin = finished(rows)
        m1 = np.array([float(_col(r, "min_test_loss", math.nan)) for r in fin])
        m1f = m1[np.isfinite(m1)]
        se = float(m1f.std(ddof=1) / math.sqrt(m1f.size)) if m1f.size > 1 else 0.0
        regen_pairs, shares, forget_pairs = [], [], []
        for r in fin:
            a, b = _col(r, "min_test_loss"), _col(r, "regeneralization_test_loss")
            if a is not None and b is not None:
                iv2 = (0.0, float(b)) if _truthy(_col(r, "regeneralization_censored")) \
                    else (float(b), float(b))  # fmt: skip
                regen_pairs.append((iv2, stats.point(float(a) + se)))
            f = forget.get(r["run"], {})
            sh = f.get("forgetting_share_final")
            if sh is not None and math.isfinite(sh):
                shares.append(float(sh))
                forget_pairs.append((stats.point(FORGET_SHARE), stats.point(float(sh))))
        t_regen, t_forget = stats.sign_test(regen_pairs), stats.sign_test(forget_pairs)
        half = [{**r, "forgetting_half_epoch": forget.get(r["run"], {}).get(
                    "forgetting_half_epoch"), "forgetting_half_censored": forget.get(
                    r["run"], {}).get("forgetting_half_censored")} for r in rows]  # fmt: skip
        jumps = []
        for r in fin:
            jump, before = _col(r, "switch_d1_change"), _col(r, "switch_d1_loss_before")
            end = final_d1.get(r.get("run"))
            if jump is not None and before is not None and end is not None and end > before:
                jumps.append(jump / (end - before))
        shock = bool(jumps) and float(np.median(jumps)) >= 0.5
        parts = [_test_cell(t_regen, len(fin)), _test_cell(t_forget, len(fin))]
        if all(p is None for p in parts):
            ok: bool | str | None = None
        else:
            held = sum(p is True for p in parts)
            ok = (True if held == 2 else PART if held == 1
                  else False if any(p is False for p in parts) else TIE)  # fmt: skip
        sh_eff = stats.median_interval(shares)
        lines.append(
            f"{_name(k)}: stage-2 minimum test loss "
            f"{value_summary(fin, 'regeneralization_test_loss')}"
            f" vs stage-1 minimum {value_summary(fin, 'min_test_loss')} (+ SE {se:.3g}) nats/token"
            f" ({t_regen.label('re-generalized', 'not')}); share of D1's advantage lost by the "
            f"end {sh_eff.label(2)} ({t_forget.label('above 1/2', 'below 1/2')}); half of it lost "
            f"for good from {summarize_event(half, 'forgetting_half').label()}; one-step D1 "
            f"change at the switch {value_summary(fin, 'switch_d1_change')} nats/token"
            + (f" = median {np.median(jumps):.0%} of D1's stage-2 rise" if jumps else "")
            + _too_few(len(fin))
            + _stopped_note(rows)
        )
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
        tuple(lines + same), verdict, where, tuple(notes),
    )  # fmt: skip


def _final_loss(curves: Any, dataset: str) -> dict[str, float]:
    """Last recorded loss of ``dataset`` per run (nats/token)."""
    if curves is None or len(curves) == 0 or "dataset" not in curves:
        return {}
    d = curves[curves.dataset == dataset].dropna(subset=["loss"]).sort_values("epoch")
    return d.groupby("run").loss.last().to_dict()


def _entropy_cells(phases: Any) -> tuple[dict[tuple, list[list[dict[str, Any]]]], list[str]]:
    """(model, family, n) -> the grammars' seed groups sorted by exact entropy (bits/string);
    only cells with two or more grammars of known entropy; and the lines of cells dropped as the
    same runs as another."""
    out = {}
    kept, same = voting_cells(phases, ("model", "family", "n_train"))
    for k, rows in kept.items():
        by_g = cells(rows_to_frame(rows), ("grammar",))
        groups = [g for g in by_g.values() if _mean(g, "entropy_bits") is not None]
        if len(groups) >= 2:
            out[k] = sorted(groups, key=lambda g: _mean(g, "entropy_bits"))  # type: ignore
    return out, same


def _min_seeds(groups: Sequence[Sequence[dict[str, Any]]]) -> int:
    return min(len(finished(g)) for g in groups)


def judge_entropy_generalization(phases: Any, curves: Any = None) -> Finding:
    """Lower entropy generalizes better, judged on the excess over each grammar's floor. Per
    (model, family, n) with two or more grammars, over every finished seed of every grammar:
    Spearman's rho between the entropy (bits/string) and the minimum excess test bits per string
    (model - grammar), one-sided (rho > 0), with a 95% interval (Fisher's z); holds when
    p <= 0.05, does not when the opposite p <= 0.05, else not established; at least 3 seeds per
    grammar. The same correlation of the excess per bit of entropy is shown beside it. The raw
    minimum test loss is shown, never judged: its order is the entropy floor's. Cells whose runs
    lack the measures are not measured."""
    lines, verdict_cells = [], []
    groups_by_cell, same = _entropy_cells(phases)
    for k, groups in groups_by_cell.items():
        fin = [r for g in groups for r in finished(g)]
        H = [float(_col(r, "entropy_bits", math.nan)) for r in fin]
        exc = [_col(r, "min_excess_test_bits") for r in fin]
        desc = "; ".join(
            f"{g[0].get('grammar')} (H {_mean(g, 'entropy_bits'):.1f} bits): min test "
            f"{value_summary(finished(g), 'min_test_loss')} nats/token, min excess "
            f"{value_summary(finished(g), 'min_excess_test_bits')} bits" for g in groups
        )  # fmt: skip
        if not fin or any(v is None for v in exc):
            allr = [r for g in groups for r in g]
            unmeasured = all(_col(r, "min_excess_test_bits") is None for r in allr)
            lines.append(f"{_name(k)}: "
                         + ("excess bits not measured (the runs have no measures)" if unmeasured
                            else f"{desc} -> excess bits missing in some runs")
                         + _stopped_note(allr))  # fmt: skip
            verdict_cells.append((_name(k), UNMEASURED if unmeasured or fin else STOPPED))
            continue
        c = stats.spearman(H, [float(v) for v in exc], +1)
        per_bit = stats.spearman(H, [float(v) / h for v, h in zip(exc, H, strict=True)], +1)
        k_min = _min_seeds(groups)
        ok: bool | str | None = TIE if k_min < stats.MIN_SEEDS else \
            {1: True, -1: False, 0: TIE}[stats.significant(c)]  # fmt: skip
        lines.append(f"{_name(k)}: {desc} -> excess rises with H: {c.label()}; excess per bit "
                     f"of entropy: {per_bit.label()}{_too_few(k_min)}")  # fmt: skip
        verdict_cells.append((_name(k), ok))
    verdict, where = combine(verdict_cells)
    return _finding(verdict_cells,
        "entropy_generalization", "Lower entropy is easier to generalize to",
        "The lowest test loss decreases with the entropy, for alphabet size 2/7/26, 'a' "
        "oversampled to the entropies of 2 and 7 letters, and hierarchical p = 0.5/0.75/0.9 "
        "(Fig. 5, n = 8; no numbers given).",
        tuple(lines + same), verdict, where,
    )  # fmt: skip


def _onset_values(rows: Sequence[dict[str, Any]], event: str) -> list[float]:
    """The event per row as a number for rank statistics: observed epoch, +inf when censored."""
    out = []
    for r in rows:
        iv = event_interval(r, event)
        out.append(math.nan if iv is None else iv[0] if iv[0] == iv[1] else math.inf)
    return out


def judge_entropy_memorization(phases: Any, curves: Any = None) -> Finding:
    """Higher entropy is memorized faster. Per (model, family, n) with two or more grammars,
    over every finished seed: Spearman's rho between the entropy and the onset (a censored onset
    ranks after every observed one; censored onsets tie), one-sided (rho < 0), 95% interval
    (Fisher's z); holds when p <= 0.05, does not when the opposite p <= 0.05, else not
    established (equal onsets are ties, not an order); at least 3 seeds per grammar. The same
    test on the floor-corrected onset is shown where the grammar's own losses are known."""
    lines, verdict_cells = [], []
    groups_by_cell, same = _entropy_cells(phases)
    for k, groups in groups_by_cell.items():
        fin = [r for g in groups for r in finished(g)]
        if not fin:
            lines.append(_only_stopped(_name(k), [r for g in groups for r in g],
                                       ("memorization_onset",)))  # fmt: skip
            verdict_cells.append((_name(k), STOPPED))
            continue
        H = [float(_col(r, "entropy_bits", math.nan)) for r in fin]
        c = stats.spearman(H, _onset_values(fin, "memorization_onset"), -1)
        k_min = _min_seeds(groups) if fin else 0
        ok: bool | str | None
        if not fin or all(event_status(r, "memorization_onset")[0] != "observed" for r in fin):
            ok = None
        elif k_min < stats.MIN_SEEDS:
            ok = TIE
        else:
            ok = {1: True, -1: False, 0: TIE}[stats.significant(c)]
        desc = "; ".join(
            f"{g[0].get('grammar')} (H {_mean(g, 'entropy_bits'):.1f}): onset "
            f"{summarize_event(g, 'memorization_onset').label()}" for g in groups
        )  # fmt: skip
        fc = ""
        if all(_col(r, "floor_ratio") is not None for r in fin) and fin:
            cf = stats.spearman(H, _onset_values(fin, "floor_corrected_onset"), -1)
            fc = f"; floor-corrected onset: {cf.label()}"
        lines.append(f"{_name(k)}: {desc} -> earlier onset at higher H: {c.label()}{fc}"
                     f"{_too_few(k_min)}")  # fmt: skip
        verdict_cells.append((_name(k), ok))
    verdict, where = combine(verdict_cells)
    return _finding(verdict_cells,
        "entropy_memorization", "Higher entropy is easier to memorize",
        "Strings of higher-entropy grammars are memorized faster (the train loss falls sooner, "
        "Fig. 5; no numbers given).",
        tuple(lines + same), verdict, where,
    )  # fmt: skip


SAME_LOSS_GAP = 0.05  # the small n's test/train ratio must exceed the threshold by this


def _run_curves(curves: Any) -> dict[str, Any]:
    """run -> DataFrame epoch x {train, test} (nats/token), stage 1 only."""
    if curves is None or len(curves) == 0 or "dataset" not in curves:
        return {}
    c = curves[curves.dataset.isin(["train", "test"])]
    if "stage" in c:
        c = c[c["stage"].fillna(1) <= 1]
    out = {}
    for run, d in c.groupby("run"):
        w = d.pivot_table(index="epoch", columns="dataset", values="loss", aggfunc="first")
        if {"train", "test"} <= set(w.columns):
            out[run] = w.sort_index()
    return out


def judge_same_loss(phases: Any, curves: Any = None) -> Finding:
    """Equal training loss can mean rote or understanding (Fig. 3). Per (model, grammar) with two
    or more n, paired by seed over the finished seeds both sizes have: the level is the larger
    n's train loss at its own onset; r_large its test/train ratio there, r_small the smaller n's
    ratio at the first epoch its train loss is at or below the level. One-sided sign test of
    r_small > r_large; holds when p <= 0.05 and the median r_small is above the threshold
    (1.05) plus 0.05 (the small n memorizes at that loss), does not when the opposite p <= 0.05,
    else not established. A seed pair whose larger n never starts memorizing, or whose smaller
    n never reaches the level, cannot be compared. This claim follows in part from the training
    size one (a later onset at a lower train loss)."""
    lines, verdict_cells = [], []
    if curves is None or len(curves) == 0:
        return Finding("same_loss", _SAME_CLAIM, _SAME_PAPER, (), NO_DATA)
    per_run = _run_curves(curves)
    kept, same = voting_cells(phases, ("model", "grammar"))
    for k, rows in kept.items():
        by_n = cells(rows_to_frame(rows), ("n_train",))
        if len(by_n) < 2:
            continue
        ns = sorted(by_n, key=lambda t: float(t[0]))
        small, large = _by_seed(finished(by_n[ns[0]])), _by_seed(finished(by_n[ns[-1]]))
        common = sorted(set(small) & set(large))
        pairs, rs, unknown = [], [], 0
        for sd in common:
            onset = event_median([large[sd]], "memorization_onset")
            ms, ml = per_run.get(small[sd]["run"]), per_run.get(large[sd]["run"])
            if onset is None or ms is None or ml is None or int(onset) not in ml.index:
                unknown += 1
                continue
            level = float(ml.loc[int(onset), "train"])
            r_large = float(ml.loc[int(onset), "test"] / level)
            reach = ms.index[ms["train"].to_numpy() <= level]
            if reach.size == 0:
                unknown += 1
                continue
            r_small = float(ms.loc[reach[0], "test"] / ms.loc[reach[0], "train"])
            pairs.append((stats.point(r_large), stats.point(r_small)))
            rs.append(r_small)
        test = stats.sign_test(pairs)
        ok = _test_cell(test, len(common)) if pairs else None
        med = float(np.median(rs)) if rs else math.nan
        if ok is True and not med > DEFAULT_THRESHOLD + SAME_LOSS_GAP:
            ok = TIE
        eff = stats.median_interval(stats.paired_differences(pairs))
        lines.append(
            f"{_name(k)}: at the larger n's train loss at its onset, test/train of "
            f"{_n_label(ns[0][0])} minus {_n_label(ns[-1][0])}: {eff.label()} (median "
            f"{_n_label(ns[0][0])} ratio {med:.3f}); {test.label('higher', 'lower')}; "
            f"{unknown} seed pairs not comparable{_too_few(len(common))}"
        )
        verdict_cells.append((_name(k), ok))
    verdict, where = combine(verdict_cells)
    return _finding(
        verdict_cells, "same_loss", _SAME_CLAIM, _SAME_PAPER, tuple(lines + same), verdict, where
    )


_SAME_CLAIM = "Equal training loss can mean rote learning or understanding"
_SAME_PAPER = (
    "Pythia-1B, hierarchical grammar: at train loss 0.6 the n = 8 model's test loss is ~0.8 "
    "(memorizing) while the n = 64 model's stays ~0.6 (it just starts memorizing); the same for "
    "all three models (Fig. 3)."
)


CLAIMS: dict[str, Callable[[Any, Any], Finding]] = {
    "overlap": judge_overlap,
    "training_size": judge_training_size,
    "sequential": judge_sequential,
    "entropy_generalization": judge_entropy_generalization,
    "entropy_memorization": judge_entropy_memorization,
    "same_loss": judge_same_loss,
}


def rules() -> list[str]:
    """The rule of every claim (its judge's docstring, one paragraph) for the report."""
    return [" ".join((fn.__doc__ or "").split()) for fn in CLAIMS.values()]


def judge_all(phases: Any, curves: Any = None) -> list[Finding]:
    """Every claim of :data:`CLAIMS`, in the paper's order, on the runs counted once
    (:func:`mark_duplicates`), with models told apart by their source where two sources ran
    different settings of the same cell and seed (:func:`separate_sources`)."""
    phases = mark_duplicates(phases, curves)
    phases, curves = separate_sources(phases, curves)
    return [judge(phases, curves) for judge in CLAIMS.values()]


def add_floor_onsets(phases: Any, curves: Any) -> Any:
    """phases + ``floor_corrected_onset_epoch`` / ``_censored`` computed from each run's stage-1
    curves and its ``floor_ratio`` where the row has the ratio but not the onset (saved tables
    written before the phases had it); rows without a ratio are left without it."""

    if phases is None or len(phases) == 0 or "floor_ratio" not in phases.columns:
        return phases
    df = phases.copy()
    if "floor_corrected_onset_epoch" not in df.columns:
        df["floor_corrected_onset_epoch"] = None
        df["floor_corrected_onset_censored"] = None
    df["floor_corrected_onset_epoch"] = df["floor_corrected_onset_epoch"].astype(object)
    df["floor_corrected_onset_censored"] = df["floor_corrected_onset_censored"].astype(object)
    per_run = _run_curves(curves)
    for i, r in df.iterrows():
        ratio, have = r.get("floor_ratio"), r.get("floor_corrected_onset_censored")
        if have is not None and not (isinstance(have, float) and math.isnan(have)):
            continue
        w = per_run.get(r["run"])
        if w is None or ratio is None or not math.isfinite(ratio) or ratio <= 0:
            continue
        fc = floor_corrected_onset(w.index.to_numpy(), w["train"].to_numpy(),
                                   w["test"].to_numpy(), float(ratio))  # fmt: skip
        df.at[i, "floor_corrected_onset_epoch"] = fc
        df.at[i, "floor_corrected_onset_censored"] = fc is None
    return df


def load_lines(phases: Any, curves: Any = None) -> list[str]:
    """Whether the onsets of all runs (counted once, finished, with a parameter count) collapse
    onto one curve of the training set's bits over the model's capacity
    (:mod:`grammarlab.analysis.load`), over all of them and per model."""

    ph = mark_duplicates(phases, curves)
    if ph is None or len(ph) == 0:
        return []
    ph = ph.drop_duplicates("vote_id").drop(columns=["duplicate_of"])
    tab = load_table(ph)
    if tab.empty:
        return []
    out = [f"all models: {collapse(tab).label()}; C = {BITS_PER_PARAM} bits/param x parameters "
           "(docs/capacity.md)"]  # fmt: skip
    for m, d in tab.groupby("model") if tab["model"].nunique() > 1 else ():
        out.append(f"{m}: {collapse(d).label()}; load {d['load'].min():.3g}..{d['load'].max():.3g}")
    return out


def floor_lines(phases: Any, curves: Any = None) -> list[str]:
    """Per (model, grammar, n) whose runs have the grammar's own losses: the raw and the
    floor-corrected onset, and Spearman's rho of each with the sets' G_test / G_train over the
    finished seeds (two-sided p: :func:`grammarlab.analysis.stats.spearman` reports one side, so
    the smaller side doubled)."""
    out = []
    phases, _ = separate_sources(mark_duplicates(phases, curves))
    kept, _ = voting_cells(phases, ("model", "grammar", "n_train"))
    for k, rows in kept.items():
        fin = [r for r in finished(rows) if _col(r, "floor_ratio") is not None]
        if not fin:
            continue
        ratio = [float(_col(r, "floor_ratio")) for r in fin]
        spread = f"G_test/G_train {min(ratio):.3f}..{max(ratio):.3f}"
        parts = []
        for ev, name in (
            ("memorization_onset", "onset"),
            ("floor_corrected_onset", "floor-corrected onset"),
        ):
            s = summarize_event(fin, ev).label()
            c = stats.spearman(ratio, _onset_values(fin, ev), -1)
            rho = "rho undefined (no spread)" if not math.isfinite(c.rho) else \
                f"rho with the ratio {c.rho:.2f} [95% CI {c.lo:.2f}, {c.hi:.2f}], " \
                f"two-sided p = {min(1.0, 2 * min(c.p, 1 - c.p)):.3g}"  # fmt: skip
            parts.append(f"{name} {s}, {rho}")
        out.append(f"{_name(k)}: {spread}; " + "; ".join(parts))
    return out


_SEED_KEY = ("model", "grammar", "n_train", "seed")


def separate_sources(phases: Any, curves: Any = None) -> tuple[Any, Any]:
    """When two sources (``source`` column: the RUNS folders given to the report) hold different
    runs (config ids, when known) of the same (model, grammar, n, seed), they ran different
    settings under one model name (e.g. a tiny model with and without extra vocabulary); pooling
    them as seeds of one cell would be wrong. Then every model is renamed ``model [source
    folder]`` in both tables; else both are returned unchanged."""
    if phases is None or len(phases) == 0 or "source" not in phases.columns:
        return phases, curves
    key = [c for c in _SEED_KEY if c in phases.columns]
    if "seed" not in key:
        return phases, curves
    ph = phases.astype({c: str for c in key})
    if "vote_id" in ph.columns:  # the same run in two folders is no conflict
        ph = ph.drop_duplicates([*key, "source", "vote_id"])
        per_key = ph.groupby(key)["vote_id"].nunique()
    else:
        per_key = ph.groupby(key)["source"].nunique()
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


CELLS_RULE = (
    "a claim holds when every tested cell holds; holds partly when some cells hold or hold in "
    "part (listed); does not hold when none holds and some show the opposite at p <= 0.05; is "
    "not established when the tests show no direction (or cells have fewer than 3 finished "
    "seeds); cells that cannot be tested (censored events, no measures, only runs stopped "
    "early) are counted and left out."
)


def render_markdown(
    findings: Sequence[Finding], sources: Sequence[str], context: str = "",
    floors: Sequence[str] = (),
    load: Sequence[str] = (),
) -> str:  # fmt: skip
    """The report as Markdown: a header naming the runs it was generated from, a verdict table,
    per claim the paper's statement, the measured lines and the verdict, the floor-corrected
    onsets (``floors``: :func:`floor_lines`) and the rules behind the verdicts."""
    out = [
        "# Findings: the paper's claims at this scale",
        "",
        "Generated by `grammarlab report " + " ".join(sources) + "`; do not edit by hand.",
        "Claims are from *Rethinking memorization in LLMs: on learning by rote vs. with "
        "understanding*. Losses in nats/token, excess in bits per string; `mean +/- std` over "
        "the seeds that observed an event, censored seeds counted (`>E`: not reached by the "
        "last epoch E; `>=E`: the test loss still falling at E); runs stopped early are counted "
        "apart (provisional, never tested). Each verdict is a one-sided test over seeds at "
        f"p <= {stats.ALPHA} with at least {stats.MIN_SEEDS} finished seeds per cell; the rules "
        "are printed at the end (code: `grammarlab/analysis/report.py`, statistics: "
        "`grammarlab/analysis/stats.py`).",
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
        counts = []
        if f.n_tied_cells and f.verdict != NOT_ESTABLISHED:
            counts.append(f"{f.n_tied_cells} of {f.n_cells} cells not established")
        if f.n_censored_cells and f.verdict != CENSORED:
            counts.append(f"{f.n_censored_cells} of {f.n_cells} cells not judged (censored)")
        if f.n_unmeasured_cells and f.verdict != NOT_MEASURED:
            counts.append(f"{f.n_unmeasured_cells} of {f.n_cells} cells not measured")
        if f.n_stopped_cells and f.verdict != ONLY_STOPPED:
            counts.append(f"{f.n_stopped_cells} of {f.n_cells} cells only of runs stopped early "
                          "(not tested)")  # fmt: skip
        out += ["", f"**Verdict: {f.verdict}**{where}" + "".join(f"; {c}" for c in counts)]
        out += [f"- note: {n}" for n in f.notes]
    if floors:
        out += ["", "## Floor-corrected onset (beside the paper's rule)", "",
                "The first epoch from which (L_test / L_train) / (G_test / G_train) > 1.05 holds "
                "to the end, G_set the grammar's own loss on the set (per string the exact "
                "surprisal in nats over its predicted tokens, end token included, then the mean "
                "over strings; `floors.csv` beside the tables). A raw onset that follows the "
                "sampling noise of the sets correlates with G_test / G_train; the corrected one "
                "should not.", ""]  # fmt: skip
        out += [f"- {line}" for line in floors]
    if load:
        out += [
            "",
            "## Onset against the training set's bits over the model's capacity",
            "",
            "n H / C: the training set's expected information (n strings of H bits) over the "
            "model's capacity C (measured bits per parameter times parameters; figure "
            "`onset_vs_load`). One curve would mean the onset is set by the load alone.",
            "",
        ]
        out += [f"- {line}" for line in load]
    out += ["", "## How the verdicts are reached", ""]
    out += [f"- **{f.claim}**: {r}" for f, r in zip(findings, rules(), strict=False)]
    out += [f"- **Over cells**: {CELLS_RULE}"]
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


def context_line(phases: Any, curves: Any = None) -> str:
    """Runs, models, grammars, sizes and seeds the report rests on; how many rows are the same
    runs as others (counted once) and how many runs stopped early, and where."""
    rows = _records(phases)
    if not rows:
        return "No runs."

    def uniq(key: str) -> str:
        return ", ".join(sorted({str(_col(r, key, "-")) for r in rows}))

    seeds = len({_col(r, "seed", "-") for r in rows})
    marked = _records(mark_duplicates(phases, curves))
    n_runs = len({_col(r, "config_id") for r in marked})
    n_votes = len({_col(r, "vote_id") for r in marked})
    stopped = [r for r in rows if is_stopped(r)]
    text = (f"{len(rows)} rows: {n_runs} distinct runs (the same resolved config and grammar "
            f"text in several folders counts once), {n_votes} for the stage-1 claims (stage 1 of "
            "a sequential run equal to a plain run counts as that run); "
            f"models: {uniq('model')}; grammars: {uniq('grammar')}; n: {uniq('n_train')}; "
            f"{seeds} seed value(s).")  # fmt: skip
    if stopped:
        where: dict[str, list[str]] = {}
        for r in stopped:
            src = str(_col(r, "source", "-")).rstrip("/").rsplit("/", 1)[-1]
            where.setdefault(src, []).append(str(_col(r, "last_epoch", "?")))
        text += (f" {len(stopped)} runs stopped early (status not done; their events are "
                 "provisional): " + "; ".join(f"{s} at epochs {', '.join(e)}"
                                             for s, e in where.items()) + ".")  # fmt: skip
    return text
