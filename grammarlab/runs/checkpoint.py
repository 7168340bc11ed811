"""The checkpoint folder's format: a Hugging Face model directory plus the training state.

* the model and its tokenizer, written by ``grammarlab.train.export.save_hf_model`` (the one
  place that writes Hugging Face directories): ``AutoModelForCausalLM.from_pretrained`` and
  ``AutoTokenizer.from_pretrained(RUN/checkpoint)`` load a full fine-tune; a LoRA run's
  checkpoint is its PEFT adapter, which ``PeftModel.from_pretrained(base, RUN/checkpoint)``
  loads; resuming reads the weights back bit for bit (``export.load_hf_weights``);
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
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from grammarlab.errors import GrammarlabError
from grammarlab.train.export import fsync_tree, load_hf_weights, save_hf_model

STATE = "training_state.json"
OPTIMIZER = "optimizer.safetensors"
RNG = "rng.safetensors"
FORMAT = 2  # 1 was torch.save pickles (optimizer.pt, state.pt)
_PICKLES = ("state.pt", "optimizer.pt")


def save(folder: Path, epoch: int, model: Any, optimizer: Any, scheduler: Any, tmap: Any,
         world_size: int = 1) -> None:  # fmt: skip
    """Write the state after ``epoch`` updates into the new folder ``folder`` (fsynced): the
    model with ``tmap``'s tokenizer, the optimizer, the scheduler and the random states;
    ``world_size``: the number of processes that trained it (train/distributed.py)."""
    folder.mkdir(parents=True)
    save_hf_model(folder, model, tmap)
    save_training_state(folder, epoch, optimizer, scheduler, world_size)


def save_training_state(folder: Path, epoch: int, optimizer: Any, scheduler: Any,
                        world_size: int = 1) -> None:  # fmt: skip
    """Everything but the model into ``folder`` (fsynced with what is already there), the state
    file last."""
    opt_tensors, opt_rest = _split_state(optimizer.state_dict())
    _write_tensors(opt_tensors, folder / OPTIMIZER)
    rng_tensors, rng_rest = _rng_state()
    _write_tensors(rng_tensors, folder / RNG)
    fsync_tree(folder)
    state = {"format": FORMAT, "epoch": epoch, "optimizer": opt_rest,
             "scheduler": scheduler.state_dict(), "rng": rng_rest}  # fmt: skip
    if world_size != 1:  # absent: one process
        state["world_size"] = world_size
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


def load(folder: Path, model: Any, optimizer: Any = None, scheduler: Any = None,
         world_size: int = 1) -> int:  # fmt: skip
    """Restore weights (and optimizer, scheduler and random states when given: a resume,
    refused when the checkpoint was written by another number of processes); the epoch."""
    state = _state(folder)
    saved = state.get("world_size", 1)
    if optimizer is not None and saved != world_size:
        raise GrammarlabError(f"the checkpoint was written by a run on {saved} process(es), this "
                              f"one has {world_size}: its numbers would not continue exactly",
                              file=str(folder),
                              hint=f"resume it with {saved} process(es)")  # fmt: skip
    load_hf_weights(folder, model)
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
