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

A run sharded with FSDP (train/fsdp.py) writes no Hugging Face directory: gathering an 8-12B
model onto one process every few epochs would cost what sharding saves. Its checkpoint holds

* ``shard-RRRRR-of-WWWWW.safetensors``, one per rank, written by that rank: its local pieces of
  every weight and buffer (``model.<name>``) and of the optimizer's state tensors
  (``state.<i>.<key>``); the file's metadata records each weight's global shape, its local shape
  and its placement (``S(0)``: FSDP2 splits dimension 0);
* rng.safetensors and training_state.json as above (rank 0's), the state with
  ``"sharding"``: FSDP version, world size and wrap units. Written after every rank's shard
  (distributed.py puts a barrier in between), so its presence still marks a complete
  checkpoint.

Resuming needs the same world size and sharding (each rank reads back its own file: bit for
bit); anything else is refused with a one-line error. :func:`load` without an optimizer (scoring
a run, ``restore.py``) joins the shards into a plain model.

Nothing is unpickled: an old checkpoint of ``torch.save`` pickles (state.pt, optimizer.pt) is
refused with a clear error instead of being loaded (a pickle can run code).
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from grammarlab.errors import GrammarlabError
from grammarlab.train.export import fsync_tree, load_hf_weights, save_hf_model

STATE = "training_state.json"
OPTIMIZER = "optimizer.safetensors"
RNG = "rng.safetensors"
FORMAT = 2  # 1 was torch.save pickles (optimizer.pt, state.pt)
_PICKLES = ("state.pt", "optimizer.pt")
_SHARD = "shard-{rank:05d}-of-{world:05d}.safetensors"


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
    """The epoch (number of updates, >= 1) of a complete checkpoint."""
    return _state(folder)["epoch"]


def load(
    folder: Path,
    model: Any,
    optimizer: Any = None,
    scheduler: Any = None,
    world_size: int = 1,
    rank: int = 0,
    sharding: dict[str, Any] | None = None,
) -> int:
    """Restore weights (and optimizer, scheduler and random states when given: a resume,
    refused when the checkpoint was written by another number of processes or, for ``sharding``
    (the FSDP layout of this run, train/fsdp.py), with another sharding); the epoch. ``rank``:
    this process's rank, whose shard a sharded resume reads."""
    state = _state(folder)
    saved = state.get("world_size", 1)
    if optimizer is not None and saved != world_size:
        raise GrammarlabError(f"the checkpoint was written by a run on {saved} process(es), this "
                              f"one has {world_size}: its numbers would not continue exactly",
                              file=str(folder),
                              hint=f"resume it with {saved} process(es)")  # fmt: skip
    layout = state.get("sharding")
    if optimizer is not None and layout != sharding:
        raise GrammarlabError(f"the checkpoint was written {_how(layout)}, this run is "
                              f"{_how(sharding)}: its state would not continue exactly",
                              file=str(folder),
                              hint="resume it with the accelerate config it was started with"
                              )  # fmt: skip
    if layout is None:
        load_hf_weights(folder, model)
    elif optimizer is None:
        _load_joined(folder, model, int(layout["world_size"]))
    try:  # shapes and keys that do not fit this run: one line naming the checkpoint
        if layout is not None and optimizer is not None:
            _load_shard(folder, rank, world_size, model, optimizer, state["optimizer"])
        if optimizer is not None and layout is None:
            optimizer.load_state_dict(_join_state(_read_tensors(folder / OPTIMIZER),
                                                  state["optimizer"]))  # fmt: skip
        if optimizer is not None:
            scheduler.load_state_dict(state["scheduler"])
            _set_rng_state(_read_tensors(folder / RNG), state["rng"])
    except (ValueError, KeyError, TypeError, IndexError, RuntimeError) as e:
        raise GrammarlabError(f"the checkpoint's training state does not fit this run "
                              f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else e})",
                              file=str(folder / STATE),
                              hint="start the run again in a new folder") from None  # fmt: skip
    return state["epoch"]


def _how(sharding: dict[str, Any] | None) -> str:
    if sharding is None:
        return "without FSDP"
    units = ", ".join(sharding.get("units", ())) or "none"
    return f"with FSDP over {sharding.get('world_size')} process(es) (units: {units})"


# --------------------------------------------------------------------------- sharded (FSDP)


