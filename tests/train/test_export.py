"""Saved models are Hugging Face directories: the usual loaders read them back and compute the
same logits; a LoRA model is saved as a PEFT adapter; writes are atomic; reading back is checked.

Logit comparisons are exact where the reloaded model runs the same float32 weights through the
same code on the same input in the same process (nothing differs, so neither may the bits).
"""

from __future__ import annotations

import json

import pytest
import torch

from grammarlab.errors import GrammarlabError
from grammarlab.train.export import (
    BASE_DIR,
    TOKENS_FILE,
    load_hf_weights,
    read_tokens_file,
    save_final_model,
    save_hf_model,
)
from grammarlab.train.hf_quiet import quiet_hf
from grammarlab.train.models import ModelSpec, apply_lora, load_model

TINY = ("pythia-tiny", "llama-tiny", "mistral-tiny")
TERMS = ("3", "1", "2", "a")
STRINGS = [("3", "1", "2"), ("2",), ("a", "a", "3", "1")]


def logits(model, tmap, strings=STRINGS):
    ids, mask = tmap.encode(strings)
    model.eval()
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask.long()).logits


def trained_lora(name: str, seed: int = 0):
    """A tiny model with LoRA adapters whose B matrices are not 0 (a fresh adapter is the
    identity, which would hide an adapter that failed to load)."""
    model, tmap = load_model(ModelSpec(name, num_layers=1), TERMS, seed=seed)
    wrapped = apply_lora(model, rank=2, alpha=4.0, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in wrapped.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=gen))
    return wrapped, tmap


@pytest.mark.parametrize("name", TINY)
def test_auto_classes_load_a_saved_tiny_model_with_identical_logits(name, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tmap = load_model(ModelSpec(name), TERMS, seed=0)
    out = tmp_path / "final_model"
    save_final_model(out, model, tmap)
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
            TOKENS_FILE} <= {p.name for p in out.iterdir()}  # fmt: skip
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob("*.old"))
    with quiet_hf():
        hf_model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert hf_model.config.model_type == model.config.model_type
    assert hf_model.config._attn_implementation == "sdpa"  # the same kernels as ours
    batch = tok([" ".join(s) for s in STRINGS], padding=True, return_tensors="pt")
    ids, mask = tmap.encode(STRINGS)
    assert torch.equal(batch.input_ids, ids) and torch.equal(batch.attention_mask, mask.long())
    hf_model.eval()
    with torch.no_grad():
        theirs = hf_model(**batch).logits
    assert torch.equal(theirs, logits(model, tmap))
    info = json.loads((out / TOKENS_FILE).read_text())
    assert info["terminals"] == list(TERMS) and info["convention"] == "tiny"
    assert info["base_model"] is None and info["format"] == 1


