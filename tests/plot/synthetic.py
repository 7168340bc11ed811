"""Synthetic run folders for the figure tests: finished runs whose train and test losses part
after epoch n // 2, with measures and per-string rows; and the check that a figure was written."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

GRAMMARS = {"low": 10.0, "high": 40.0}  # name -> entropy (bits/string), injected by the fixtures


def write_run(run: Path, grammar: str, n: int, seed: int, sequential: bool = False) -> None:
    """A finished run whose train and test losses part after epoch n // 2."""
    run.mkdir(parents=True)
    (run / "grammar.cfg").write_text(f"# {grammar}\nS -> 'a' [1.0]\n")
    (run / "config.toml").write_text(
        f'grammar = "/x/{grammar}.cfg"\nn_train = {n}\nseed = {seed}\n[model]\npreset = "p"\n'
    )
    recs, ps = [], []
    for e in range(21):
        tr = 2.0 / (1 + 0.2 * e) + 0.01 * seed
        te = tr if e < n // 2 else 2.0 / (1 + 0.2 * (n // 2)) + 0.05 * (e - n // 2)
        r = {"epoch": e, "stage": 1 + (sequential and e > 10), "lr": 0.1, "train_loss": tr,
             "test_loss": te, "random_loss": 3.0, "train_acc": 0.5, "test_acc": 0.4,
             "random_acc": 0.1}  # fmt: skip
        if sequential:
            r["d1_loss"], r["d2_loss"] = tr if e <= 10 else te, te if e <= 10 else tr
        recs.append(r)
        for i in range(n):
            gb = 5.0 + i
            ps.append({"epoch": e, "dataset": "train", "index": i, "model_bits": gb - 0.1 * e,
                       "grammar_bits": gb, "memU_bits": 0.1 * e * i / n})  # fmt: skip
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    meas = [{"epoch": e, "excess_test_bits": 3.0 - 0.1 * e, "memU_train_bits_total": 0.5 * e,
             "mia_auc": 0.5 + 0.02 * e, "mia_null_lo": 0.3, "mia_null_hi": 0.7,
             "gen_grammatical_share": 1.0 - 0.04 * e if e in (0, 20) else None,
             "gen_copy_share": 0.04 * e if e in (0, 20) else None,
             "grammar_test_bits_mean": 8.0, "excess_test_bits_per_token": (3.0 - 0.1 * e) / 4}
            for e in range(21)]  # fmt: skip
    (run / "measures.jsonl").write_text("".join(json.dumps(r) + "\n" for r in meas))
    pd.DataFrame(ps).to_csv(run / "per_string.csv", index=False)
    (run / "status.json").write_text('{"state": "done", "epoch": 20}')


def files_ok(out: Path, stem: str) -> pd.DataFrame:
    for ext in ("png", "pdf", "csv"):
        assert (out / f"{stem}.{ext}").stat().st_size > 0, f"{stem}.{ext}"
    return pd.read_csv(out / f"{stem}.csv")


def write_never_reached_sweep(root: Path) -> None:
    """Two seeds whose train and test losses are equal at every epoch and both fall for 20
    epochs: the onset is never reached and the test minimum is at the last epoch (both events
    censored at epoch 20)."""
    for s in (0, 1):
        run = root / f"r{s}"
        write_run(run, "low", 4, s)
        recs = [{"epoch": e, "train_loss": 2.0 / (1 + e), "test_loss": 2.0 / (1 + e)}
                for e in range(21)]  # fmt: skip
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
