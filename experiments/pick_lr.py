"""The learning rate per fine-tuning mode from the SmolLM2 learning-rate sweep, by the rule that
experiments/smollm2_lr_sweep.toml states before its runs: per mode (full fine-tune: LoRA rank 0;
LoRA), the smallest lr at which the random 26-letter run did not diverge (or fail) and its
memorization onset (test/train loss > 1.05, sustained up to the last recorded epoch: a run stopped
early counts with the epochs it has) is observed by epoch ``BY``. Prints one table row per
run and the pick per mode; ``--apply FILE...`` writes the full fine-tune's pick into the
``lr = ...`` line of each experiment file (the *_smollm2.toml files are full fine-tunes):

    python experiments/pick_lr.py runs/smollm2_lr_sweep/phases.csv
    python experiments/pick_lr.py runs/smollm2_lr_sweep/phases.csv \
        --apply experiments/fig*_smollm2.toml
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import pandas as pd

BY = 20  # epochs: the experiment files run 40, so an onset by 20 leaves half of them after it
GRAMMAR = "random_l26"


def rows(phases: pd.DataFrame) -> pd.DataFrame:
    """One row per run: grammar, mode, lr, status, onset epoch (NaN: not observed)."""
    df = phases.copy()
    rank = df["config.lora.rank"] if "config.lora.rank" in df else 0
    df["mode"] = ["lora" if r and not math.isnan(r) else "full" for r in pd.Series(rank).fillna(0)]
    observed = ~df["memorization_onset_censored"].astype(str).isin(["True", "true", "1"])
    df["onset"] = df["memorization_onset_epoch"].where(observed)
    return df[["grammar", "mode", "config.lr", "status", "onset", "min_test_loss"]].sort_values(
        ["grammar", "mode", "config.lr"]
    )


def pick(table: pd.DataFrame) -> dict[str, float | None]:
    """mode -> the rule's lr (None: no lr of the grid qualifies)."""
    out: dict[str, float | None] = {}
    for mode in ("full", "lora"):
        ok = table[(table["grammar"] == GRAMMAR) & (table["mode"] == mode)
                   & ~table["status"].isin(["diverged", "failed"])
                   & (table["onset"] <= BY)]  # fmt: skip
        out[mode] = float(ok["config.lr"].min()) if len(ok) else None
    return out


def apply(lr: float, files: list[str]) -> None:
    """Set ``lr = ...`` in the [base] table of each experiment file."""
    for f in files:
        text = Path(f).read_text(encoding="utf-8")
        new, n = re.subn(r"(?m)^lr = .*$", f"lr = {lr:g}", text, count=1)
        if n != 1:
            sys.exit(f"error: {f}: no 'lr = ...' line to set")
        Path(f).write_text(new, encoding="utf-8")


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    table = rows(pd.read_csv(argv[0]))
    print(table.to_string(index=False))
    picks = pick(table)
    for mode, lr in picks.items():
        print(f"{mode}: {'none of the grid' if lr is None else f'{lr:g}'}")
    if "--apply" in argv:
        if picks["full"] is None:
            print("error: no full fine-tune lr qualifies; the files are left as they are")
            return 1
        apply(picks["full"], argv[argv.index("--apply") + 1 :])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
