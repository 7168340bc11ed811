"""One capacity run: train a tiny model from scratch on N uniform random strings with minibatch
AdamW until its memorized bits saturate or its step budget ends.

Not the full-batch protocol of ``grammarlab train``: Morris et al. train with minibatches for a
fixed number of steps, and so do we. Each step takes ``batch_size`` strings in the order of a
fresh permutation per pass over the data (a pure function of the seed); the loss is the mean
``-ln p`` over the L + 1 predicted tokens of the batch (nats per token). Every ``eval_every``
steps the run measures, over all its training and test strings, the model's surprisal and from
it the memorized bits (:mod:`.measure`), and stops once saturated (:mod:`.saturation`).

``dtype = "bfloat16"`` stores parameters, activations, gradients and AdamW's moments in
bfloat16 (no float32 master copy): the precision whose storage limits the capacity. Logits
are upcast to float32 for the loss and the measurements.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from grammarlab.analysis.measures import mia_auc, mia_null_sd
from grammarlab.capacity.config import CapacityConfig
from grammarlab.capacity.data import CapacityData, uniform_grammar
from grammarlab.capacity.measure import memorized_bits, model_bits
from grammarlab.capacity.saturation import is_saturated
from grammarlab.train.models import ModelSpec, count_parameters, load_model, resolve_device


def used_parameters(model: torch.nn.Module, positions: int) -> int:
    """Parameters that a string of ``positions`` inputs can use: all of them, less the rows of a
    learned position table (GPT-2's ``wpe``, built for 256 positions) beyond ``positions``,
    which never get a gradient and stay at their random start. Rotary models have no such
    table."""
    n = count_parameters(model)
    wpe = getattr(getattr(model, "transformer", None), "wpe", None)
    if isinstance(wpe, torch.nn.Embedding):
        n -= max(wpe.num_embeddings - positions, 0) * wpe.embedding_dim
    return n


def lr_at(step: int, lr: float, warmup_steps: int) -> float:
    """Learning rate of update number ``step`` (1-based): linear warm-up to ``lr``, then flat."""
    if warmup_steps and step < warmup_steps:
        return lr * step / warmup_steps
    return lr


def evaluate(model: torch.nn.Module, train_ids: torch.Tensor, test_ids: torch.Tensor,
             data: CapacityData, batch_size: int) -> dict[str, float]:  # fmt: skip
    """One measurement: memorized bits of the training set (clipped and signed, bits), the mean
    surprisal of training and test strings (bits per string) and the membership AUC."""
    tr = model_bits(model, train_ids, batch_size)
    te = model_bits(model, test_ids, batch_size)
    mem = memorized_bits(data.train_bits, tr)
    return {
        "mem_bits": mem.clipped,
        "mem_bits_signed": mem.signed,
        "train_bits_per_string": float(tr.mean()),
        "test_bits_per_string": float(te.mean()),
        # excess over the exact surprisal, >= 0 in expectation for fresh strings (a KL estimate)
        "test_excess_bits": float((te - data.test_bits).mean()),
        "auc": mia_auc(data.train_bits - tr, data.test_bits - te),
    }


def train_run(cfg: CapacityConfig, spec: ModelSpec, n_train: int, seed: int, dtype: str,
              data: CapacityData, log: Any = None) -> dict[str, Any]:  # fmt: skip
    """Train one model and return its result record (plain data; see :mod:`.grid` for the
    file): the measurement curve, the final measurement, whether and where it saturated."""
    t0, c0 = time.perf_counter(), time.process_time()
    tc = cfg.train
    torch_dtype = getattr(torch, dtype)
    g = uniform_grammar(cfg.alphabet_size, cfg.length)
    device = resolve_device(cfg.device)
    model, tmap = load_model(spec, g.terminals, seed=seed, dtype=torch_dtype, device=device)
    train_ids = tmap.encode(data.train)[0].to(device)
    test_ids = tmap.encode(data.test)[0].to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=tc.lr, betas=(0.9, tc.beta2),
                            weight_decay=tc.weight_decay)  # fmt: skip
    rng = np.random.default_rng([seed, n_train, 104729])  # 104729: tags the batch-order stream
    order = np.empty(0, dtype=np.int64)
    batch = min(tc.batch_size, n_train)
    curve: list[dict[str, float]] = []
    sat_step = None
    diverged = None
    step = 0
    model.train()
    while step < tc.max_steps:
        if len(order) < batch:  # a new pass over the data in a fresh order
            order = np.r_[order, rng.permutation(n_train)]
        idx, order = order[:batch], order[batch:]
        step += 1
        for group in opt.param_groups:
            group["lr"] = lr_at(step, tc.lr, tc.warmup_steps)
        ids = train_ids[torch.from_numpy(idx).to(device)]
        logits = model(input_ids=ids[:, :-1], use_cache=False).logits.float()
        loss = F.cross_entropy(logits.transpose(1, 2), ids[:, 1:])
        if not math.isfinite(loss.item()):  # diverged: stop before the update spreads it
            diverged = f"loss {loss.item()} at step {step}"
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % tc.eval_every == 0 or step == tc.max_steps:
            point = {"step": step, "loss_nats_per_token": loss.item(),
                     **evaluate(model, train_ids, test_ids, data, tc.eval_batch_size)}  # fmt: skip
            curve.append(point)
            if log is not None:
                log(point)
            if is_saturated([p["step"] for p in curve], [p["mem_bits"] for p in curve],
                            cfg.saturation):  # fmt: skip
                sat_step = step
                break
    timing = {"steps": step, "seconds": time.perf_counter() - t0,
              "cpu_seconds": time.process_time() - c0}  # fmt: skip
    if diverged is not None:
        return {"diverged": True, "error": diverged, "curve": curve, **timing}
    last = curve[-1]
    return {
        "diverged": False,
        "n_params": used_parameters(model, cfg.length + 1),
        "n_params_built": count_parameters(model),
        "dataset_bits": data.dataset_bits,
        "string_bits": float(data.train_bits.mean()),
        "n_test": len(data.test),
        "auc_chance": 0.5,
        "auc_chance_sd": mia_null_sd(n_train, len(data.test)),
        "saturated": sat_step is not None,
        "saturated_at_step": sat_step,
        # cpu_seconds, the CPU time of this process: on a shared machine the honest cost
        **timing,
        "final": last,
        "curve": curve,
    }
