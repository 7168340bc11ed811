"""One training run over several processes, launched by ``accelerate launch`` (or ``torchrun``).

The loop (loop.py) is the same; this module holds what differs when ``WORLD_SIZE`` > 1 in the
environment. accelerate is imported only then, so a single-process run never loads it.

* **Every string once**: each rank plans only its own rows of every set (:func:`shard`: the
  strings sorted by length and dealt round-robin, so the ranks get similar amounts of work).
* **The exact full-batch gradient**: every micro-batch's loss is (sum of its strings' nats per
  token) / n, with n the set's size over all ranks; DDP averages gradients over the ranks, so
  the loss is multiplied by the world size first: the sum over ranks is then the gradient of the
  paper's loss on the whole set, as in one process (up to float rounding). DDP synchronizes at
  every backward and every training forward, so every rank runs as many training micro-batches
  as the busiest one (:meth:`Distributed.equalize`: padding batches whose loss is multiplied by 0).
* **Exact metrics**: each rank fills full-size arrays (per-string loss in float64, bits,
  correctness) with its own rows and zeros elsewhere, and ``all_reduce`` sums them: every row
  comes from one rank, so the sums are that rank's numbers exactly. Loss and accuracy are then
  computed from the whole arrays as in one process (:meth:`Distributed.reduce`). Evaluation
  passes run on the unwrapped model (the replicas are identical), without collectives.
* **One writer**: only rank 0 writes the run folder (:meth:`Distributed.view`); the others read
  it, after a barrier, so they never see it half-written.
* **Checkpoints**: DDP keeps a full copy of the model and of the optimizer on every rank, so rank
  0 writes the same checkpoint as a single-process run (a Hugging Face directory), with the
  world size in its training state; no other rank reads or writes it during training, so no
  barrier is needed around it. Every rank resumes from it, and a checkpoint of another world
  size is refused (the micro-batches, and so the float rounding, depend on it). The random
  state (dropout) is reseeded per (seed, epoch, rank) before each training pass, so a resume is
  exact without each rank's random state in the checkpoint.

**FSDP** (``fsdp_version: 2`` in the accelerate config; fsdp.py applies ``fully_shard`` from
accelerate's settings, on the CPU as on GPUs) differs in four places:

* every forward is collective (each unit's weights are gathered from all ranks), so the
  evaluation plans are equalized with padding batches like the training plans, and generation
  runs on every rank in lockstep on rank 0's logits (fsdp.Lockstep); the evaluation runs on the
  sharded model itself, which is resharded after it (:meth:`Distributed.after_inference`);
* the model is built on the CPU and sharded before the optimizer is made (the parameters become
  DTensor shards);
* checkpoints are sharded (:meth:`Distributed.save_checkpoint`): rank 0 empties
  checkpoint.tmp/, every rank writes its own safetensors shard into it, and after a barrier
  rank 0 writes the training state (with the sharding) and swaps it in; a resume reads each
  rank's own shard and refuses another world size or sharding (runs/checkpoint.py);
* final_model/ is gathered onto rank 0 into a plain copy of the model, saved as in one process.

See docs/scale.md.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch

from grammarlab.errors import ConfigError
from grammarlab.runs import checkpoint
from grammarlab.train import fsdp
from grammarlab.train.evaluate import Batch, Encoded, Plan, SetResult


def launched() -> bool:
    """Whether this process is one of several (``accelerate launch``, ``torchrun``)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_process() -> bool:
    """Rank 0, or a single process (from the environment, before any setup)."""
    return int(os.environ.get("RANK", "0")) == 0


def shard(lengths: Sequence[int], rank: int, world: int) -> np.ndarray:
    """Rows of a set (ascending) that rank ``rank`` of ``world`` evaluates: the strings sorted
    by length (stable) and dealt round-robin, so every string goes to exactly one rank and the
    ranks get similar numbers of tokens."""
    order = np.argsort(np.asarray(lengths, dtype=np.int64), kind="stable")
    return np.sort(order[rank::world])


