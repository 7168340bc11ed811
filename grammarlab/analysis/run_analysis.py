"""A run's memorization analysis on disk: phases.json, measures.jsonl, per_string.csv and
per_position.csv, computed from the run folder (runs/folder.py: surprisals, data files, the
grammar's copy) with the pure measures of :mod:`grammarlab.analysis.measures` and the grammar's
exact probabilities. Grammar bits of the run's fixed strings are computed once per run.

Two baselines put the excess bits in proportion (``excess_{role}_bits_vs_{untrained,uniform}``):
the run's own model before training (the epoch-0 surprisals; absent when epoch 0 was not saved)
and the uniform distribution over the grammar's terminals and lengths
(:func:`grammarlab.analysis.measures.uniform_string_bits` with the number of lengths the grammar
derives, :func:`length_count`; absent when the lengths are unbounded, where no uniform
distribution over them exists)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from grammarlab.analysis.floors import set_floor
from grammarlab.analysis.measures import (
    epoch_measures,
    generation_shares,
    greedy_rate,
    memu_bits,
    parse_generations,
    position_excess,
    string_bits,
    sustained_flag_onset,
    token_accuracy,
    uniform_string_bits,
)
from grammarlab.analysis.phases import Curves, detect_phases
from grammarlab.errors import GrammarlabError
from grammarlab.grammar import inside
from grammarlab.grammar.parse import Grammar
from grammarlab.runs.folder import RunDir

PER_STRING = [
    "epoch",
    "dataset",
    "index",
    "model_bits",
    "grammar_bits",
    "memU_bits",
    "greedy_match",
]
PER_POSITION = ["epoch", "dataset", "position", "excess_bits"]


def finite_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The epochs before the first one whose train or test loss is not finite (null in
    metrics.jsonl): a diverged run is analysed over its finite epochs."""
    out = []
    for r in records:
        if not all(_finite(r.get(k)) for k in ("train_loss", "test_loss")):
            break
        out.append(r)
    return out


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def analyze_run(
    run_dir: Path | str | RunDir,
) -> tuple[dict[str, Any], list[dict[str, Any]], Any, Any]:
    """(phases dict, measures rows, per-string DataFrame, per-position DataFrame) of a run folder.

    The phases are :func:`grammarlab.analysis.phases.detect_phases` of the loss curves (with the
    floor-corrected onset from the grammar's own losses on the training and test sets,
    ``grammar_train_loss`` / ``grammar_test_loss`` in nats/token, when the grammar is scored), the
    flag ``stopped`` (the run's status is not done: every event provisional), plus
    ``mia_memorization_onset_epoch``: the first epoch from which the membership-inference
    memorization flag (``mia_memorized``: AUC above its null band) holds at every later analysed
    epoch (None, with ``mia_memorization_onset_censored``, when it does not hold at the last).

    Grammar bits of the fixed strings are computed once; each saved surprisals epoch gives one
    row; generations add the generation shares to their epoch's row. Only the finite epochs
    (:func:`finite_records`) are analysed; a broken metrics line is an error, never skipped. In
    sequential runs the datasets are labelled d1 (data/train.txt) and d2 (data/train2.txt) and
    the ``train`` measures refer to the current stage's training set (the members)."""
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(Path(run_dir))
    all_records = run.read_metrics()
    if not all_records:
        raise GrammarlabError("metrics.jsonl has no epochs yet", file=str(run))
    records = finite_records(all_records)
    if not records:
        raise GrammarlabError("no epoch with finite losses to analyse (the run diverged at "
                              "epoch 0)", file=str(run))  # fmt: skip
    finite = {int(r["epoch"]) for r in records}
    stage_of = {int(r["epoch"]): int(r.get("stage") or 1) for r in records}
    env = run.read_env()
    params = (env.get("n_params"), env.get("n_trainable_params"))
    npz_epochs = [e for e in run.surprisal_epochs() if e in finite]
    gen_epochs = [e for e in run.generation_epochs() if e in finite]
    raw = run.read_data()
    seq = "train2" in raw or "d2" in raw
    strings = {_label(k, seq): v for k, v in raw.items()}
    rows: dict[int, dict[str, Any]] = {}
    frames_s: list[dict[str, Any]] = []  # column pieces, one per (epoch, set): one frame at the end
    frames_p: list[dict[str, Any]] = []
    floors: dict[str, float] = {}
    if npz_epochs or gen_epochs:
        g = run.read_grammar()
        gbits, gtok = _grammar_bits(g, strings)
        baselines = {"uniform_bits": _uniform_bits(g, strings), "untrained_bits": None}
        floors = _floors(gbits, strings, "d1" if seq else "train")
    ratio = floors.get("floor_ratio")
    ok = ratio is not None and math.isfinite(ratio) and ratio > 0
    phases = {**detect_phases(Curves.from_records(records),
                              floor_ratio=ratio if ok else None).to_dict(),
              **{k: v for k, v in floors.items() if k != "floor_ratio"}}  # fmt: skip
    status = run.read_status()
    phases["stopped"] = status is not None and (status.trained or status.state) != "done"
    for epoch in npz_epochs:
        arrays = {_label_key(k, seq): v for k, v in run.read_surprisals(epoch).items()}
        if epoch == 0:  # the untrained model: a baseline for every later epoch
            baselines["untrained_bits"] = {
                k[: -len("_bits")]: string_bits(v) for k, v in arrays.items() if k.endswith("_bits")
            }
        stage = stage_of.get(epoch, 1)
        members = ("d2" if stage >= 2 else "d1") if seq else "train"
        row, fs, fp = _epoch_tables(epoch, arrays, members, gbits, gtok, params, baselines)
        rows[epoch] = {"epoch": epoch, "stage": stage, "members": members, **row}
        frames_s += fs
        frames_p += fp
    train_strings = [x for k, s in strings.items() if k in ("train", "d1", "d2") for x in s]
    for epoch in gen_epochs:
        samples = parse_generations(run.read_generations(epoch))
        row = rows.setdefault(epoch, {"epoch": epoch, "stage": stage_of.get(epoch, 1)})
        row.update(generation_shares(samples, _grammatical(g, samples), train_strings))
    out_rows = [{k: _json_value(v) for k, v in rows[e].items()} for e in sorted(rows)]
    return (
        _with_mia_onset(phases, out_rows),
        out_rows,
        _concat(frames_s, PER_STRING),
        _concat(frames_p, PER_POSITION),
    )


