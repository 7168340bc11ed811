"""The run folder: the one place that knows its file names and formats (layout in
docs/runs.md). Training writes through a :class:`RunDir`; analysis, tables, sweeps and plots read
through it.

Crash safety: every file is written atomically (grammarlab.io) except metrics.jsonl, which is
appended one line per epoch and fsynced; a resume truncates it (atomically) to the epochs before
the checkpoint, which also repairs a torn last line. The checkpoint folder (its format:
runs/checkpoint.py) is written as ``checkpoint.tmp/`` and swapped in by renames, so a kill leaves
the previous checkpoint or the new one (``checkpoint.old/`` in between); a failed write removes
``checkpoint.tmp/``.

Nothing in a run folder is unpickled: run folders are shared between people, so they are data
(surprisals ``.npz`` are read with ``allow_pickle=False``, checkpoints hold no pickle).

Nothing outside the folder is written, truncated or pruned through it: a run file or sub-folder
of the layout (``lock``, ``surprisals/``, ``metrics.jsonl``, ...) that is a symbolic link is refused
with an error naming it (a crafted folder cannot make a run write into ``~/precious``); the folder
itself may be a link (``runs -> /scratch/runs``).

One process at a time: :meth:`RunDir.lock` takes an exclusive advisory lock (``fcntl.flock``) on
``lock`` while a process trains or analyses the folder. The kernel drops the lock when its process
dies, so the lock of a killed process is taken over by the next one.
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import platform
import re
import shutil
import socket
import stat
import time
import tomllib
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from grammarlab.errors import ConfigError, GrammarlabError
from grammarlab.grammar.load import load as load_grammar
from grammarlab.grammar.strings import format_strings, parse_strings
from grammarlab.io import write_atomic, write_json_atomic, write_text_atomic
from grammarlab.runs import checkpoint
from grammarlab.runs.trackers import numeric
from grammarlab.train.config import (
    TrainConfig,
    config_from_dict,
    diff_configs,
    dumps_config,
    flatten_keys,
)
from grammarlab.version import __version__

# ----------------------------------------------------------------------------- the layout

CONFIG = "config.toml"  # the resolved config (reproduces the run)
STATUS = "status.json"  # Status
ENV = "env.json"  # versions, device, threads, seeds, parameter counts
METRICS = "metrics.jsonl"  # one object per epoch
GRAMMAR = "grammar.cfg"  # the run's own copy of its grammar file
DATA = "data"  # data/<set>.txt: the strings of each set
SURPRISALS = "surprisals"  # surprisals/epoch_XXXX.npz
GENERATIONS = "generations"  # generations/epoch_XXXX.txt
CHECKPOINT, CHECKPOINT_TMP, CHECKPOINT_OLD = "checkpoint", "checkpoint.tmp", "checkpoint.old"
FINAL_MODEL = "final_model"
LOCK = "lock"  # the advisory lock; holds the holder's pid, host and start time
PHASES = "phases.json"  # analysis, written when the run ends (analysis.run_analysis)
MEASURES = "measures.jsonl"
PER_STRING = "per_string.csv"
PER_POSITION = "per_position.csv"
ANALYSIS = (PHASES, MEASURES, PER_STRING, PER_POSITION)
LAYOUT = (CONFIG, STATUS, ENV, METRICS, GRAMMAR, DATA, SURPRISALS, GENERATIONS, CHECKPOINT,
          CHECKPOINT_TMP, CHECKPOINT_OLD, FINAL_MODEL, LOCK, *ANALYSIS)  # fmt: skip

_EPOCH_FILE = re.compile(r"^epoch_(\d{4,})$")

STATES = ("running", "analysing", "done", "diverged", "failed")


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, else what :mod:`platform` knows)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Processor", "cpu model"):
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def epoch_name(epoch: int, suffix: str) -> str:
    return f"epoch_{epoch:04d}{suffix}"


@dataclass(frozen=True)
class Status:
    """status.json. ``state``: running -> analysing -> done | diverged, or failed (``message``
    says why; diverged names the epoch and the non-finite loss). ``epoch``: the last completed
    epoch. ``trained``: how training ended (done or diverged) once it has, so a relaunch of a run
    whose analysis failed or is stale only redoes the analysis."""

    state: str
    epoch: int | None = None
    message: str = ""
    trained: str | None = None


class RunLocked(GrammarlabError):
    """Another live process holds the run folder's lock."""


