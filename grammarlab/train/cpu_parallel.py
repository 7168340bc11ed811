"""Data parallelism across CPU threads within one run.

A tiny model uses a multi-core CPU poorly: its kernels are small, and a second intra-op thread
makes an epoch of the 0.1M-parameter model only ~1.25x faster. Splitting the epoch's strings
instead gives each thread whole micro-batches of its own: with W workers, every set's strings are
planned as (at least) W micro-batches, and worker j (a Python thread with ``threads // W``
intra-op threads) runs the forward (and backward) pass of micro-batches j, j + W, ... PyTorch
kernels release the GIL, so the workers compute at the same time. Each worker returns its own
gradient (``torch.autograd.grad``) and the run sums them in worker order, so a run is
deterministic for a given W (a different W groups the float sums differently: results agree to
rounding). bench/bench_train.py measures the gain.

On a GPU, and for models with dropout (the workers would draw dropout masks from the one global
generator in a racy order), there is one worker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

T = TypeVar("T")
R = TypeVar("R")
# Auto never starts more workers than this: every worker runs the model's Python code under the
# GIL between kernels. Measured here only up to 2 (a 2-core machine).
MAX_AUTO_WORKERS = 4


def resolve_workers(requested: int | None, device: torch.device | str, dropout: bool) -> int:
    """The number of workers a run uses: 1 on a GPU or with dropout, else ``requested`` or
    (None) the torch thread count, at most MAX_AUTO_WORKERS."""
    if torch.device(device).type != "cpu" or dropout:
        return 1
    if requested is not None:
        return requested
    return max(1, min(torch.get_num_threads(), MAX_AUTO_WORKERS))


def _start_worker(threads: int, up: threading.Barrier) -> None:
    torch.get_num_threads()  # a thread's first call adopts the process-wide count: done here,
    torch.set_num_threads(threads)  # so that this thread keeps its own from now on
    up.wait()  # every worker blocks here until all exist: the pool starts n distinct threads


class Workers:
    """``n`` threads that share the caller's intra-op threads (``threads // n`` each, at least 1);
    with n = 1 :meth:`map` runs in the calling thread. Close it (or use ``with``) to stop the
    threads."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._threads = torch.get_num_threads()
        self._pool = None
        if n > 1:
            up = threading.Barrier(n)
            self._pool = ThreadPoolExecutor(n, thread_name_prefix="grammarlab-worker",
                                            initializer=_start_worker,
                                            initargs=(max(1, self._threads // n), up))  # fmt: skip
            for f in [self._pool.submit(int) for _ in range(n)]:  # start all n threads now
                f.result()
            # torch.set_num_threads also sets the process-wide count that a thread adopts at its
            # first parallel call: give it back to the threads outside the pool
            torch.set_num_threads(self._threads)

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """``[fn(x) for x in items]``, the items spread over the threads; results in order."""
        if self._pool is None:
            return [fn(x) for x in items]
        return list(self._pool.map(fn, items))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