def _epoch_tables(
    epoch: int,
    arrays: dict[str, np.ndarray],
    members: str,
    gbits: dict[str, np.ndarray],
    gtok: dict[str, list[np.ndarray]],
    params: tuple[int | None, int | None],
    baselines: dict[str, dict[str, np.ndarray] | None],
) -> tuple[dict[str, Any], list[Any], list[Any]]:
    """One epoch's scalar measures and its per-string / per-position column pieces;
    ``baselines``: ``untrained_bits`` and ``uniform_bits`` for :func:`epoch_measures`."""
    tok = {k[: -len("_bits")]: v for k, v in arrays.items() if k.endswith("_bits")}
    gb = {n: gbits[n] for n in tok if n in gbits}
    row: dict[str, Any] = epoch_measures(tok, gb, members, "test", *params, **baselines)
    fs, fp = [], []
    for n, tb in tok.items():
        mb = string_bits(tb)
        mu = memu_bits(mb, gb[n]) if n in gb else np.full(mb.size, np.nan)
        row[f"model_{n}_bits_mean"] = float(np.nanmean(mb)) if mb.size else math.nan
        if n == "test" and n in gb:  # the entropy floor, estimated on the test strings
            row["grammar_test_bits_mean"] = float(np.mean(gb[n]))
        if n in gb and n not in ("train", "test", "random"):
            row[f"memU_{n}_bits_mean"] = float(np.nanmean(mu))
        correct, match = arrays.get(f"{n}_correct"), arrays.get(f"{n}_greedy_match")
        if correct is not None:
            row[f"token_acc_{n}"] = token_accuracy(correct, tb)
        if match is not None:
            row[f"greedy_extraction_rate_{n}"] = greedy_rate(match)
        if n == members:
            for k in ("token_acc", "greedy_extraction_rate"):
                if f"{k}_{n}" in row:
                    row[f"{k}_train"] = row[f"{k}_{n}"]
        fs.append({
            "epoch": epoch, "dataset": n, "index": np.arange(mb.size), "model_bits": mb,
            "grammar_bits": gb.get(n, np.full(mb.size, np.nan)), "memU_bits": mu,
            "greedy_match": match,
        })  # fmt: skip
        if n in gtok:
            pe = position_excess(tb, gtok[n])
            fp.append({"epoch": epoch, "dataset": n, "position": np.arange(pe.size),
                       "excess_bits": pe})  # fmt: skip
    return row, fs, fp


