"""Entropies of a PCFG in bits: derivational entropy, string entropy (exact or estimated),
plus lengths, counts and ambiguity facts (:func:`analyze`)."""

from __future__ import annotations

import math

import numpy as np

from grammarlab.analysis import expected_expansions
from grammarlab.grammar import Grammar


def _rule_entropies_bits(g: Grammar) -> np.ndarray:
    """h_A = -sum_r p_r log2 p_r over the alternatives of each nonterminal (bits)."""
    h = np.zeros(len(g.nonterminals))
    idx = {a: i for i, a in enumerate(g.nonterminals)}
    for r in g.rules:
        if r.prob > 0:
            h[idx[r.lhs]] -= r.prob * math.log2(r.prob)
    return h


def derivational_entropy_bits(g: Grammar) -> float:
    """Entropy of the derivation (tree) distribution in bits per derivation:
    H_D = sum_A c_A h_A with c_A the expected number of expansions of A and h_A the entropy of
    A's rule choice. ``inf`` when the grammar is critical (expected derivation size infinite)."""
    c = expected_expansions(g)
    h = _rule_entropies_bits(g)
    mask = h > 0
    if not np.all(np.isfinite(c[mask])):
        return math.inf
    return float(np.dot(c[mask], h[mask]))
