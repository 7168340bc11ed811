"""Memorization measures in bits, from a run's saved surprisals and the grammar's exact
probabilities.

Pure functions on arrays first; :func:`write_run_analysis` is the thin run-folder layer. Per-string
quantities are bits per string (the end token included); ``_per_token`` divides by the mean number
of predicted tokens (L+1). Definitions:

* **excess loss** of a dataset: mean over its strings of ``model_bits - grammar_bits``. On test
  strings drawn independently from P_G this is an unbiased *estimate* of KL(P_G || P_model) in
  bits per string (the grammar's entropy is the floor), reported with its standard error.
* **unintended memorization** (Morris et al., 2025, with the true grammar as reference model):
  ``memU(x) = max(0, log2 p_model(x) - log2 p_G(x)) = max(0, grammar_bits - model_bits)``, summed
  over the training strings (total), averaged, and divided by the model's parameter count
  (capacity is ~3.6 bits/parameter). The same on test strings is the control: a memorization
  signal is train memU well above test memU.
* **per-position excess**: ``model_bits - grammar_bits`` of the next token at each position (end
  token at position L), averaged over the strings of a dataset: where in a string the excess sits.
* **membership inference** from the loss: AUC (Mann-Whitney, ties count half) and best-threshold
  F1 of "member" (training set) vs "non-member" (test set) with score ``-model bits/token``; and
  reference-calibrated with score ``-(model_bits - grammar_bits)`` (the true distribution as the
  reference model).
* **recollection** measures the paper criticises: exact greedy continuation rate from a 32-token
  prefix (Carlini et al.; ``X_greedy_match``) and per-token accuracy (Tirumala et al.;
  ``X_correct``).
* **generations**: shares of sampled strings that the grammar can produce (finite surprisal), that
  copy a training string exactly, and that are new (grammatical, in no training set of the run).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import rankdata

from grammarlab.errors import GrammarlabError

INVALID = "<invalid>"


# ----------------------------------------------------------------------------- pure functions


def string_bits(token_bits: np.ndarray) -> np.ndarray:
    """Bits per string: the sum of a [n, W] NaN-padded per-token surprisal array over its
    recorded (non-NaN) positions; NaN for a row with no recorded position."""
    tb = np.asarray(token_bits, dtype=np.float64)
    n_tok = np.sum(~np.isnan(tb), axis=1)
    out = np.nansum(tb, axis=1)
    out[n_tok == 0] = np.nan
    return out


def n_predicted_tokens(token_bits: np.ndarray) -> np.ndarray:
    """Predicted tokens per string (L+1, end included): the non-NaN count of each row."""
    return np.sum(~np.isnan(np.asarray(token_bits, dtype=np.float64)), axis=1)


@dataclass(frozen=True)
class Estimate:
    """A sample mean with its standard error (``std(ddof=1)/sqrt(n)``, NaN when n < 2)."""

    mean: float
    stderr: float
    n: int


def mean_stderr(values: np.ndarray) -> Estimate:
    """Mean and standard error of the finite values; NaN mean when there are none."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return Estimate(math.nan, math.nan, 0)
    se = float(np.std(v, ddof=1) / np.sqrt(v.size)) if v.size > 1 else math.nan
    return Estimate(float(v.mean()), se, int(v.size))


def excess_bits(model_bits: np.ndarray, grammar_bits: np.ndarray) -> Estimate:
    """Mean excess ``model_bits - grammar_bits`` (bits per string) over strings the grammar can
    produce, with its standard error. On i.i.d. samples of P_G: an unbiased estimate of
    KL(P_G || P_model) in bits per string. Strings with non-finite grammar bits are left out;
    a string the model finds impossible (model bits inf) makes the estimate inf."""
    m = np.asarray(model_bits, dtype=np.float64)
    g = np.asarray(grammar_bits, dtype=np.float64)
    keep = np.isfinite(g) & ~np.isnan(m)
    d = m[keep] - g[keep]
    if np.isposinf(d).any():
        return Estimate(math.inf, math.nan, int(d.size))
    return mean_stderr(d)


def memu_bits(model_bits: np.ndarray, grammar_bits: np.ndarray) -> np.ndarray:
    """Unintended memorization per string in bits, true grammar as reference:
    ``max(0, grammar_bits - model_bits)``. 0 when the model finds the string impossible
    (model bits inf); NaN when the grammar cannot produce it or the model bits are missing."""
    m = np.asarray(model_bits, dtype=np.float64)
    g = np.asarray(grammar_bits, dtype=np.float64)
    out = np.full(m.shape, np.nan)
    ok = np.isfinite(g) & ~np.isnan(m)
    with np.errstate(invalid="ignore"):
        out[ok] = np.maximum(0.0, g[ok] - m[ok])
    return out


