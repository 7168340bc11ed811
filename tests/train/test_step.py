"""One optimizer step: the accumulated gradient equals the full-batch loss's gradient, worker
splits add up in a fixed order, and AdamW with its linear decay."""

from __future__ import annotations

import pytest
import torch

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
        # float32 sums of 5 strings in another order: differences ~1e-8 on gradients ~1e-1
        for p, w in zip(model.parameters(), want, strict=True):
            torch.testing.assert_close(p.grad, w, rtol=1e-4, atol=1e-6)
        assert res.loss == pytest.approx(float(batch_loss(nll, tmask)) / 5, rel=1e-6)


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
