"""Run folders (layout in docs/architecture.md): status, metrics, per-epoch files, checkpoints,
resume.

Crash safety: every file is written atomically (grammarlab.io) except metrics.jsonl, which is
appended one line per epoch and fsynced; a resume truncates it (atomically) to the epochs before
the checkpoint. The checkpoint folder is written as ``checkpoint.tmp/`` and swapped in by renames,
so a kill leaves the previous checkpoint or the new one (``checkpoint.old/`` in between).
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from grammarlab.errors import ConfigError, GrammarlabError
from grammarlab.io import write_json_atomic, write_text_atomic
from grammarlab.train.config import TrainConfig, config_from_dict, diff_configs, dumps_config

CKPT, CKPT_TMP, CKPT_OLD = "checkpoint", "checkpoint.tmp", "checkpoint.old"


def epoch_name(epoch: int, suffix: str) -> str:
    return f"epoch_{epoch:04d}{suffix}"


def read_status(run_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((run_dir / "status.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def write_status(run_dir: Path, state: str, epoch: int | None, message: str = "") -> None:
    """status.json: state running|done|diverged|failed, last completed epoch, a message."""
    write_json_atomic(run_dir / "status.json", {"state": state, "epoch": epoch, "message": message})


def saved_config(run_dir: Path) -> TrainConfig | None:
    import tomllib

    path = run_dir / "config.toml"
    if not path.is_file():
        return None
    return config_from_dict(tomllib.loads(path.read_text(encoding="utf-8")))


def check_same_config(run_dir: Path, cfg: TrainConfig) -> None:
    """Refuse to continue a run folder whose saved config differs from ``cfg`` (both resolved)."""
    old = saved_config(run_dir)
    if old is None:
        return
    keys = diff_configs(old, cfg)
    if keys:
        a, b = old.to_dict(), cfg.to_dict()

        def get(d: dict, k: str) -> Any:
            t, _, leaf = k.rpartition(".")
            return (d.get(t, {}) if t else d).get(leaf)

        detail = ", ".join(f"{k}: {get(a, k)!r} (saved) vs {get(b, k)!r} (now)" for k in keys)
        raise ConfigError(
            f"run folder {run_dir} holds a run with a different config ({detail})",
            file=str(run_dir / "config.toml"),
            hint="use --out to pick another folder, or the saved config to resume this run",
        )


def init_run(run_dir: Path, cfg: TrainConfig, grammar_text: str, sets: dict[str, list]) -> None:
    """Write the files that never change: config.toml, grammar.cfg, data/*.txt."""
    from grammarlab.grammar.strings import format_strings

    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / "config.toml", dumps_config(cfg))
    write_text_atomic(run_dir / "grammar.cfg", grammar_text)
    for name, strings in sets.items():
        write_text_atomic(run_dir / "data" / f"{name}.txt", format_strings(strings))


def write_env(run_dir: Path, cfg: TrainConfig, device: str, n_params: int, n_trainable: int,
              cpu_workers: int = 1):  # fmt: skip
    """env.json: library versions, device, threads and CPU workers, seeds, parameter counts."""
    import transformers

    import grammarlab

    write_json_atomic(run_dir / "env.json", {
        "python": platform.python_version(), "torch": torch.__version__,
        "transformers": transformers.__version__, "numpy": np.__version__,
        "grammarlab": grammarlab.__version__, "platform": platform.platform(),
        "device": device, "dtype": cfg.dtype, "threads": torch.get_num_threads(),
        "cpu_workers": cpu_workers,
        "seed": cfg.seed, "data_seed": cfg.data_seed, "model_seed": cfg.model_seed,
        "n_params": n_params, "n_trainable_params": n_trainable,
    })  # fmt: skip


def _json_float(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def append_metrics(run_dir: Path, record: dict[str, Any]) -> None:
    """Append one epoch to metrics.jsonl, flushed and fsynced (non-finite floats as null)."""
    line = json.dumps({k: _json_float(v) for k, v in record.items()}, allow_nan=False)
    with open(run_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """Complete lines of metrics.jsonl (a torn last line from a kill is dropped)."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return out


def rewind(run_dir: Path, epoch: int) -> None:
    """Forget everything from ``epoch`` on: metrics lines, surprisals, generations."""
    keep = [r for r in read_metrics(run_dir) if r["epoch"] < epoch]
    write_text_atomic(run_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in keep))
    for folder in ("surprisals", "generations"):
        for p in (run_dir / folder).glob("epoch_*"):
            if int(p.stem.split("_")[1]) >= epoch:
                p.unlink()


# ----------------------------------------------------------------------------- checkpoints


def _trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Weights that training changes (all, or only the LoRA adapters)."""
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items() if k in names}


def save_checkpoint(run_dir: Path, epoch: int, model, optimizer, scheduler) -> None:
    """Replace checkpoint/ by the state after ``epoch`` updates (weights as safetensors)."""
    from safetensors.torch import save_file

    tmp, cur, old = run_dir / CKPT_TMP, run_dir / CKPT, run_dir / CKPT_OLD
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(_trainable_state(model), str(tmp / "model.safetensors"))
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
               tmp / "optimizer.pt")  # fmt: skip
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    torch.save({"epoch": epoch, "torch_rng": torch.get_rng_state(), "cuda_rng": cuda_rng,
                "numpy_rng": np.random.get_state()}, tmp / "state.pt")  # fmt: skip
    for p in tmp.iterdir():
        with open(p, "rb") as f:
            os.fsync(f.fileno())
    if cur.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(cur, old)
    os.replace(tmp, cur)
    shutil.rmtree(old, ignore_errors=True)


def checkpoint_dir(run_dir: Path) -> Path | None:
    """The newest complete checkpoint folder (checkpoint/, else checkpoint.old/ after a kill
    between the two renames), or None."""
    for name in (CKPT, CKPT_OLD):
        if (run_dir / name / "state.pt").is_file():
            return run_dir / name
    return None


def checkpoint_epoch(run_dir: Path) -> int | None:
    d = checkpoint_dir(run_dir)
    return None if d is None else int(torch.load(d / "state.pt", weights_only=False)["epoch"])


def load_checkpoint(run_dir: Path, model, optimizer=None, scheduler=None) -> int:
    """Restore weights (and optimizer, scheduler, RNG states when given); return the epoch."""
    from safetensors.torch import load_file

    d = checkpoint_dir(run_dir)
    if d is None:
        raise GrammarlabError("run folder has no checkpoint", file=str(run_dir))
    weights = load_file(str(d / "model.safetensors"))
    missing = set(weights) - set(model.state_dict())
    if missing:
        raise GrammarlabError(f"checkpoint weights do not fit the model: {sorted(missing)[:3]}",
                              file=str(d))  # fmt: skip
    model.load_state_dict(weights, strict=False)
    state = torch.load(d / "state.pt", weights_only=False)
    if optimizer is not None:
        opt = torch.load(d / "optimizer.pt", weights_only=False)
        optimizer.load_state_dict(opt["optimizer"])
        scheduler.load_state_dict(opt["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])  # dropout masks on a GPU
        np.random.set_state(state["numpy_rng"])
    return int(state["epoch"])


def save_final_model(run_dir: Path, model, tmap) -> None:
    """final_model/: the trained model as a Hugging Face directory (LoRA merged into the base
    weights) plus tokens.json, the TokenMap that maps terminals to ids."""
    out = run_dir / "final_model"
    shutil.rmtree(out, ignore_errors=True)
    merged = model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
    merged.save_pretrained(out)
    write_json_atomic(out / "tokens.json", {
        "terminals": list(tmap.terminals), "terminal_ids": list(tmap.terminal_ids),
        "bos_id": tmap.bos_id, "eos_id": tmap.eos_id, "pad_id": tmap.pad_id,
        "vocab_size": tmap.vocab_size, "convention": tmap.convention,
    })  # fmt: skip


def load_run_model(run_dir: Path):
    """(model, TokenMap, device) of a run: the config's model (LoRA included) with the latest
    checkpoint's weights, on the CPU in float32."""
    from grammarlab.grammar.load import load
    from grammarlab.train.loop import build_model

    cfg = saved_config(run_dir)
    if cfg is None:
        raise GrammarlabError("not a run folder: no config.toml", file=str(run_dir))
    grammar = load(run_dir / "grammar.cfg")
    model, tmap = build_model(cfg, grammar.terminals, "cpu", torch.float32)
    load_checkpoint(run_dir, model)
    return model, tmap, "cpu"
