"""Architecture facts of the models we plan for, and exact parameter counts from them.

The sizes of the paper's three pretrained models (and SmolLM2) are copied from their
``config.json`` files on the Hugging Face hub; the tiny presets' sizes come from
:data:`grammarlab.train.models.PRESETS` (plus the grammar's vocabulary). Parameter counts are
exact for the Hugging Face implementations we train (checked against ``transformers`` on the
``meta`` device in tests/scale/test_arch.py):

* GPT-NeoX (Pythia): LayerNorms with bias, biased linears, fused QKV, a 2-matrix MLP.
* Llama / Mistral: RMSNorms, bias-free linears, grouped-query attention (``kv_heads`` key/value
  heads of ``head_dim``), a gated 3-matrix MLP.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from grammarlab.errors import ConfigError

FAMILIES = ("gpt_neox", "llama", "mistral")


@dataclass(frozen=True)
class Architecture:
    """The sizes that set a decoder-only model's parameter and activation memory."""

    family: str  # "gpt_neox" | "llama" | "mistral"
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied: bool = False  # input embedding and output head share one matrix

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ConfigError(f"unknown model family {self.family!r}", hint=" | ".join(FAMILIES))
        if self.heads % self.kv_heads:
            raise ConfigError(f"heads ({self.heads}) must be a multiple of kv_heads")

    @property
    def q_width(self) -> int:
        """Width of the queries (and of the attention output): heads x head_dim."""
        return self.heads * self.head_dim

    @property
    def kv_width(self) -> int:
        """Width of the keys and of the values: kv_heads x head_dim."""
        return self.kv_heads * self.head_dim

    def linears(self) -> dict[str, tuple[int, int]]:
        """One decoder layer's linear maps: module name -> (in_features, out_features)."""
        h, i = self.hidden, self.intermediate
        if self.family == "gpt_neox":
            return {"query_key_value": (h, self.q_width + 2 * self.kv_width),
                    "dense": (self.q_width, h), "dense_h_to_4h": (h, i),
                    "dense_4h_to_h": (i, h)}  # fmt: skip
        return {"q_proj": (h, self.q_width), "k_proj": (h, self.kv_width),
                "v_proj": (h, self.kv_width), "o_proj": (self.q_width, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}  # fmt: skip

    def layer_params(self) -> int:
        """Parameters of one decoder layer (weights, biases, norms)."""
        mats = sum(a * b for a, b in self.linears().values())
        if self.family == "gpt_neox":  # biases on every linear; two LayerNorms (weight + bias)
            return mats + sum(b for _, b in self.linears().values()) + 4 * self.hidden
        return mats + 2 * self.hidden  # two RMSNorms (weight only)

    def outer_params(self) -> int:
        """Parameters outside the decoder layers: embedding, output head, final norm."""
        norm = 2 * self.hidden if self.family == "gpt_neox" else self.hidden
        return self.vocab * self.hidden * (1 if self.tied else 2) + norm

    def n_params(self) -> int:
        """All parameters, each shared matrix counted once."""
        return self.layers * self.layer_params() + self.outer_params()

    def lora_params(self, rank: int, targets: tuple[str, ...] | None = None) -> int:
        """Trainable parameters of LoRA adapters of ``rank`` (A: in x r, B: r x out) on the
        ``targets`` linears of every layer (default: all of :meth:`linears`, the same as
        models.LORA_TARGETS)."""
        lin = self.linears()
        names = lin if targets is None else [n for n in lin if n in targets]
        return self.layers * sum(rank * (lin[n][0] + lin[n][1]) for n in names)


#: The paper's models (Appendix A.1) and SmolLM2, from their hub config.json files.
ARCHITECTURES: dict[str, Architecture] = {
    # EleutherAI/pythia-1b: rotary_pct 0.25, parallel residual, untied head
    "pythia-1b": Architecture("gpt_neox", hidden=2048, layers=16, heads=8, kv_heads=8,
                              head_dim=256, intermediate=8192, vocab=50304),
    # meta-llama/Meta-Llama-3-8B
    "llama3-8b": Architecture("llama", hidden=4096, layers=32, heads=32, kv_heads=8,
                              head_dim=128, intermediate=14336, vocab=128256),
    # mistralai/Mistral-Nemo-Base-2407: head_dim 128 x 32 heads = 4096 < hidden 5120
    "mistral-nemo-12b": Architecture("mistral", hidden=5120, layers=40, heads=32, kv_heads=8,
                                     head_dim=128, intermediate=14336, vocab=131072),
    # HuggingFaceTB/SmolLM2-135M-Instruct: tied embeddings
    "smollm2-135m-instruct": Architecture("llama", hidden=576, layers=30, heads=9, kv_heads=3,
                                          head_dim=64, intermediate=1536, vocab=49152,
                                          tied=True),
}  # fmt: skip


def architecture_of(preset: str, vocab: int | None = None, **sizes: int | None) -> Architecture:
    """The architecture of a preset name or of a local Hugging Face model directory (its
    config.json, :func:`architecture_of_directory`). Tiny presets take their sizes from
    ``grammarlab.train.models.PRESETS`` (``sizes`` override them, as in a ``[model]`` table) and
    need ``vocab`` (the grammar's terminals + 3). ``vocab`` also overrides a pretrained model's
    vocabulary (it never changes in our fine-tunes, so leave it None there)."""
    from grammarlab.train.models import PRESETS, ModelSpec

    if preset in ARCHITECTURES:
        arch = ARCHITECTURES[preset]
        return replace(arch, vocab=vocab) if vocab else arch
    p = PRESETS.get(preset)
    if p is None and Path(preset).expanduser().is_dir():
        arch = architecture_of_directory(Path(preset).expanduser())
        return replace(arch, vocab=vocab) if vocab else arch
    if p is None or p.source != "tiny":
        known = ", ".join([*ARCHITECTURES, *(n for n, q in PRESETS.items() if q.source == "tiny")])
        raise ConfigError(f"no architecture facts for model {preset!r}", hint=f"one of {known}")
    spec = ModelSpec(preset=preset, **{k: v for k, v in sizes.items() if v is not None})
    h = spec.hidden_size or p.hidden_size
    heads = spec.num_heads or p.num_heads
    if not vocab:
        raise ConfigError(f"the tiny model {preset!r} needs its vocabulary size",
                          hint="the grammar's number of terminals + 3 (bos, eos, pad)")  # fmt: skip
    return Architecture(p.family, hidden=h, layers=spec.num_layers or p.num_layers, heads=heads,
                        kv_heads=heads, head_dim=h // heads,
                        intermediate=spec.intermediate_size or p.intermediate_size,
                        vocab=vocab)  # fmt: skip


def architecture_of_directory(path: Path) -> Architecture:
    """The architecture in a Hugging Face model directory's config.json (a model saved by
    ``save_pretrained``, e.g. a run's final_model/): GPT-NeoX, Llama or Mistral."""
    cfg = Path(path) / "config.json"
    hint = "a directory written by save_pretrained, with a config.json"
    try:
        data = json.loads(cfg.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("no config.json here: not a Hugging Face model directory",
                          file=str(path), hint=hint) from None  # fmt: skip
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"cannot read the model config: {e}", file=str(cfg)) from None
    return architecture_from_hf_config(data, str(cfg))


def architecture_from_hf_config(data: Any, source: str = "config.json") -> Architecture:
    """The architecture of a ``transformers`` config dict (``config.to_dict()`` or a
    config.json's contents)."""
    family = data.get("model_type") if isinstance(data, dict) else None
    if family not in FAMILIES:
        raise ConfigError(f"model_type {family!r} has no memory formulas", file=source,
                          hint=f"one of {', '.join(FAMILIES)}")  # fmt: skip
    try:
        h, heads = int(data["hidden_size"]), int(data["num_attention_heads"])
        kv = int(data.get("num_key_value_heads") or heads) if family != "gpt_neox" else heads
        return Architecture(family, hidden=h, layers=int(data["num_hidden_layers"]),
                            heads=heads, kv_heads=kv,
                            head_dim=int(data.get("head_dim") or h // heads),
                            intermediate=int(data["intermediate_size"]),
                            vocab=int(data["vocab_size"]),
                            tied=bool(data.get("tie_word_embeddings", False)))  # fmt: skip
    except KeyError as e:
        raise ConfigError(f"the model config has no {e.args[0]}", file=source) from None
    except (TypeError, ValueError) as e:
        raise ConfigError(f"the model config has a size that is not a number: {e}",
                          file=source) from None  # fmt: skip
