"""Architecture facts: parameter counts exact against transformers (meta device: no memory)."""

from __future__ import annotations

import pytest
import torch

from grammarlab.errors import ConfigError
from grammarlab.scale.arch import ARCHITECTURES, architecture_of
from grammarlab.train.models import ModelSpec, apply_lora, load_model

# The counts the model cards state (rounded there): Pythia-1B 1.01B, Llama3-8B 8.03B,
# Mistral-NeMo 12.2B, SmolLM2 135M.
PUBLISHED = {"pythia-1b": 1_011_781_632, "llama3-8b": 8_030_261_248,
             "mistral-nemo-12b": 12_247_782_400, "smollm2-135m-instruct": 134_515_008}  # fmt: skip


def _hf_config(a):
    from transformers import GPTNeoXConfig, LlamaConfig, MistralConfig

    kw = dict(vocab_size=a.vocab, hidden_size=a.hidden, num_hidden_layers=a.layers,
              num_attention_heads=a.heads, intermediate_size=a.intermediate,
              tie_word_embeddings=a.tied)  # fmt: skip
    if a.family == "gpt_neox":
        return GPTNeoXConfig(**kw)
    cls = LlamaConfig if a.family == "llama" else MistralConfig
    return cls(**kw, num_key_value_heads=a.kv_heads, head_dim=a.head_dim)


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_parameter_counts_match_transformers(name):
    from transformers import AutoModelForCausalLM

    a = ARCHITECTURES[name]
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(_hf_config(a))
    n = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    assert n == a.n_params() == PUBLISHED[name]
    layer = (
        sum(p.numel() for p in model.model.layers[0].parameters())
        if a.family != "gpt_neox"
        else sum(p.numel() for p in model.gpt_neox.layers[0].parameters())
    )
    assert layer == a.layer_params()


@pytest.mark.parametrize("preset", ["pythia-tiny", "llama-tiny", "mistral-tiny"])
def test_tiny_presets_and_lora_counts(preset):
    terminals = tuple("abcdefg")
    model, tmap = load_model(ModelSpec(preset), terminals, seed=0)
    a = architecture_of(preset, vocab=tmap.vocab_size)
    assert a.n_params() == sum(p.numel() for p in model.parameters())
    lora = apply_lora(model, rank=3, alpha=8.0, seed=0)
    assert a.lora_params(3) == sum(p.numel() for p in lora.parameters() if p.requires_grad)


def test_unknown_or_incomplete_models_are_config_errors():
    with pytest.raises(ConfigError, match="no architecture facts"):
        architecture_of("gpt-5")
    with pytest.raises(ConfigError, match="vocabulary"):
        architecture_of("pythia-tiny")