def position_excess(
    model_token_bits: np.ndarray, grammar_token_bits: Sequence[np.ndarray]
) -> np.ndarray:
    """Mean over strings of ``model - grammar`` next-token bits at each position (end token at
    position L of each string), shape [W]; NaN at positions no string reaches. Strings whose
    grammar bits are not all finite are left out. Raises when a row's recorded length is not
    the grammar's L+1 (surprisals and data out of step)."""
    mb = np.asarray(model_token_bits, dtype=np.float64)
    if mb.shape[0] != len(grammar_token_bits):
        raise GrammarlabError(
            f"{mb.shape[0]} rows of model surprisals for {len(grammar_token_bits)} strings"
        )
    ex = np.full(mb.shape, np.nan)
    for i, g in enumerate(grammar_token_bits):
        g = np.asarray(g, dtype=np.float64)
        k = g.size
        if k > mb.shape[1] or np.isnan(mb[i, :k]).any() or not np.isnan(mb[i, k:]).all():
            raise GrammarlabError(
                f"string {i}: surprisals record {int((~np.isnan(mb[i])).sum())} positions, "
                f"the string has {k} (L+1)",
                hint="the surprisals file does not belong to these data files",
            )
        if np.isfinite(g).all():
            ex[i, :k] = mb[i, :k] - g
    with np.errstate(invalid="ignore"):
        counts = np.sum(~np.isnan(ex), axis=0)
        sums = np.nansum(ex, axis=0)
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _scores(members: np.ndarray, nonmembers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(members, dtype=np.float64)
    b = np.asarray(nonmembers, dtype=np.float64)
    return a[~np.isnan(a)], b[~np.isnan(b)]


def mia_auc(members: np.ndarray, nonmembers: np.ndarray) -> float:
    """Area under the ROC curve of a membership score (higher = more likely a member):
    P(score of a member > score of a non-member), ties counted half (Mann-Whitney U / n1 n2).
    NaN scores are dropped; NaN when either group is empty."""
    a, b = _scores(members, nonmembers)
    if a.size == 0 or b.size == 0:
        return math.nan
    ranks = rankdata(np.concatenate([a, b]))  # average ranks: a tie counts half
    u = ranks[: a.size].sum() - a.size * (a.size + 1) / 2
    return float(u / (a.size * b.size))


def mia_best_f1(members: np.ndarray, nonmembers: np.ndarray) -> float:
    """Best F1 of "member" over all thresholds t (predict member when score >= t), including
    predicting everyone a member (F1 = 2 n1 / (2 n1 + n2), the trivial baseline)."""
    a, b = _scores(members, nonmembers)
    if a.size == 0:
        return math.nan
    values = np.unique(np.concatenate([a, b]))[::-1]  # thresholds, high to low
    tp = np.searchsorted(np.sort(-a), -values, side="right")  # members with score >= t
    fp = np.searchsorted(np.sort(-b), -values, side="right")
    f1 = 2 * tp / (tp + fp + a.size)
    return float(f1.max())


def greedy_rate(match: np.ndarray) -> float:
    """Share of strings whose rest is reproduced exactly by greedy decoding from a prefix."""
    m = np.asarray(match, dtype=bool)
    return float(m.mean()) if m.size else math.nan


def token_accuracy(correct: np.ndarray, token_bits: np.ndarray) -> float:
    """Share of predicted tokens (recorded positions, end included) where argmax == target."""
    mask = ~np.isnan(np.asarray(token_bits, dtype=np.float64))
    n = mask.sum()
    return float(np.asarray(correct, dtype=bool)[mask].sum() / n) if n else math.nan


def parse_generations(text: str) -> list[tuple[str, ...] | None]:
    """Lines of a generations file as token tuples; ``<invalid>`` or empty lines become None."""
    out: list[tuple[str, ...] | None] = []
    for line in text.splitlines():
        toks = tuple(line.split())
        out.append(None if not toks or toks == (INVALID,) else toks)
    return out


def generation_shares(
    strings: Sequence[tuple[str, ...] | None],
    grammatical: np.ndarray,
    train_strings: Iterable[Sequence[str]],
) -> dict[str, float]:
    """Shares of sampled strings: grammatical (``grammatical[i]`` True), exact copies of a
    training string, and novel (grammatical, not a training string). None entries (invalid
    samples) count in the denominator as not grammatical."""
    n = len(strings)
    gram = np.asarray(grammatical, dtype=bool)
    if gram.size != n:
        raise ValueError("one grammaticality flag per sampled string")
    train = {tuple(s) for s in train_strings}
    copy = np.array([s is not None and s in train for s in strings], dtype=bool)
    share = (lambda m: float(m.mean())) if n else (lambda m: math.nan)
    return {"gen_n": n, "gen_grammatical_share": share(gram), "gen_copy_share": share(copy),
            "gen_novel_share": share(gram & ~copy)}  # fmt: skip


def epoch_measures(
    model_token_bits: dict[str, np.ndarray],
    grammar_bits: dict[str, np.ndarray],
    members: str,
    nonmembers: str = "test",
    n_params: int | None = None,
    n_trainable_params: int | None = None,
) -> dict[str, float]:
    """The scalar string-level measures of one epoch from per-dataset [n, W] model surprisals
    (bits) and per-string grammar bits. ``members`` names the current training set."""
    out: dict[str, float] = {}
    mb = {k: string_bits(v) for k, v in model_token_bits.items()}
    for role, name in (("train", members), ("test", nonmembers)):
        if name not in mb or name not in grammar_bits:
            continue
        ex = excess_bits(mb[name], grammar_bits[name])
        ntok = float(np.mean(n_predicted_tokens(model_token_bits[name])))
        out[f"excess_{role}_bits"] = ex.mean
        out[f"excess_{role}_bits_stderr"] = ex.stderr
        # A diverged epoch has all-NaN surprisals: no predicted tokens, no per-token value.
        out[f"excess_{role}_bits_per_token"] = ex.mean / ntok if ntok > 0 else math.nan
        mu = memu_bits(mb[name], grammar_bits[name])
        out[f"memU_{role}_bits_total"] = float(np.nansum(mu))
        out[f"memU_{role}_bits_mean"] = float(np.nanmean(mu)) if np.isfinite(mu).any() else math.nan
    if "memU_train_bits_total" in out:
        total = out["memU_train_bits_total"]
        out["memU_bits_per_param"] = total / n_params if n_params else math.nan
        out["memU_bits_per_trainable_param"] = (
            total / n_trainable_params if n_trainable_params else math.nan
        )
    if members in mb and nonmembers in mb:
        a, b = model_token_bits[members], model_token_bits[nonmembers]
        with np.errstate(divide="ignore", invalid="ignore"):
            sa = -mb[members] / n_predicted_tokens(a)
            sb = -mb[nonmembers] / n_predicted_tokens(b)
        out["mia_auc"], out["mia_f1"] = mia_auc(sa, sb), mia_best_f1(sa, sb)
        out["mia_f1_trivial"] = 2 * sa.size / (2 * sa.size + sb.size)
        if members in grammar_bits and nonmembers in grammar_bits:
            ra = -(mb[members] - grammar_bits[members])
            rb = -(mb[nonmembers] - grammar_bits[nonmembers])
            out["mia_auc_ref"], out["mia_f1_ref"] = mia_auc(ra, rb), mia_best_f1(ra, rb)
    return out


# ----------------------------------------------------------------------------- run folder layer

PER_STRING = ["epoch", "dataset", "index", "model_bits", "grammar_bits", "memU_bits", "greedy_match"]  # fmt: skip
PER_POSITION = ["epoch", "dataset", "position", "excess_bits"]


def analyze_run(run_dir: Path | str) -> tuple[Any, list[dict[str, Any]], Any, Any]:
    """(phases, measures rows, per-string DataFrame, per-position DataFrame) of a run folder.

    Grammar bits of the fixed strings are computed once; each surprisals/epoch_XXXX.npz gives one
    row; generations/epoch_XXXX.txt add the generation shares to their epoch's row. In sequential
    runs the datasets are labelled d1 (data/train.txt) and d2 (data/train2.txt) and the ``train``
    measures refer to the current stage's training set (the members)."""
    import pandas as pd

    from grammarlab.phases import Curves, detect_phases
    from grammarlab.results import (
        epoch_files,
        read_env,
        read_grammar,
        read_metrics,
        read_run_strings,
    )

    run_dir = Path(run_dir)
    records = read_metrics(run_dir)
    phases = detect_phases(Curves.from_records(records))
    stage_of = {int(r["epoch"]): int(r.get("stage") or 1) for r in records}
    env = read_env(run_dir)
    params = (env.get("n_params"), env.get("n_trainable_params"))
    npz_files = epoch_files(run_dir / "surprisals", ".npz")
    gen_files = epoch_files(run_dir / "generations", ".txt")
    raw = read_run_strings(run_dir)
    seq = "train2" in raw or "d2" in raw
    strings = {_label(k, seq): v for k, v in raw.items()}
    rows: dict[int, dict[str, Any]] = {}
    frames_s: list[pd.DataFrame] = []
    frames_p: list[pd.DataFrame] = []
    if npz_files or gen_files:
        g = read_grammar(run_dir)
        gbits, gtok = _grammar_bits(g, strings)
    for epoch, path in npz_files.items():
        with np.load(path) as z:
            arrays = {_label_key(k, seq): z[k] for k in z.files}
        stage = stage_of.get(epoch, 1)
        members = ("d2" if stage >= 2 else "d1") if seq else "train"
        row, fs, fp = _epoch_tables(epoch, arrays, members, gbits, gtok, params)
        rows[epoch] = {"epoch": epoch, "stage": stage, "members": members, **row}
        frames_s += fs
        frames_p += fp
    train_strings = [x for k, s in strings.items() if k in ("train", "d1", "d2") for x in s]
    for epoch, path in gen_files.items():
        samples = parse_generations(path.read_text(encoding="utf-8"))
        row = rows.setdefault(epoch, {"epoch": epoch, "stage": stage_of.get(epoch, 1)})
        row.update(generation_shares(samples, _grammatical(g, samples), train_strings))
    out_rows = [{k: _json_value(v) for k, v in rows[e].items()} for e in sorted(rows)]
    return phases, out_rows, _concat(frames_s, PER_STRING), _concat(frames_p, PER_POSITION)


def _epoch_tables(
    epoch: int,
    arrays: dict[str, np.ndarray],
    members: str,
    gbits: dict[str, np.ndarray],
    gtok: dict[str, list[np.ndarray]],
    params: tuple[int | None, int | None],
) -> tuple[dict[str, Any], list[Any], list[Any]]:
    """One epoch's scalar measures and its per-string / per-position frames."""
    import pandas as pd

    tok = {k[: -len("_bits")]: v for k, v in arrays.items() if k.endswith("_bits")}
    gb = {n: gbits[n] for n in tok if n in gbits}
    row: dict[str, Any] = epoch_measures(tok, gb, members, "test", *params)
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
        gm = pd.array(match, dtype="boolean") if match is not None else pd.NA
        fs.append(pd.DataFrame({
            "epoch": epoch, "dataset": n, "index": np.arange(mb.size), "model_bits": mb,
            "grammar_bits": gb.get(n, np.full(mb.size, np.nan)), "memU_bits": mu, "greedy_match": gm,
        }))  # fmt: skip
        if n in gtok:
            pe = position_excess(tb, gtok[n])
            fp.append(pd.DataFrame({
                "epoch": epoch, "dataset": n, "position": np.arange(pe.size), "excess_bits": pe,
            }))  # fmt: skip
    return row, fs, fp


def _concat(frames: list, columns: list[str]) -> Any:
    import pandas as pd

    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


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


def _grammar_bits(g: Any, strings: dict[str, list]) -> tuple[dict, dict]:
    """Per data file: grammar bits per string, and per-token grammar bits (not for random)."""
    try:
        from grammarlab.inside import surprisal_bits, token_surprisals_bits
    except ImportError as e:
        raise GrammarlabError(
            f"the grammar engine is not available ({e})", hint="grammarlab.inside is needed"
        ) from None
    gbits = {k: np.asarray(surprisal_bits(g, s), dtype=np.float64) for k, s in strings.items()}
    gtok = {k: token_surprisals_bits(g, s) for k, s in strings.items() if k != "random"}
    return gbits, gtok


def _grammatical(g: Any, samples: Sequence[tuple[str, ...] | None]) -> np.ndarray:
    """True where a sample is a string of the grammar (finite surprisal)."""
    from grammarlab.inside import surprisal_bits

    alphabet = set(g.terminals)
    idx = [i for i, s in enumerate(samples) if s is not None and set(s) <= alphabet]
    out = np.zeros(len(samples), dtype=bool)
    if idx:
        bits = np.asarray(surprisal_bits(g, [samples[i] for i in idx]), dtype=np.float64)
        out[idx] = np.isfinite(bits)
    return out


def write_run_analysis(run_dir: Path | str) -> None:
    """Compute and write phases.json, measures.jsonl, per_string.csv and per_position.csv into
    a run folder (each atomically). Called by the runner when a run finishes."""
    from grammarlab.io import write_atomic, write_json_atomic, write_text_atomic

    run_dir = Path(run_dir)
    phases, rows, ps, pp = analyze_run(run_dir)
    write_json_atomic(run_dir / "phases.json", phases.to_dict())
    text = "".join(json.dumps(r, allow_nan=False, sort_keys=False) + "\n" for r in rows)
    write_text_atomic(run_dir / "measures.jsonl", text)
    write_atomic(run_dir / "per_string.csv", lambda p: ps.to_csv(p, index=False))
    write_atomic(run_dir / "per_position.csv", lambda p: pp.to_csv(p, index=False))
