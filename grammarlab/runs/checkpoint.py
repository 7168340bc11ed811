"""The checkpoint folder's format: a Hugging Face model directory plus the training state.

* the model: ``save_pretrained`` (config.json + model.safetensors), so
  ``AutoModelForCausalLM.from_pretrained(RUN/checkpoint)`` loads a full fine-tune; a LoRA run's
  checkpoint is its PEFT adapter (adapter_config.json + adapter_model.safetensors), which
  ``PeftModel.from_pretrained(base, RUN/checkpoint)`` loads;
* optimizer.safetensors: the optimizer's tensors (Adam's moments and step counts);
* rng.safetensors: the torch (CPU, CUDA) and numpy random states;
* training_state.json: the epoch, the scheduler, the optimizer's parameter groups and the rest of
  the random state; written last, so its presence marks a complete checkpoint.

Nothing is unpickled: an old checkpoint of ``torch.save`` pickles (state.pt, optimizer.pt) is
refused with a clear error instead of being loaded (a pickle can run code).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from grammarlab.errors import GrammarlabError

STATE = "training_state.json"
OPTIMIZER = "optimizer.safetensors"
RNG = "rng.safetensors"
FORMAT = 2  # 1 was torch.save pickles (optimizer.pt, state.pt)
_PICKLES = ("state.pt", "optimizer.pt")


def save(folder: Path, epoch: int, model: Any, optimizer: Any, scheduler: Any) -> None:
    """Write the state after ``epoch`` updates into the new folder ``folder`` (fsynced)."""
    folder.mkdir(parents=True)
    _save_model(model, folder)
    opt_tensors, opt_rest = _split_state(optimizer.state_dict())
    _write_tensors(opt_tensors, folder / OPTIMIZER)
    rng_tensors, rng_rest = _rng_state()
    _write_tensors(rng_tensors, folder / RNG)
    for p in folder.rglob("*"):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
    state = {"format": FORMAT, "epoch": epoch, "optimizer": opt_rest,
             "scheduler": scheduler.state_dict(), "rng": rng_rest}  # fmt: skip
    with open(folder / STATE, "w", encoding="utf-8") as f:
        f.write(json.dumps(state, allow_nan=False))
        f.flush()
        os.fsync(f.fileno())


def is_complete(folder: Path) -> bool:
    """Whether ``folder`` holds a complete checkpoint; an old pickle checkpoint is an error."""
    if (folder / STATE).is_file():
        return True
    if any((folder / name).is_file() for name in _PICKLES):
        raise GrammarlabError("the checkpoint is in the old pickle format, which is not loaded "
                              "(unpickling can run code)", file=str(folder),
                              hint="start the run again in a new folder")  # fmt: skip
    return False


def epoch(folder: Path) -> int:
    """The epoch (number of updates) of a complete checkpoint."""
    return int(_state(folder)["epoch"])


def load(folder: Path, model: Any, optimizer: Any = None, scheduler: Any = None) -> int:
    """Restore weights (and optimizer, scheduler and random states when given); the epoch."""
    state = _state(folder)
    _load_model(model, folder)
    if optimizer is not None:
        optimizer.load_state_dict(_join_state(_read_tensors(folder / OPTIMIZER),
                                              state["optimizer"]))  # fmt: skip
        scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(_read_tensors(folder / RNG), state["rng"])
    return int(state["epoch"])


def _state(folder: Path) -> dict[str, Any]:
    path = folder / STATE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise ValueError("unknown format")
        int(state["epoch"])
        return state
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise GrammarlabError(f"not a grammarlab checkpoint state ({e})", file=str(path)) from None


def _write_tensors(tensors: dict[str, torch.Tensor], path: Path,
                   metadata: dict[str, str] | None = None) -> None:  # fmt: skip
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(path), metadata)


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise GrammarlabError(f"not a safetensors file: {e}", file=str(path)) from None


def _is_peft(model: Any) -> bool:
    return hasattr(model, "peft_config")


def _save_model(model: Any, folder: Path) -> None:
    """config.json + model.safetensors (the model's own parameter names, which
    ``from_pretrained`` reads and a resume loads as they are), or for a LoRA run the PEFT adapter
    (adapter_config.json + adapter_model.safetensors)."""
    if _is_peft(model):
        with warnings.catch_warnings():  # peft calls a deprecated transformers property
            warnings.simplefilter("ignore", FutureWarning)
            model.save_pretrained(folder, safe_serialization=True)
        return
    if hasattr(model, "config"):
        model.config.save_pretrained(folder)
    # save_pretrained would rename some weights to their legacy names (GPT-NeoX's lm_head to
    # embed_out), which a plain load_state_dict does not map back; one copy of a tied weight
    seen, weights = set(), {}
    for k, v in model.state_dict().items():
        if v.data_ptr() not in seen:
            seen.add(v.data_ptr())
            weights[k] = v
    _write_tensors(weights, folder / "model.safetensors", {"format": "pt"})


def _load_model(model: Any, folder: Path) -> None:
    """Weights saved by :func:`_save_model` into ``model`` (every trainable weight must be
    there)."""
    if _is_peft(model):
        from peft import set_peft_model_state_dict  # heavy: only for LoRA runs

        weights = _read_tensors(folder / "adapter_model.safetensors")
        n_trained = sum(1 for p in model.parameters() if p.requires_grad)
        if len(weights) != n_trained:
            raise GrammarlabError(f"the adapter holds {len(weights)} tensors, the model trains "
                                  f"{n_trained}", file=str(folder))  # fmt: skip
        set_peft_model_state_dict(model, weights)
        missing: list[str] = []
    else:
        weights = _read_tensors(folder / "model.safetensors")
        own = model.state_dict()
        extra = sorted(set(weights) - set(own))
        if extra:
            raise GrammarlabError(f"checkpoint weights do not fit the model: {extra[:3]}",
                                  file=str(folder))  # fmt: skip
        model.load_state_dict(weights, strict=False)
        trained = {n for n, p in model.named_parameters() if p.requires_grad}
        missing = sorted(trained - set(weights) - _tied(model))
    if missing:
        raise GrammarlabError(f"checkpoint lacks trained weights: {missing[:3]}",
                              file=str(folder))  # fmt: skip


def _tied(model: Any) -> set[str]:
    """Parameter names that share their tensor with an earlier one (save_pretrained keeps one)."""
    seen: dict[int, str] = {}
    out = set()
    for n, p in model.named_parameters(remove_duplicate=False):
        if id(p) in seen:
            out.add(n)
        else:
            seen[id(p)] = n
    return out


def _split_state(sd: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimizer state dict as (tensors by ``state.<param>.<key>``, the JSON-able rest)."""
    tensors, state = {}, {}
    for i, entry in sd["state"].items():
        plain = {}
        for k, v in entry.items():
            if isinstance(v, torch.Tensor):
                tensors[f"state.{i}.{k}"] = v
            else:
                plain[k] = v
        state[str(i)] = plain
    return tensors, {"state": state, "param_groups": sd["param_groups"]}


def _join_state(tensors: dict[str, torch.Tensor], rest: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {int(i): dict(v) for i, v in rest["state"].items()}
    for name, t in tensors.items():
        _, i, k = name.split(".", 2)
        state.setdefault(int(i), {})[k] = t
    groups = [{**g, "betas": tuple(g["betas"])} if "betas" in g else g
              for g in rest["param_groups"]]  # fmt: skip
    return {"state": state, "param_groups": groups}


def _rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The process's random states: torch (CPU, CUDA) and numpy's global generator."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    tensors = {"torch": torch.get_rng_state(),
               "numpy_keys": torch.from_numpy(keys.astype(np.int64))}  # fmt: skip
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = s
    return tensors, {"numpy": [kind, int(pos), int(has_gauss), float(gauss)]}


def _set_rng_state(tensors: dict[str, torch.Tensor], rest: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("cuda.")),
                                       key=lambda k: int(k.split(".")[1]))]  # fmt: skip
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)  # dropout masks on a GPU
    kind, pos, has_gauss, gauss = rest["numpy"]
    keys = tensors["numpy_keys"].numpy().astype(np.uint32)
    np.random.set_state((kind, keys, pos, has_gauss, gauss))