@pytest.mark.parametrize("name", ["pythia-tiny", "llama-tiny"])
def test_lora_is_saved_as_a_peft_adapter_with_identical_logits(name, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    wrapped, tmap = trained_lora(name)
    out = tmp_path / "final_model"
    save_final_model(out, wrapped, tmap)
    files = {p.name for p in out.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", TOKENS_FILE} <= files
    assert "model.safetensors" not in files  # no merged copy of the base weights
    # a tiny base is drawn from a seed, so its weights travel with the adapter
    assert json.loads((out / TOKENS_FILE).read_text())["base_model"] == BASE_DIR
    with quiet_hf():
        base = AutoModelForCausalLM.from_pretrained(out / BASE_DIR)
    # the base saved beside it is the base without adapters
    plain, _ = load_model(ModelSpec(name, num_layers=1), TERMS, seed=0)
    assert torch.equal(logits(base, tmap), logits(plain, tmap))
    with quiet_hf():
        reloaded = PeftModel.from_pretrained(base, out)  # adds the adapters to `base` in place
    assert torch.equal(logits(reloaded, tmap), logits(wrapped, tmap))


def test_lora_on_a_named_base_names_it_instead_of_copying_it(tmp_path):
    model, tmap = load_model(ModelSpec("llama-tiny", num_layers=1), TERMS, seed=0)
    save_final_model(tmp_path / "base_model", model, tmap)
    base, tmap = load_model(ModelSpec(str(tmp_path / "base_model")), TERMS, seed=0)
    wrapped = apply_lora(base, rank=2, alpha=4.0, seed=0)
    save_hf_model(tmp_path / "adapter", wrapped, tmap)
    info = read_tokens_file(tmp_path / "adapter")
    assert info["base_model"] == str((tmp_path / "base_model").resolve())
    adapter_config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == info["base_model"]  # peft agrees
    assert not (tmp_path / "adapter" / BASE_DIR).exists()


@pytest.mark.parametrize("name", TINY)
def test_load_hf_weights_restores_plain_and_adapter_weights_bit_for_bit(name, tmp_path):
    # GPT-NeoX is saved under its original weight names (embed_out for lm_head): renamed back
    model, tmap = load_model(ModelSpec(name, num_layers=1), TERMS, seed=0)
    save_hf_model(tmp_path / "plain", model, tmap)
    other, _ = load_model(ModelSpec(name, num_layers=1), TERMS, seed=1)
    assert not torch.equal(logits(other, tmap), logits(model, tmap))
    state = torch.get_rng_state()
    load_hf_weights(tmp_path / "plain", other)
    assert torch.equal(torch.get_rng_state(), state)  # a resume restores the RNG next
    pairs = zip(other.state_dict().values(), model.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)

    wrapped, _ = trained_lora(name, seed=0)
    save_hf_model(tmp_path / "lora", wrapped, tmap)
    fresh, _ = trained_lora(name, seed=0)
    with torch.no_grad():
        for n, p in fresh.named_parameters():
            if "lora_" in n:
                p.zero_()
    load_hf_weights(tmp_path / "lora", fresh)
    assert torch.equal(logits(fresh, tmap), logits(wrapped, tmap))


def test_load_hf_weights_refuses_weights_of_another_model(tmp_path):
    model, tmap = load_model(ModelSpec("llama-tiny", num_layers=1), TERMS, seed=0)
    save_hf_model(tmp_path, model, tmap)
    bigger, _ = load_model(ModelSpec("llama-tiny", num_layers=2), TERMS, seed=0)
    with pytest.raises(GrammarlabError, match="do not fit.*layers.1"):
        load_hf_weights(tmp_path, bigger)
    with pytest.raises(GrammarlabError, match="no adapter_model.safetensors"):
        load_hf_weights(tmp_path, apply_lora(model, rank=2, alpha=4.0, seed=0))


def test_save_final_model_replaces_the_old_one_and_cleans_up_after_an_error(tmp_path, monkeypatch):
    out = tmp_path / "final_model"
    model, tmap = load_model(ModelSpec("llama-tiny", num_layers=1), TERMS, seed=0)
    save_final_model(out, model, tmap)
    (out / "stale.txt").write_text("from before")
    save_final_model(out, model, tmap)
    assert not (out / "stale.txt").exists()  # a new directory, not files written over the old

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    (out / "stale.txt").write_text("from before")
    monkeypatch.setattr(type(model), "save_pretrained", full_disk)
    with pytest.raises(OSError, match="No space"):
        save_final_model(out, model, tmap)
    assert (out / "stale.txt").is_file()  # the old directory is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final_model"]


def test_read_tokens_file_names_the_file_of_a_bad_token_map(tmp_path):
    assert read_tokens_file(tmp_path) is None  # not written by grammarlab
    path = tmp_path / TOKENS_FILE
    path.write_text("{not json")
    with pytest.raises(GrammarlabError, match="cannot read the token map") as err:
        read_tokens_file(tmp_path)
    assert str(path) in str(err.value)
    path.write_text(json.dumps({"terminals": ["a", "b"], "terminal_ids": [0, 0], "bos_id": 2,
                                "eos_id": 3, "pad_id": 4, "vocab_size": 5}))  # fmt: skip
    with pytest.raises(GrammarlabError, match="same token id"):
        read_tokens_file(tmp_path)
    path.write_text(json.dumps({**json.loads(path.read_text()), "terminal_ids": [0, 1],
                                "base_model": 3}))  # fmt: skip
    with pytest.raises(GrammarlabError, match="base_model"):
        read_tokens_file(tmp_path)


def test_saving_draws_no_progress_bar(tmp_path, capsys):
    wrapped, tmap = trained_lora("pythia-tiny")
    save_final_model(tmp_path / "m", wrapped, tmap)
    err = capsys.readouterr().err
    assert "Writing" not in err and "%|" not in err, err
