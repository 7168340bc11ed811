"""The epoch loop (the paper "Rethinking memorization in LLMs: on learning by rote vs. with
understanding", Sec. 2-4 and App. A.1).

One epoch = one optimizer step on the whole training set (micro-batches accumulate gradients,
step.py). Epoch 0 is the model before any update, epoch k the model after k updates; every epoch
is evaluated on every set. Our models have no dropout, so the forward pass of update k+1 *is* the
evaluation of the training set at epoch k: we reuse it, and only the last epoch needs an extra
forward on the training set (with LoRA dropout the training set is evaluated separately).
Sequential runs (Sec. 4) train on D1 for ``epochs`` then on D2 for ``epochs2`` (epochs E+1..E+E2
are stage 2), each stage with a fresh AdamW and its own linear decay unless configured otherwise.
The sets never change during a run, so their micro-batches (and the prefix tries that let the
model compute shared prefixes once, prefix_trie.py) are planned once. On a CPU each pass is split
over the run's CPU workers, threads that each run their own micro-batches (cpu_parallel.py).

Everything the loop writes goes through the run folder (runs/folder.py). The end-of-run analysis
is not the loop's job: runs/launch.py runs it after training. Under ``accelerate launch`` the
same loop runs on every process, each on its share of the strings, and rank 0 writes
(distributed.py).
"""

from __future__ import annotations

import errno
import math
import os
import re
import sys
import time
import warnings
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError

from grammarlab.errors import ConfigError, GrammarlabError
from grammarlab.grammar.entropy import expected_length
from grammarlab.grammar.load import load
from grammarlab.grammar.structure import CRITICAL_TOL, spectral_radius
from grammarlab.progress import progress
from grammarlab.runs.folder import RunDir, Status
from grammarlab.train.config import TrainConfig, memory_problem, resolve
from grammarlab.train.cpu_parallel import Workers, resolve_workers
from grammarlab.train.data import make_datasets
from grammarlab.train.distributed import Distributed, launched
from grammarlab.train.evaluate import (
    Encoded,
    Plan,
    SetResult,
    encode_set,
    evaluate_plan,
    greedy_matches_from_correct,
    plan,
)
from grammarlab.train.export import save_final_model
from grammarlab.train.generate import format_generations, generate_strings
from grammarlab.train.models import (
    active_dropout,
    apply_lora,
    count_parameters,
    load_model,
    resolve_device,
)
from grammarlab.train.prefix_trie import supports
from grammarlab.train.step import forward_backward, make_optimizer

# OS errors that mean "the run folder cannot be written", reported as a one-line error
_WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


def train(cfg: TrainConfig, run_dir: str | Path | RunDir, *, quiet: bool = False) -> str:
    """Train (or resume) the run of ``cfg`` in ``run_dir``, holding the folder's lock; return how
    training ended: ``done`` or ``diverged`` (status.json then says ``analysing``: the analysis is
    runs.launch.run's job). A run whose training has ended is not trained again; a folder holding
    a different config, or another process's run, is refused."""
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(Path(run_dir))
    # several processes (accelerate launch): rank 0 writes and holds the lock (distributed.py)
    dist = Distributed() if launched() else None
    if dist is not None:
        run, quiet = dist.view(run), quiet or not dist.is_main
    with run.lock():
        cfg, grammar = prepare(cfg, run)
        status = run.read_status()
        if status is not None and status.trained is not None:
            return status.trained
        try:
            # the run's own random stream (dropout masks, where a model has dropout), seeded in
            # _setup or restored from the checkpoint; the caller's RNG state is left as it was
            devices = range(torch.cuda.device_count())
            with torch.random.fork_rng(devices=devices), ExitStack() as stack:
                end = _run(cfg, run, grammar, quiet, stack, dist)
        except BaseException as e:
            _record_failure(run, e)
            if isinstance(e, SafetensorError):  # a failed weights write: not an OSError
                raise run.write_error(safetensors_os_error(e)) from e
            if isinstance(e, OSError) and e.errno in _WRITE_ERRNOS:
                raise run.write_error(e) from e
            raise
        run.write_status(end)
        return end.trained