def _concat(pieces: list[dict[str, Any]], columns: list[str]) -> Any:
    """One DataFrame from column pieces (``epoch`` and ``dataset`` are one value per piece, the
    rest arrays; a missing ``greedy_match`` is NA): one frame instead of one per epoch and set,
    which took half of the analysis time."""
    import pandas as pd

    if not pieces:
        return pd.DataFrame(columns=columns)
    sizes = [len(p[columns[2]]) for p in pieces]
    out: dict[str, Any] = {}
    for c in columns:
        vals = [p[c] for p in pieces]
        if c in ("epoch", "dataset"):
            out[c] = np.repeat(np.asarray(vals, dtype=np.int64 if c == "epoch" else object), sizes)
        elif c == "greedy_match":
            data = [np.zeros(k, bool) if v is None else np.asarray(v, bool)
                    for v, k in zip(vals, sizes, strict=True)]  # fmt: skip
            na = [np.full(k, v is None) for v, k in zip(vals, sizes, strict=True)]
            out[c] = pd.arrays.BooleanArray(np.concatenate(data), np.concatenate(na))
        else:
            out[c] = np.concatenate(vals)
    return pd.DataFrame(out, columns=columns)


def _label(name: str, sequential: bool) -> str:
    """Dataset label: in sequential runs D1 (train/d1) is ``d1`` and D2 (train2/d2) ``d2``."""
    if name in ("train2", "d2"):
        return "d2"
    if sequential and name in ("train", "d1"):
        return "d1"
    return name


def _label_key(key: str, sequential: bool) -> str:
    """An npz key ``X_bits`` / ``X_correct`` / ``X_greedy_match`` with X relabelled."""
    for suffix in ("_bits", "_correct", "_greedy_match"):
        if key.endswith(suffix):
            return _label(key[: -len(suffix)], sequential) + suffix
    return key


def _json_value(v: Any) -> Any:  # JSON has no NaN/inf: null
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(v) else None
    return int(v) if isinstance(v, np.integer) else v


def _grammar_bits(g: Grammar, strings: dict[str, list]) -> tuple[dict, dict]:
    """Per data file: grammar bits per string, and per-token grammar bits (not for random)."""
    gbits = {
        k: np.asarray(inside.surprisal_bits(g, s), dtype=np.float64) for k, s in strings.items()
    }
    gtok = {k: inside.token_surprisals_bits(g, s) for k, s in strings.items() if k != "random"}
    return gbits, gtok


def _floors(gbits: dict[str, np.ndarray], strings: dict[str, list], train: str) -> dict:
    """The grammar's own losses on the stage-1 training set and the test set (nats/token, Eq. 1:
    :func:`grammarlab.analysis.floors.set_floor`) and their ratio test/train; {} without both."""
    if train not in gbits or "test" not in gbits:
        return {}
    out = {}
    for name, key in (("train", train), ("test", "test")):
        lengths = np.array([len(s) for s in strings[key]], dtype=np.int64)
        out[f"grammar_{name}_loss"] = set_floor(gbits[key], lengths)
    tr, te = out["grammar_train_loss"], out["grammar_test_loss"]
    out["floor_ratio"] = te / tr if tr > 0 and math.isfinite(tr) and math.isfinite(te) else None
    return out


