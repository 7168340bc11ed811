"""Prefix sharing: the trie of a batch by hand, and the model's logits and gradients through it
equal to the plain forward pass for each architecture, with grouped-query heads and with LoRA."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from numerics import (
    N_TINY,
    REL_TINY,
    assert_argmax_consistent,
    assert_bits_close,
    assert_runs_close,
    assert_tensors_close,
    bits_tolerance,
)

from grammarlab.train.evaluate import (
    batch_loss,
    encode_set,
    evaluate_plan,
    micro_batches,
    plan,
    token_nll,
)
from grammarlab.train.loop import share_prefixes
from grammarlab.train.models import ModelSpec, apply_lora, load_model
from grammarlab.train.prefix_trie import MIN_SAVED, build_trie, supports, trie_logits
from grammarlab.train.tokens import TokenMap

# Shared prefixes, one string a prefix of another, unequal lengths, a one-token string.
STRINGS = [("a", "b"), ("a", "c"), ("a", "b", "d"), ("b",), ("a", "b"), ("c", "a", "b", "d")]
TERMS = ("a", "b", "c", "d")


def _inputs(strings=STRINGS):
    """(ids, mask) of the model inputs: bos + tokens, a row's padding at its end."""
    ids, mask = TokenMap.for_tiny(TERMS).encode(list(strings))
    return ids[:, :-1], mask[:, 1:]  # the inputs whose prediction is used (as token_nll)


def test_trie_of_a_batch_by_hand():
    tmap = TokenMap.for_tiny(TERMS)
    ids, mask = _inputs()
    trie = build_trie(ids, mask)
    # inputs (B = bos): B a b | B a c | B a b d | B b | B a b | B c a b d: 3+3+4+2+3+5 = 20
    # positions; distinct prefixes: B, Ba, Bab, Bac, Babd, Bb, Bc, Bca, Bcab, Bcabd = 10 nodes
    assert int(mask.sum()) == trie.positions == 20 and trie.size == 10 and trie.saved == 0.5
    prefixes = set()
    for r in range(ids.shape[0]):
        for p in range(int(mask[r].sum())):
            node = int(trie.path[r, p])
            # the node holds the row's token at its own depth, and its owner is a place where
            # the same prefix occurs
            assert int(trie.tokens[node]) == int(ids[r, p]) and int(trie.depth[node]) == p
            o_row, o_pos = divmod(int(trie.owner[node]), ids.shape[1])
            assert o_pos == p and torch.equal(ids[o_row, : p + 1], ids[r, : p + 1])
            prefixes.add(tuple(ids[r, : p + 1].tolist()))
    assert len(prefixes) == trie.size
    # the same prefix in two rows is one node; different prefixes are different nodes
    assert int(trie.path[0, 2]) == int(trie.path[2, 2]) == int(trie.path[4, 2])  # B a b
    assert int(trie.path[0, 2]) != int(trie.path[1, 2])  # B a b vs B a c
    assert int(trie.path[3, 1]) != int(trie.path[5, 3])  # 'b' at depth 1 vs at depth 3
    assert int(trie.tokens[int(trie.path[3, 0])]) == tmap.bos_id


def test_trie_of_distinct_strings_without_common_prefix_is_the_batch():
    ids = torch.tensor([[5, 1, 2], [6, 2, 1]])
    trie = build_trie(ids, torch.ones_like(ids, dtype=torch.bool))
    assert trie.size == 6 and sorted(trie.path.reshape(-1).tolist()) == list(range(6))


def _model(preset: str, dtype=torch.float32, **size):
    spec = ModelSpec(preset, hidden_size=32, num_layers=2, num_heads=4, **size)
    model, _ = load_model(spec, TERMS, seed=3, dtype=dtype)
    return model


