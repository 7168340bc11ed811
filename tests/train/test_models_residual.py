"""The presets of the capacity comparison: GPT-NeoX with a sequential residual (pythia-tiny-seq)
and GPT-2 (gpt2-tiny), beside Pythia's parallel residual (pythia-tiny).

Parameter counts are derived by hand in comments from the weight shapes.
"""

from __future__ import annotations

import pytest
import torch

from grammarlab.capacity.train import used_parameters
from grammarlab.train.models import (
    MAX_POSITIONS,
    PRESETS,
    ModelSpec,
    active_dropout,
    count_parameters,
    load_model,
)

torch.set_num_threads(1)

LETTERS = tuple("abcdefghijklmnop")  # 16 terminals: V = 19 with bos, eos, pad
SIZE = {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 64}


def _mlp_and_attention(model: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The first block's MLP and the attention's output projection."""
    if model.config.model_type == "gpt2":
        block = model.transformer.h[0]
        return block.mlp, block.attn.c_proj
    block = model.gpt_neox.layers[0]
    return block.mlp, block.attention.dense


def _mlp_input(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    mlp, _ = _mlp_and_attention(model)
    seen: list[torch.Tensor] = []
    handle = mlp.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()))
    try:
        with torch.no_grad():
            model(input_ids=ids)
    finally:
        handle.remove()
    return seen[0]


@pytest.mark.parametrize(("name", "sees_attention"),
                         [("pythia-tiny", False), ("pythia-tiny-seq", True),
                          ("gpt2-tiny", True)])  # fmt: skip
def test_a_parallel_residual_mlp_never_sees_the_attention_output(name, sees_attention):
    """Silence attention (its output projection set to 0): the MLP's input of a 1-layer
    parallel-residual model is the same tensor (it reads ln2 of the block's input, computed by
    the same operations: equal to the bit), a sequential model's changes."""
    model, tmap = load_model(ModelSpec(name, **SIZE), LETTERS, seed=0)
    model.eval()
    ids = tmap.encode([tuple("abcabcdd"), tuple("ponmlkji")])[0]
    before = _mlp_input(model, ids)
    _, out_proj = _mlp_and_attention(model)
    with torch.no_grad():
        out_proj.weight.zero_()
        out_proj.bias.zero_()
    after = _mlp_input(model, ids)
    if sees_attention:
        assert (before - after).abs().max() > 1e-3
    else:
        assert torch.equal(before, after)


def test_pythia_tiny_keeps_the_parallel_residual_and_seq_has_the_same_parameters():
    par, _ = load_model(ModelSpec("pythia-tiny", **SIZE), LETTERS, seed=0)
    seq, _ = load_model(ModelSpec("pythia-tiny-seq", **SIZE), LETTERS, seed=0)
    assert par.config.use_parallel_residual is True
    assert seq.config.use_parallel_residual is False
    assert PRESETS["pythia-tiny-seq"].family == "gpt_neox"
    # same shapes, same draws from the seed: only the wiring differs
    assert count_parameters(par) == count_parameters(seq) == 3920
    for (n1, p1), (n2, p2) in zip(par.named_parameters(), seq.named_parameters(), strict=True):
        assert n1 == n2 and torch.equal(p1, p2)


def test_gpt2_tiny_is_transformers_gpt2_with_tied_embeddings_and_no_dropout():
    from transformers import GPT2LMHeadModel

    model, tmap = load_model(ModelSpec("gpt2-tiny", **SIZE), LETTERS, seed=0)
    assert isinstance(model, GPT2LMHeadModel) and model.config.model_type == "gpt2"
    assert tmap.vocab_size == 19 and model.config.vocab_size == 19
    assert model.lm_head.weight is model.transformer.wte.weight
    assert active_dropout(model) == []
    h, inter, v = 16, 64, 19
    # hand count: wte v*h (tied: the head adds nothing), wpe 256*h; the block: ln_1 2h,
    # c_attn h*3h + 3h, c_proj h*h + h, ln_2 2h, c_fc h*I + I, c_proj I*h + h; ln_f 2h
    block = (
        2 * h + (3 * h * h + 3 * h) + (h * h + h) + 2 * h + (h * inter + inter) + (inter * h + h)
    )
    total = v * h + MAX_POSITIONS * h + block + 2 * h
    assert count_parameters(model) == total == 7712
    # a string of 16 letters uses 17 input positions: the other 239 rows never get a gradient
    assert used_parameters(model, 17) == total - (MAX_POSITIONS - 17) * h == 3888


def test_rotary_models_use_every_parameter():
    model, _ = load_model(ModelSpec("pythia-tiny-seq", **SIZE), LETTERS, seed=0)
    assert used_parameters(model, 17) == count_parameters(model)


@pytest.mark.parametrize("name", ["pythia-tiny-seq", "gpt2-tiny"])
def test_new_presets_ignore_padding_and_learn(name):
    """Right padding does not change a string's logits (to float32 rounding of a few 16-wide dot
    products: 1e-5), and 60 AdamW steps on 4 strings lower the loss."""
    model, tmap = load_model(ModelSpec(name, **SIZE), LETTERS, seed=1)
    short, long = tuple("abc"), tuple("abcdefghij")
    ids, mask = tmap.encode([short, long])
    alone, _ = tmap.encode([short])
    model.eval()
    with torch.no_grad():
        both = model(input_ids=ids, attention_mask=mask).logits[0, : alone.shape[1]]
        one = model(input_ids=alone).logits[0]
    assert torch.allclose(both, one, atol=1e-5)
    model.train()
    data, _ = tmap.encode([tuple("abcdefgh"), tuple("hgfedcba"), tuple("aaaabbbb"), tuple("ponm")])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        logits = model(input_ids=data[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), data[:, 1:],
                                                 ignore_index=tmap.pad_id)  # fmt: skip
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
