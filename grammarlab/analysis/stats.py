"""Statistics over seeds for the report's verdicts: one module, called by every judge.

A seed's value may be an interval: an observed event is ``[e, e]``, an event censored at the last
epoch E (not reached, ``>E``) is ``[E + 1, inf]`` (epochs are whole), a right-censored minimum
(``>=E``) is ``[E, inf]`` and a minimum loss read at a still-falling end is ``[0, v]`` (the true
minimum is lower). Two intervals are ordered only when they do not overlap; equal points are a
tie. Tests:

* **paired sign test** (:func:`sign_test`): per seed pair the sign of ``b - a`` where it is known;
  ties and unknown signs are left out (and counted); the one-sided exact binomial p-value
  ``P(X >= k | n, 1/2)`` in the claim's direction, and the same in the opposite direction.
  With 5 seeds the smallest p-value is 1/32 = 0.031; with 3 it is 1/8: three seeds can show a
  direction only together with other cells, never alone (the report says "not established").
* **Spearman rank correlation** (:func:`spearman`) of a value against a cell's grammar entropy over
  every seed of every grammar (average ranks: ties are ties; a censored value ranks after every
  observed one, and censored values tie among themselves), with scipy's one-sided p-value
  (t approximation) in the claim's direction and a 95% interval of rho by Fisher's z with
  Bonett and Wright's variance (:func:`rho_interval`).
* **effect size of a paired comparison** (:func:`median_interval`): the median of the paired
  differences (bounds of intervals taken at their finite end) with a 95% bootstrap percentile
  interval over seeds.

Every verdict uses :data:`ALPHA` one-sided. :func:`median_over_seeds` is the censoring-aware median
(also for even seed counts: the mean of the two middle values, censored when either is).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import binom, spearmanr

ALPHA = 0.05  # one-sided level of every test in the report
MIN_SEEDS = 3  # seeds a cell needs (per compared group) before a verdict
N_BOOT = 2000  # bootstrap resamples for the 95% intervals of medians
BOOT_SEED = 20240  # the bootstrap's fixed seed: the report is reproducible

Interval = tuple[float, float]  # [lo, hi]; lo == hi for an observed value


def point(v: float) -> Interval:
    """An observed value."""
    return (float(v), float(v))


def compare(a: Interval, b: Interval) -> int | None:
    """+1 when b is surely above a, -1 when surely below, 0 for equal points, None when the
    intervals overlap (the order is unknown)."""
    if a[0] == a[1] == b[0] == b[1]:
        return 0
    if b[0] > a[1]:
        return 1
    if b[1] < a[0]:
        return -1
    return None


@dataclass(frozen=True)
class SignTest:
    """A paired one-sided sign test: ``n_up`` pairs with b above a, ``n_down`` below, ``n_ties``
    equal, ``n_unknown`` whose order the censoring hides; ``p_up``: P(X >= n_up) under
    Binomial(n_up + n_down, 1/2), ``p_down`` the same for ``n_down``."""

    n_up: int
    n_down: int
    n_ties: int
    n_unknown: int
    p_up: float
    p_down: float

    @property
    def n_pairs(self) -> int:
        return self.n_up + self.n_down + self.n_ties + self.n_unknown

    def label(self, up: str = "up", down: str = "down") -> str:
        return (f"sign test: {self.n_up} {up}, {self.n_down} {down}, {self.n_ties} tied, "
                f"{self.n_unknown} unknown (censored); one-sided p = {self.p_up:.3g}")  # fmt: skip


def binom_tail(k: int, n: int) -> float:
    """P(X >= k) for X ~ Binomial(n, 1/2), exact; 1.0 when n = 0."""
    if n == 0 or k <= 0:
        return 1.0
    return float(binom.sf(k - 1, n, 0.5))


def sign_test(pairs: Sequence[tuple[Interval, Interval]]) -> SignTest:
    """:class:`SignTest` of the pairs (a, b), direction "b above a"."""
    up = down = ties = unknown = 0
    for a, b in pairs:
        c = compare(a, b)
        if c is None:
            unknown += 1
        elif c > 0:
            up += 1
        elif c < 0:
            down += 1
        else:
            ties += 1
    n = up + down
    return SignTest(up, down, ties, unknown, binom_tail(up, n), binom_tail(down, n))


def direction(test: SignTest, alpha: float = ALPHA) -> int:
    """+1 when "up" is significant at ``alpha``, -1 when "down" is, 0 otherwise."""
    if test.p_up <= alpha:
        return 1
    if test.p_down <= alpha:
        return -1
    return 0


def _finite_end(iv: Interval) -> float:
    """An interval as one number for effect sizes: the point, else its finite end (a bound)."""
    return iv[0] if math.isfinite(iv[0]) and (iv[0] == iv[1] or not math.isfinite(iv[1])) \
        else iv[1]  # fmt: skip


@dataclass(frozen=True)
class Effect:
    """The median of values over seeds with a 95% bootstrap percentile interval; ``bounded``: some
    value was an interval's end (a bound), so the median is one too."""

    median: float
    lo: float
    hi: float
    n: int
    bounded: bool = False

    def label(self, digits: int = 3) -> str:
        if self.n == 0 or not math.isfinite(self.median):
            return "-"
        b = " (censored values at their bounds)" if self.bounded else ""
        return (f"{self.median:.{digits}g} [95% CI {self.lo:.{digits}g}, {self.hi:.{digits}g}]"
                f"{b}")  # fmt: skip