_HELD: dict[Path, list[int]] = {}  # lock file -> [fd, depth]: the locks this process holds


@dataclass(frozen=True)
class RunDir:
    """A run folder (it may not exist yet)."""

    path: Path
    # experiment trackers fed by append_metrics and write_analysis (runs.trackers.Trackers)
    trackers: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    def __str__(self) -> str:
        return str(self.path)

    def _p(self, name: str) -> Path:
        """``name`` in the folder (``sub/file``: a file in a sub-folder); refused when it, or
        the sub-folder, is a symbolic link (module docstring)."""
        if "/" in name:
            self._p(name.split("/", 1)[0])
        path = self.path / name
        if path.is_symlink():
            raise GrammarlabError(
                f"{name} in the run folder is a symbolic link (to {os.readlink(path)}): run files "
                "are never written, truncated or pruned through a link",
                file=str(path),
                hint="remove the link (the run then recreates the file), or copy the run folder",
            )
        return path

    @property
    def checkpoint_path(self) -> Path:
        """checkpoint/: a Hugging Face model directory (``from_pretrained`` loads it) plus the
        optimizer and random states."""
        return self._p(CHECKPOINT)

    @property
    def final_model_path(self) -> Path:
        return self._p(FINAL_MODEL)

    @property
    def grammar_path(self) -> Path:
        """The run's own copy of its grammar (resume and analysis read this, not config.grammar)."""
        return self._p(GRAMMAR)

    # ------------------------------------------------------------------------- the folder

    def has_metrics(self) -> bool:
        """Whether the folder holds a run's metrics (how :func:`find_runs` recognizes a run)."""
        return self._p(METRICS).is_file()

    def prepare(self) -> None:
        """Create the folder; a clear error when the path is a file or cannot be written."""
        if self.path.exists() and not self.path.is_dir():
            raise GrammarlabError(
                f"{self.path} is a file, not a run folder",
                file=str(self.path),
                hint="give --out a folder (it is created when missing)",
            )
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise self.write_error(e) from None
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise self.write_error(PermissionError(errno.EACCES, "permission denied"))

    def write_error(self, e: OSError) -> GrammarlabError:
        """A one-line error for a run folder that cannot be written (read-only, full disk)."""
        what = e.strerror or str(e)
        return GrammarlabError(f"cannot write the run folder: {what}",
                               file=str(e.filename or self.path),
                               hint="free space or pick a writable folder (--out); the same "
                                    "command then resumes from the last checkpoint")  # fmt: skip

    def check_fresh(self) -> None:
        """Refuse to start a run in a folder that holds anything else (a fresh run clears the
        run files it finds, so it must not run in someone's folder)."""
        if not self.path.is_dir():
            return
        foreign = sorted(p.name for p in self.path.iterdir()
                         if p.name not in LAYOUT and not p.name.startswith("."))  # fmt: skip
        if foreign and not self._p(CONFIG).is_file():
            raise GrammarlabError(
                f"{self.path} is not a grammarlab run folder and is not empty "
                f"(it holds {', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''})",
                file=str(self.path), hint="give --out a new or empty folder")  # fmt: skip

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the folder's exclusive lock (re-entrant within a process). Raises
        :class:`RunLocked` naming the holder (pid, host, since) when another process holds it."""
        self.prepare()
        key = self.path.resolve() / LOCK
        self._p(LOCK)  # refuses a symbolic link; O_NOFOLLOW below closes the race
        if key in _HELD:
            _HELD[key][1] += 1
            try:
                yield
            finally:
                _HELD[key][1] -= 1
            return
        try:
            fd = os.open(key, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        except OSError as e:
            if e.errno == errno.ELOOP:
                self._p(LOCK)  # the link's error
            raise self.write_error(e) from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO or device: never truncate it
            os.close(fd)
            raise GrammarlabError(
                f"{LOCK} in the run folder is not a regular file",
                file=str(key),
                hint="remove it (the run recreates it)",
            )
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            msg = f"run folder is in use by another process ({_holder(holder)})"
            hint = "wait for it to finish, or stop that process"
            raise RunLocked(msg, file=str(self.path), hint=hint) from None
        # the lock is ours; any holder written in the file is a process that died
        me = {"pid": os.getpid(), "host": socket.gethostname(),
              "since": time.strftime("%Y-%m-%d %H:%M:%S")}  # fmt: skip
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
        _HELD[key] = [fd, 1]
        try:
            yield
        finally:
            del _HELD[key]
            os.ftruncate(fd, 0)
            os.close(fd)  # releases the lock

    # ------------------------------------------------------------------------- config

    def read_config(self) -> TrainConfig | None:
        """The saved config (None when there is none); a foreign config.toml is an error."""
        path = self._p(CONFIG)
        if not path.is_file():
            return None
        data = self._config_data()
        try:
            return config_from_dict(data)
        except ConfigError as e:
            why = f"its {CONFIG} is not a run config: {e.diagnostics[0].message}"
            raise self._foreign(why) from None

    def _config_data(self) -> dict[str, Any]:
        path = self._p(CONFIG)
        try:
            return tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise self._foreign(f"its {CONFIG} is not valid TOML ({e})") from None

    def _foreign(self, why: str) -> GrammarlabError:
        return GrammarlabError(f"{self.path} is not a grammarlab run folder: {why}",
                               file=str(self._p(CONFIG)),
                               hint="give --out another folder")  # fmt: skip

    def config_values(self) -> dict[str, Any]:
        """config.toml flattened to dotted keys of scalar values, lists joined by commas, for
        tables ({} when absent; any TOML is read, not only a valid run config)."""
        flat: dict[str, Any] = {}
        for k, v in flatten_keys(self._config_data()).items():
            if isinstance(v, (str, int, float, bool)):
                flat[k] = v
            elif isinstance(v, list) and all(isinstance(x, (str, int, float)) for x in v):
                flat[k] = ",".join(map(str, v))
        return flat

    def write_config(self, cfg: TrainConfig) -> None:
        write_text_atomic(self._p(CONFIG), dumps_config(cfg))

    def check_same_config(self, cfg: TrainConfig) -> None:
        """Refuse to continue a run folder whose saved config differs from ``cfg`` (both
        resolved)."""
        old = self.read_config()
        if old is None:
            return
        keys = diff_configs(old, cfg)
        if keys:
            a, b = flatten_keys(old.to_dict()), flatten_keys(cfg.to_dict())
            detail = ", ".join(f"{k}: {a.get(k)!r} (saved) vs {b.get(k)!r} (now)" for k in keys)
            raise ConfigError(
                f"run folder {self.path} holds a run with a different config ({detail})",
                file=str(self._p(CONFIG)),
                hint="use --out to pick another folder, or the saved config to resume this run",
            )

    # ------------------------------------------------------------------------- grammar, data

    def write_grammar(self, text: str) -> None:
        write_text_atomic(self._p(GRAMMAR), text)

    def grammar_text(self) -> str | None:
        """The saved copy of the grammar file (None before the run starts)."""
        try:
            return _read_text(self._p(GRAMMAR))
        except FileNotFoundError:
            return None

    def read_grammar(self) -> Any:
        """The run's grammar, parsed from its copy in the folder."""
        if not self._p(GRAMMAR).is_file():
            raise GrammarlabError(f"run folder has no {GRAMMAR}", file=str(self._p(GRAMMAR)),
                                  hint="the measures need the run's grammar")  # fmt: skip
        return load_grammar(self._p(GRAMMAR))

    def write_data(self, sets: dict[str, list[tuple[str, ...]]]) -> None:
        for name, strings in sets.items():
            write_text_atomic(self._p(f"{DATA}/{name}.txt"), format_strings(strings))

    def read_data(self) -> dict[str, list[tuple[str, ...]]]:
        """The strings of every data file, by set name (train, test, random, train2)."""
        folder = self._p(DATA)
        if not folder.is_dir():
            return {}
        out = {}
        for p in sorted(folder.glob("*.txt")):
            out[p.stem] = parse_strings(_read_text(p), str(p))
        self._check_set_sizes(out)
        return out

    def _check_set_sizes(self, sets: dict[str, list[tuple[str, ...]]]) -> None:
        """Each data file holds as many strings as the saved config asks for (an edited file
        would be scored against another file's surprisals)."""
        cfg = self._config_data()
        sizes = {"train": cfg.get("n_train"), "train2": cfg.get("n_train"),
                 "test": cfg.get("n_test"), "random": cfg.get("n_random")}  # fmt: skip
        for name, strings in sets.items():
            n = sizes.get(name)
            if isinstance(n, int) and len(strings) != n:
                raise GrammarlabError(
                    f"{len(strings)} strings, but the run's config.toml asks for {n}",
                    file=str(self._p(DATA) / f"{name}.txt"),
                    hint="the file was edited since the run started; run it again in a new folder",
                )

    # ------------------------------------------------------------------------- status, env

    def read_status(self) -> Status | None:
        """status.json (None when absent or half-written by a foreign writer)."""
        obj = _read_json_obj(self._p(STATUS))
        if obj is None or obj.get("state") not in STATES:
            return None
        state, epoch, message = obj["state"], obj.get("epoch"), obj.get("message") or ""
        trained = obj.get("trained") or (state if state in ("done", "diverged") else None)
        if not (epoch is None or (_is_int(epoch) and epoch >= 0)) or not isinstance(message, str) \
                or trained not in (None, "done", "diverged"):  # fmt: skip
            raise GrammarlabError("not a run status: epoch must be an integer >= 0 or null, "
                                  "message a string, trained done, diverged or null",
                                  file=str(self._p(STATUS)),
                                  hint="remove it: a run's command writes it again")  # fmt: skip
        return Status(state, epoch, message, trained)

    def write_status(self, status: Status) -> None:
        write_json_atomic(self._p(STATUS), {k: v for k, v in status.__dict__.items()
                                            if v is not None or k == "epoch"})  # fmt: skip

    def write_env(self, cfg: TrainConfig, device: str, n_params: int, n_trainable: int,
                  cpu_workers: int = 1, threads: int | None = None,
                  distributed: dict[str, Any] | None = None) -> None:  # fmt: skip
        """env.json: how the run was computed. Library versions, device, the CPU model and the
        kernels torch picked for it (``cpu_capability``: AVX512, AVX2, DEFAULT...), torch threads
        (``threads``, default the current count) and CPU workers, the distributed setup
        (``distributed``: world size, backend, strategy and FSDP sharding; default one process),
        seeds, parameter counts."""
        import transformers  # heavy: only when a run starts

        write_json_atomic(self._p(ENV), {
            "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "numpy": np.__version__,
            "grammarlab": __version__, "platform": platform.platform(),
            "cpu": cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "device": device, "dtype": cfg.dtype, "threads": threads or torch.get_num_threads(),
            "cpu_workers": cpu_workers,
            "distributed": distributed or {"world_size": 1, "backend": None, "strategy": None},
            "seed": cfg.seed, "data_seed": cfg.data_seed, "model_seed": cfg.model_seed,
            "n_params": n_params, "n_trainable_params": n_trainable,
        })  # fmt: skip

    def read_env(self) -> dict[str, Any]:
        """env.json ({} when absent)."""
        return _read_json_obj(self._p(ENV)) or {}

    # ------------------------------------------------------------------------- metrics

    def append_metrics(self, record: dict[str, Any]) -> None:
        """Append one epoch to metrics.jsonl, flushed and fsynced (non-finite floats as null). A
        failed write (a full disk) is cut off again, so the file keeps its complete epochs."""
        line = json.dumps({k: _json_float(v) for k, v in record.items()}, allow_nan=False)
        path = self._p(METRICS)
        with open(path, "a", encoding="utf-8") as f:
            size = f.tell()
            try:
                f.write(line + "\n")
                f.flush()
                os.fsync(f.fileno())
            except OSError:
                f.truncate(size)
                raise
        if self.trackers is not None:
            self.trackers.log(record["epoch"], numeric(record))

    def read_metrics(self, *, partial_ok: bool = False) -> list[dict[str, Any]]:
        """The per-epoch objects of metrics.jsonl, epochs 0, 1, 2, ... ([] when absent).

        A broken line is an error naming the file and line, except a broken last line with
        ``partial_ok``: it is left out with a warning naming it (an epoch being written, or a
        killed run; resuming the run recomputes that epoch). Epochs out of order (two writers)
        are an error."""
        path = self._p(METRICS)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        except UnicodeDecodeError as e:
            raise GrammarlabError(f"not a metrics file: {e.reason}", file=str(path)) from None
        out: list[dict[str, Any]] = []
        for i, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                ok = isinstance(obj, dict) and _is_int(obj.get("epoch"))
                why = "not an epoch object (needs an integer 'epoch')"
                bad = [k for k, v in obj.items() if not _is_number(v)] if ok else []
                if bad:  # every value of an epoch line is a number (null: not finite)
                    ok, why = False, f"{bad[0]} is {obj[bad[0]]!r}, not a number"
                    if not all(not x.strip() for x in lines[i:]):
                        raise GrammarlabError(why, file=str(path), line=i,
                                              hint="the file was edited; the run's own metrics "
                                              "hold numbers only")  # fmt: skip
            except json.JSONDecodeError as e:
                ok, why = False, f"not valid JSON ({e.msg})"
            if not ok:
                last = all(not x.strip() for x in lines[i:])
                if last and partial_ok:
                    warnings.warn(f"{path}:{i}: incomplete last line left out (an epoch being "
                                  "written, or a killed run: resuming recomputes it)",
                                  stacklevel=2)  # fmt: skip
                    break
                hint = ("the run was killed while writing this epoch: run the same training "
                        "command again to recompute it") if last else None  # fmt: skip
                raise GrammarlabError(f"broken metrics line: {why}", file=str(path), line=i,
                                      hint=hint)  # fmt: skip
            if obj["epoch"] != len(out):
                raise GrammarlabError(
                    f"epoch {obj['epoch']} where epoch {len(out)} was expected",
                    file=str(path), line=i,
                    hint="two processes wrote this run, or the file was edited")  # fmt: skip
            out.append(obj)
        return out

    # ------------------------------------------------------------------------- epoch files

    def write_surprisals(self, epoch: int, arrays: dict[str, np.ndarray]) -> None:
        """surprisals/epoch_XXXX.npz: per set X, X_bits, X_correct, X_greedy_match."""

        def save(p: Path) -> None:
            with open(p, "wb") as f:  # a file object: numpy would append .npz to a path
                np.savez(f, **arrays)  # uncompressed: compression cost ~4 ms an epoch

        write_atomic(self._p(f"{SURPRISALS}/{epoch_name(epoch, '.npz')}"), save)

    def surprisal_epochs(self) -> list[int]:
        return list(_epoch_files(self._p(SURPRISALS), ".npz"))

    def read_surprisals(self, epoch: int) -> dict[str, np.ndarray]:
        path = self._p(SURPRISALS) / epoch_name(epoch, ".npz")
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (ValueError, OSError, EOFError) as e:
            raise GrammarlabError(f"not a surprisals file: {e}", file=str(path)) from None

    def write_generations(self, epoch: int, text: str) -> None:
        write_text_atomic(self._p(f"{GENERATIONS}/{epoch_name(epoch, '.txt')}"), text)

    def generation_epochs(self) -> list[int]:
        return list(_epoch_files(self._p(GENERATIONS), ".txt"))

    def read_generations(self, epoch: int) -> str:
        return _read_text(self._p(GENERATIONS) / epoch_name(epoch, ".txt"))

    def clear(self) -> None:
        """Remove the outputs of an earlier start (a fresh run, or one killed before its first
        checkpoint): metrics, epoch files, checkpoints, final model, analysis."""
        paths = [self._p(name) for name in (METRICS, SURPRISALS, GENERATIONS, CHECKPOINT,
                 CHECKPOINT_TMP, CHECKPOINT_OLD, FINAL_MODEL, *ANALYSIS)]  # fmt: skip
        for p in paths:  # checked first: no symbolic link among them
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)

    def rewind(self, epoch: int) -> None:
        """Forget everything from ``epoch`` on: metrics lines (a torn last one included),
        surprisals, generations, analysis."""
        if not _is_int(epoch) or epoch < 0:
            raise ValueError(f"rewind to epoch {epoch!r}")  # the callers check the checkpoint
        # every path checked (no symbolic link) before anything is removed
        folders = [(self._p(SURPRISALS), ".npz"), (self._p(GENERATIONS), ".txt")]
        analysis = [self._p(name) for name in ANALYSIS]
        keep = [r for r in self.read_metrics(partial_ok=True) if r["epoch"] < epoch]
        write_text_atomic(self._p(METRICS), "".join(json.dumps(r) + "\n" for r in keep))
        for folder, suffix in folders:
            for k, p in _epoch_files(folder, suffix).items():
                if k >= epoch:
                    p.unlink()
        for p in analysis:
            p.unlink(missing_ok=True)

    # ------------------------------------------------------------------------- checkpoints

    def save_checkpoint(self, epoch: int, model: Any, optimizer: Any, scheduler: Any,
                        tmap: Any, world_size: int = 1) -> None:  # fmt: skip
        """Replace checkpoint/ by the state after ``epoch`` updates (format: runs/checkpoint.py;
        ``tmap``: the run's TokenMap, for the tokenizer; ``world_size``: the processes that
        trained it). Written as checkpoint.tmp/ (removed again when the write fails), then
        swapped in."""
        tmp = self._p(CHECKPOINT_TMP)
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            checkpoint.save(tmp, epoch, model, optimizer, scheduler, tmap, world_size)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.commit_checkpoint()

    def commit_checkpoint(self) -> None:
        """Swap the complete checkpoint.tmp/ in as checkpoint/ (renames: a kill leaves the old
        or the new one)."""
        tmp, cur, old = self._p(CHECKPOINT_TMP), self._p(CHECKPOINT), self._p(CHECKPOINT_OLD)
        if cur.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(cur, old)
        os.replace(tmp, cur)
        shutil.rmtree(old, ignore_errors=True)

    def _checkpoint(self) -> Path | None:
        """The newest complete checkpoint folder (checkpoint/, else checkpoint.old/ after a kill
        between the two renames), or None."""
        for name in (CHECKPOINT, CHECKPOINT_OLD):
            if checkpoint.is_complete(self._p(name)):
                return self._p(name)
        return None

    def checkpoint_epoch(self) -> int | None:
        d = self._checkpoint()
        return None if d is None else checkpoint.epoch(d)

    def load_checkpoint(self, model: Any, optimizer: Any = None, scheduler: Any = None,
                        world_size: int = 1, rank: int = 0,
                        sharding: dict[str, Any] | None = None) -> int:  # fmt: skip
        """Restore weights (and optimizer, scheduler and random states when given, for a run on
        ``world_size`` processes, this one of rank ``rank``, sharded as ``sharding`` under
        FSDP); return the epoch."""
        d = self._checkpoint()
        if d is None:
            raise GrammarlabError("run folder has no checkpoint", file=str(self.path))
        return checkpoint.load(d, model, optimizer, scheduler, world_size, rank, sharding)

    # a sharded (FSDP) checkpoint: rank 0 begins it, every rank writes its shard into
    # checkpoint_tmp_path, rank 0 finishes it (train/distributed.py puts the barriers between)

    @property
    def checkpoint_tmp_path(self) -> Path:
        """checkpoint.tmp/: the checkpoint being written."""
        return self._p(CHECKPOINT_TMP)

    def begin_checkpoint(self) -> None:
        """An empty checkpoint.tmp/ for the shards of a sharded checkpoint."""
        tmp = self._p(CHECKPOINT_TMP)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()

    def finish_sharded_checkpoint(self, epoch: int, optimizer: Any, scheduler: Any,
                                  sharding: dict[str, Any]) -> None:  # fmt: skip
        """After every rank's shard: the training state (which completes checkpoint.tmp/), then
        the swap; checkpoint.tmp/ is removed again when the write fails."""
        tmp = self._p(CHECKPOINT_TMP)
        try:
            checkpoint.save_sharded_state(tmp, epoch, optimizer, scheduler, sharding)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.commit_checkpoint()

    # ------------------------------------------------------------------------- analysis

    def write_analysis(self, phases: dict[str, Any], measures: list[dict[str, Any]],
                       per_string: Any, per_position: Any) -> None:  # fmt: skip
        """phases.json, measures.jsonl, per_string.csv, per_position.csv (pandas frames), each
        atomically; phases.json last, so a complete analysis is newer than the metrics."""
        text = "".join(json.dumps(r, allow_nan=False) + "\n" for r in measures)
        write_text_atomic(self._p(MEASURES), text)
        write_atomic(self._p(PER_STRING), lambda p: per_string.to_csv(p, index=False))
        write_atomic(self._p(PER_POSITION), lambda p: per_position.to_csv(p, index=False))
        write_json_atomic(self._p(PHASES), phases)
        if self.trackers is not None:
            for r in measures:
                self.trackers.log(r["epoch"], numeric(r, "measures/"))

    def analysis_is_current(self) -> bool:
        """All analysis files exist and none is older than metrics.jsonl."""
        try:
            t_metrics = self._p(METRICS).stat().st_mtime_ns
            return all(self._p(n).stat().st_mtime_ns >= t_metrics for n in ANALYSIS)
        except FileNotFoundError:
            return False

    def read_phases(self) -> dict[str, Any] | None:
        """phases.json (None when absent; one that is not a JSON object is an error naming it)."""
        return _read_json_obj(self._p(PHASES), strict=True)

    def read_measures(self) -> list[dict[str, Any]]:
        """measures.jsonl rows ([] when absent; a broken line is an error naming it)."""
        path = self._p(MEASURES)
        hint = "grammarlab measures RUN rewrites it"
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        except UnicodeDecodeError as e:
            raise GrammarlabError(f"not a measures file: not UTF-8 ({e.reason})", file=str(path),
                                  hint=hint) from None  # fmt: skip
        except OSError as e:
            raise GrammarlabError(f"cannot read it: {e.strerror or e}", file=str(path)) from None
        rows = []
        for i, line in enumerate(lines, start=1):
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise GrammarlabError(f"not valid JSON ({e.msg})", file=str(path), line=i,
                                          hint=hint) from None  # fmt: skip
                if not isinstance(row, dict) or not _is_int(row.get("epoch")):
                    raise GrammarlabError("not an epoch object (needs an integer 'epoch')",
                                          file=str(path), line=i, hint=hint)  # fmt: skip
                rows.append(row)
        return rows

    def read_per_string(self) -> Any:
        """per_string.csv as a DataFrame (None when absent; a garbled table is an error)."""
        return _read_csv(self._p(PER_STRING), ("epoch", "index", "model_bits"), ("dataset",))

    def read_per_position(self) -> Any:
        """per_position.csv as a DataFrame (None when absent; a garbled table is an error)."""
        return _read_csv(self._p(PER_POSITION), ("epoch", "position", "excess_bits"),
                         ("dataset",))  # fmt: skip