def shard_name(rank: int, world: int) -> str:
    """The file of rank ``rank`` of ``world`` in a sharded checkpoint."""
    return _SHARD.format(rank=rank, world=world)


def _local(t: torch.Tensor) -> tuple[torch.Tensor, list[str]]:
    """A DTensor's local piece and its placements; a plain tensor itself (no placements)."""
    if hasattr(t, "to_local") and hasattr(t, "placements"):
        return t.to_local(), [str(p) for p in t.placements]
    return t, []


def save_shard(folder: Path, rank: int, world: int, model: Any, optimizer: Any) -> None:
    """Write (fsynced) rank ``rank``'s file of a sharded checkpoint into ``folder`` (module
    docstring); every rank calls it, into the same folder."""
    tensors, layout = {}, {}
    for name, t in model.state_dict().items():
        local, place = _local(t)
        tensors[f"model.{name}"] = local
        layout[name] = [list(t.shape), list(local.shape), place]
    for name, t in _split_state(optimizer.state_dict())[0].items():
        tensors[name] = _local(t)[0]
    path = folder / shard_name(rank, world)
    _write_tensors(tensors, path, {"layout": json.dumps(layout)})
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def save_sharded_state(folder: Path, epoch: int, optimizer: Any, scheduler: Any,
                       sharding: dict[str, Any]) -> None:  # fmt: skip
    """Rank 0's part after every rank's shard: the random states and training_state.json (its
    optimizer entry holds only the JSON part; the tensors are in the shards)."""
    rng_tensors, rng_rest = _rng_state()
    _write_tensors(rng_tensors, folder / RNG)
    fsync_tree(folder)
    state = {"format": FORMAT, "epoch": epoch, "optimizer": _split_state(optimizer.state_dict())[1],
             "scheduler": scheduler.state_dict(), "rng": rng_rest,
             "world_size": sharding["world_size"], "sharding": sharding}  # fmt: skip
    with open(folder / STATE, "w", encoding="utf-8") as f:
        f.write(json.dumps(state, allow_nan=False))
        f.flush()
        os.fsync(f.fileno())


def _read_shard(folder: Path, rank: int, world: int) -> tuple[dict[str, torch.Tensor], dict]:
    path = folder / shard_name(rank, world)
    if not path.is_file():
        raise GrammarlabError(
            f"the sharded checkpoint has no file for rank {rank} of {world}",
            file=str(folder),
            hint="start the run again in a new folder",
        )
    tensors = _read_tensors(path)
    try:
        with safe_open(str(path), "pt") as f:
            layout = json.loads((f.metadata() or {})["layout"])
        if not isinstance(layout, dict):
            raise ValueError("not an object")
    except (KeyError, ValueError, SafetensorError) as e:
        raise GrammarlabError(f"the shard has no readable layout ({e})", file=str(path)) from None
    return tensors, layout


def _load_shard(folder: Path, rank: int, world: int, model: Any, optimizer: Any,
                rest: dict[str, Any]) -> None:  # fmt: skip
    """This rank's shard into the sharded ``model`` and ``optimizer``, bit for bit."""
    tensors, layout = _read_shard(folder, rank, world)
    current = model.state_dict()
    mine = {name: [list(t.shape), list(_local(t)[0].shape), _local(t)[1]]
            for name, t in current.items()}  # fmt: skip
    if mine != layout:
        bad = sorted(k for k in mine.keys() | layout.keys() if mine.get(k) != layout.get(k))
        raise GrammarlabError(f"the shard does not fit this run's sharding ({bad[0]}: "
                              f"{layout.get(bad[0])} saved, {mine.get(bad[0])} here)",
                              file=str(folder / shard_name(rank, world)),
                              hint="resume it with the accelerate config it was started with"
                              )  # fmt: skip
    with torch.no_grad():
        for name, t in current.items():
            _local(t)[0].copy_(tensors[f"model.{name}"])
    opt_tensors = {k: v for k, v in tensors.items() if k.startswith("state.")}
    sd = _join_state(opt_tensors, rest)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    for i, entry in sd["state"].items():
        p = params[i]
        for k, v in entry.items():
            if k != "step" and isinstance(v, torch.Tensor) and hasattr(p, "placements"):
                entry[k] = type(p).from_local(v, p.device_mesh, p.placements, run_check=False,
                                              shape=p.shape, stride=p.stride())  # fmt: skip
    optimizer.load_state_dict(sd)


