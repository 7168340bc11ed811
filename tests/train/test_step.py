"""One optimizer step: the accumulated gradient equals the full-batch loss's gradient, worker
splits add up in a fixed order, and AdamW with its linear decay and stage 2's warm-up."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from numerics import N_TINY, REL_TINY, assert_tensors_close

from grammarlab.runs.launch import run as launch
from grammarlab.train.config import TrainConfig
from grammarlab.train.cpu_parallel import Workers
from grammarlab.train.evaluate import batch_loss, encode_set, plan, token_nll
from grammarlab.train.models import ModelSpec, load_model
from grammarlab.train.step import forward_backward, lr_factor, make_optimizer

TERMS = ("a", "b", "c")
STRINGS = [("a",), ("a", "b"), ("b", "c", "a"), ("c", "c"), ("a", "b", "c", "a")]


def _model():
    return load_model(ModelSpec("pythia-tiny", hidden_size=16, num_layers=1), TERMS, seed=0,
                      dtype=torch.float32, device="cpu")  # fmt: skip


@pytest.mark.numerics
def test_accumulated_gradient_is_the_full_batch_gradient():
    model, tmap = _model()
    enc = encode_set("t", STRINGS, tmap, "cpu")
    model.zero_grad()
    nll, tmask, _ = token_nll(model, enc.ids, enc.mask)
    (batch_loss(nll, tmask) / len(STRINGS)).backward()  # Eq. 1 on the whole set at once
    want = [p.grad.clone() for p in model.parameters()]
    for mb, workers in ((1, None), (2, None), (1, Workers(2)), (2, Workers(3))):
        model.zero_grad(set_to_none=True)
        res = forward_backward(model, plan([enc], mb, False, workers.n if workers else 1),
                               workers)  # fmt: skip
        if workers:
            workers.close()
        # float32 sums of 5 strings in another order: differences ~1e-8 on gradients ~1e-1,
        # within 2 gamma_256 of each tensor's scale (numerics.N_TINY, derived there)
        for i, (p, w) in enumerate(zip(model.parameters(), want, strict=True)):
            assert_tensors_close(p.grad, w, N_TINY, f"parameter {i}")
        full = float(batch_loss(nll, tmask).detach()) / 5
        assert abs(res.loss - full) <= REL_TINY * full


def test_worker_split_is_deterministic():
    model, tmap = _model()
    p = plan([encode_set("t", STRINGS, tmap, "cpu")], 1, False, 3)
    grads = []
    for _ in range(2):
        model.zero_grad(set_to_none=True)
        with Workers(3) as w:
            forward_backward(model, p, w)
        grads.append([q.grad.clone() for q in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*grads, strict=True))  # bit for bit


def test_optimizer_lr_and_linear_decay():
    cfg = TrainConfig(grammar="g.cfg", epochs=4, lr=0.01, weight_decay=0.1)
    model, _ = _model()
    opt, sched = make_optimizer(model, cfg, 0)
    assert isinstance(opt, torch.optim.AdamW) and opt.defaults["weight_decay"] == 0.1
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.01, 0.0075, 0.005, 0.0025])
    assert [lr_factor(cfg, s) for s in range(5)] == [1.0, 0.75, 0.5, 0.25, 0.0]


def test_stage2_warmup_factors_by_hand():
    # epochs 2, epochs2 4, warm-up 2: stage 2's updates j = 1, 2 at j / 3 of the decay's value
    seq = dict(grammar="g.cfg", sequential=True, epochs=2, epochs2=4)
    cfg = TrainConfig(**seq, warmup2_epochs=2)
    # reset schedule: stage 1 decays 1, 1/2; stage 2 decays 1, 3/4, 1/2, 1/4 (steps 2..5)
    want = [1.0, 0.5, 1 * 1 / 3, 0.75 * 2 / 3, 0.5, 0.25, 0.0]
    assert [lr_factor(cfg, s) for s in range(7)] == pytest.approx(want, abs=1e-15)
    # one decay over both stages (1 - s / 6), the ramp on top of it in stage 2
    one = TrainConfig(**seq, warmup2_epochs=2, reset_schedule=False)
    want = [1.0, 5 / 6, 4 / 6 * 1 / 3, 3 / 6 * 2 / 3, 2 / 6, 1 / 6, 0.0]
    assert [lr_factor(one, s) for s in range(7)] == pytest.approx(want, abs=1e-15)
    # unset and 0: the schedule without a warm-up
    for w in (None, 0):
        assert [lr_factor(TrainConfig(**seq, warmup2_epochs=w), s) for s in range(7)] == (
            pytest.approx([1.0, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0], abs=1e-15))  # fmt: skip


@pytest.mark.parametrize(("fresh", "reset"), [(True, True), (False, True), (False, False)])
def test_stage2_warmup_reaches_the_optimizer(fresh, reset):
    """The lr of each update as the epoch loop makes it: one optimizer for stage 1, rebuilt at
    the switch when stage 2 is fresh or restarts the decay, else stepped on."""
    cfg = TrainConfig(grammar="g.cfg", sequential=True, epochs=2, epochs2=3, lr=0.01,
                      warmup2_epochs=2, fresh_optimizer=fresh, reset_schedule=reset)  # fmt: skip
    model, _ = _model()
    opt, sched = make_optimizer(model, cfg, 0)
    lrs = []
    for k in range(5):
        if k == 2 and (fresh or reset):
            opt, sched = make_optimizer(model, cfg, 2, None if fresh else opt)
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    # stage 2 (steps 2, 3, 4): decay 1, 2/3, 1/3 (reset) or 3/5, 2/5, 1/5 (one decay over 5)
    d2 = [1.0, 2 / 3, 1 / 3] if reset else [3 / 5, 2 / 5, 1 / 5]
    stage1 = [1.0, 0.5] if reset else [1.0, 4 / 5]
    want = [*stage1, d2[0] / 3, d2[1] * 2 / 3, d2[2]]
    assert lrs == pytest.approx([0.01 * f for f in want], rel=1e-12)


def test_warmup_shrinks_the_d1_jump_that_phases_json_reports(tiny_cfg, tmp_path):
    """phases.json's switch_d1_change is D1's loss at the first stage-2 epoch minus the last
    stage-1 epoch's (one update apart, metrics.jsonl); a warm-up makes that update smaller."""
    base = tiny_cfg(sequential=True, epochs=8, epochs2=4, n_train=4, lr=0.01, n_generate=0)
    got = {}
    for w in (None, 3):
        run = tmp_path / f"w{w}"
        assert launch(dataclasses.replace(base, warmup2_epochs=w), run, quiet=True) == "done"
        recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        ph = json.loads((run / "phases.json").read_text())
        assert ph["switch_d1_loss_before"] == recs[8]["d1_loss"]
        assert ph["switch_d1_loss_after"] == recs[9]["d1_loss"]
        assert ph["switch_d1_change"] == recs[9]["d1_loss"] - recs[8]["d1_loss"]
        got[w] = recs, ph["switch_d1_change"]
    (plain, jump), (warm, jump_w) = got[None], got[3]
    assert [r["d1_loss"] for r in plain[:9]] == [r["d1_loss"] for r in warm[:9]]  # same stage 1
    assert [r["lr"] for r in warm[8:]] == pytest.approx([0.0025, 0.00375, 0.00375, 0.0025, 0.0])
    # measured: +0.173 nats/token without a warm-up, +0.027 with it (the first stage-2 update at
    # lr / 4); a fresh AdamW's first update moves each weight by about its lr, so the jump shrinks
    # with it, far beyond float32 noise (~1e-6 on these losses)
    assert jump > 0.1 and abs(jump_w) < jump / 2
