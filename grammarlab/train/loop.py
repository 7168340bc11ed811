"""The epoch loop (paper seed 002, Sec. 2-4 and App. A.1).

One epoch = one optimizer step on the whole training set (micro-batches accumulate gradients).
Epoch 0 is the model before any update, epoch k the model after k updates; every epoch is
evaluated on every set. Our models have no dropout, so the forward pass of update k+1 *is* the
evaluation of the training set at epoch k: we reuse it, and only the last epoch needs an extra
forward on the training set (with LoRA dropout the training set is evaluated separately).
Sequential runs (Sec. 4) train on D1 for ``epochs`` then on D2 for ``epochs2`` (epochs E+1..E+E2
are stage 2), each stage with a fresh AdamW and its own linear decay unless configured otherwise.
The sets never change during a run, so their micro-batches (and the prefix tries that let the
model compute shared prefixes once, prefix_trie.py) are planned once. On a CPU each pass is split
over the run's CPU workers, threads that each run their own micro-batches (cpu_parallel.py).
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from grammarlab.errors import ConfigError
from grammarlab.runs import folder as runs
from grammarlab.train.config import TrainConfig, resolve
from grammarlab.train.cpu_parallel import Workers, resolve_workers
from grammarlab.train.evaluate import (
    Plan,
    SetResult,
    encode_set,
    evaluate_plan,
    format_generations,
    generate_strings,
    greedy_matches_from_correct,
    plan,
    run_plan,
)


def train(cfg: TrainConfig, run_dir: str | Path, *, quiet: bool = False) -> str:
    """Train (or resume) the run of ``cfg`` in ``run_dir``; return its final state (done or
    diverged). A finished run is not retrained; a folder holding a different config is refused."""
    from grammarlab.grammar.load import load

    run_dir = Path(run_dir)
    grammar = load(cfg.grammar)
    cfg = resolve(cfg, grammar)
    grammar_text = Path(cfg.grammar).read_text(encoding="utf-8")
    runs.check_same_config(run_dir, cfg)
    saved = run_dir / "grammar.cfg"
    if saved.is_file() and saved.read_text(encoding="utf-8") != grammar_text:
        raise ConfigError(f"{cfg.grammar} changed since the run in {run_dir} started",
                          file=str(saved), hint="use --out to pick another folder")  # fmt: skip
    status = runs.read_status(run_dir)
    if status and status["state"] in ("done", "diverged"):
        print(f"{run_dir}: already finished ({status['state']} at epoch {status['epoch']}); "
              "nothing to do", file=sys.stderr)  # fmt: skip
        return status["state"]
    try:
        # the run's own random stream (dropout masks, where a model has dropout), seeded in
        # _setup or restored from the checkpoint; the caller's RNG state is left as it was
        with torch.random.fork_rng(devices=range(torch.cuda.device_count())), ExitStack() as stack:
            state = _run(cfg, run_dir, grammar, grammar_text, quiet, stack)
    except Exception as e:
        last = runs.read_metrics(run_dir)
        runs.write_status(run_dir, "failed", last[-1]["epoch"] if last else None,
                          f"{type(e).__name__}: {e}")  # fmt: skip
        raise
    _write_analysis(run_dir)
    return state


def _setup(cfg: TrainConfig, run_dir: Path, grammar, grammar_text: str):
    """Datasets, model, optimizer and the first epoch to run: 0 for a fresh run, else the
    checkpoint's epoch (after rewinding the files from that epoch on; it is evaluated again)."""
    from grammarlab.train.data import make_datasets
    from grammarlab.train.models import count_parameters

    device, dtype = pick_device(cfg)
    data = make_datasets(cfg, grammar)
    start = runs.checkpoint_epoch(run_dir) if (run_dir / "config.toml").is_file() else None
    if start is None:  # a fresh run (or one killed before its first checkpoint)
        torch.manual_seed(cfg.model_seed)  # a checkpoint restores the stream on resume
        for name in ("metrics.jsonl", "surprisals", "generations", "final_model"):
            p = run_dir / name
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
        runs.init_run(run_dir, cfg, grammar_text, data.sets)
    else:
        runs.rewind(run_dir, start)
    model, tmap = build_model(cfg, grammar.terminals, device, dtype)
    n_params = count_parameters(model), count_parameters(model, trainable_only=True)
    runs.write_env(run_dir, cfg, str(device), *n_params, cpu_workers(cfg, model))
    names = {"train": "d1", "train2": "d2"} if cfg.sequential else {}
    sets = {names.get(k, k): encode_set(names.get(k, k), v, tmap, device)
            for k, v in data.sets.items()}  # fmt: skip
    opt, sched = _optimizer(model, cfg, 0)
    if start is not None:
        if cfg.sequential and start > cfg.epochs and (cfg.fresh_optimizer or cfg.reset_schedule):
            opt, sched = _optimizer(model, cfg, cfg.epochs, None if cfg.fresh_optimizer else opt)
        runs.load_checkpoint(run_dir, model, opt, sched)
    return model, tmap, sets, opt, sched, start or 0