def prepare(cfg: TrainConfig, run: RunDir) -> tuple[TrainConfig, Any]:
    """The resolved config and the grammar of a run: a new run reads ``cfg.grammar``; a started
    one its own copy (grammar.cfg), so it resumes from any folder even when the original file has
    moved. Refuses a folder holding another config, or a grammar file that has changed."""
    started = run.read_config() is not None
    saved = run.grammar_text() if started else None
    if saved is None and started and run.checkpoint_epoch() is not None:
        raise GrammarlabError(
            f"the run folder has a checkpoint but no {run.grammar_path.name} (the copy of the "
            "grammar it started with), so its grammar cannot be checked",
            file=str(run.grammar_path),
            hint="restore the file, or start the run again in a new folder (resuming with "
            "another grammar would mix two datasets)",
        )
    if saved is None:
        run.check_fresh()
        grammar = load(cfg.grammar)
    else:
        given = Path(cfg.grammar)
        if given.is_file() and given.read_bytes() != saved.encode("utf-8"):
            raise ConfigError(f"{cfg.grammar} changed since the run in {run} started",
                              file=str(run.grammar_path),
                              hint="use --out to pick another folder")  # fmt: skip
        grammar = run.read_grammar()
    cfg = resolve(cfg, grammar)
    run.check_same_config(cfg)
    check_grammar_size(cfg, grammar, run.grammar_path if saved is not None else cfg.grammar)
    return cfg, grammar


def check_grammar_size(cfg: TrainConfig, grammar: Any, where: Path | str) -> None:
    """Refuse, before any string is drawn, a critical grammar (spectral radius of its mean
    matrix >= 1: its expected string length is infinite, so sampling never ends or fills the
    memory) and sets whose expected size does not fit in this machine's memory
    (config.memory_problem)."""
    rho = spectral_radius(grammar)
    if rho >= 1 - CRITICAL_TOL:
        raise GrammarlabError(
            f"the grammar is critical (spectral radius of its mean matrix {rho:.6g} >= 1): its "
            "expected string length is infinite, so its strings cannot be drawn",
            file=str(where),
            hint="lower the probabilities of the recursive rules (grammarlab grammar info FILE "
            "shows the radius)",
        )
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    why = memory_problem(cfg, expected_length(grammar), memory)
    if why:
        raise ConfigError(why, key="n_test", file=str(where),
                          hint="ask for fewer strings (n_train, n_test, n_random) or a grammar "
                          "with shorter strings")  # fmt: skip


def safetensors_os_error(e: Exception) -> OSError:
    """The OSError inside a safetensors write error (its message carries the OS error code, as
    in ``IoError(Os { code: 28, ... })``; errno None when it names none)."""
    m = re.search(r"code: (\d+)", str(e))
    if m:
        code = int(m.group(1))
        return OSError(code, os.strerror(code))
    return OSError(None, f"the safetensors write failed ({e})")


def check_data(run: RunDir, sets: dict[str, list[tuple[str, ...]]]) -> None:
    """Refuse to resume a run whose data/ files are not the sets drawn again from its grammar
    and seeds (an edited data file, or an edited grammar whose grammar.cfg copy was deleted):
    the resumed epochs would train or score other strings than the first ones."""
    saved = run.read_data()
    for name, strings in sets.items():
        where = str(run.path / "data" / f"{name}.txt")
        if name not in saved:
            raise GrammarlabError("the run's data file is missing", file=where,
                                  hint="start the run again in a new folder")  # fmt: skip
        if saved[name] != list(strings):
            pairs = enumerate(zip(saved[name], strings, strict=False))
            n = next((i for i, (a, b) in pairs if a != b), min(len(saved[name]), len(strings)))
            raise GrammarlabError(
                f"the run's {name} strings differ from those its grammar and seeds draw (first "
                f"at string {n + 1}; {len(saved[name])} saved, {len(strings)} drawn): the file "
                "or the grammar was edited since the run started",
                file=where,
                line=n + 1 if n < len(saved[name]) else None,
                hint="resuming would mix two datasets; start the run again in a new folder",
            )


def _record_failure(run: RunDir, e: BaseException) -> None:
    """status.json: failed, with the reason (best effort: the disk may be full)."""
    try:
        try:
            last = run.read_metrics(partial_ok=True)
        except GrammarlabError:  # the metrics are what is wrong: the status still says why
            last = []
        reason = "interrupted" if isinstance(e, KeyboardInterrupt) else f"{type(e).__name__}: {e}"
        run.write_status(Status("failed", last[-1]["epoch"] if last else None, reason))
    except (OSError, GrammarlabError) as inner:
        print(f"{run}: could not record the failure in status.json: {inner}", file=sys.stderr)