def _gqa_llama():
    """A Llama with grouped-query attention (4 query heads share 2 key/value heads), as
    SmolLM2 has (9 / 3); the presets' tiny models have one key/value head per query head."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=7, hidden_size=32, num_hidden_layers=2, intermediate_size=64,
                         num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=64)  # fmt: skip
    return AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").double()


# in float64, where the two paths' identities hold to ~1e-13 on any CPU (fewer than 256 terms on
# a chain of sums: 2 gamma_256 = 6e-14 relative, u = 2^-53)
F64 = torch.float64
MODELS = {
    "pythia-tiny": lambda: _model("pythia-tiny", F64),
    "llama-tiny": lambda: _model("llama-tiny", F64),
    "mistral-tiny": lambda: _model("mistral-tiny", F64),
    "llama-gqa": _gqa_llama,
    "llama-tiny+lora": lambda: apply_lora(
        _model("llama-tiny", F64), rank=4, alpha=8, dropout=0.0, targets=None, seed=1
    ),  # fmt: skip
}
REL64 = 1e-10  # 2 gamma_256 in float64 is 6e-14: 1e-10 leaves a margin of 1000, and is 1e5
# times below float32 rounding, which a float32 step on either path would show.
# Llama and Mistral are not all float64: their RMSNorm computes in float32 whatever the weights'
# dtype (transformers casts to float32 and back), so their gradients (sums over tokens and the
# hidden size through that norm) hold to float32 rounding: 2 gamma_256 (numerics.REL_TINY).
REL = {"pythia-tiny": REL64}


@pytest.mark.numerics
@pytest.mark.parametrize("name", list(MODELS))
def test_trie_logits_and_gradients_equal_the_plain_forward(name):
    model = MODELS[name]()
    assert supports(model) and next(model.parameters()).dtype == F64
    ids, used = _inputs()
    plain = model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=False).logits
    # plain rows are padded at the end, so a causal model's used positions ignore the padding
    shared = trie_logits(model, build_trie(ids, used))
    rel = REL.get(name, REL_TINY)
    scale = float(plain[used].detach().abs().max())
    assert torch.allclose(plain[used], shared[used], atol=rel * scale, rtol=rel)
    # gradients through the shared nodes: the sum over the strings through each node
    w = torch.randn(plain.shape, generator=torch.Generator().manual_seed(0), dtype=F64)
    w = w * used[..., None]
    grads = []
    for logits_fn in (
        lambda: model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=False).logits,
        lambda: trie_logits(model, build_trie(ids, used)),
    ):
        model.zero_grad(set_to_none=True)
        (logits_fn() * w).sum().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for n in grads[0]:
        scale = float(grads[0][n].abs().max())
        assert torch.allclose(grads[0][n], grads[1][n], atol=rel * scale, rtol=rel), n
    # and the model is left with its own attention implementation
    assert model.config._attn_implementation == "sdpa"


@pytest.mark.numerics
def test_token_nll_with_and_without_sharing_agree():
    model = _model("pythia-tiny")
    tmap = TokenMap.for_tiny(TERMS)
    enc = encode_set("x", STRINGS, tmap, "cpu")
    with torch.no_grad():
        a = token_nll(model, enc.ids, enc.mask)
        b = token_nll(model, enc.ids, enc.mask, build_trie(enc.ids[:, :-1], enc.mask[:, 1:]))
    assert torch.equal(a[1], b[1])  # the prediction mask: integers, not rounded
    # float32: within 2 gamma_256 of their scale (numerics.N_TINY, derived there); the argmax
    # only where no near tie can flip it
    assert_tensors_close(a[0], b[0], N_TINY, "nll")
    bits_a = torch.where(a[1], a[0] / math.log(2), torch.nan).numpy()
    bits_b = torch.where(b[1], b[0] / math.log(2), torch.nan).numpy()
    assert_argmax_consistent(bits_a, bits_b, a[2].numpy() & a[1].numpy(),
                             b[2].numpy() & b[1].numpy(), bits_tolerance(bits_b))  # fmt: skip
    assert_tensors_close(batch_loss(a[0], a[1]), batch_loss(b[0], b[1]), N_TINY, "loss")


def test_micro_batches_by_prefix_are_in_lexicographic_order():
    tmap = TokenMap.for_tiny(TERMS)
    enc = encode_set("x", STRINGS, tmap, "cpu")
    rows = np.concatenate([r for r, _, _ in micro_batches(enc, 4, by_prefix=True)])
    keys = [[t for t, m in zip(enc.ids[i].tolist(), enc.mask[i].tolist(), strict=True) if m]
            for i in rows]  # fmt: skip
    assert sorted(rows.tolist()) == list(range(len(STRINGS))) and keys == sorted(keys)
    # so the strings starting with "a b" (three, one twice) are neighbours
    assert [STRINGS[i][:2] for i in rows[:3]] == [("a", "b")] * 3


def test_a_run_shares_prefixes_unless_told_not_to_or_dropout_is_on(tiny_cfg):
    model = _model("pythia-tiny")
    assert share_prefixes(tiny_cfg(), model)
    assert not share_prefixes(tiny_cfg(share_prefixes=False), model)
    lora = apply_lora(_model("llama-tiny"), rank=2, alpha=4, dropout=0.1, targets=None, seed=0)
    assert not share_prefixes(tiny_cfg(), lora)  # one dropout mask per node would be wrong


def test_a_sliding_window_shorter_than_the_context_is_not_shared():
    from transformers import AutoModelForCausalLM, MistralConfig

    def mistral(window):
        return AutoModelForCausalLM.from_config(MistralConfig(
            vocab_size=7, hidden_size=16, num_hidden_layers=1, intermediate_size=32,
            num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
            sliding_window=window))  # fmt: skip

    assert supports(mistral(None)) and supports(mistral(64)) and not supports(mistral(8))


def test_unknown_architectures_are_not_shared():
    from transformers import AutoModelForCausalLM, GPT2Config

    gpt2 = AutoModelForCausalLM.from_config(GPT2Config(vocab_size=7, n_embd=16, n_layer=1,
                                                       n_head=2))  # fmt: skip
    assert not supports(gpt2)


@pytest.mark.numerics
def test_runs_with_and_without_sharing_record_the_same_metrics(tiny_cfg, tmp_path, monkeypatch):
    import grammarlab.train.prefix_trie as P
    from grammarlab.runs.folder import read_metrics
    from grammarlab.train.loop import train

    calls = []
    real = P.trie_logits
    monkeypatch.setattr(P, "trie_logits", lambda *a: calls.append(1) or real(*a))
    cfg = tiny_cfg(n_generate=0)
    train(cfg, tmp_path / "on", quiet=True)
    used = len(calls)
    train(dataclasses.replace(cfg, share_prefixes=False), tmp_path / "off", quiet=True)
    assert used >= 2 * cfg.epochs and len(calls) == used  # the trie in one run, not the other
    on, off = read_metrics(tmp_path / "on"), read_metrics(tmp_path / "off")
    assert len(on) == len(off) == cfg.epochs + 1
    # two computation paths: within float32 rounding (numerics.assert_runs_close, derived there)
    times = ("time_s", "checkpoint_s")
    on, off = ([{k: v for k, v in r.items() if k not in times} for r in m] for m in (on, off))
    assert_runs_close(on, off, *(_surprisals(tmp_path / d) for d in ("on", "off")))


def _surprisals(run):
    from grammarlab.runs.folder import RunDir

    folder = RunDir(run)
    return {e: folder.read_surprisals(e) for e in folder.surprisal_epochs()}


@pytest.mark.numerics
def test_plans_use_the_trie_only_where_it_saves_enough():
    tmap = TokenMap.for_tiny(TERMS)
    # only the start token is shared: 1 of 2 x 21 positions, under MIN_SAVED
    little = encode_set("x", [("a",) * 20, ("b",) * 20], tmap, "cpu")
    assert build_trie(little.ids[:, :-1], little.mask[:, 1:]).saved < MIN_SAVED
    assert plan([little], 8, share_prefixes=True).batches[0].trie is None
    much = encode_set("y", STRINGS, tmap, "cpu")
    assert plan([much], 8, share_prefixes=True).batches[0].trie.size == 10
    assert plan([much], 8, share_prefixes=False).batches[0].trie is None
    # evaluated together or alone, with or without sharing: the same numbers
    model = _model("pythia-tiny")
    together = evaluate_plan(model, plan([little, much], 3, share_prefixes=True))
    for enc, res in zip((little, much), together, strict=True):
        alone = evaluate_plan(model, plan([enc], 8))[0]
        # two paths in float32: within 2 gamma_256 (numerics, derived there)
        assert abs(res.loss - alone.loss) <= REL_TINY * alone.loss
        assert_bits_close(res.token_bits, alone.token_bits)
        assert_argmax_consistent(res.token_bits, alone.token_bits, res.correct, alone.correct,
                                 bits_tolerance(alone.token_bits))  # fmt: skip
