"""CPU workers: how many a run uses, their threads, and passes split over them that give the
same gradients and evaluations as one thread, with and without prefix tries."""

from __future__ import annotations

import dataclasses
import json
import threading

import pytest
import torch
from numerics import N_TINY, REL_TINY, assert_bits_close, assert_runs_close, assert_tensors_close

from grammarlab.runs.folder import RunDir, read_metrics
from grammarlab.train.cpu_parallel import MAX_AUTO_WORKERS, Workers, resolve_workers
from grammarlab.train.evaluate import encode_set, evaluate_plan, plan, run_plan
from grammarlab.train.loop import cpu_workers, train
from grammarlab.train.models import ModelSpec, apply_lora, load_model
from grammarlab.train.prefix_trie import MIN_SAVED, _attention
from grammarlab.train.step import forward_backward
from grammarlab.train.tokens import TokenMap

TERMS = ("a", "b", "c", "d")
# 12 strings: common prefixes within each half of the lexicographic order, unequal lengths
STRINGS = [("a", "b", "c"), ("a", "b", "d", "d"), ("a", "b"), ("a", "c", "c", "a"),
           ("a", "b", "c", "d"), ("a", "a"), ("c", "d", "a"), ("c", "d", "b", "b"),
           ("c", "d"), ("c", "a", "a"), ("c", "d", "a", "b"), ("d",)]  # fmt: skip


@pytest.fixture
def threads():
    """Set torch's thread count for a test; the tests' 1 is restored after."""
    yield torch.set_num_threads
    torch.set_num_threads(1)


def test_resolve_workers(threads):
    threads(3)
    assert resolve_workers(None, "cpu", dropout=False) == 3  # auto: one per torch thread
    threads(2 * MAX_AUTO_WORKERS)
    assert resolve_workers(None, "cpu", dropout=False) == MAX_AUTO_WORKERS
    assert resolve_workers(2, "cpu", dropout=False) == 2  # asked for
    assert resolve_workers(2, "cuda", dropout=False) == 1  # a GPU is one stream of work
    assert resolve_workers(2, "cpu", dropout=True) == 1  # dropout masks from one generator


def test_workers_have_their_own_threads_and_leave_the_callers_alone(threads):
    threads(2)
    arrived = threading.Barrier(2)  # each task waits for another: two threads must run them

    def task(i):
        arrived.wait(timeout=10)
        return i, threading.current_thread().name, torch.get_num_threads()

    with Workers(2) as w:
        out = w.map(task, range(4))
        assert torch.get_num_threads() == 2  # the caller keeps its count
        fresh = []
        t = threading.Thread(target=lambda: fresh.append(torch.get_num_threads()))
        t.start()
        t.join()
        assert fresh == [2]  # and so does a thread started now
    assert [i for i, _, _ in out] == [0, 1, 2, 3]  # results in order
    assert len({name for _, name, _ in out}) == 2 and all(n == 1 for _, _, n in out)
    with Workers(2) as w, pytest.raises(ZeroDivisionError):
        w.map(lambda x: 1 / x, [1, 0])  # a worker's error reaches the caller
    one = Workers(1)
    assert one.map(lambda x: threading.current_thread().name, [0]) == [
        threading.current_thread().name  # one worker: the caller's thread
    ]


def _model(lora: bool = False):
    model, _ = load_model(ModelSpec("llama-tiny", hidden_size=32, num_layers=2, num_heads=4),
                          TERMS, seed=3)  # fmt: skip
    return apply_lora(model, rank=2, alpha=4, dropout=0.0, targets=None, seed=1) if lora else model


@pytest.mark.numerics
@pytest.mark.parametrize(("share", "lora"), [(False, False), (True, False), (True, True)])
def test_a_pass_split_over_workers_equals_one_thread(share, lora):
    model = _model(lora)
    enc = encode_set("x", STRINGS, TokenMap.for_tiny(TERMS), "cpu")
    p = plan([enc], 100, share, min_batches=3)
    assert len(p.batches) == 3 and all((b.trie is not None) == share for b in p.batches)
    results, grads = [], []
    for workers in (None, Workers(3), Workers(2)):  # 2 workers: one of them runs 2 batches
        model.zero_grad(set_to_none=True)
        results.append([forward_backward(model, p, workers)])
        grads.append({n: q.grad for n, q in model.named_parameters() if q.grad is not None})
        if workers is not None:
            workers.close()
    assert grads[0] and all(g.keys() == grads[0].keys() for g in grads)
    assert all(q.requires_grad for n, q in model.named_parameters() if n in grads[0])
    # the workers' gradients are summed in another order than one thread's: float32 sums of
    # fewer than 256 terms, within 2 gamma_256 of each tensor's scale (numerics, derived there)
    for other, g in zip(results[1:], grads[1:], strict=True):
        for n in g:
            assert_tensors_close(g[n], grads[0][n], N_TINY, n)
        assert_bits_close(other[0].token_bits, results[0][0].token_bits)
        assert abs(other[0].loss - results[0][0].loss) <= REL_TINY * results[0][0].loss
    with Workers(2) as w:  # evaluation: the same numbers, no gradients
        model.zero_grad(set_to_none=True)
        evaluated = evaluate_plan(model, p, w)[0]
        assert all(q.grad is None for q in model.parameters())
    assert_bits_close(evaluated.token_bits, results[0][0].token_bits)


