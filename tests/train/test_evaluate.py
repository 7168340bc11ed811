"""Eq. (1) loss, surprisals, accuracy and greedy extraction on hand-made and tiny models."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from numerics import (
    REL_TINY,
    acc_bound,
    assert_argmax_consistent,
    assert_bits_close,
    bits_tolerance,
)

from grammarlab.train.evaluate import (
    encode_set,
    evaluate_set,
    evaluate_sets,
    greedy_matches,
    greedy_matches_from_correct,
    micro_batches,
)
from grammarlab.train.generate import sample_ids
from grammarlab.train.models import ModelSpec, load_model
from grammarlab.train.tokens import TokenMap


class HalfAfterBos(torch.nn.Module):
    """Vocabulary a=0, b=1, bos=2, eos=3, pad=4 (V = 5). After bos: p(a) = p(b) = 1/2; after any
    other token: uniform 1/5. Ties go to the lowest id (argmax), i.e. 'a'."""

    def forward(self, input_ids, attention_mask=None, **kw):
        logits = torch.zeros(*input_ids.shape, 5)
        logits[input_ids == 2] = torch.tensor([0.0, 0.0, -1e9, -1e9, -1e9])
        return SimpleNamespace(logits=logits, past_key_values=None)


def test_eq1_is_mean_over_strings_of_per_string_token_means():
    tmap = TokenMap.for_tiny(("a", "b"))
    enc = encode_set("x", [("a",), ("a", "a", "a")], tmap, "cpu")
    r = evaluate_set(HalfAfterBos(), enc, micro_batch_size=1)
    # "a": predictions a (ln 2) and eos (ln 5): mean (ln2 + ln5)/2
    # "a a a": a (ln 2), a, a, eos (ln 5 each): mean (ln2 + 3 ln5)/4
    want = ((math.log(2) + math.log(5)) / 2 + (math.log(2) + 3 * math.log(5)) / 4) / 2
    assert math.isclose(r.loss, want, rel_tol=1e-6)
    # bits per predicted token, end token last, NaN padding; the start token is never predicted
    l2, l5 = 1.0, math.log2(5)
    np.testing.assert_allclose(r.token_bits[0], [l2, l5, np.nan, np.nan], rtol=1e-6)
    np.testing.assert_allclose(r.token_bits[1], [l2, l5, l5, l5], rtol=1e-6)
    np.testing.assert_allclose(r.string_bits, [l2 + l5, l2 + 3 * l5], rtol=1e-6)
    # argmax is 'a' everywhere: right for every 'a', wrong for every end token -> 4 of 6
    assert r.correct.tolist() == [[True, False, False, False], [True, True, True, False]]
    assert math.isclose(r.acc, 4 / 6)
    same = evaluate_set(HalfAfterBos(), enc, micro_batch_size=2)  # batching changes nothing
    assert math.isclose(same.loss, r.loss, rel_tol=1e-12)


def _tiny():
    tmap_terms = tuple("123")
    model, tmap = load_model(ModelSpec("llama-tiny", hidden_size=32, num_layers=1), tmap_terms,
                             seed=0)  # fmt: skip
    return model.eval(), tmap


def test_micro_batches_group_strings_of_similar_length():
    tmap = TokenMap.for_tiny(("a", "b"))
    strings = [("a",) * 5, ("b",), ("a", "b") * 2, ("a",), ("b",) * 5]
    enc = encode_set("x", strings, tmap, "cpu")
    batches = list(micro_batches(enc, 2))
    rows = [r.tolist() for r, _, _ in batches]
    assert rows == [[1, 3], [2, 0], [4]]  # by length (1, 1 | 4, 5 | 5), ties in input order
    assert [ids.shape[1] for _, ids, _ in batches] == [3, 7, 7]  # trimmed: bos + L + eos
    for r, ids, mask in batches:
        assert torch.equal(ids, enc.ids[torch.as_tensor(r), : ids.shape[1]])
        assert torch.equal(mask, enc.mask[torch.as_tensor(r), : ids.shape[1]])


def _near_ties(logits: torch.Tensor) -> torch.Tensor:
    """bool [n, W]: positions whose two largest logits are within what two paths' rounding can
    move them: each logit by 2 gamma_256 of the logits' scale (numerics.REL_TINY), so a gap
    below twice that may flip an argmax between the paths."""
    top2 = logits.double().topk(2, dim=-1).values
    delta = 2 * REL_TINY * float(logits.abs().max())
    return (top2[..., 0] - top2[..., 1]) <= delta


@pytest.mark.numerics
def test_sets_evaluated_together_equal_sets_evaluated_alone():
    model, tmap = _tiny()
    a = encode_set("a", [("1", "2", "3", "3", "1"), ("2",), ("3", "3")], tmap, "cpu")
    b = encode_set("b", [("1",), ("2", "2", "2", "2", "2", "2", "2")], tmap, "cpu")
    c = encode_set("c", [("3", "1")], tmap, "cpu")
    together = evaluate_sets(model, [a, b, c], micro_batch_size=2)
    for enc, got in zip((a, b, c), together, strict=True):
        alone = evaluate_set(model, enc, micro_batch_size=1)
        assert got.token_bits.shape == alone.token_bits.shape == (len(enc.strings),
                                                                  enc.ids.shape[1] - 1)  # fmt: skip
        # two batchings in float32: within 2 gamma_256 (numerics, derived there); the argmax
        # only where no near tie can flip it
        assert_bits_close(got.token_bits, alone.token_bits)
        tol = bits_tolerance(alone.token_bits)
        assert_argmax_consistent(got.token_bits, alone.token_bits, got.correct, alone.correct,
                                 tol)  # fmt: skip
        assert abs(got.loss - alone.loss) <= REL_TINY * alone.loss
        assert abs(got.acc - alone.acc) <= acc_bound(got.token_bits, alone.token_bits, tol)
    assert evaluate_sets(model, [], 4) == []


@pytest.mark.numerics
def test_kv_cache_greedy_equals_full_recompute():
    model, tmap = _tiny()
    prefix = torch.tensor([[tmap.bos_id, 0, 1], [tmap.bos_id, 2, 2]])
    got = sample_ids(model, prefix, None, -1, 6)  # the whole vocabulary, no early stop
    # every token the cached decoder chose is an argmax of the full recompute of its own
    # sequence, up to the rounding of two paths (a near tie may go either way: _near_ties)
    with torch.no_grad():
        logits = model(input_ids=torch.cat([prefix, got], 1)).logits[:, 2:-1]
    chosen = logits.gather(-1, got[..., None])[..., 0]
    best = logits.max(-1).values
    exact = chosen == best
    assert (exact | _near_ties(logits)).all()
    assert exact.float().mean() > 0.5  # not vacuous: most choices are clear argmaxes


@pytest.mark.numerics
def test_greedy_match_true_exactly_for_the_models_own_greedy_strings():
    model, tmap = _tiny()
    # the model's own greedy continuation of "1 2" (until its end token) matches by definition
    cont = sample_ids(model, torch.tensor([[tmap.bos_id, 0, 1]]), None, tmap.eos_id, 20)
    cont = cont[0].tolist()
    own = tmap.decode([0, 1, *cont])
    strings = [("1", "2", "3", "3"), ("1", "2", "1")]
    if own is not None:
        strings.append(own)
    enc = encode_set("x", strings, tmap, "cpu")
    m = greedy_matches(model, enc, prefix_tokens=2, eos_id=tmap.eos_id)
    # decoding one row and decoding a batch are two paths: a string with a near tie after its
    # prefix may be decoded either way, so only the others are asserted (_near_ties)
    with torch.no_grad():
        ties = _near_ties(model(input_ids=enc.ids).logits).numpy()
    lengths = (enc.mask.sum(1) - 2).numpy()
    cols = np.arange(ties.shape[1])
    for r, (s, ok) in enumerate(zip(strings, m, strict=True)):
        if not (ties[r] & (cols >= 2) & (cols <= lengths[r])).any():
            assert ok == (tmap.decode([0, 1, *cont]) == s)


@pytest.mark.numerics
def test_teacher_forced_greedy_match_equals_decoding():
    # Train a tiny model a little on two strings so some strings are reproduced and some not;
    # the argmax-correctness shortcut used by the runner must agree with real greedy decoding.
    model, tmap = _tiny()
    train = [("1", "2", "3", "3", "1"), ("2", "2", "1", "3")]
    enc = encode_set("t", train, tmap, "cpu")
    opt = torch.optim.AdamW(model.parameters(), lr=3e-2)
    for _ in range(40):
        opt.zero_grad()
        evaluate_loss = torch.nn.functional.cross_entropy(
            model(input_ids=enc.ids[:, :-1]).logits.reshape(-1, tmap.vocab_size),
            enc.ids[:, 1:].reshape(-1).masked_fill(~enc.mask[:, 1:].reshape(-1), -100),
        )
        evaluate_loss.backward()
        opt.step()
    model.eval()
    strings = [*train, ("1", "2", "1", "1", "1"), ("2", "2", "3"), ("3",), ("1", "2")]
    enc = encode_set("x", strings, tmap, "cpu")
    with torch.no_grad():
        res = evaluate_set(model, enc, 8)
        lengths = (enc.mask.sum(1) - 2).tolist()
        # decoding and the teacher-forced pass are two paths: they must agree on every string
        # none of whose tested positions is a near tie (which either path may break its way)
        ties = _near_ties(model(input_ids=enc.ids).logits).numpy()
        cols = np.arange(ties.shape[1])[None, :]
        for prefix in (0, 1, 2, 3):
            want = greedy_matches(model, enc, prefix_tokens=prefix, eos_id=tmap.eos_id)
            got = greedy_matches_from_correct(res.correct, lengths, prefix)
            p = np.minimum(lengths, prefix)[:, None]
            tied = (ties & (cols >= p) & (cols <= np.asarray(lengths)[:, None])).any(1)
            assert (got == want)[~tied].all() and (~tied).sum() >= 4, prefix
    # the trained strings are reproduced from a 2-token prefix; both outcomes occur overall
    assert greedy_matches_from_correct(res.correct, lengths, 2)[:2].all()
    assert not greedy_matches_from_correct(res.correct, lengths, 0).all()