# ----------------------------------------------------------------------------- finding runs


def has_runs(path: Path | str) -> bool:
    """Whether ``path`` is a run folder or holds one below it (what :func:`find_runs` finds)."""
    root = Path(path)
    return root.is_dir() and (RunDir(root).has_metrics() or any(root.rglob(METRICS)))


def find_runs(path: Path | str) -> list[RunDir]:
    """The run folder ``path`` itself, or every run folder below it (sorted)."""
    root = Path(path)
    if not root.exists():
        raise GrammarlabError(f"no such folder: {root}", file=str(root))
    if RunDir(root).has_metrics():
        return [RunDir(root)]
    runs = sorted(p.parent for p in root.rglob(METRICS))
    if not runs:
        raise GrammarlabError(f"no run found: no {METRICS} in this folder or below it",
                              file=str(root))  # fmt: skip
    return [RunDir(p) for p in runs]


def run_id(run: RunDir, root: Path | str) -> str:
    """The run's name: its path relative to the folder searched, or its own name."""
    root = Path(root)
    return run.path.name if run.path == root else run.path.relative_to(root).as_posix()


def read_metrics(run_dir: Path | str) -> list[dict[str, Any]]:
    """:meth:`RunDir.read_metrics` of a folder."""
    return RunDir(Path(run_dir)).read_metrics()


