"""Trained models as Hugging Face directories (a run's checkpoint and final model).

A saved model directory holds what the Hugging Face loaders read, plus one file of ours:

* a full model: ``config.json``, ``generation_config.json`` and ``model.safetensors``, for
  ``AutoModelForCausalLM.from_pretrained(dir)``;
* a LoRA model: the PEFT adapter alone, ``adapter_config.json`` and ``adapter_model.safetensors``,
  for ``PeftModel.from_pretrained(base, dir)`` (not a merged copy of the base weights);
* the tokenizer, for ``AutoTokenizer.from_pretrained(dir)``: a pretrained model's own, or a tiny
  model's word-level tokenizer over the grammar's terminals (tokens.py);
* ``tokens.json``: the :class:`~grammarlab.train.tokens.TokenMap` (terminal -> token id, bos,
  eos, pad) and ``base_model``: null for a full model; for an adapter, the base it needs: a
  preset name, a hub id or a directory that ``grammarlab.train.models.load_model`` accepts, or
  ``"base"`` when the base is a tiny model built here from a seed, whose weights are then saved
  in ``base/`` (a full model directory, 0.4 MB at the default sizes).

Weights keep the model's dtype, so a float32 model reloads bit for bit.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from grammarlab.errors import GrammarlabError
from grammarlab.io import write_json_atomic
from grammarlab.train.hf_quiet import quiet_hf
from grammarlab.train.tokens import TokenMap, hf_tokenizer

TOKENS_FILE = "tokens.json"
BASE_DIR = "base"  # a tiny LoRA run's base model, inside the adapter's directory
FORMAT = 1  # tokens.json's layout version
WEIGHTS_FILE = "model.safetensors"
ADAPTER_FILE = "adapter_model.safetensors"


def is_peft(model: Any) -> bool:
    """Whether ``model`` is a peft model (LoRA adapters around a base model)."""
    from peft import PeftModel

    return isinstance(model, PeftModel)


def save_hf_model(folder: Path, model: torch.nn.Module, tmap: TokenMap) -> None:
    """Write ``model`` (a full model, or a peft model's adapter) with its tokenizer and
    tokens.json into ``folder`` (created if missing; files of the same names are replaced).
    Library progress bars stay off. Not atomic: see :func:`save_final_model`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    base_model = None
    with quiet_hf():
        if is_peft(model):
            # the adapter only; we never resize the vocabulary, so no embedding matrix goes with
            # it ("auto" would ask the hub whether the base's vocabulary changed)
            with warnings.catch_warnings():  # peft reads a property transformers deprecated
                warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
                model.save_pretrained(folder, save_embedding_layers=False)
            base_model = _save_base(folder, model.get_base_model(), tmap)
        else:
            model.save_pretrained(folder)
        _tokenizer(model, tmap).save_pretrained(folder)
    write_json_atomic(folder / TOKENS_FILE, {"format": FORMAT, **tmap.to_dict(),
                                             "base_model": base_model})  # fmt: skip


def save_final_model(path: Path, model: torch.nn.Module, tmap: TokenMap) -> None:
    """``path`` (e.g. ``RUN/final_model``) as a saved model directory (:func:`save_hf_model`),
    atomically: written as ``path.tmp``, fsynced, then renamed over the old one, so a kill leaves
    the old directory (or ``path.old`` during the swap) or the new one, and an error (a full
    disk) leaves no temporary folder."""
    path = Path(path)
    tmp, old = path.with_name(path.name + ".tmp"), path.with_name(path.name + ".old")
    for p in (path, tmp, old):  # nothing outside the folder is written or removed through a link
        if p.is_symlink():
            raise GrammarlabError(f"{p.name} is a symbolic link: the model is not written "
                                  "through it", file=str(p), hint="remove the link")  # fmt: skip
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        save_hf_model(tmp, model, tmap)
        fsync_tree(tmp)
        if path.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def read_tokens_file(folder: Path) -> dict[str, Any] | None:
    """The tokens.json of a saved model directory (checked), or None when there is none (a
    Hugging Face directory that grammarlab did not write)."""
    path = Path(folder) / TOKENS_FILE
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise GrammarlabError(f"cannot read the token map: {e}", file=str(path)) from None
    if not isinstance(info, dict):
        raise GrammarlabError("the token map is not a JSON object", file=str(path))
    try:
        TokenMap.from_dict(info)
    except GrammarlabError as e:
        raise GrammarlabError(e.diagnostics[0].message, file=str(path)) from None
    base = info.setdefault("base_model", None)  # absent in folders saved before adapters were
    if base is not None and (not isinstance(base, str) or not base.strip()):
        raise GrammarlabError(f"base_model must be null or a model name, got {base!r}",
                              file=str(path))  # fmt: skip
    return info


def load_hf_weights(folder: Path, model: torch.nn.Module) -> None:
    """Copy the weights that :func:`save_hf_model` wrote in ``folder`` into ``model`` (built
    the same way: the same architecture, and peft adapters where they were saved), bit for
    bit. For resuming a run from its checkpoint; safetensors only (no pickle)."""
    folder = Path(folder)
    name = ADAPTER_FILE if is_peft(model) else WEIGHTS_FILE
    if not (folder / name).is_file():
        raise GrammarlabError(f"no {name} here", file=str(folder))
    try:
        if is_peft(model):
            missing, unexpected = _load_adapter(folder, model)
        else:
            missing, unexpected = _load_full(folder, model)
    # a damaged file (not safetensors, a config that is not JSON), shapes that differ
    except (OSError, ValueError, RuntimeError, SafetensorError) as e:
        raise GrammarlabError(f"cannot load the weights: {e}", file=str(folder / name)) from None
    if missing or unexpected:
        raise GrammarlabError(
            f"the weights do not fit the model: missing {sorted(missing)[:3]}, "
            f"unexpected {sorted(unexpected)[:3]}",
            file=str(folder / name),
            hint="the folder was saved from another model configuration",
        )


def _load_adapter(folder: Path, model: Any) -> tuple[list[str], list[str]]:
    """Adapter weights into a peft model; (missing adapter keys, unexpected keys)."""
    from peft import set_peft_model_state_dict

    result = set_peft_model_state_dict(model, load_file(str(folder / ADAPTER_FILE)))
    adapter = {k for k, p in model.named_parameters() if p.requires_grad}
    return [k for k in result.missing_keys if k in adapter], list(result.unexpected_keys)


def _load_full(folder: Path, model: Any) -> tuple[list[str], list[str]]:
    """A full model's weights; (missing keys, unexpected keys). save_pretrained writes some
    architectures under their original names (GPT-NeoX's ``lm_head`` as ``embed_out``), so
    the file is read by from_pretrained, which renames, into a copy whose weights we take."""
    with quiet_hf(), torch.random.fork_rng(devices=[]):  # a load may draw inits: keep the RNG
        saved, info = type(model).from_pretrained(
            folder, dtype=next(model.parameters()).dtype, output_loading_info=True,
            trust_remote_code=False, use_safetensors=True, local_files_only=True,
        )  # fmt: skip
    bad = [*info.get("missing_keys", ()), *info.get("mismatched_keys", ())]
    result = model.load_state_dict(saved.state_dict(), strict=False)
    return [*map(str, bad), *result.missing_keys], [*info.get("unexpected_keys", ()),
                                                    *result.unexpected_keys]  # fmt: skip


def _tokenizer(model: torch.nn.Module, tmap: TokenMap) -> Any:
    config = getattr(model, "config", None)
    return hf_tokenizer(tmap, getattr(config, "max_position_embeddings", None))


def _save_base(folder: Path, base: torch.nn.Module, tmap: TokenMap) -> str:
    """What an adapter's base is: its name (``config.name_or_path``: a preset, hub id or
    directory, made absolute) or, for a tiny model built from a config (no name), ``"base"``
    after saving its weights, the adapters stripped, in ``folder/base``."""
    name = str(getattr(base.config, "name_or_path", "") or "")
    if name:
        return str(Path(name).resolve()) if Path(name).is_dir() else name
    from transformers import AutoModelForCausalLM

    # peft put each adapted linear layer's weight under `.base_layer`; the adapters are `lora_*`
    state = {k.replace(".base_layer.", "."): v for k, v in base.state_dict().items()
             if "lora_" not in k}  # fmt: skip
    with torch.random.fork_rng(devices=[]):  # from_config draws an init: keep the run's RNG
        clean = AutoModelForCausalLM.from_config(base.config)
    clean.to(dtype=next(base.parameters()).dtype)
    clean.load_state_dict(state, strict=True)
    save_hf_model(folder / BASE_DIR, clean, tmap)
    return BASE_DIR


def fsync_tree(folder: Path) -> None:
    """fsync every file under ``folder`` (subfolders included: a tiny LoRA model's base/)."""
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