@dataclass
class _Run:
    """What the epoch loop works with: the model, its sets and optimizer, the first epoch."""

    model: torch.nn.Module
    tmap: Any
    sets: dict[str, Encoded]
    opt: torch.optim.Optimizer
    sched: Any
    start: int
    train_model: torch.nn.Module  # the model the training pass runs (distributed: DDP-wrapped)
    workers: int  # CPU threads that split every pass (cpu_parallel.py), as env.json records
    threads: int  # torch intra-op threads of the run (a resume keeps those of its start)


def _setup(cfg: TrainConfig, run: RunDir, grammar: Any, dist: Distributed | None) -> _Run:
    """Datasets, model, optimizer and the first epoch to run: 0 for a fresh run, else the
    checkpoint's epoch (after rewinding the files from that epoch on, which also drops a torn
    metrics line; that epoch is evaluated again)."""
    device, dtype = pick_device(cfg)
    device = dist.device if dist is not None else device
    data = make_datasets(cfg, grammar)
    start = run.checkpoint_epoch() if run.read_config() is not None else None
    if start is not None and start > cfg.total_epochs:  # checked before anything is rewound
        raise GrammarlabError(f"the checkpoint is at epoch {start}, beyond the run's "
                              f"{cfg.total_epochs} epochs", file=str(run.checkpoint_path),
                              hint="the file was edited, or the folder holds another run; "
                              "start the run again in a new folder")  # fmt: skip
    started = run.read_env() if start is not None else {}
    check_counts(cfg, started, str(run.path / "env.json"))  # before anything is rewound
    if start is not None and len(run.read_metrics(partial_ok=True)) < start:
        warnings.warn(f"{run}: metrics end before the checkpoint's epoch {start}; starting the "
                      "run again from epoch 0", stacklevel=2)  # fmt: skip
        start, started = None, {}
    if start is not None:
        check_data(run, data.sets)
    if dist is not None:
        dist.barrier()  # every rank has read the folder; from here on rank 0 writes it
    if start is None:  # a fresh run (or one killed before its first checkpoint)
        torch.manual_seed(cfg.model_seed)  # a checkpoint restores the stream on resume
        run.clear()
        run.write_config(cfg)
        run.write_grammar(Path(cfg.grammar).read_text(encoding="utf-8"))
        run.write_data(data.sets)
    else:
        run.rewind(start)
    # under FSDP the model is built on the CPU and sharded onto the devices (distributed.py)
    model_device = device if dist is None else dist.model_device()
    model, tmap = build_model(cfg, grammar.terminals, model_device, dtype)
    if cfg.compile is not None:
        if dist is not None:
            raise ConfigError("compile works in one process only, not under accelerate launch",
                              key="compile", hint="unset it for a distributed run")  # fmt: skip
        model.compile(mode=cfg.compile)  # in place: the parameters' names do not change
    n_params = count_parameters(model), count_parameters(model, trainable_only=True)
    n_workers, threads = arithmetic(cfg, model, dist, started, str(run.path / "env.json"))
    setup = dist.describe() if dist is not None else None
    run.write_env(cfg, str(device), *n_params, n_workers, threads, setup)
    names = {"train": "d1", "train2": "d2"} if cfg.sequential else {}
    sets = {names.get(k, k): encode_set(names.get(k, k), v, tmap, device)
            for k, v in data.sets.items()}  # fmt: skip
    # wrapped before the optimizer is made: FSDP replaces the parameters by their shards
    wrapped = model if dist is None else dist.wrap(model)
    opt, sched = make_optimizer(model, cfg, 0)
    if start is not None:
        if cfg.sequential and start > cfg.epochs and (cfg.fresh_optimizer or cfg.reset_schedule):
            keep = None if cfg.fresh_optimizer else opt
            opt, sched = make_optimizer(model, cfg, cfg.epochs, keep)
        if dist is None:
            run.load_checkpoint(model, opt, sched)
        else:
            dist.load_checkpoint(run, model, opt, sched)
    return _Run(model, tmap, sets, opt, sched, start or 0, wrapped, n_workers, threads)