def length_count(g: Grammar, cap: int = 4096) -> int | None:
    """How many distinct string lengths (tokens, end not counted) the grammar derives with
    positive probability; None when they are unbounded (or a string can be longer than
    ``cap``). Length sets are bit masks (bit L = length L), combined by sum-sets over the rules
    until nothing changes: exact, and cheap for the bounded grammars it is used on."""
    rules = [(r.lhs, sum(r.terminal_mask), r.nonterminals) for r in g.rules if r.prob > 0]
    masks: dict[str, int] = {}
    changed = True
    while changed:
        changed = False
        for lhs, n_t, nts in rules:
            if any(b not in masks for b in nts):
                continue  # a part that derives nothing yet
            m = 1 << n_t
            for b in nts:
                m = _sumset(m, masks[b])
            new = masks.get(lhs, 0) | m
            if new != masks.get(lhs, 0):
                if new.bit_length() > cap + 1:
                    return None
                masks[lhs], changed = new, True
    return masks.get(g.start, 0).bit_count() or None


def _sumset(x: int, y: int) -> int:
    """{a + b : a in x, b in y} for length sets as bit masks."""
    out = 0
    while x:
        low = x & -x
        out |= y << (low.bit_length() - 1)
        x ^= low
    return out


def _uniform_bits(g: Grammar, strings: dict[str, list]) -> dict[str, np.ndarray] | None:
    """Per data file (not the random strings, which need not be of the grammar's lengths): bits
    per string under the uniform distribution over the grammar's terminals and lengths; None
    when the grammar's lengths are unbounded."""
    n_lengths = length_count(g)
    if n_lengths is None:
        return None
    k = len(g.terminals)
    return {
        name: uniform_string_bits(np.array([len(s) for s in ss], dtype=np.int64), k, n_lengths)
        for name, ss in strings.items()
        if name != "random"
    }


def _with_mia_onset(phases: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """phases + the sustained onset of the membership-inference memorization flag (epochs whose
    flag is missing, e.g. without test strings, are skipped)."""
    flagged = [(r["epoch"], r["mia_memorized"]) for r in rows if "mia_memorized" in r]
    epochs = np.array([e for e, _ in flagged], dtype=np.int64)
    flags = np.array([np.nan if f is None else float(f) for _, f in flagged], dtype=np.float64)
    onset = sustained_flag_onset(epochs, flags) if flagged else None
    return {**phases, "mia_memorization_onset_epoch": onset,
            "mia_memorization_onset_censored": bool(flagged) and onset is None}  # fmt: skip


def _grammatical(g: Grammar, samples: Sequence[tuple[str, ...] | None]) -> np.ndarray:
    """True where a sample is a string of the grammar (finite surprisal)."""
    alphabet = set(g.terminals)
    idx = [i for i, s in enumerate(samples) if s is not None and set(s) <= alphabet]
    out = np.zeros(len(samples), dtype=bool)
    if idx:
        bits = np.asarray(inside.surprisal_bits(g, [samples[i] for i in idx]), dtype=np.float64)
        out[idx] = np.isfinite(bits)
    return out


def write_run_analysis(run_dir: Path | str | RunDir) -> None:
    """Compute and write a run folder's analysis (phases.json, measures.jsonl, per_string.csv,
    per_position.csv), holding the folder's lock. Called by runs.launch when a run has trained,
    and by ``grammarlab measures``."""
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(Path(run_dir))
    with run.lock():
        phases, rows, ps, pp = analyze_run(run)
        run.write_analysis(phases, rows, ps, pp)
