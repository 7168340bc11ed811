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
AUC and its chance spread are the run analysis's (:func:`grammarlab.analysis.measures.mia_auc`,
:func:`~grammarlab.analysis.measures.mia_null_sd`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from grammarlab.analysis.measures import memu_bits, memu_signed_bits
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
    summed clipped at 0 (Morris et al.) and signed (:func:`grammarlab.analysis.measures.memu_bits`,
    :func:`~grammarlab.analysis.measures.memu_signed_bits`)."""
    return Memorized(float(memu_bits(model_bits, grammar_bits).sum()),
                     float(memu_signed_bits(model_bits, grammar_bits).sum()))  # fmt: skip


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
