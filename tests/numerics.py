"""Tolerances for two computation paths that should agree (batchings, prefix sharing, process
counts, CPU workers, compile), derived from float32 rounding instead of fitted to one CPU.

Rounding: float32 has unit roundoff u = 2^-24 (~6e-8). A sum of n terms, in any order and any
blocking (what another batching, another kernel or another CPU's SIMD width changes), is off by at
most gamma_n * sum|x_i| with gamma_n = n u / (1 - n u) ~ n u (Higham, Accuracy and Stability of
Numerical Algorithms, 2nd ed., Lemma 3.1 and chapter 4); a product of such sums adds the n's. So a
quantity reached by two paths differs by at most ~2 n u times its scale, n the number of terms
on its longest chain of sums. These bounds hold on any IEEE machine; a real bug (a string
missing, a wrong normalization, another model) is off by far more (~1e-2 relative or worse).

Argmax-derived quantities (token accuracies, per-token correctness, greedy matches) are not
continuous: a near tie flips them under any rounding difference, so they are never asserted equal
across paths. What can be asserted is where a flip is possible at all: the target token's
correctness flips only when its logit ties the best other one, i.e. where its probability is at
most ~1/2, a surprisal of at least ~1 bit (:func:`assert_argmax_consistent`). Sampled generations
flip likewise (a uniform draw near a boundary of the cumulative distribution): not compared.
"""

from __future__ import annotations

import numpy as np
import torch

U32 = 2.0**-24  # float32 unit roundoff (round to nearest)


def gamma(n: int, u: float = U32) -> float:
    """Higham's gamma_n = n u / (1 - n u): the relative error bound of an n-term sum."""
    assert n * u < 1, (n, u)
    return n * u / (1 - n * u)


def assert_tensors_close(actual: torch.Tensor, expected: torch.Tensor, n: int, name: str = ""):
    """Element-wise |actual - expected| <= 2 gamma_n (|expected| + max|expected|): each path's
    error is gamma_n times the sum of the absolute terms, taken as the entry itself plus the
    tensor's scale (max|expected|), so that an entry small by cancellation is held to the error
    of the terms it came from, not to its own size."""
    a, e = actual.detach().double(), expected.detach().double()
    scale = float(e.abs().max()) if e.numel() else 0.0
    tol = 2 * gamma(n) * (e.abs() + scale)
    bad = (a - e).abs() > tol
    assert not bool(bad.any()), (
        f"{name}: {int(bad.sum())} of {e.numel()} entries differ by more than 2 gamma_{n} "
        f"(max |diff| {float((a - e).abs().max()):.3g}, scale {scale:.3g})"
    )


def assert_argmax_consistent(
    bits_a: np.ndarray, bits_b: np.ndarray, correct_a: np.ndarray, correct_b: np.ndarray,
    tol_bits: float,
) -> None:  # fmt: skip
    """Per-token correctness (argmax == target) of two paths: equal wherever a flip is
    impossible. A flip needs the target's logit to tie the best other token's, so its probability
    is at most 1/2 (+ the rounding), a surprisal of at least 1 bit (- ``tol_bits``) in both
    paths. NaN bits (padding) must be padding in both and never correct."""
    assert correct_a.shape == correct_b.shape == bits_a.shape == bits_b.shape
    pad = np.isnan(bits_b)
    assert np.array_equal(np.isnan(bits_a), pad)
    assert not correct_a[pad].any() and not correct_b[pad].any()
    may_flip = (bits_a >= 1 - tol_bits) & (bits_b >= 1 - tol_bits)
    differ = (correct_a != correct_b) & ~pad
    assert not (differ & ~may_flip).any(), "an argmax differs where the target has p > 1/2"


def acc_bound(bits_a: np.ndarray, bits_b: np.ndarray, tol_bits: float) -> float:
    """The most two paths' token accuracies can differ: the share of predicted tokens (not NaN)
    whose argmax may flip (surprisal >= 1 - ``tol_bits`` bits in both paths)."""
    used = ~np.isnan(bits_b)
    may_flip = (bits_a >= 1 - tol_bits) & (bits_b >= 1 - tol_bits) & used
    return float(may_flip.sum() / max(used.sum(), 1))


def assert_greedy_consistent(
    bits_a: np.ndarray, bits_b: np.ndarray, match_a: np.ndarray, match_b: np.ndarray,
    tol_bits: float,
) -> None:  # fmt: skip
    """Greedy matches (every argmax after the prefix is the target) of two paths: equal for
    every string none of whose tokens may flip (see :func:`assert_argmax_consistent`)."""
    may_flip = ((bits_a >= 1 - tol_bits) & (bits_b >= 1 - tol_bits)).any(axis=1)
    assert not ((match_a != match_b) & ~may_flip).any(), "a greedy match differs, no near tie"