def _load_joined(folder: Path, model: Any, world: int) -> None:
    """The weights of a sharded checkpoint joined into a plain (unsharded) ``model``: FSDP2
    splits dimension 0 into consecutive pieces in rank order, so they are concatenated."""
    pieces = [_read_shard(folder, r, world) for r in range(world)]
    layout = pieces[0][1]
    sd = {}
    for name, (shape, _, place) in layout.items():
        parts = [tensors[f"model.{name}"] for tensors, _ in pieces]
        if place and any(p != "S(0)" for p in place):
            raise GrammarlabError(f"{name} is sharded as {place}, which is not read here",
                                  file=str(folder))  # fmt: skip
        full = torch.cat(parts) if place else parts[0]
        if list(full.shape) != shape:
            raise GrammarlabError(f"the shards of {name} join to {list(full.shape)}, not {shape}",
                                  file=str(folder))  # fmt: skip
        sd[name] = full
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise GrammarlabError(f"the weights do not fit the model: {str(e).splitlines()[0]}",
                              file=str(folder)) from None  # fmt: skip


def _state(folder: Path) -> dict[str, Any]:
    """training_state.json, its values range-checked before anything acts on them: the epoch an
    integer >= 1 (a checkpoint follows an update; the caller checks it against the run's
    epochs), the world size an integer >= 1, the optimizer, scheduler and random states of the
    shapes :func:`save_training_state` writes."""
    path = folder / STATE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise GrammarlabError(f"not a grammarlab checkpoint state ({e})", file=str(path)) from None
    except OSError as e:
        raise GrammarlabError(f"cannot read the checkpoint state: {e.strerror or e}",
                              file=str(path)) from None  # fmt: skip
    why = _state_problem(state)
    if why:
        raise GrammarlabError(f"not a grammarlab checkpoint state: {why}", file=str(path),
                              hint="the file was edited or damaged; start the run again in a "
                              "new folder (or remove checkpoint/ to restart it)")  # fmt: skip
    return state


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _state_problem(state: Any) -> str:
    """What is wrong with a training state ('' when nothing)."""
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        return f"no format {FORMAT} object"
    e = state.get("epoch")
    if not _is_int(e) or e < 1:
        return f"epoch must be an integer >= 1, got {e!r}"
    w = state.get("world_size", 1)
    if not _is_int(w) or w < 1:
        return f"world_size must be an integer >= 1, got {w!r}"
    opt = state.get("optimizer")
    if not (isinstance(opt, dict) and isinstance(opt.get("state"), dict)
            and isinstance(opt.get("param_groups"), list)
            and all(isinstance(g, dict) for g in opt["param_groups"])):  # fmt: skip
        return "optimizer must be an object with 'state' and a list 'param_groups'"
    if not all(isinstance(v, dict) and re.fullmatch(r"\d+", k) for k, v in opt["state"].items()):
        return "optimizer.state must map parameter numbers to objects"
    for g in opt["param_groups"]:
        lr = g.get("lr")
        if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not 0 <= lr < math.inf:
            return f"an optimizer group's lr must be a finite number >= 0, got {lr!r}"
    if not isinstance(state.get("scheduler"), dict):
        return "scheduler must be an object"
    last = state["scheduler"].get("last_epoch", 0)
    if not _is_int(last) or last < 0:
        return f"scheduler.last_epoch must be an integer >= 0, got {last!r}"
    rng = state.get("rng")
    numpy = rng.get("numpy") if isinstance(rng, dict) else None
    if not (isinstance(numpy, list) and len(numpy) == 4 and numpy[0] == "MT19937"
            and _is_int(numpy[1]) and 0 <= numpy[1] <= 624 and numpy[2] in (0, 1)
            and isinstance(numpy[3], (int, float))):  # fmt: skip
        return 'rng.numpy must be ["MT19937", position 0..624, 0 or 1, a number]'
    sharding = state.get("sharding")
    if sharding is not None and not (isinstance(sharding, dict)
                                     and _is_int(sharding.get("world_size"))
                                     and sharding["world_size"] >= 1):  # fmt: skip
        return "sharding must be an object with an integer world_size >= 1"
    return ""


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
