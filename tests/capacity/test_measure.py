"""Memorized bits and the model's surprisal in bits (the membership AUC is the analysis
measures': tests/analysis/test_measures.py)."""

import math

import numpy as np
import pytest
import torch

from grammarlab.capacity.data import uniform_grammar
from grammarlab.capacity.measure import memorized_bits, model_bits
from grammarlab.train.models import ModelSpec, load_model


def test_memorized_bits_clipped_and_signed():
    m = memorized_bits(np.array([10.0, 10.0, 10.0]), np.array([4.0, 12.0, 10.0]))
    assert m.clipped == 6.0  # max(0, 6) + max(0, -2) + 0
    assert m.signed == 4.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_model_bits_is_the_sum_of_token_surprisals(dtype):
    g = uniform_grammar(4, 5)
    model, tmap = load_model(
        ModelSpec("pythia-tiny", hidden_size=8, num_layers=1, num_heads=2, intermediate_size=16),
        g.terminals,
        seed=0,
        dtype=dtype,
    )
    strings = [("a", "b", "c", "d", "a"), ("d", "d", "d", "d", "d"), ("b", "a", "b", "a", "b")]
    ids, _ = tmap.encode(strings)
    got = model_bits(model, ids, batch_size=2)
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids[:, :-1]).logits.float(), -1).double()
    want = -logp.gather(-1, ids[:, 1:, None]).squeeze(-1).sum(1).numpy() / math.log(2)
    # same logits (batches of 2 vs 3 rows run the same per-row math); float32 softmax error
    # ~1e-6 per token, bfloat16 logits identical in both paths: 1e-3 bits covers both
    assert got == pytest.approx(want, abs=1e-3)
    assert np.all(got > 0)