# The tiny test models' longest chain of float32 sums: dot products over the hidden size (32) and
# the MLP width (128), the vocabulary's log-sum-exp (~10 terms), a step's gradient summed over
# its tokens (<= ~64) and the few ranks or micro-batches: < 256 terms. 2 gamma_256 = 3.05e-5.
N_TINY = 256
REL_TINY = 2 * gamma(N_TINY)


def bits_tolerance(bits: np.ndarray) -> float:
    """How far a surprisal near 1 bit may move between two paths: 2 gamma_256 (1 + scale)."""
    finite = bits[np.isfinite(bits)]
    return REL_TINY * (1 + (float(np.abs(finite).max()) if finite.size else 0.0))


def assert_bits_close(bits_a: np.ndarray, bits_b: np.ndarray, name: str = "") -> None:
    """Surprisals (bits per token, NaN padding) of two paths: the same padding, the values
    within 2 gamma_256 of their scale (:data:`N_TINY`)."""
    a, b = np.asarray(bits_a, dtype=np.float64), np.asarray(bits_b, dtype=np.float64)
    assert a.shape == b.shape and np.array_equal(np.isnan(a), np.isnan(b)), name
    scale = float(np.nanmax(np.abs(b))) if np.isfinite(b).any() else 0.0
    ok = np.isnan(b) | (np.abs(a - b) <= REL_TINY * (np.abs(b) + scale))
    assert ok.all(), (name, float(np.nanmax(np.abs(a - b))), scale)


def assert_runs_close(ma: list[dict], mb: list[dict], sa: dict, sb: dict) -> None:
    """Two runs of the same config by two computation paths (metrics without times ``ma``,
    ``mb``; surprisals by epoch ``sa``, ``sb``).

    Losses and bits per token: within 2 gamma_256 of their scale (:data:`N_TINY`). After updates
    too: a gradient off by that relative amount moves Adam's normalized step by the same relative
    amount of lr, so the losses stay within it of each other (weights whose gradient is at the
    rounding level may take other steps of up to lr, but a gradient that small moves the loss by
    ~nothing); measured ~1e-8 relative. Argmax-derived quantities: consistent where no near tie
    can flip them; accuracies within the share of tokens that may flip. The rest (epochs,
    stages, learning rates, flags) exactly."""
    assert [r["epoch"] for r in ma] == [r["epoch"] for r in mb]
    assert sa.keys() == sb.keys()
    for x, y in zip(ma, mb, strict=True):
        assert x.keys() == y.keys()
        e = x["epoch"]
        for k in x:
            if k.endswith("_loss") and y[k] is not None:
                assert abs(x[k] - y[k]) <= REL_TINY * abs(y[k]), (e, k, x[k], y[k])
            elif k.endswith("_acc") and y[k] is not None and e in sb:
                s = k.removesuffix("_acc")
                a, b = sa[e][f"{s}_bits"], sb[e][f"{s}_bits"]
                bound = acc_bound(a, b, bits_tolerance(b))
                assert abs(x[k] - y[k]) <= bound + 1e-12, (e, k, x[k], y[k], bound)
            elif not k.endswith("_acc"):
                assert x[k] == y[k], (e, k)
    for e in sb:
        assert sa[e].keys() == sb[e].keys()
        for k in sb[e]:
            if k.endswith("_bits"):
                assert_bits_close(sa[e][k], sb[e][k], f"epoch {e} {k}")
        for s in {k.removesuffix("_bits") for k in sb[e] if k.endswith("_bits")}:
            bits_a, bits_b = sa[e][f"{s}_bits"], sb[e][f"{s}_bits"]
            tol = bits_tolerance(bits_b)
            if f"{s}_correct" in sb[e]:
                assert_argmax_consistent(bits_a, bits_b, sa[e][f"{s}_correct"],
                                         sb[e][f"{s}_correct"], tol)  # fmt: skip
            if f"{s}_greedy_match" in sb[e]:
                assert_greedy_consistent(bits_a, bits_b, sa[e][f"{s}_greedy_match"],
                                         sb[e][f"{s}_greedy_match"], tol)  # fmt: skip
        other = [k for k in sb[e] if not k.endswith(("_bits", "_correct", "_greedy_match"))]
        for k in other:
            np.testing.assert_array_equal(sa[e][k], sb[e][k])
