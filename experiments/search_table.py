"""Markdown table of a tiny-model search sweep: one row per setting (lr, width, vocabulary),
seeds pooled. Reads the sweep's curves.csv and phases.csv (written by `grammarlab sweep`) and
settings.csv (each run's lr, width, vocabulary, read from its config.toml by --save, which also
copies the three small tables out of the run folders, curves and measures gzipped):

    python experiments/search_table.py runs/NAME --save experiments/results/NAME
    python experiments/search_table.py experiments/results/tiny_vocab_search

Columns (losses in nats/token on the test set, Eq. 1 of the paper, the end token included):
test loss at epoch 0; the minimum test loss and the floor it is measured against (the
grammar's entropy per token); the drop from epoch 0 to the minimum; the end of generalization
(argmin, ">=E" when the test loss was still falling at the last epoch E); the memorization onset
(test/train > 1.05 sustained, ">E" when never reached); "phase": how many seeds show a
generalization phase before memorization: the test loss falls at least 0.05 nats/token below its
epoch-0 value AND the minimum comes at or after the onset (the two phases overlap, as in the
paper) or within 2 epochs before it.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd

SETTING = ["config.lr", "config.model.hidden_size", "config.model.vocab_size", "n_train"]
DROP = 0.05  # nats/token: far above the seed-to-seed spread of the epoch-0 loss (~0.01)


def _event(r: pd.Series, name: str, last: int) -> tuple[float | None, str]:
    e, cens = r.get(f"{name}_epoch"), bool(r.get(f"{name}_censored"))
    if cens or e is None or (isinstance(e, float) and math.isnan(e)):
        return None, (f">={last}" if name == "generalization_end" else f">{last}")
    return float(e), str(int(e))


def table(folder: Path) -> str:
    curves = pd.read_csv(_table(folder, "curves"))
    phases = pd.read_csv(_table(folder, "phases"))
    settings = pd.read_csv(folder / "settings.csv")
    phases = phases.drop(
        columns=[
            c for c in SETTING if c in settings.columns and c != "n_train" and c in phases.columns
        ]
    ).merge(settings, on="run")
    for c in SETTING:
        if c not in phases.columns:
            phases[c] = math.nan
    test0 = curves[(curves.dataset == "test") & (curves.epoch == 0)].set_index("run")["loss"]
    rows = []
    keys = phases[SETTING].astype(object).where(phases[SETTING].notna(), "-")
    for key, grp in phases.groupby([keys[c] for c in SETTING], sort=True):
        stats, phase, on_s, ge_s = [], 0, [], []
        for _, r in grp.iterrows():
            last = int(r["last_epoch"])
            ge, ge_txt = _event(r, "generalization_end", last)
            on, on_txt = _event(r, "memorization_onset", last)
            t0, mn = float(test0[r["run"]]), float(r["min_test_loss"])
            drop = t0 - mn
            ok = drop >= DROP and ge is not None and (on is None or ge >= on - 2)
            if on is None:  # no onset at all: a generalization phase but no memorization
                ok = False
            phase += ok
            stats.append((t0, mn, drop))
            on_s.append(on_txt)
            ge_s.append(ge_txt)
        t0s, mns, drops = zip(*stats, strict=True)
        lr, h, v, n = key
        rows.append(
            f"| {lr:g} | {int(h) if h != '-' else 64} | {int(v) if v != '-' else 29} | {int(n)} "
            f"| {_ms(t0s)} | {_ms(mns)} | {_ms(drops)} | {', '.join(ge_s)} | {', '.join(on_s)} "
            f"| {phase} of {len(grp)} |"
        )
    head = (
        "| lr | width | vocabulary | n | test loss, epoch 0 | min test loss | drop | "
        "end of generalization | onset | phase |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    return head + "\n" + "\n".join(rows) + "\n"


def _table(folder: Path, name: str) -> Path:
    """``name.csv`` in ``folder``, or ``name.csv.gz`` (the committed copies are gzipped)."""
    plain = folder / f"{name}.csv"
    return plain if plain.exists() else folder / f"{name}.csv.gz"


def _ms(v) -> str:
    s = pd.Series(v, dtype=float)
    return f"{s.mean():.3f} +/- {s.std(ddof=1):.3f}" if len(s) > 1 else f"{s.iloc[0]:.3f}"


def save(runs: Path, dest: Path) -> None:
    """Copy phases.csv of the sweep folder ``runs`` to ``dest``, curves.csv and measures.csv
    gzipped, and write settings.csv: run, lr, width, vocabulary (empty: unset) from each run's
    config.toml."""
    import gzip
    import shutil
    import tomllib

    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(runs / "phases.csv", dest / "phases.csv")
    for name in ("curves.csv", "measures.csv"):
        with (
            open(runs / name, "rb") as src,
            gzip.GzipFile(dest / f"{name}.gz", "wb", 9, mtime=0) as out,
        ):
            shutil.copyfileobj(src, out)
    rows = []
    for cfg in sorted(runs.glob("*/config.toml")):
        c = tomllib.loads(cfg.read_text(encoding="utf-8"))
        m = c.get("model", {})
        rows.append({"run": cfg.parent.name, "config.lr": c.get("lr"),
                     "config.model.hidden_size": m.get("hidden_size"),
                     "config.model.vocab_size": m.get("vocab_size")})  # fmt: skip
    pd.DataFrame(rows).to_csv(dest / "settings.csv", index=False)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[2] == "--save":
        save(Path(sys.argv[1]), Path(sys.argv[3]))
        print(table(Path(sys.argv[3])), end="")
    else:
        print(table(Path(sys.argv[1])), end="")