def median_interval(values: Sequence[float | Interval], seed: int = BOOT_SEED) -> Effect:
    """:class:`Effect` of the values (intervals at their finite end; non-finite left out)."""
    bounded = any(isinstance(v, tuple) and v[0] != v[1] for v in values)
    x = np.array([_finite_end(v) if isinstance(v, tuple) else float(v) for v in values])
    x = x[np.isfinite(x)]
    if x.size == 0:
        return Effect(math.nan, math.nan, math.nan, 0, bounded)
    rng = np.random.default_rng(seed)
    boot = np.median(rng.choice(x, size=(N_BOOT, x.size), replace=True), axis=1)
    lo, hi = np.quantile(boot, [0.025, 0.975], method="inverted_cdf")
    return Effect(float(np.median(x)), float(lo), float(hi), int(x.size), bounded)


def paired_differences(pairs: Sequence[tuple[Interval, Interval]]) -> list[Interval]:
    """``b - a`` per pair as an interval (``[b.lo - a.hi, b.hi - a.lo]``)."""
    out = []
    for a, b in pairs:
        with np.errstate(invalid="ignore"):
            lo, hi = b[0] - a[1], b[1] - a[0]
        out.append(
            (lo if not math.isnan(lo) else -math.inf, hi if not math.isnan(hi) else math.inf)
        )
    return out


def median_over_seeds(values: Sequence[Interval]) -> Interval | None:
    """The median over seeds as an interval: the median of the lower ends and of the upper ends
    (mean of the two middle values for an even count). A point when every middle value is
    observed, else an interval (e.g. ``(E, inf]``: censored). None without values."""
    if not values:
        return None
    lo = np.sort([v[0] for v in values])
    hi = np.sort([v[1] for v in values])
    return (float(_mid(lo)), float(_mid(hi)))


def _mid(x: np.ndarray) -> float:
    k = x.size
    if k % 2:
        return float(x[k // 2])
    a, b = float(x[k // 2 - 1]), float(x[k // 2])
    return math.inf if math.isinf(a) or math.isinf(b) else (a + b) / 2


@dataclass(frozen=True)
class Correlation:
    """Spearman's rho of values against x (e.g. entropy) over every seed of a cell, its one-sided
    p-value in the claim's direction, a 95% interval (:func:`rho_interval`) and the count."""

    rho: float
    p: float
    lo: float
    hi: float
    n: int
    direction: int  # the claim's sign: +1 rho > 0, -1 rho < 0

    def label(self) -> str:
        if not math.isfinite(self.rho):
            return f"Spearman rho undefined ({self.n} values)"
        side = ">" if self.direction > 0 else "<"
        return (f"Spearman rho = {self.rho:.2f} [95% CI {self.lo:.2f}, {self.hi:.2f}], "
                f"one-sided p (rho {side} 0) = {self.p:.3g}, {self.n} runs")  # fmt: skip


def _rank_values(y: np.ndarray) -> np.ndarray:
    """Censored (+inf) values as one value above every finite one: ranked last, tied together."""
    fin = y[np.isfinite(y)]
    top = (fin.max() + 1.0) if fin.size else 1.0
    return np.where(np.isposinf(y), top, y)


def spearman(x: Sequence[float], y: Sequence[float], sign: int) -> Correlation:
    """:class:`Correlation` of y against x; +inf in y is a censored value (ranked last)."""
    xa = np.asarray(x, dtype=np.float64)
    ya = _rank_values(np.asarray(y, dtype=np.float64))
    ok = np.isfinite(xa) & np.isfinite(ya)
    xa, ya = xa[ok], ya[ok]
    n = int(xa.size)
    if n < 3 or np.unique(xa).size < 2 or np.unique(ya).size < 2:
        return Correlation(math.nan, math.nan, math.nan, math.nan, n, sign)
    alt = "greater" if sign > 0 else "less"
    res = spearmanr(xa, ya, alternative=alt)
    lo, hi = rho_interval(float(res.statistic), n)
    return Correlation(float(res.statistic), float(res.pvalue), lo, hi, n, sign)


def rho_interval(rho: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Interval of Spearman's rho by Fisher's z with Bonett and Wright's (2000) variance
    ``(1 + rho^2 / 2) / (n - 3)``: ``tanh(atanh(rho) +- z sqrt(var))``. Always holds the
    estimate (a percentile bootstrap of rho over seeds of a few grammars does not: resamples
    with repeated runs add ties and push |rho| up); NaN for n <= 3."""
    from scipy.stats import norm

    if n <= 3 or not math.isfinite(rho):
        return math.nan, math.nan
    if abs(rho) >= 1.0:
        return rho, rho
    half = float(norm.isf((1 - level) / 2)) * math.sqrt((1 + rho * rho / 2) / (n - 3))
    z = math.atanh(rho)
    return math.tanh(z - half), math.tanh(z + half)


def significant(c: Correlation, alpha: float = ALPHA) -> int:
    """+1 when rho is significantly in the claim's direction, -1 when significantly against it
    (the opposite one-sided p <= alpha), 0 otherwise."""
    if not math.isfinite(c.p):
        return 0
    if c.p <= alpha:
        return 1
    return -1 if 1.0 - c.p <= alpha else 0
