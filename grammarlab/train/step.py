"""One optimizer step: the gradient of the paper's loss over a set's micro-batches, and the AdamW
optimizer with its linear learning-rate decay (and stage 2's optional warm-up).

An epoch is one step on the whole training set (the paper's full-batch training): every
micro-batch adds (sum of its strings' nats/token) / n to the gradient, so the total equals one
big batch up to float rounding. The same forward passes give the training set's evaluation
(evaluate.py), which the epoch loop reuses when the model has no dropout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from grammarlab.train.config import TrainConfig
from grammarlab.train.cpu_parallel import Workers
from grammarlab.train.evaluate import (
    Batch,
    Plan,
    SetResult,
    batch_loss,
    collect,
    in_callers_modes,
    token_nll,
    worker_count,
)


def forward_backward(
    model: torch.nn.Module,
    p: Plan,
    workers: Workers | None = None,
    n: int | None = None,
    backward: Callable[[torch.Tensor], None] | None = None,
) -> SetResult:
    """Accumulate into ``.grad`` the gradient of the Eq.-1 loss (mean over strings of nats per
    token) of the one set of ``p``, and return the set's evaluation by the same forward passes.
    With more than one worker each worker returns its own gradient and they are added to
    ``.grad`` in worker order, so the sum does not depend on which thread finishes first.
    ``n``: the number of strings the mean is over (default: the set of ``p``; a distributed
    rank's part of a set divides by the whole set's size); ``backward``: how a micro-batch's
    loss is backpropagated (default ``loss.backward()``; distributed.py scales it for DDP)."""
    n, w = n or p.sizes[0][0], worker_count(p, workers)
    params = [q for q in model.parameters() if q.requires_grad] if w > 1 else None
    back = backward or torch.Tensor.backward
    run = in_callers_modes(lambda j: _run_batches(model, p.batches[j::w], n, params, back))
    shares = [run(0)] if w == 1 else workers.map(run, range(w))
    if params is not None:
        _add_grads(params, [g for _, g in shares])
    return collect(p, [outs for outs, _ in shares], w)[0]


def _run_batches(model: torch.nn.Module, batches: Sequence[Batch], n: int,
                 params: list[torch.Tensor] | None, backward: Callable):  # fmt: skip
    """Outputs (nll, tmask, correct) of each batch and the gradient of the batches' Eq.-1 loss
    (/ n): accumulated into ``.grad`` by ``backward`` (``params`` None), else returned (a tuple
    matching ``params``, None where a parameter got none). A batch without rows (a distributed
    rank's padding) contributes a loss of 0 that still runs the model's synchronizing hooks."""
    outs, grads = [], None
    for b in batches:
        nll, tmask, correct = token_nll(model, b.ids, b.mask, b.trie)
        loss = batch_loss(nll, tmask) / n if b.parts else nll.sum() * 0.0
        if params is None:
            backward(loss)
        else:
            g = torch.autograd.grad(loss, params, allow_unused=True)
            grads = g if grads is None else tuple(map(_plus, grads, g))
        outs.append((nll.detach(), tmask, correct))
    return outs, grads


def _plus(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    return b if a is None else a if b is None else a + b


def _add_grads(params: list[torch.Tensor], grads: list[tuple | None]) -> None:
    """Each worker's gradient added to ``.grad``, worker after worker."""
    for i, q in enumerate(params):
        total = None
        for g in grads:
            total = _plus(total, None if g is None else g[i])
        if total is not None:
            q.grad = total if q.grad is None else q.grad + total


def lr_factor(cfg: TrainConfig, step: int) -> float:
    """Multiplier of the base lr for the update after ``step`` updates: linear decay to 0 over
    the stage (or over the whole run when stage 2 does not reset the schedule), times stage 2's
    warm-up ramp: its update j = 1..N (``step`` = epochs + j - 1) at j / (N + 1), N =
    ``warmup2_epochs``. The ramp scales whatever the decay gives, so it also applies when stage 2
    keeps the optimizer and the one schedule (the loop then never rebuilds the scheduler)."""
    E, T = cfg.epochs, cfg.total_epochs
    if cfg.sequential and cfg.reset_schedule:
        decay = 1.0 - (step - E) / (T - E) if step >= E else 1.0 - step / E
    else:
        decay = 1.0 - step / T
    N = cfg.warmup2_epochs or 0
    if cfg.sequential and N and E <= step < E + N:
        # a fresh AdamW's first update moves every weight by about lr (m / sqrt(v) = sign of the
        # gradient), which throws the D1 loss up in one step; a ramp makes the first ones small
        return decay * (step - E + 1) / (N + 1)
    return decay


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, first_step: int,
                   opt: torch.optim.Optimizer | None = None):  # fmt: skip
    """AdamW over the trainable parameters at ``cfg.lr`` (or ``opt`` kept, for stage 2 without a
    fresh optimizer) and a LambdaLR whose step 0 is global step ``first_step``."""
    if opt is None:
        params = [p for p in model.parameters() if p.requires_grad]
        # fused: one kernel for all parameters (~4x faster steps than the per-tensor loop)
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    for g in opt.param_groups:
        g["lr"] = g["initial_lr"] = cfg.lr
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: lr_factor(cfg, first_step + i))
    return opt, sched