def _run(cfg: TrainConfig, run_dir: Path, grammar, grammar_text: str, quiet: bool,
         stack: ExitStack) -> str:  # fmt: skip
    model, tmap, sets, opt, sched, start = _setup(cfg, run_dir, grammar, grammar_text)
    runs.write_status(run_dir, "running", start - 1 if start else None)
    from grammarlab.train.models import active_dropout

    E, T = cfg.epochs, cfg.total_epochs
    share, plans = share_prefixes(cfg, model), {}
    # Without dropout the training forward is the training set's evaluation; with dropout (LoRA
    # dropout > 0) it is not, and the training set is evaluated like the others.
    reuse = not active_dropout(model)
    n_workers = cpu_workers(cfg, model)  # threads that split every pass (cpu_parallel.py)

    def plan_of(names: tuple[str, ...]) -> Plan:  # each group of sets is planned once
        if names not in plans:
            plans[names] = plan([sets[n] for n in names], cfg.micro_batch_size, share, n_workers)
        return plans[names]

    workers = stack.enter_context(Workers(n_workers))
    bar = tqdm(total=T + 1, initial=start, disable=quiet or not sys.stderr.isatty(), unit="epoch")
    for k in range(start, T + 1):
        t0 = time.perf_counter()
        train_name = ("d1" if k <= E else "d2") if cfg.sequential else "train"
        upd = None if k == T else ("d2" if cfg.sequential and k >= E else train_name)
        if cfg.sequential and k == E and upd and (cfg.fresh_optimizer or cfg.reset_schedule):
            opt, sched = _optimizer(model, cfg, E, None if cfg.fresh_optimizer else opt)
        res: dict[str, SetResult] = {}
        if upd:  # forward + backward of update k+1 = the training set's evaluation at epoch k
            model.train()
            opt.zero_grad(set_to_none=True)
            trained = forward_backward(model, plan_of((upd,)), workers)
            if reuse:
                res[upd] = trained
        model.eval()
        rest = tuple(name for name in sets if name not in res)  # one forward pass for all of them
        res.update(zip(rest, evaluate_plan(model, plan_of(rest), workers), strict=True))
        for name, enc in sets.items():
            lengths = (enc.mask.sum(1) - 2).tolist()  # string tokens, without bos and eos
            res[name].greedy_match = greedy_matches_from_correct(
                res[name].correct, lengths, cfg.extraction_prefix
            )
        if k in cfg.generate_epochs and cfg.n_generate:
            _write_generations(run_dir, k, model, tmap, cfg, sets)
        lr = opt.param_groups[0]["lr"] if upd else 0.0
        record = _record(k, 1 if k <= E else 2, lr, res, train_name, time.perf_counter() - t0)
        _write_surprisals(run_dir, k, res)
        runs.append_metrics(run_dir, record)
        runs.write_status(run_dir, "running", k)
        bar.update(1)
        bar.set_postfix(train=f"{record['train_loss']:.3f}", test=f"{record['test_loss']:.3f}")
        if not all(math.isfinite(res[n].loss) for n in {train_name, upd} - {None}):
            bar.close()
            runs.write_status(run_dir, "diverged", k, f"non-finite training loss at epoch {k}")
            return "diverged"
        if upd:
            opt.step()
            sched.step()
            if (k + 1) % cfg.checkpoint_every == 0 or (cfg.sequential and k + 1 == E):
                if k + 1 < T:
                    runs.save_checkpoint(run_dir, k + 1, model, opt, sched)
    bar.close()
    runs.save_checkpoint(run_dir, T, model, opt, sched)
    if cfg.save_final_model:
        runs.save_final_model(run_dir, model, tmap)
    runs.write_status(run_dir, "done", T)
    return "done"


def share_prefixes(cfg: TrainConfig, model: torch.nn.Module) -> bool:
    """Whether the run computes common prefixes once (prefix_trie.py): asked for, an
    architecture it is tested on, and no dropout (a shared prefix would share its dropout mask)."""
    from grammarlab.train.models import active_dropout
    from grammarlab.train.prefix_trie import supports

    return cfg.share_prefixes and supports(model) and not active_dropout(model)


def cpu_workers(cfg: TrainConfig, model: torch.nn.Module) -> int:
    """Threads that split each epoch's strings (cpu_parallel.py): ``cfg.cpu_workers`` or auto,
    1 on a GPU or for a model with dropout."""
    from grammarlab.train.models import active_dropout

    device = next(model.parameters()).device
    return resolve_workers(cfg.cpu_workers, device, bool(active_dropout(model)))