class Distributed:
    """The accelerate state of a multi-process run and the few collective steps of the loop."""

    def __init__(self) -> None:
        from accelerate import Accelerator
        from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

        # on a machine without a GPU the processes talk over gloo (MULTI_CPU); accelerate then
        # ignores an FSDP launch's plugin, so FSDP is read from the launch's environment
        self.accelerator = Accelerator(cpu=not torch.cuda.is_available())
        kind = self.accelerator.distributed_type
        wants_fsdp = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
        if kind not in (DistributedType.MULTI_CPU, DistributedType.MULTI_GPU,
                        DistributedType.FSDP):  # fmt: skip
            raise ConfigError(f"accelerate's distributed type {kind.value} is not supported",
                              hint="launch with FSDP (fsdp_version 2) or DDP (multi_gpu, or "
                                   "several CPU processes): docs/scale.md")  # fmt: skip
        self.fsdp: fsdp.Settings | None = None
        if wants_fsdp or kind == DistributedType.FSDP:
            plugin = getattr(self.accelerator.state, "fsdp_plugin", None)
            plugin = plugin or FullyShardedDataParallelPlugin()
            self.fsdp = fsdp.settings_from_plugin(plugin, self.accelerator.mixed_precision)
        self.rank = self.accelerator.process_index
        self.world = self.accelerator.num_processes
        self.is_main = self.accelerator.is_main_process
        self.device = self.accelerator.device
        self.rows: dict[str, np.ndarray] = {}
        self.sharding: dict[str, Any] | None = None  # the FSDP layout, once wrapped

    def seed(self, seed: int, epoch: int) -> int:
        """The torch seed of this rank's training pass of ``epoch`` (its dropout masks, where
        the model has dropout): a function of (seed, epoch, rank), so a resumed run draws the
        same masks on every rank although the checkpoint holds only rank 0's random state."""
        return int(np.random.SeedSequence([seed, epoch, self.rank]).generate_state(1)[0])

    def barrier(self) -> None:
        self.accelerator.wait_for_everyone()

    def model_device(self) -> Any:
        """Where the run builds its model: under FSDP the CPU (``fully_shard`` then moves each
        rank's shard to its device, or keeps it in host memory with CPU offload), so no device
        ever holds the whole model; under DDP this rank's device."""
        return torch.device("cpu") if self.fsdp is not None else self.device

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """Under FSDP ``model`` itself, sharded in place (fsdp.py; make the optimizer after
        this); under DDP the model as DDP (gradients averaged over the ranks at every backward,
        accelerate's mixed precision applied to its forward)."""
        if self.fsdp is not None:
            fsdp.shard_model(model, self.fsdp)
            self.sharding = fsdp.description(model, self.fsdp, self.world)
            return model
        return self.accelerator.prepare_model(model)

    def describe(self) -> dict[str, Any]:
        """The setup as env.json records it: world size, process-group backend (gloo, nccl),
        strategy (ddp or fsdp2) and, under FSDP, its sharding: FULL_SHARD (parameters
        resharded after each forward) or SHARD_GRAD_OP (kept gathered until the backward), the
        wrap units (empty: the decoder layers), mixed precision, offload and activation
        checkpointing."""
        import torch.distributed as td

        out: dict[str, Any] = {
            "world_size": self.world,
            "backend": td.get_backend() if td.is_available() and td.is_initialized() else None,
            "strategy": "fsdp2" if self.fsdp is not None else "ddp",
            "mixed_precision": str(self.accelerator.mixed_precision),
        }
        if self.fsdp is not None:
            s = self.fsdp
            out["fsdp"] = {
                "sharding_strategy": "FULL_SHARD" if s.reshard_after_forward else "SHARD_GRAD_OP",
                "units": list(s.units), "offload": s.offload,
                "activation_checkpointing": s.checkpointing,
            }  # fmt: skip
        return out

    def backward(self, loss: torch.Tensor) -> None:
        """Backward of ``loss`` times the world size, undoing the average over the ranks that
        DDP and FSDP take of the gradients (FSDP: reduce-scattered at every backward)."""
        if self.fsdp is not None:
            (loss * self.world).backward()
        else:
            self.accelerator.backward(loss * self.world)

    def collective_forward(self) -> bool:
        """Whether every forward is collective (FSDP gathers each unit's weights from all
        ranks), so evaluation and generation must run the same passes on every rank too."""
        return self.fsdp is not None

    def after_inference(self, model: torch.nn.Module) -> None:
        """Free the weights an evaluation or generation pass left gathered (FSDP)."""
        if self.fsdp is not None:
            fsdp.reshard(model)

    def for_generation(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model generation runs: under DDP each rank's full copy (the ranks draw the same
        samples with the same generator); under FSDP the sharded model in lockstep
        (fsdp.Lockstep)."""
        return fsdp.Lockstep(model) if self.fsdp is not None else model

    def final_model(self, model: torch.nn.Module,
                    build: Callable[[], torch.nn.Module]) -> torch.nn.Module | None:  # fmt: skip
        """The model to save as final_model/ on rank 0 (None elsewhere): under FSDP a plain
        copy made by ``build`` holding the gathered weights (collective)."""
        if self.fsdp is None:
            return model if self.is_main else None
        fsdp.reshard(model)
        return fsdp.unsharded_copy(model, build, self.is_main)

    def save_checkpoint(self, run: Any, epoch: int, model: torch.nn.Module, opt: Any,
                        sched: Any, tmap: Any) -> None:  # fmt: skip
        """The checkpoint after ``epoch`` updates. DDP: rank 0's full copy (run.save_checkpoint,
        nothing on the other ranks). FSDP (collective): rank 0 empties checkpoint.tmp/, every rank
        writes its shard into it, and after all have, rank 0 writes the training state and
        swaps it in (runs/checkpoint.py)."""
        if self.fsdp is None:
            run.save_checkpoint(epoch, model, opt, sched, tmap, self.world)
            return
        fsdp.reshard(model)
        run.begin_checkpoint()
        self.barrier()
        checkpoint.save_shard(run.checkpoint_tmp_path, self.rank, self.world, model, opt)
        self.barrier()
        run.finish_sharded_checkpoint(epoch, opt, sched, self.sharding)

    def load_checkpoint(self, run: Any, model: torch.nn.Module, opt: Any, sched: Any) -> int:
        """Every rank's resume from the run's checkpoint (its own shard under FSDP)."""
        return run.load_checkpoint(model, opt, sched, self.world, self.rank, self.sharding)

    def local(self, enc: Encoded) -> Encoded:
        """This rank's rows of ``enc`` (:func:`shard`), at the set's full width."""
        rows = shard((enc.mask.sum(1) - 2).tolist(), self.rank, self.world)
        self.rows[enc.name] = rows
        pick = torch.from_numpy(rows).to(enc.ids.device)
        return Encoded(enc.name, [enc.strings[i] for i in rows], enc.ids[pick], enc.mask[pick])

    def _sum(self, a: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(a)).to(self.device)
        torch.distributed.all_reduce(t)
        return t.cpu().numpy()

    def reduce(self, local: SetResult, enc: Encoded) -> SetResult:
        """The whole set's result from every rank's :meth:`local` rows of ``enc`` (collective:
        every rank calls it for the same sets in the same order)."""
        rows = self.rows[enc.name]
        n, width = enc.ids.shape[0], enc.ids.shape[1] - 1
        loss = np.zeros(n)  # nats/token of each string, float64
        bits = np.zeros((n, width), dtype=np.float32)
        correct = np.zeros((n, width), dtype=np.int32)
        loss[rows] = local.string_loss
        bits[rows] = np.nan_to_num(local.token_bits, nan=0.0)  # x + 0 = x: the sum is exact
        correct[rows] = local.correct
        loss, bits, correct = self._sum(loss), self._sum(bits), self._sum(correct) > 0
        predicted = enc.mask[:, 1:].cpu().numpy()
        bits[~predicted] = np.nan
        acc = float(correct.sum() / predicted.sum()) if predicted.any() else float("nan")
        return SetResult(float(loss.sum()) / max(n, 1), acc, bits, correct, string_loss=loss)

    def equalize(self, p: Plan, token_id: int) -> Plan:
        """``p`` with padding batches appended (one token, no rows, loss times 0) until it has as
        many micro-batches as the longest plan of any rank (collective)."""
        count = torch.tensor([len(p.batches)], device=self.device)
        torch.distributed.all_reduce(count, op=torch.distributed.ReduceOp.MAX)
        ids = torch.full((1, 2), token_id, dtype=torch.long, device=self._device_of(p))
        mask = torch.ones((1, 2), dtype=torch.bool, device=ids.device)
        extra = [Batch(ids, mask, ())] * (int(count) - len(p.batches))  # no trie: plain forward
        return Plan(p.sizes, (*p.batches, *extra))

    def _device_of(self, p: Plan) -> Any:
        return p.batches[0].ids.device if p.batches else self.device

    def view(self, run: Any) -> Any:
        """``run`` itself on rank 0; elsewhere a view of it whose writes do nothing."""
        return run if self.is_main else ReadOnlyRun(run)


class ReadOnlyRun:
    """A run folder as a rank other than 0 sees it: reads pass through, writes do nothing, the
    lock is rank 0's."""

    _WRITES = frozenset({"prepare", "clear", "rewind", "commit_checkpoint", "write_config",
                         "write_grammar", "write_data", "write_env", "write_status",
                         "append_metrics", "write_surprisals", "write_generations",
                         "save_checkpoint", "write_analysis", "begin_checkpoint",
                         "finish_sharded_checkpoint"})  # fmt: skip

    def __init__(self, run: Any) -> None:
        self._run = run

    def lock(self) -> Any:
        return nullcontext()

    def __getattr__(self, name: str) -> Any:
        if name in self._WRITES:
            return lambda *a, **k: None
        return getattr(self._run, name)

    def __str__(self) -> str:
        return str(self._run)
