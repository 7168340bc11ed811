"""Memorized bits and membership inference, measured exactly against the grammar.

For a training string x, the model's unintended memorization (Morris et al., "How much do
language models memorize?") is the bits the model saves on x below what the true distribution
needs: ``mem(x) = H_grammar(x) - H_model(x)`` in bits, where ``H_grammar(x) = -log2 P_grammar(x)``
is exact here (no reference model stands in for the truth) and ``H_model(x)`` is the model's
surprisal of ``bos x_1 .. x_L eos`` (L + 1 predictions, end token included). Morris et al. clip
each string at 0 (a model cannot have stored negative information about one string); we report
the clipped sum and the signed sum (whose gap shows how much the model pays on the strings it
has not memorized).

Membership inference: the score of a string is its memorized bits (for the uniform grammar all
strings have the same grammar surprisal, so this ranks strings as the model's loss does); the
AUC is the probability that a random training string scores above a random fresh one (ties half).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from grammarlab.train.evaluate import token_nll

LN2 = math.log(2.0)


@dataclass(frozen=True)
class Memorized:
    """Memorized bits of a set of strings: ``clipped`` sum of max(0, mem), ``signed`` sum of mem,
    both in bits (for the whole set)."""

    clipped: float
    signed: float


def memorized_bits(grammar_bits: np.ndarray, model_bits: np.ndarray) -> Memorized:
    """Total memorized bits of a set: per string grammar surprisal minus model surprisal (bits),
    summed clipped at 0 (Morris et al.) and signed."""
    mem = np.asarray(grammar_bits, dtype=np.float64) - np.asarray(model_bits, dtype=np.float64)
    return Memorized(float(np.maximum(mem, 0.0).sum()), float(mem.sum()))


def auc(members: Sequence[float], others: Sequence[float]) -> float:
    """Area under the ROC curve of scores (higher = more likely a member): P(member score >
    non-member score) + P(tie) / 2, the Mann-Whitney U statistic over n1 n2. NaN when a side
    is empty."""
    a = np.asarray(members, dtype=np.float64)
    b = np.asarray(others, dtype=np.float64)
    if len(a) == 0 or len(b) == 0:
        return math.nan
    both = np.concatenate([a, b])
    # average ranks of ties (1-based): rank sum of the members gives U
    order = np.argsort(both, kind="mergesort")
    ranks = np.empty(len(both))
    sorted_vals = both[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_vals)) + 1]
    ends = np.r_[starts[1:], len(both)]
    for s, e in zip(starts, ends, strict=True):
        ranks[order[s:e]] = (s + e + 1) / 2.0
    u = ranks[: len(a)].sum() - len(a) * (len(a) + 1) / 2.0
    return float(u / (len(a) * len(b)))


def auc_chance_sd(n_members: int, n_others: int) -> float:
    """Standard deviation of the AUC of a scorer that knows nothing (continuous scores, no ties):
    sqrt((n1 + n2 + 1) / (12 n1 n2)) around the chance level 0.5."""
    if n_members < 1 or n_others < 1:
        return math.nan
    return math.sqrt((n_members + n_others + 1) / (12.0 * n_members * n_others))


@torch.inference_mode()
def model_bits(model: torch.nn.Module, ids: torch.Tensor, batch_size: int) -> np.ndarray:
    """The model's surprisal of each encoded string in bits (float64 sums of the L + 1
    predictions of ``bos x eos``). ``ids``: [n, L + 2] without padding (all strings of the
    uniform grammar have one length)."""
    out = np.empty(len(ids), dtype=np.float64)
    mask = torch.ones_like(ids, dtype=torch.bool)
    for lo in range(0, len(ids), batch_size):
        nll, tmask, _ = token_nll(model, ids[lo : lo + batch_size], mask[lo : lo + batch_size])
        out[lo : lo + len(nll)] = (nll.double() * tmask).sum(1).cpu().numpy() / LN2
    return out
