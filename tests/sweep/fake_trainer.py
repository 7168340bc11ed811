"""A fake trainer for sweep tests: writes synthetic run folders (docs/runs.md layout) and resumes
from the last epoch in metrics.jsonl, so executors and tables can be tested without training."""

from __future__ import annotations

import json
from pathlib import Path

from grammarlab.train.config import dumps_config, load_config

# Two independent uniform binary choices: 4 strings of probability 1/4 -> H = 2 bits exactly.
AB = "S -> A A [1.0]\nA -> 'a' [0.5] | 'b' [0.5]\n"
# the job target: imported by module name in the executors' worker processes, which get the
# repository root on their path from pytest (tests/ is a package)
FAKE = "tests.sweep.fake_trainer:fake_train"
FAIL_LR = 0.0123  # the fake trainer raises for this lr


def fake_train(config_path: str, run_dir: str) -> str:
    """A stand-in for grammarlab.train.loop: resumes from the last epoch in metrics.jsonl and writes
    train/test losses whose divergence starts later for larger n (onset = n_train // 2)."""
    cfg = load_config(config_path)
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    with open(run / "calls.txt", "a") as f:
        f.write("call\n")
    if cfg.lr == FAIL_LR:
        raise RuntimeError("boom")
    (run / "config.toml").write_text(dumps_config(cfg))
    (run / "grammar.cfg").write_text(Path(cfg.grammar).read_text())
    metrics = run / "metrics.jsonl"
    done = len(metrics.read_text().splitlines()) if metrics.exists() else 0
    stop = cfg.epochs + 1 if not (run / "stop_early").exists() else 2
    with open(metrics, "a") as f:
        for e in range(done, stop):
            train = 2.0 / (1 + e)
            test = train if e < cfg.n_train // 2 else train * (1.0 + 0.1 * e)
            f.write(json.dumps({"epoch": e, "stage": 1, "lr": cfg.lr, "train_loss": train,
                                "test_loss": test, "random_loss": 3.0, "train_acc": 0.5,
                                "test_acc": 0.4, "random_acc": 0.1}) + "\n")  # fmt: skip
    state = "done" if stop == cfg.epochs + 1 else "running"
    (run / "status.json").write_text(json.dumps({"state": state, "epoch": stop - 1}))
    if state == "done":
        rows = [{"epoch": e, "excess_test_bits": 5.0 - e, "memU_train_bits_total": float(e)}
                for e in range(cfg.epochs + 1)]  # fmt: skip
        (run / "measures.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return state


def write_sweep(tmp_path: Path, grid: str, base_extra: str = "") -> Path:
    (tmp_path / "ab.cfg").write_text(AB)
    f = tmp_path / "s.toml"
    f.write_text(f'name = "t"\n[base]\ngrammar = "ab.cfg"\nepochs = 6\n{base_extra}\n'
                 f"[base.model]\npreset = \"pythia-tiny\"\n[grid]\n{grid}")  # fmt: skip
    return f


def ids(sweep) -> list[str]:
    return [r.run_id for r in sweep.runs]


def calls(run_dir: Path) -> int:
    p = run_dir / "calls.txt"
    return len(p.read_text().splitlines()) if p.exists() else 0
