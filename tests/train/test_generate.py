"""Generation restricted to the grammar's terminals and the end token, with a KV cache."""

from __future__ import annotations

import math
import time
import warnings

import pytest
import torch

from grammarlab.train.generate import (
    allowed_ids,
    format_generations,
    generate_strings,
    sample_ids,
    share_decoded,
)
from grammarlab.train.models import ModelSpec, load_model
from grammarlab.train.tokens import TokenMap

torch.set_num_threads(1)

AB = ("a", "b")


class Stub(torch.nn.Module):
    """A 'model' with fixed next-token logits: terminal a, b each probability 1/4 and eos 1/2
    among the allowed ids, and a logit of 100 on bos (never allowed): without the mask every
    sample would be bos, bos, ..."""

    def __init__(self, tmap: TokenMap) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        logits = torch.full((tmap.vocab_size,), -5.0)
        logits[list(tmap.terminal_ids)] = math.log(0.25)
        logits[tmap.eos_id] = math.log(0.5)
        logits[tmap.bos_id] = 100.0
        self.register_buffer("logits", logits)

    def forward(self, input_ids, cache=None, use_cache=True, logits_to_keep=0):
        class Out:
            pass

        out = Out()
        out.logits = self.logits.expand(input_ids.shape[0], input_ids.shape[1], -1)
        return out


def test_mask_keeps_samples_on_terminals_and_follows_the_renormalized_distribution():
    tmap = TokenMap.for_tiny(AB)
    gen = torch.Generator().manual_seed(0)
    samples = generate_strings(Stub(tmap), tmap, 2000, 50, gen)
    assert all(s is not None and set(s) <= set(AB) for s in samples)
    # eos has probability 1/2 among the allowed ids: the number of terminals before it is
    # geometric with mean (1 - p)/p = 1 and sd sqrt(1 - p)/p = 1.41; over 2000 samples the mean's
    # sd is 0.032, so 0.15 is ~5 sd
    mean_len = sum(len(s) for s in samples) / len(samples)
    assert mean_len == pytest.approx(1.0, abs=0.15)
    # P(length 0) = 1/2: sd of the share over 2000 is 0.011; 0.05 is ~4.5 sd
    assert sum(len(s) == 0 for s in samples) / 2000 == pytest.approx(0.5, abs=0.05)
    # a and b equally likely (each 1/4): share of a among all terminals near 1/2
    toks = [t for s in samples for t in s]
    assert sum(t == "a" for t in toks) / len(toks) == pytest.approx(0.5, abs=0.05)


def test_no_end_within_the_limit_is_an_explicit_non_member():
    tmap = TokenMap.for_tiny(AB)
    stub = Stub(tmap)
    stub.logits[tmap.eos_id] = -50.0  # the end (almost) never comes
    samples = generate_strings(stub, tmap, 4, 3, torch.Generator().manual_seed(1))
    assert samples == [None] * 4
    assert format_generations(samples) == "<invalid>\n" * 4
    assert format_generations([("a", "b"), None, ()]) == "a b\n<invalid>\n\n"  # () ends at once
    assert share_decoded(samples) == 0.0


@pytest.mark.parametrize("preset", ["pythia-tiny", "llama-tiny"])
def test_tiny_model_samples_are_seeded_terminal_strings_without_cache_warnings(preset):
    model, tmap = load_model(ModelSpec(preset), AB, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a past_key_values FutureWarning would fail here
        a = generate_strings(model, tmap, 8, 20, torch.Generator().manual_seed(3))
    b = generate_strings(model, tmap, 8, 20, torch.Generator().manual_seed(3))
    assert a == b  # same generator state, same samples
    assert len(a) == 8
    assert all(s is None or set(s) <= set(AB) for s in a)
    assert model.training  # generation restores train mode


def test_cached_greedy_decoding_equals_recomputing_from_scratch():
    # The KV cache must not change the result: greedy masked decoding with the cache equals the
    # argmax over the allowed ids of full forwards on the whole prefix at every step.
    model, tmap = load_model(ModelSpec("llama-tiny"), AB, seed=2)
    model.eval()
    prefix = torch.full((3, 1), tmap.bos_id)
    allowed = allowed_ids(tmap)
    got = sample_ids(model, prefix, allowed, tmap.eos_id, 12)
    seq = prefix.clone()
    with torch.no_grad():
        for _ in range(got.shape[1]):
            logits = model(input_ids=seq, use_cache=False).logits[:, -1]
            nxt = allowed[logits[:, allowed].argmax(-1)]
            seq = torch.cat([seq, nxt[:, None]], 1)
    want = seq[:, 1:]
    # rows that ended are padded with eos by sample_ids: compare up to (and including) each eos
    for r in range(3):
        row = want[r].tolist()
        n = row.index(tmap.eos_id) + 1 if tmap.eos_id in row else len(row)
        assert got[r, :n].tolist() == row[:n]


@pytest.mark.slow
def test_smollm2_generation_is_fast_and_on_terminals():
    """SmolLM2 from its GGUF file (about 35 s to load): 8 samples of at most 10 tokens."""
    model, tmap = load_model(ModelSpec("smollm2-135m-instruct"), tuple("123456789"), seed=0)
    gen = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    samples = generate_strings(model, tmap, 8, 10, gen)
    print(f"smollm2: 8 samples, <= 10 tokens: {time.perf_counter() - start:.2f} s")
    assert len(samples) == 8
    assert all(s is None or set(s) <= set("123456789") for s in samples)
