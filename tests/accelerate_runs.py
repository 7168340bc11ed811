"""Shared helpers of the multi-process tests (tests/train/test_distributed.py, test_fsdp.py):
``grammarlab train`` launched through ``accelerate launch`` on 2 CPU processes (gloo), optionally
killed in the middle of a checkpoint write, and comparisons of run folders."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
from numerics import assert_runs_close

from grammarlab.runs.folder import RunDir

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs/accelerate"
TIMES = ("time_s", "checkpoint_s")  # seconds measured, not computed: they differ between runs

# A child `grammarlab train` whose rank 0 SIGKILLs itself halfway through its N-th checkpoint
# write (weights and optimizer written, or every rank's shard, not the state that completes it);
# accelerate's launcher (torchrun) then stops the other rank. N = 0: never.
_CHILD = textwrap.dedent("""
    import os, signal, sys
    from grammarlab.runs import checkpoint
    n, calls = int(sys.argv[1]), []
    real = checkpoint._rng_state

    def rng_state():
        calls.append(1)
        if len(calls) == n:
            os.kill(os.getpid(), signal.SIGKILL)
        return real()

    checkpoint._rng_state = rng_state
    from grammarlab.cli import main
    sys.exit(main(sys.argv[2:]))
""")


def launch(toml: Path, out: Path, kill_at: int, tmp_path: Path, config: str,
           options: tuple[str, ...] = ()) -> int:  # fmt: skip
    """``grammarlab train`` on the processes of ``configs/accelerate/<config>`` through
    ``accelerate launch`` (``options``: more launcher flags); its exit status (0 asserted when
    not killed)."""
    child = tmp_path / "child.py"
    child.write_text(_CHILD)
    # a free port, not the default 29500: other launches may run on this machine at once
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
           str(CONFIGS / config), "--main_process_port", port, *options, str(child),
           str(kill_at), "train", str(toml), "--out", str(out), "--quiet"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    if kill_at == 0:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.returncode


def metrics(run: Path) -> list[dict]:
    """metrics.jsonl without the measured seconds."""
    return [{k: v for k, v in r.items() if k not in TIMES} for r in RunDir(run).read_metrics()]


def surprisals(run: Path) -> dict[int, dict[str, np.ndarray]]:
    folder = RunDir(run)
    return {e: folder.read_surprisals(e) for e in folder.surprisal_epochs()}


def assert_close_runs(a: Path, b: Path) -> None:
    """Two runs of one config on other process counts: close to float32 rounding
    (:func:`numerics.assert_runs_close`: losses and bits per token within 2 gamma_256, argmax
    quantities where no near tie can flip them), not bit for bit, epoch 0 included (the ranks'
    micro-batches have other padding widths and orders of summation)."""
    assert_runs_close(metrics(a), metrics(b), surprisals(a), surprisals(b))


def same_run(a: Path, b: Path) -> None:
    """Every metric (times aside), surprisal array and generation bit for bit."""
    assert metrics(a) == metrics(b)
    sa, sb = surprisals(a), surprisals(b)
    assert sa.keys() == sb.keys()
    for e in sb:
        for k in sb[e]:
            np.testing.assert_array_equal(sa[e][k], sb[e][k])
    names = sorted(p.name for p in (b / "generations").iterdir())
    assert names == sorted(p.name for p in (a / "generations").iterdir())
    for name in names:
        assert (a / "generations" / name).read_text() == (b / "generations" / name).read_text()