def test_plans_make_a_batch_per_worker_and_one_kind_of_batch():
    tmap = TokenMap.for_tiny(TERMS)
    enc = encode_set("x", STRINGS, tmap, "cpu")
    assert [len(b.ids) for b in plan([enc], 100, min_batches=3).batches] == [4, 4, 4]
    assert [len(b.ids) for b in plan([enc], 3, min_batches=2).batches] == [3, 3, 3, 3]
    # One batch shares much (a a ...), the other nothing: with the plan's tries saving enough in
    # total, both get one, so the workers' passes are all of one kind.
    mixed = encode_set("m", [("a",) * 20] * 2 + [("b",) * 20, ("c",) * 20], tmap, "cpu")
    p = plan([mixed], 2, share_prefixes=True)
    assert [b.trie is not None for b in p.batches] == [True, True]
    assert p.batches[1].trie.saved < MIN_SAVED  # alone: only the start token (1 in 42) shared


def test_the_attention_switch_is_restored_by_the_last_caller_out():
    model = _model()
    before = model.config._attn_implementation
    with _attention(model, "eager"):
        with _attention(model, "eager"):
            assert model.config._attn_implementation == "eager"
        assert model.config._attn_implementation == "eager"  # the outer caller is still inside
        with pytest.raises(RuntimeError, match="switched to 'eager'"), _attention(model, "sdpa"):
            pass
        assert model.config._attn_implementation == "eager"
    assert model.config._attn_implementation == before


@pytest.mark.numerics
def test_a_run_with_two_workers_matches_one_and_is_deterministic(tiny_cfg, tmp_path):
    cfg = tiny_cfg(n_generate=0, cpu_workers=2)
    train(cfg, tmp_path / "two", quiet=True)
    train(cfg, tmp_path / "two_again", quiet=True)
    train(dataclasses.replace(cfg, cpu_workers=1), tmp_path / "one", quiet=True)
    env = json.loads((tmp_path / "two/env.json").read_text())
    assert env["cpu_workers"] == 2
    assert json.loads((tmp_path / "one/env.json").read_text())["cpu_workers"] == 1
    two, again, one = (read_metrics(tmp_path / d) for d in ("two", "two_again", "one"))
    keys = ("train_loss", "test_loss", "random_loss", "train_acc", "test_acc", "random_acc")
    # the same arithmetic twice: bit for bit
    assert [[r[k] for k in keys] for r in two] == [[r[k] for k in keys] for r in again]

    # two workers against one: another order of summation, within float32 rounding
    # (numerics.assert_runs_close, derived there; accuracies where no near tie can flip them)
    def strip(rows):
        return [{k: v for k, v in r.items() if k not in ("time_s", "checkpoint_s")} for r in rows]

    folders = [RunDir(tmp_path / d) for d in ("two", "one")]
    s2, s1 = ({e: f.read_surprisals(e) for e in f.surprisal_epochs()} for f in folders)
    assert_runs_close(strip(two), strip(one), s2, s1)


def test_runs_resolve_their_workers(tiny_cfg, threads):
    threads(2)
    model = _model()
    assert cpu_workers(tiny_cfg(), model) == 2
    assert cpu_workers(tiny_cfg(cpu_workers=1), model) == 1
    lora = apply_lora(_model(), rank=2, alpha=4, dropout=0.1, targets=None, seed=0)
    assert cpu_workers(tiny_cfg(cpu_workers=2), lora) == 1


def test_workers_run_under_the_callers_grad_and_inference_modes(monkeypatch):
    import grammarlab.train.evaluate as E
    import grammarlab.train.step as S

    seen, real = [], E.token_nll

    def spy(*a):
        seen.append((torch.is_grad_enabled(), torch.is_inference_mode_enabled()))
        return real(*a)

    monkeypatch.setattr(E, "token_nll", spy)
    monkeypatch.setattr(S, "token_nll", spy)
    model = _model()
    p = plan([encode_set("x", STRINGS, TokenMap.for_tiny(TERMS), "cpu")], 100, min_batches=2)
    with Workers(2) as w:  # a new thread starts with grad on and inference off
        with torch.no_grad():
            run_plan(model, p, workers=w)
        evaluate_plan(model, p, w)  # inference mode
        forward_backward(model, p, w)
    assert seen == [(False, False)] * 2 + [(False, True)] * 2 + [(True, False)] * 2
