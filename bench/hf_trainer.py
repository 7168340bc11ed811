"""A grammarlab run config trained by the Hugging Face ``Trainer``: the reference loop that the
benchmarks (bench/bench_train.py, and anything else that wants it) compare our runner against.

:func:`hf_train` does the work of ``grammarlab.train.loop.train`` for a (non-sequential, full-model)
config with the Trainer instead of our epoch loop:

* the same model and weights (``grammarlab.train.loop.build_model`` with the config's model seed),
  the same datasets (``grammarlab.train.data.make_datasets``), dtype and device;
* one optimizer step per epoch on the whole training set: ``per_device_train_batch_size`` x
  ``gradient_accumulation_steps`` = n_train (micro-batches of the config's ``micro_batch_size``);
* the paper's loss (Eq. 1 of "Rethinking memorization in LLMs"): per string the mean ``-ln p``
  over its L + 1 predicted tokens (end token included), then the mean over strings. Each
  micro-batch contributes (sum of its strings' nats/token) / n_train, computed by
  ``grammarlab.train.evaluate.token_nll`` and ``batch_loss`` (the very code our runner uses), so
  the accumulated gradient is the whole-set gradient and the Trainer does not rescale it;
* AdamW (``adamw_torch``, default betas/eps) with the config's lr and weight decay, linear decay
  to 0 over the run, no warm-up, no gradient clipping (our runner does not clip);
* a :class:`EvalEveryEpoch` callback that evaluates the train, test and random sets after every
  epoch (and before the first update, epoch 0) with ``grammarlab.train.evaluate.evaluate_set``:
  loss (nats/token, Eq. 1), token accuracy and per-token surprisals (bits). It is a separate
  forward pass on the training set, since the Trainer cannot reuse the training forward. It also
  runs the greedy extraction test on every set, as our runner does every epoch:
  ``extraction="teacher_forced"`` (default) reads it off the argmax hits the evaluation just
  computed (``grammarlab.train.evaluate.greedy_matches_from_correct``, what the runner does),
  ``"decode"`` runs ``grammarlab.train.evaluate.greedy_matches`` (KV-cache greedy decoding), None
  skips it.

The Trainer shuffles the training set, but the whole set is one batch per step, so only the
order of the summands of the gradient changes (float rounding). Nothing is written to disk
except what the Trainer itself insists on (``save_strategy="no"``: nothing); results stay in
memory as :class:`HFRun`.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from grammarlab.train.config import TrainConfig, resolve
from grammarlab.train.evaluate import (
    Encoded,
    SetResult,
    batch_loss,
    encode_set,
    evaluate_set,
    greedy_matches,
    greedy_matches_from_correct,
    token_nll,
)


@dataclass
class HFRun:
    """What :func:`hf_train` measured. ``records``: one dict per evaluated epoch with the keys of
    our metrics.jsonl (epoch, lr, {train,test,random}_{loss,acc}; losses in nats/token) plus
    ``time_s`` (seconds since the previous epoch ended: the Trainer's step plus the callback),
    ``cpu_s`` (the process's CPU seconds, all threads, over the same interval) and ``eval_s``
    (the callback's share of ``time_s``). ``results``: epoch -> set name -> SetResult."""

    records: list[dict[str, Any]] = field(default_factory=list)
    results: dict[int, dict[str, SetResult]] = field(default_factory=dict)
    n_params: int = 0


class _Sets(torch.utils.data.Dataset):
    """The training set as the Trainer's dataset: one dict of ids and mask per string."""

    def __init__(self, enc: Encoded, labels: bool = False) -> None:
        self.ids, self.mask, self.labels = enc.ids, enc.mask, labels

    def __len__(self) -> int:
        return self.ids.shape[0]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = {"input_ids": self.ids[i], "attention_mask": self.mask[i]}
        return {**item, "labels": self.ids[i]} if self.labels else item


def _collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack a micro-batch and trim it to its longest string (as our micro_batches do)."""
    ids = torch.stack([x["input_ids"] for x in items])
    mask = torch.stack([x["attention_mask"] for x in items])
    width = int(mask.sum(1).max())
    out = {"input_ids": ids[:, :width], "attention_mask": mask[:, :width]}
    if "labels" in items[0]:  # the Trainer's evaluation loop only computes a loss given labels
        out["labels"] = out["input_ids"]
    return out


def _make_callback(
    sets: dict[str, Encoded],
    cfg: TrainConfig,
    eos_id: int,
    extraction: str | None,
    run: HFRun,
    on_epoch: Callable[[int], None] | None,
    evaluation: str,
):
    from transformers import TrainerCallback

    lengths = {k: (e.mask.sum(1) - 2).cpu().numpy() for k, e in sets.items()}

    class EvalEveryEpoch(TrainerCallback):
        """Evaluates every set after each epoch (epoch 0 at the start of training)."""

        def __init__(self) -> None:
            self.last, self.last_cpu = time.perf_counter(), time.process_time()
            self.trainer = None  # set once the Trainer exists (evaluation="trainer" needs it)

        def _evaluate(self, model, epoch: int, lr: float) -> None:
            t0 = time.perf_counter()
            was_training = model.training
            model.eval()
            res = {}
            for name, enc in sets.items():
                if evaluation == "trainer":  # the Trainer's own loop: loss only
                    out = self.trainer.evaluate(_Sets(enc, labels=True), metric_key_prefix=name)
                    res[name] = SetResult(out[f"{name}_loss"], math.nan, np.empty((0, 0)),
                                          np.empty((0, 0), bool))  # fmt: skip
                    continue
                res[name] = evaluate_set(model, enc, cfg.micro_batch_size)
                if extraction == "decode":
                    res[name].greedy_match = greedy_matches(
                        model, enc, cfg.extraction_prefix, eos_id
                    )
                elif extraction == "teacher_forced":
                    res[name].greedy_match = greedy_matches_from_correct(
                        res[name].correct, lengths[name], cfg.extraction_prefix
                    )
            model.train(was_training)
            now = time.perf_counter()
            rec: dict[str, Any] = {"epoch": epoch, "lr": lr}
            for name in ("train", "test", "random"):
                rec[f"{name}_loss"] = res[name].loss if name in res else None
                rec[f"{name}_acc"] = res[name].acc if name in res else None
            cpu = time.process_time()
            rec.update(time_s=now - self.last, eval_s=now - t0, cpu_s=cpu - self.last_cpu)
            run.records.append(rec)
            run.results[epoch] = res
            if on_epoch is not None:
                on_epoch(epoch)  # its time is not counted in the next epoch's time_s
            self.last, self.last_cpu = time.perf_counter(), time.process_time()

        def on_train_begin(self, args, state, control, model=None, optimizer=None, **kw):
            self._evaluate(model, 0, optimizer.param_groups[0]["lr"])

        def on_epoch_end(self, args, state, control, model=None, optimizer=None, **kw):
            # as in our metrics.jsonl: the lr of the update that follows this epoch (0 after the
            # last one, where linear decay has reached 0)
            self._evaluate(model, round(state.epoch), optimizer.param_groups[0]["lr"])

    return EvalEveryEpoch()


def hf_train(
    cfg: TrainConfig,
    *,
    extraction: str | None = "teacher_forced",
    evaluation: str = "grammarlab",
    on_epoch: Callable[[int], None] | None = None,
    quiet: bool = True,
) -> HFRun:
    """Train ``cfg`` (non-sequential, no LoRA) with the Hugging Face Trainer, evaluating every set
    every epoch; see the module docstring for what exactly is computed. ``on_epoch(k)`` is called
    after epoch k's evaluation (k = 0 before the first update); the time it takes is left out of
    the records' ``time_s``/``cpu_s``."""
    from transformers import PrinterCallback, Trainer, TrainingArguments

    from grammarlab.grammar.load import load
    from grammarlab.train.data import make_datasets
    from grammarlab.train.loop import build_model, pick_device
    from grammarlab.train.models import count_parameters

    if extraction not in (None, "teacher_forced", "decode"):
        raise ValueError(f"extraction must be None, 'teacher_forced' or 'decode': {extraction!r}")
    if cfg.sequential or cfg.lora.rank:
        raise ValueError("hf_train covers plain (non-sequential, full-model) runs only")
    grammar = load(cfg.grammar)
    cfg = resolve(cfg, grammar)
    device, dtype = pick_device(cfg)
    data = make_datasets(cfg, grammar)
    model, tmap = build_model(cfg, grammar.terminals, device, dtype)
    sets = {k: encode_set(k, v, tmap, device) for k, v in data.sets.items()}
    n = len(data.sets["train"])
    mb = min(cfg.micro_batch_size, n)
    if n % mb:
        raise ValueError(f"n_train ({n}) must be a multiple of micro_batch_size ({mb})")
    run = HFRun(n_params=count_parameters(model))
    if evaluation not in ("grammarlab", "trainer"):
        raise ValueError(f"evaluation must be 'grammarlab' or 'trainer': {evaluation!r}")
    callback = _make_callback(sets, cfg, tmap.eos_id, extraction, run, on_epoch, evaluation)

    class EqOneTrainer(Trainer):
        loss_is_scaled_for_ga = True  # each micro-batch already carries its 1/n share

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            nll, tmask, _ = token_nll(model, inputs["input_ids"], inputs["attention_mask"])
            loss = batch_loss(nll, tmask) / (n if model.training else tmask.shape[0])
            return (loss, {}) if return_outputs else loss

    with tempfile.TemporaryDirectory(prefix="hf_trainer_") as out:
        args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=mb, per_device_eval_batch_size=mb,
            gradient_accumulation_steps=n // mb, num_train_epochs=cfg.epochs,
            learning_rate=cfg.lr, weight_decay=cfg.weight_decay, lr_scheduler_type="linear",
            warmup_steps=0, optim="adamw_torch", max_grad_norm=0.0,
            logging_strategy="no", save_strategy="no", eval_strategy="no", report_to="none",
            disable_tqdm=quiet, use_cpu=device.type == "cpu", dataloader_pin_memory=False,
            dataloader_num_workers=0, seed=cfg.seed, remove_unused_columns=False,
            prediction_loss_only=True,
        )  # fmt: skip
        trainer = EqOneTrainer(model=model, args=args, train_dataset=_Sets(sets["train"]),
                               data_collator=_collate, callbacks=[callback])  # fmt: skip
        trainer.remove_callback(PrinterCallback)  # it prints the final metrics dict
        callback.trainer = trainer
        trainer.train()
    return run
