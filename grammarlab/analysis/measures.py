"""Memorization measures in bits, from a run's saved surprisals and the grammar's exact
probabilities.

Pure functions on arrays; :mod:`grammarlab.analysis.run_analysis` applies them to a run folder.
Per-string
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
* **noise of the AUC**: under H0 (members and non-members exchangeable: nothing memorized) the
  Mann-Whitney U of n1 members and n2 non-members has a known distribution. We compute it
  **exactly** (the counting recursion over arrangements, for continuous scores without ties) when
  ``n1 * n2 <= EXACT_MAX_CELLS``, else by the **normal approximation** (mean n1 n2 / 2, variance
  n1 n2 (n1 + n2 + 1) / 12). :func:`mia_null` gives the one-sided p-value of an observed AUC and the
  band of AUCs that test does not flag (an AUC above the band has ``p <= 0.05``: the band and the
  flag are one test); ``mia_memorized`` is ``p <= 0.05``, a memorization flag independent of the
  5% loss rule. :func:`sustained_flag_onset` dates it like the onset.
* **memU clipped and signed**: ``memU_*`` is clipped at 0 per string (Morris et al.);
  ``memU_*_signed`` sums ``grammar_bits - model_bits`` unclipped (negative when the model is
  worse than the grammar on the set: on test strings its mean is minus the excess).
* **baselines** for the excess: the untrained model (the same strings scored at epoch 0) and the
  uniform distribution over the alphabet and lengths (:func:`uniform_string_bits`); the
  ``_vs_untrained`` / ``_vs_uniform`` columns are mean(model - baseline) bits per string (negative:
  better than the baseline), paired over the same strings, with their standard errors.
* **recollection** measures the paper criticises: exact greedy continuation rate from a 32-token
  prefix (Carlini et al.; ``X_greedy_match``) and per-token accuracy (Tirumala et al.;
  ``X_correct``).
* **generations**: shares of sampled strings that the grammar can produce (finite surprisal), that
  copy a training string exactly, and that are new (grammatical, in no training set of the run).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.stats import rankdata

from grammarlab.analysis.phases import stays_from
from grammarlab.errors import GrammarlabError

INVALID = "<invalid>"
EXACT_MAX_CELLS = 20_000  # n1 * n2 up to which the null of U is exact (~0.2 s at the limit)
ALPHA = 0.05  # one-sided level of the membership-inference memorization flag


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


@lru_cache(maxsize=64)
def _u_pmf(n1: int, n2: int) -> np.ndarray:
    """Exact null distribution of the Mann-Whitney U (pairs member > non-member) of n1 and n2
    exchangeable continuous scores: pmf over u = 0..n1 n2. The largest of the n1 + n2 scores is a
    member with probability n1 / (n1 + n2) (then it beats all n2 non-members), else a non-member:
    P[n1, n2](u) = n1/(n1+n2) P[n1-1, n2](u - n2) + n2/(n1+n2) P[n1, n2-1](u)."""
    prev = [np.ones(1)] * (n2 + 1)  # P[0, j]: u = 0 surely
    for i in range(1, n1 + 1):
        cur = [np.ones(1)]  # P[i, 0]
        for j in range(1, n2 + 1):
            out = np.zeros(i * j + 1)
            a, b = prev[j], cur[j - 1]
            out[j : j + a.size] += (i / (i + j)) * a
            out[: b.size] += (j / (i + j)) * b
            cur.append(out)
        prev = cur
    pmf = prev[n2]
    pmf.setflags(write=False)
    return pmf


@dataclass(frozen=True)
class MiaNull:
    """The AUC under H0 (nothing memorized) for n1 members and n2 non-members: the band
    ``[lo, hi]`` where the one-sided test at ``level`` does **not** flag (``hi``: the largest AUC
    with ``P(AUC >= observed) > 1 - level``; an AUC above ``hi`` is flagged, exactly when its
    p-value is <= 1 - level; ``lo = 1 - hi``, the mirror, drawn for symmetry), the one-sided
    p-value ``P(AUC >= observed)`` (NaN without an observed AUC), and ``method``: ``exact`` or
    ``normal`` (see the module docstring)."""

    n1: int
    n2: int
    lo: float
    hi: float
    pvalue: float
    method: str
    level: float = 0.95


def mia_null_sd(n1: int, n2: int) -> float:
    """Standard deviation of the AUC of n1 members and n2 non-members with exchangeable
    continuous scores (no ties) around its chance level 0.5: sqrt((n1 + n2 + 1) / (12 n1 n2));
    NaN when a side is empty."""
    if n1 < 1 or n2 < 1:
        return math.nan
    return math.sqrt((n1 + n2 + 1) / (12.0 * n1 * n2))


def mia_null(n1: int, n2: int, auc: float = math.nan, level: float = 0.95) -> MiaNull:
    """Null band of the membership-inference AUC and the p-value of ``auc``, both of the one
    one-sided test that sets the flag (:class:`MiaNull`, module docstring)."""
    from scipy.stats import norm

    if n1 < 1 or n2 < 1 or not 0 < level < 1:
        return MiaNull(n1, n2, math.nan, math.nan, math.nan, "none", level)
    cells, alpha = n1 * n2, 1 - level
    if cells <= EXACT_MAX_CELLS:
        pmf = _u_pmf(min(n1, n2), max(n1, n2))  # U and n1 n2 - U have the same law: symmetric
        tail = np.cumsum(pmf[::-1])[::-1]  # tail[u] = P(U >= u), one array for p and band
        # float sums of the pmf carry ~1e-15 error; 1e-12 keeps exact tails on their side
        crit = np.flatnonzero(tail <= alpha + 1e-12)
        hi = 1.0 if crit.size == 0 else (int(crit[0]) - 1) / cells
        p = math.nan
        if math.isfinite(auc):
            u = math.ceil(auc * cells - 1e-9)  # ties give half-integer U: P(U >= u_obs)
            p = 1.0 if u <= 0 else 0.0 if u > cells else float(min(1.0, tail[u]))
        return MiaNull(n1, n2, 1.0 - hi, hi, p, "exact", level)
    sd = mia_null_sd(n1, n2)
    z = float(norm.isf(alpha))
    # p <= alpha exactly when auc >= 0.5 + 0.5 / cells + z sd (continuity-corrected)
    hi = min(1.0, 0.5 + 0.5 / cells + z * sd)
    p = float(norm.sf((auc - 0.5 - 0.5 / cells) / sd)) if math.isfinite(auc) else math.nan
    return MiaNull(n1, n2, 1.0 - hi, hi, p, "normal", level)


def sustained_flag_onset(epochs: np.ndarray, flags: np.ndarray) -> int | None:
    """First epoch from which ``flags`` (bool, NaN = not computed) holds at every later epoch,
    like the memorization onset (:func:`grammarlab.analysis.phases.stays_from`); None when the
    flag is off at the last epoch (censored)."""
    f = np.asarray(flags, dtype=np.float64)
    return stays_from(np.asarray(epochs), f)


def uniform_string_bits(lengths: np.ndarray, alphabet_size: int, n_lengths: int = 1) -> np.ndarray:
    """Bits per string under the uniform distribution over the alphabet and lengths: a length
    drawn uniformly from the ``n_lengths`` lengths the grammar can produce, then each of its L
    tokens uniformly from ``alphabet_size`` terminals: ``L log2(k) + log2(n_lengths)``."""
    if alphabet_size < 1 or n_lengths < 1:
        raise GrammarlabError(f"need alphabet_size, n_lengths >= 1, got {alphabet_size}, "
                              f"{n_lengths}")  # fmt: skip
    L = np.asarray(lengths, dtype=np.float64)
    return L * math.log2(alphabet_size) + math.log2(n_lengths)


def paired_difference(model_bits: np.ndarray, baseline_bits: np.ndarray) -> Estimate:
    """mean(model - baseline) bits per string over the strings where both are finite, with its
    standard error (paired: the same strings under both)."""
    m = np.asarray(model_bits, dtype=np.float64)
    b = np.asarray(baseline_bits, dtype=np.float64)
    ok = np.isfinite(m) & np.isfinite(b)
    return mean_stderr(m[ok] - b[ok])


def memu_signed_bits(model_bits: np.ndarray, grammar_bits: np.ndarray) -> np.ndarray:
    """``grammar_bits - model_bits`` per string, not clipped (bits); NaN where either is not
    finite (an impossible string has no finite signed value)."""
    m = np.asarray(model_bits, dtype=np.float64)
    g = np.asarray(grammar_bits, dtype=np.float64)
    out = np.full(m.shape, np.nan)
    ok = np.isfinite(g) & np.isfinite(m)
    out[ok] = g[ok] - m[ok]
    return out


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
    """Lines of a generations file (train.generate.format_generations) as token tuples;
    ``<invalid>`` becomes None, an empty line the empty string (a sample that ended at once)."""
    out: list[tuple[str, ...] | None] = []
    for line in text.splitlines():
        toks = tuple(line.split())
        out.append(None if toks == (INVALID,) else toks)
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
    untrained_bits: dict[str, np.ndarray] | None = None,
    uniform_bits: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """The scalar string-level measures of one epoch from per-dataset [n, W] model surprisals
    (bits) and per-string grammar bits. ``members`` names the current training set.
    ``untrained_bits`` / ``uniform_bits``: per-dataset bits per string of the two baselines (the
    model at epoch 0; :func:`uniform_string_bits`), for the ``_vs_untrained`` / ``_vs_uniform``
    columns and the baselines' own excess over the grammar."""
    out: dict[str, Any] = {}
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
        signed = memu_signed_bits(mb[name], grammar_bits[name])
        fin = np.isfinite(signed)
        out[f"memU_{role}_bits_signed_total"] = float(signed[fin].sum()) if fin.any() else math.nan
        out[f"memU_{role}_bits_signed_mean"] = float(signed[fin].mean()) if fin.any() else math.nan
        for base, table in (("untrained", untrained_bits), ("uniform", uniform_bits)):
            if table is None or name not in table:
                continue
            d = paired_difference(mb[name], table[name])
            out[f"excess_{role}_bits_vs_{base}"] = d.mean
            out[f"excess_{role}_bits_vs_{base}_stderr"] = d.stderr
            out[f"{base}_excess_{role}_bits"] = excess_bits(table[name], grammar_bits[name]).mean
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
        out.update(_null_columns("mia", out["mia_auc"], sa, sb))
        if members in grammar_bits and nonmembers in grammar_bits:
            ra = -(mb[members] - grammar_bits[members])
            rb = -(mb[nonmembers] - grammar_bits[nonmembers])
            out["mia_auc_ref"], out["mia_f1_ref"] = mia_auc(ra, rb), mia_best_f1(ra, rb)
            out.update(_null_columns("mia_ref", out["mia_auc_ref"], ra, rb))
    return out


def _null_columns(prefix: str, auc: float, a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """The AUC's null band, p-value and memorization flag (p <= ALPHA) as measure columns."""
    n1, n2 = int(np.sum(~np.isnan(a))), int(np.sum(~np.isnan(b)))
    null = mia_null(n1, n2, auc)
    flag = bool(null.pvalue <= ALPHA) if math.isfinite(null.pvalue) else None
    return {f"{prefix}_null_lo": null.lo, f"{prefix}_null_hi": null.hi,
            f"{prefix}_pvalue": null.pvalue, f"{prefix}_memorized": flag,
            f"{prefix}_null_method": null.method}  # fmt: skip