def forward_backward(model: torch.nn.Module, p: Plan, workers: Workers | None = None) -> SetResult:
    """Accumulate the gradient of the Eq.-1 loss of the one set of ``p`` over its micro-batches
    (evaluate.run_plan) and return the set's evaluation by the same forward passes."""
    return run_plan(model, p, backward=True, workers=workers)[0]


def lr_factor(cfg: TrainConfig, step: int) -> float:
    """Multiplier of the base lr for the update after ``step`` updates: linear decay to 0 over
    the stage (or over the whole run when stage 2 does not reset the schedule)."""
    E, T = cfg.epochs, cfg.total_epochs
    if cfg.sequential and cfg.reset_schedule:
        return 1.0 - (step - E) / (T - E) if step >= E else 1.0 - step / E
    return 1.0 - step / T


def _optimizer(model, cfg: TrainConfig, first_step: int, opt=None):
    """AdamW over the trainable parameters (or ``opt`` kept) and a LambdaLR whose step 0 is
    global step ``first_step``."""
    if opt is None:
        params = [p for p in model.parameters() if p.requires_grad]
        # fused: one kernel for all parameters (~4x faster steps than the per-tensor loop)
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    for g in opt.param_groups:
        g["lr"] = g["initial_lr"] = cfg.lr
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: lr_factor(cfg, first_step + i))
    return opt, sched


def build_model(cfg: TrainConfig, terminals, device, dtype):
    """The run's model (LoRA adapters added when ``lora.rank`` > 0) and its TokenMap."""
    from grammarlab.train.models import apply_lora, load_model

    model, tmap = load_model(cfg.model, terminals, seed=cfg.model_seed, dtype=dtype, device=device)
    if cfg.lora.rank:
        model = apply_lora(model, rank=cfg.lora.rank, alpha=cfg.lora.alpha,
                           dropout=cfg.lora.dropout, targets=cfg.lora.targets,
                           seed=cfg.model_seed)  # fmt: skip
    return model, tmap


def pick_device(cfg: TrainConfig) -> tuple[torch.device, torch.dtype]:
    """The run's device (CUDA when available under device = "auto") and dtype; clear errors for
    a CUDA or bfloat16 request that this machine cannot meet."""
    cuda = torch.cuda.is_available()
    if cfg.device == "cuda" and not cuda:
        raise ConfigError("device = \"cuda\" but no CUDA GPU is available",
                          hint='use device = "auto" or "cpu"')  # fmt: skip
    device = torch.device("cuda" if cfg.device == "cuda" or (cfg.device == "auto" and cuda)
                          else "cpu")  # fmt: skip
    if cfg.dtype == "bfloat16" and device.type != "cuda":
        raise ConfigError('dtype = "bfloat16" needs a GPU; on the CPU use "float32"')
    return device, getattr(torch, cfg.dtype)


def _record(k, stage, lr, res, train_name, seconds) -> dict:
    """One metrics.jsonl line: losses in nats/token (Eq. 1), accuracies, the epoch's seconds."""
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
    return rec


def _write_surprisals(run_dir: Path, k: int, res: dict[str, SetResult]) -> None:
    from grammarlab.io import write_atomic

    arrays = {}
    for name, r in res.items():
        arrays.update({f"{name}_bits": r.token_bits, f"{name}_correct": r.correct,
                       f"{name}_greedy_match": r.greedy_match})  # fmt: skip
    path = run_dir / "surprisals" / runs.epoch_name(k, ".npz")

    def save(p: Path) -> None:
        with open(p, "wb") as f:  # a file object: numpy would append .npz to a path
            np.savez(f, **arrays)  # uncompressed: compression cost ~4 ms an epoch

    write_atomic(path, save)


def _write_generations(run_dir, k, model, tmap, cfg, sets) -> None:
    """generations/epoch_XXXX.txt: n_generate samples drawn with a generator seeded by
    (seed, epoch), so a resumed run draws the same samples."""
    from grammarlab.io import write_text_atomic

    device = next(model.parameters()).device
    seed = int(np.random.SeedSequence([cfg.seed, k]).generate_state(1)[0])
    gen = torch.Generator(device=device).manual_seed(seed)
    longest = max(len(s) for enc in sets.values() for s in enc.strings)
    limit = getattr(model.config, "max_position_embeddings", 4096) - 1
    samples = generate_strings(model, tmap, cfg.n_generate, min(2 * longest + 2, limit), gen)
    path = run_dir / "generations" / runs.epoch_name(k, ".txt")
    write_text_atomic(path, format_generations(samples))


def _write_analysis(run_dir: Path) -> None:
    """phases.json, measures.jsonl and the per-string tables of a finished run."""
    from grammarlab.analysis.run_analysis import write_run_analysis  # pandas/scipy: only at the end

    write_run_analysis(run_dir)