# ----------------------------------------------------------------------------- helpers


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise GrammarlabError(f"not a text file: not UTF-8 ({e.reason})", file=str(path)) from None


def _holder(text: str) -> str:
    try:
        h = json.loads(text)
        return f"pid {h['pid']} on {h['host']} since {h['since']}"
    except (ValueError, KeyError, TypeError):
        return "holder unknown"


def _read_json_obj(path: Path, strict: bool = False) -> dict[str, Any] | None:
    """A JSON object file (None when absent). Something that is not a file is an error; a file
    that is not a JSON object is None (a foreign writer's half-written file), or with ``strict``
    an error naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as e:
        if not strict:
            return None
        raise GrammarlabError(f"not a JSON file: not UTF-8 ({e.reason})", file=str(path)) from None
    except OSError as e:  # a directory, a file that cannot be read
        raise GrammarlabError(f"cannot read it: {e.strerror or e}", file=str(path),
                              hint="remove it (grammarlab writes it again)") from None  # fmt: skip
    try:
        obj = json.loads(text)
    except ValueError as e:
        if not strict:
            return None
        raise GrammarlabError(f"not valid JSON ({e})", file=str(path),
                              hint="grammarlab measures RUN rewrites it") from None  # fmt: skip
    if not isinstance(obj, dict):
        if not strict:
            return None
        raise GrammarlabError(f"not a JSON object (a {type(obj).__name__})", file=str(path),
                              hint="grammarlab measures RUN rewrites it")  # fmt: skip
    return obj


def _read_csv(path: Path, numeric: tuple[str, ...], text: tuple[str, ...]) -> Any:
    """A CSV table of the run folder as a DataFrame (None when absent); one that does not parse,
    lacks a column of ``numeric`` or ``text``, or holds a non-number in a ``numeric`` column, is
    an error naming it."""
    import pandas as pd  # heavy: only for tables

    if not path.exists():
        return None
    hint = "grammarlab measures RUN rewrites it"
    try:
        frame = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError, OSError, pd.errors.ParserError) as e:
        why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise GrammarlabError(f"not a readable CSV table: {why}", file=str(path),
                              hint=hint) from None  # fmt: skip
    missing = [c for c in (*numeric, *text) if c not in frame.columns]
    if missing:
        raise GrammarlabError(f"the table lacks the column(s) {', '.join(missing)}",
                              file=str(path), hint=hint)  # fmt: skip
    bad = [c for c in numeric if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise GrammarlabError(f"column {bad[0]} holds values that are not numbers",
                              file=str(path), hint=hint)  # fmt: skip
    return frame


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def _json_float(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _epoch_files(folder: Path, suffix: str) -> dict[int, Path]:
    """``epoch_XXXX<suffix>`` files of a folder by epoch, sorted ({} when absent)."""
    if not folder.is_dir():
        return {}
    out = {}
    for p in folder.glob(f"epoch_*{suffix}"):
        m = _EPOCH_FILE.match(p.name[: -len(suffix)])
        if m:
            out[int(m.group(1))] = p
    return dict(sorted(out.items()))
