"""What a checkpoint costs the demo sweep's tiny model, against one of its epochs.

Run by hand: ``nice .venv/bin/python bench/bench_demo_checkpoint.py`` (writes
bench/results/demo_checkpoint.md and .json; about a minute of one CPU core).

The demo's own runs (grammarlab/data/demo_sweep.toml: pythia-tiny, hidden 64, 2 layers, lr 3e-3,
n_test = 32, ...) with two changes that do not touch an epoch's work: ``epochs`` cut to
``EPOCHS`` and ``checkpoint_every = 1``, so that every update is followed by a checkpoint
(RunDir.save_checkpoint: a Hugging Face directory, fsynced). loop.train runs them as the demo's
parallel executor does (one torch thread, one CPU worker); each epoch's ``time_s`` (training and
evaluation) and ``checkpoint_s`` come from metrics.jsonl. Each run is trained ``REPEATS`` times
and the medians over all their epochs are reported (the first and last epochs also sample
n_generate strings; the median leaves them out).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from grammarlab.io import write_json_atomic, write_text_atomic

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
EPOCHS = 20  # updates per run: 20 checkpoints, 21 evaluated epochs
REPEATS = 2  # each run trained this many times (fresh folders); medians over all their epochs
# the cheapest and the dearest epochs of the demo's grid (smallest / largest sets and strings)
POINTS = ("random_l2", "random_l26", "hierarchical_p0.5")


def _folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    from grammarlab.runs.folder import RunDir
    from grammarlab.sweep.demo import demo_spec
    from grammarlab.sweep.spec import expand
    from grammarlab.train.loop import train

    torch.set_num_threads(1)
    load_average = " ".join(f"{x:.2f}" for x in os.getloadavg())
    spec = demo_spec()
    every = spec["base"]["checkpoint_every"]  # the demo's own interval
    spec["base"].update(epochs=EPOCHS, checkpoint_every=1)
    results = []
    with tempfile.TemporaryDirectory(dir=ROOT.parent) as name:
        for run in expand(spec, Path(name) / "demo", name="demo").runs:
            grammar = Path(run.config.grammar).stem
            if grammar not in POINTS:
                continue
            rows, t0 = [], time.perf_counter()
            for i in range(REPEATS):
                folder = RunDir(Path(name) / f"{run.run_id}-{i}")
                train(run.config, folder, quiet=True)
                rows += folder.read_metrics()
            ckpt = [r["checkpoint_s"] for r in rows if r["checkpoint_s"] > 0]
            epoch = statistics.median(r["time_s"] for r in rows)
            r = {"run": run.run_id, "grammar": grammar, "n_train": run.config.n_train,
                 "epoch_s": epoch, "checkpoint_s": statistics.median(ckpt),
                 "checkpoint_s_range": [min(ckpt), max(ckpt)], "checkpoints": len(ckpt),
                 "wall_s": time.perf_counter() - t0,
                 "checkpoint_bytes": _folder_bytes(folder.checkpoint_path)}  # fmt: skip
            r["share_of_epoch"] = r["checkpoint_s"] / r["epoch_s"]
            # the share of a demo run's time at its interval: one write per `every` epochs
            r["share_at_demo_interval"] = r["checkpoint_s"] / (every * epoch + r["checkpoint_s"])
            print(json.dumps(r), flush=True)
            results.append(r)
    meta = {"date": dt.date.today().isoformat(), "platform": platform.platform(),
            "torch": torch.__version__, "threads": 1, "load_average": load_average,
            "epochs": EPOCHS, "repeats": REPEATS, "demo_checkpoint_every": every}  # fmt: skip
    write_json_atomic(HERE / "results" / "demo_checkpoint.json", {"meta": meta, "results": results})
    rows = [f"| {r['grammar']} | {r['n_train']} | {r['epoch_s'] * 1e3:.0f} | "
            f"{r['checkpoint_s'] * 1e3:.0f} | {r['checkpoint_bytes'] / 1e6:.2f} MB | "
            f"{r['share_of_epoch']:.0%} | {r['share_at_demo_interval']:.1%} |"
            for r in results]  # fmt: skip
    write_text_atomic(HERE / "results" / "demo_checkpoint.md", "\n".join([
        "# A checkpoint of the demo's tiny model against one of its epochs", "",
        f"{meta['date']}, {meta['platform']}, torch {meta['torch']}, 1 thread, load average "
        f"{load_average} (1, 5, 15 min; a shared machine) at the start; "
        "bench/bench_demo_checkpoint.py: the demo's settings, "
        f"{EPOCHS} epochs, `checkpoint_every = 1`, each run {REPEATS} times; medians over all "
        f"their epochs (metrics.jsonl). Last column: checkpoint / ({every} epochs + "
        f"checkpoint), the share of a demo run's time at its `checkpoint_every = {every}`.", "",
        "| grammar | n_train | epoch ms (time_s) | checkpoint ms | checkpoint size | "
        f"checkpoint / epoch | share at every {every} |",
        "|---|---|---|---|---|---|---|", *rows, "",
    ]))  # fmt: skip


if __name__ == "__main__":
    main()