def _run(cfg: TrainConfig, run: RunDir, grammar: Any, quiet: bool, stack: ExitStack,
         dist: Distributed | None) -> Status:  # fmt: skip
    """The epochs from the start epoch to the last; the status training ends with."""
    r = _setup(cfg, run, grammar, dist)
    model, sets = r.model, r.sets
    # the strings this process runs: all of them, or this rank's share (distributed.shard)
    local = sets if dist is None else {name: dist.local(enc) for name, enc in sets.items()}
    run.write_status(Status("running", r.start - 1 if r.start else None))
    E, T = cfg.epochs, cfg.total_epochs
    share, plans = share_prefixes(cfg, model), {}
    # Without dropout the training forward is the training set's evaluation; with dropout (LoRA
    # dropout > 0) it is not, and the training set is evaluated like the others.
    reuse = not active_dropout(model)
    n_workers = r.workers
    if r.threads != torch.get_num_threads():  # the run's own count, given back when it ends
        stack.callback(torch.set_num_threads, torch.get_num_threads())
        torch.set_num_threads(r.threads)

    def plan_of(names: tuple[str, ...], training: bool = False) -> Plan:  # each planned once
        if (names, training) not in plans:
            # the DDP-wrapped model of a distributed training pass runs without prefix tries
            trie = share and not (dist is not None and training)
            p = plan([local[n] for n in names], cfg.micro_batch_size, trie, n_workers)
            # DDP synchronizes training passes, FSDP every forward: each rank runs as many
            if dist is not None and (training or dist.collective_forward()):
                p = dist.equalize(p, r.tmap.bos_id)
            plans[names, training] = p
        return plans[names, training]

    workers = stack.enter_context(Workers(n_workers))
    # progress counts epochs of training (updates): a T-epoch run shows T; epoch 0 is the
    # evaluation before any update. Off a terminal, a line every tenth of the run (and the last).
    bar = stack.enter_context(
        progress(
            T, "train", "epochs", show=not quiet, initial=max(r.start - 1, 0), every=max(1, T // 10)
        )
    )
    # checkpoint policy (checkpoint_due): the last write's seconds and when it ended; 0 s at the
    # start, so the first update is followed by a checkpoint whose cost then sets the pace
    write_s, ckpt_s, last_save = 0.0, 0.0, time.perf_counter()
    for k in range(r.start, T + 1):
        t0 = time.perf_counter()
        train_name = ("d1" if k <= E else "d2") if cfg.sequential else "train"
        upd = None if k == T else ("d2" if cfg.sequential and k >= E else train_name)
        if cfg.sequential and k == E and upd and (cfg.fresh_optimizer or cfg.reset_schedule):
            r.opt, r.sched = make_optimizer(model, cfg, E, None if cfg.fresh_optimizer else r.opt)
        res: dict[str, SetResult] = {}
        if upd:  # forward + backward of update k+1 = the training set's evaluation at epoch k
            r.train_model.train()
            r.opt.zero_grad(set_to_none=True)
            if dist is not None:  # dropout masks from (seed, epoch, rank): resumable per rank
                torch.manual_seed(dist.seed(cfg.model_seed, k))
            scale = {} if dist is None else {"n": len(sets[upd].strings), "backward": dist.backward}
            trained = forward_backward(r.train_model, plan_of((upd,), True), workers, **scale)
            if reuse:
                res[upd] = trained
        model.eval()
        rest = tuple(name for name in sets if name not in res)  # one forward pass for all of them
        res.update(zip(rest, evaluate_plan(model, plan_of(rest), workers), strict=True))
        if dist is not None:  # every rank's rows summed into the whole sets' results
            res = {name: dist.reduce(v, sets[name]) for name, v in res.items()}
        _add_greedy_matches(res, sets, cfg.extraction_prefix)
        if k in cfg.generate_epochs and cfg.n_generate:
            gen_model = model if dist is None else dist.for_generation(model)
            _write_generations(run, k, gen_model, r.tmap, cfg, sets)
        if dist is not None:
            dist.after_inference(model)
        lr = r.opt.param_groups[0]["lr"] if upd else 0.0
        record = _record(k, 1 if k <= E else 2, lr, res, train_name, time.perf_counter() - t0,
                         ckpt_s)  # fmt: skip
        _write_surprisals(run, k, res)
        run.append_metrics(record)
        run.write_status(Status("running", k))
        bar.set_postfix(epoch=k, train=f"{record['train_loss']:.3f}",
                        test=f"{record['test_loss']:.3f}")  # fmt: skip
        if k:
            bar.update(1)
        elif not quiet:
            bar.write("epoch 0: the evaluation before any update")
        bad = _non_finite_loss(res, (train_name, upd))
        if bad:
            return Status("analysing", k, f"diverged: {bad} at epoch {k}", trained="diverged")
        if upd:
            r.opt.step()
            r.sched.step()
            # the checkpoint of epoch k + 1 (its seconds go into that epoch's metrics line)
            ckpt_s = 0.0
            if checkpoint_due(cfg, k + 1, time.perf_counter() - last_save, write_s):
                t1 = time.perf_counter()
                if dist is None:
                    run.save_checkpoint(k + 1, model, r.opt, r.sched, r.tmap)
                else:
                    dist.save_checkpoint(run, k + 1, model, r.opt, r.sched, r.tmap)
                last_save = time.perf_counter()
                ckpt_s = write_s = last_save - t1
    if cfg.save_final_model:
        final = model
        if dist is not None:  # rank 0 saves; under FSDP every rank helps gather the weights
            dtype = pick_device(cfg)[1]
            final = dist.final_model(model, lambda: build_model(cfg, grammar.terminals, "cpu",
                                                                dtype)[0])  # fmt: skip
        if final is not None:
            save_final_model(run.final_model_path, final, r.tmap)
    return Status("analysing", T, trained="done")


def checkpoint_due(cfg: TrainConfig, epoch: int, since_s: float, last_write_s: float) -> bool:
    """Whether to checkpoint the state after ``epoch`` updates: always at the end of the run and
    of a sequential run's stage 1; every ``checkpoint_every`` epochs when that is set; else once
    ``since_s`` seconds since the last checkpoint (or the start) reach the smaller of
    ``checkpoint_minutes`` and ``last_write_s / checkpoint_overhead``, so that writing takes at
    most that share of the time and a killed run loses at most that many minutes. A tiny model
    (a write of ~20-90 ms) then checkpoints every few seconds, a multi-GB model every half hour."""
    if epoch == cfg.total_epochs or (cfg.sequential and epoch == cfg.epochs):
        return True
    if cfg.checkpoint_every is not None:
        return epoch % cfg.checkpoint_every == 0
    return since_s >= min(60.0 * cfg.checkpoint_minutes, last_write_s / cfg.checkpoint_overhead)


def _non_finite_loss(res: dict[str, SetResult], names: tuple[str | None, ...]) -> str:
    """'' when the training losses are finite, else which one is not and its value."""
    for n in dict.fromkeys(n for n in names if n):
        if not math.isfinite(res[n].loss):
            return f"the {n} loss is {res[n].loss}"
    return ""


def _add_greedy_matches(res: dict[str, SetResult], sets: dict[str, Encoded], prefix: int) -> None:
    for name, enc in sets.items():
        lengths = (enc.mask.sum(1) - 2).tolist()  # string tokens, without bos and eos
        res[name].greedy_match = greedy_matches_from_correct(res[name].correct, lengths, prefix)


def share_prefixes(cfg: TrainConfig, model: torch.nn.Module) -> bool:
    """Whether the run computes common prefixes once (prefix_trie.py): asked for, an
    architecture it is tested on, and no dropout (a shared prefix would share its dropout mask)."""
    return cfg.share_prefixes and supports(model) and not active_dropout(model)


def cpu_workers(cfg: TrainConfig, model: torch.nn.Module, dist: Distributed | None = None) -> int:
    """Threads that split each epoch's strings (cpu_parallel.py): ``cfg.cpu_workers`` or auto,
    1 on a GPU, for a model with dropout, a compiled model or in a distributed run (the workers'
    gradients would bypass DDP's synchronization)."""
    if dist is not None or cfg.compile is not None:  # compiled code runs in one thread
        return 1
    device = next(model.parameters()).device
    return resolve_workers(cfg.cpu_workers, device, bool(active_dropout(model)))


def arithmetic(
    cfg: TrainConfig,
    model: torch.nn.Module,
    dist: Distributed | None,
    started: dict[str, Any],
    where: str = "env.json",
) -> tuple[int, int]:
    """(CPU workers, torch threads) of a run: the machine's for a fresh run, and those its start
    recorded in env.json (``started``, read from ``where``) for a resumed one. Both decide how
    float sums are grouped (a matrix product split over 2 threads, gradients summed per worker),
    and either one changed moves the losses by ~1e-8 nats/token (measured: 30 tiny-model epochs at
    1 vs 2 threads differ by up to 1.4e-8), so a resume that kept the resuming machine's counts
    would not be bit-identical to the uninterrupted run. Pinning them makes it so on the same kind
    of CPU; another CPU's kernels may still round differently. Each count is range-checked
    against this machine's CPUs before it acts (100,000 threads crash torch)."""
    check_counts(cfg, started, where)
    threads, workers = torch.get_num_threads(), cfg.cpu_workers
    if started.get("threads") is not None:
        threads = started["threads"]
    if workers is None and started.get("cpu_workers") is not None:
        workers = started["cpu_workers"]
    return cpu_workers(replace(cfg, cpu_workers=workers), model, dist), threads


def check_counts(cfg: TrainConfig, started: dict[str, Any], where: str = "env.json") -> None:
    """Refuse CPU worker and thread counts (``cfg.cpu_workers``, env.json's ``started``) that
    are not integers from 1 to this machine's CPUs."""
    workers, cpus = cfg.cpu_workers, os.cpu_count() or 1
    if workers is not None and workers > cpus:
        raise ConfigError(
            f"cpu_workers = {workers} is more than this machine's {cpus} CPUs",
            key="cpu_workers",
            hint=f"set it to at most {cpus}, or unset it",
        )
    for name in ("threads", "cpu_workers"):
        v = started.get(name)
        if v is not None and not (
            isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= cpus
        ):
            raise GrammarlabError(
                f"{name} = {v!r}: the run started with a count this machine cannot give (an "
                f"integer from 1 to its {cpus} CPUs)",
                file=where,
                hint=f"resume it on a machine with enough CPUs, or set {name} in env.json to at "
                f"most {cpus} (the resumed epochs may then differ by float rounding)",
            )


def build_model(cfg: TrainConfig, terminals, device, dtype):
    """The run's model (LoRA adapters added when ``lora.rank`` > 0) and its TokenMap."""
    model, tmap = load_model(cfg.model, terminals, seed=cfg.model_seed, dtype=dtype, device=device)
    if cfg.lora.rank:
        model = apply_lora(model, rank=cfg.lora.rank, alpha=cfg.lora.alpha,
                           dropout=cfg.lora.dropout, targets=cfg.lora.targets,
                           seed=cfg.model_seed)  # fmt: skip
    return model, tmap


def pick_device(cfg: TrainConfig) -> tuple[torch.device, torch.dtype]:
    """The run's device (CUDA when available under device = "auto") and dtype; a clear error
    for a CUDA request that this machine cannot meet. bfloat16 runs on the CPU too (slower than
    float32 there on most CPUs, but the same code path as on a GPU)."""
    return resolve_device(cfg.device), getattr(torch, cfg.dtype)


def _record(k, stage, lr, res, train_name, seconds, checkpoint_s) -> dict:
    """One metrics.jsonl line: losses in nats/token (Eq. 1), accuracies, the epoch's seconds
    (training and evaluation) and the seconds spent writing the checkpoint of this epoch's state
    (0 when there is none)."""
    get = {n: res.get(n) for n in (train_name, "test", "random")}
    rec = {"epoch": k, "stage": stage, "lr": lr}
    for key, name in (("train", train_name), ("test", "test"), ("random", "random")):
        rec[f"{key}_loss"] = get[name].loss if get[name] else None
    for key, name in (("train", train_name), ("test", "test"), ("random", "random")):
        rec[f"{key}_acc"] = get[name].acc if get[name] else None
    for name in ("d1", "d2"):
        if name in res:
            rec[f"{name}_loss"], rec[f"{name}_acc"] = res[name].loss, res[name].acc
    rec["time_s"] = seconds
    rec["checkpoint_s"] = checkpoint_s
    return rec


def _write_surprisals(run: RunDir, k: int, res: dict[str, SetResult]) -> None:
    arrays = {}
    for name, r in res.items():
        arrays.update({f"{name}_bits": r.token_bits, f"{name}_correct": r.correct,
                       f"{name}_greedy_match": r.greedy_match})  # fmt: skip
    run.write_surprisals(k, arrays)


def _write_generations(run: RunDir, k, model, tmap, cfg, sets) -> None:
    """generations/epoch_XXXX.txt: n_generate samples drawn with a generator seeded by
    (seed, epoch), so a resumed run draws the same samples."""
    device = next(model.parameters()).device
    seed = int(np.random.SeedSequence([cfg.seed, k]).generate_state(1)[0])
    gen = torch.Generator(device=device).manual_seed(seed)
    longest = max(len(s) for enc in sets.values() for s in enc.strings)
    limit = getattr(model.config, "max_position_embeddings", 4096) - 1
    samples = generate_strings(model, tmap, cfg.n_generate, min(2 * longest + 2, limit), gen)
    run.write_generations(k, format_generations(samples))
