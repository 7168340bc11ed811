"""``grammarlab demo``: the embedded entropy sweep (grammarlab/data/demo_sweep.toml) on the CPU,
its tables, its figures (phase diagram included) and a summary table, in at most 5 minutes on
2 cores.

Why these settings ("Rethinking memorization in LLMs: on learning by rote vs. with understanding",
the paper this reproduces, fine-tunes 1B-12B models; we want both of its phases on a laptop):

* model: GPT-NeoX (Pythia's architecture) with hidden size 64, 2 layers, 4 heads, MLP 256
  (about 0.1M parameters): the smallest size at which the issue author saw both phases (onset
  near epoch 9 for n = 8 and near 50 for n = 64 on the hierarchical grammar, p = 0.5).
* AdamW, lr 3e-3 with linear decay to 0, the whole training set as one batch, 100 epochs: the
  n = 64 runs need most of the 100 epochs to start memorizing; fewer epochs cut their
  memorization phase off.
* n_test = 32 (the paper: 10 for random and 100 for hierarchical grammars): the test loss is a
  mean over 32 x 64-72 tokens, smooth enough for the phase detector, and evaluating it every
  epoch costs a third of 100 strings.
* checkpoint_every = 10: a checkpoint (a Hugging Face directory of ~1.2 MB) costs about one tiny
  epoch (medians of 55-67 ms against epochs of 52-129 ms on a loaded 2-core machine,
  bench/results/demo_checkpoint.md), so one every 10 epochs takes 5-10% of a run; a fixed
  interval, unlike the time-based default, checkpoints the same epochs on every machine, and a
  resumed demo run repeats at most 9 epochs. (The greedy extraction test uses the default
  32-token prefix: the runner reads it off the teacher-forced argmaxes, so it costs nothing
  extra.)
* workers = CPU count (parallel executor, one torch thread each): tiny models do not speed up
  with more threads, while runs are independent.

The ``[fast]`` table of the sweep file is a reduced variant (2 grammars, n = 8, 30 epochs, a
32-wide model) for the default tests.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
import time
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from grammarlab import plot as plot_package
from grammarlab.errors import ConfigError
from grammarlab.io import write_json_atomic
from grammarlab.plot.registry import PLOTS, plot_all
from grammarlab.progress import step
from grammarlab.sweep.execute import run_sweep
from grammarlab.sweep.spec import expand
from grammarlab.sweep.tables import SAVED, aggregate, summary_table

# beside the figures: the hash of the tables (and plotting code) they were drawn from
DRAWN = "drawn_from.json"


def demo_spec(seeds: int = 1, fast: bool = False) -> dict[str, Any]:
    """The demo sweep spec (package data), with ``seeds`` seeds and the fast overrides applied."""
    if seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {seeds}")
    text = resources.files("grammarlab").joinpath("data/demo_sweep.toml").read_text("utf-8")
    spec = tomllib.loads(text)
    quick = spec.pop("fast", {})
    if fast:
        quick = copy.deepcopy(quick)
        spec["derive"] = quick.pop("derive", spec["derive"])
        spec["grid"]["n_train"] = quick.pop("n_train", spec["grid"]["n_train"])
        spec["base"]["model"].update(quick.pop("model", {}))
        spec["base"].update(quick)
        spec["name"] = "demo-fast"
    spec["grid"]["seed"] = list(range(seeds))
    return spec


def run_demo(
    out: str | Path = "runs/demo",
    figures: str | Path = "figures/demo",
    seeds: int = 1,
    workers: int | None = None,
    fast: bool = False,
    progress: bool = True,
) -> int:
    """Run (or resume) the demo sweep, write its tables and figures, print the summary table.
    Returns 0, or 1 when a run failed."""
    t0 = time.perf_counter()
    spec = demo_spec(seeds, fast)
    sweep = expand(spec, out, name=spec["name"])
    executor = "local" if workers == 1 else "parallel"
    outcomes = run_sweep(sweep, executor=executor, workers=workers, progress=progress)
    t_runs = time.perf_counter() - t0
    step(f"tables: reading {len(sweep.runs)} runs", progress)
    t1 = time.perf_counter()
    tables = aggregate(out)
    step(f"tables written to {out} in {time.perf_counter() - t1:.0f} s", progress)
    written, notes = draw_figures(out, figures, progress)
    failed = [o for o in outcomes if o.state == "failed"]
    for o in failed:
        print(f"{o.run_id}: failed: {o.error}", file=sys.stderr)
    # the demo asks for no figure by name: a kind its tables cannot show is no news
    skipped = tuple(f"{kind} skipped:" for kind in PLOTS)
    notes = [n for n in notes if not n.startswith(skipped) and n not in tables.notes]
    for note in [*tables.notes, *notes]:
        print(f"note: {note}", file=sys.stderr)
    print(summary_table(tables.phases))
    wall = time.perf_counter() - t0
    cpu = sum(o.cpu_seconds for o in outcomes)
    print(
        f"\n{len(sweep.runs)} runs ({len(failed)} failed) in {t_runs:.0f} s wall, "
        f"{cpu:.0f} CPU s "
        f"in the runs; tables in {out}, {len(written)} figures in {figures}; total {wall:.0f} s"
    )
    return 1 if failed else 0


def tables_hash(out: Path | str) -> str:
    """SHA-256 of the sweep's saved tables (:data:`grammarlab.sweep.tables.SAVED`) and of the
    plotting code: what the figures are drawn from."""
    h = hashlib.sha256()
    for name in SAVED:
        p = Path(out) / f"{name}.csv"
        h.update(name.encode() + b"\0" + (p.read_bytes() if p.is_file() else b"-") + b"\0")
    for p in sorted(Path(plot_package.__file__).parent.glob("*.py")):
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def draw_figures(
    out: Path | str, figures: Path | str, progress: bool = False
) -> tuple[list[str], list[str]]:
    """The demo's figures of the sweep folder ``out`` in ``figures``: drawn anew unless
    ``figures/drawn_from.json`` holds the hash of the same tables (:func:`tables_hash`) and
    every figure it lists is there; with ``progress``, a line before and after drawing (or one
    saying they were kept). Returns (figure stems, notes)."""
    figures, digest = Path(figures), tables_hash(out)
    try:
        drawn = json.loads((figures / DRAWN).read_text(encoding="utf-8"))
        same = drawn["tables_sha256"] == digest
        kept = [str(s) for s in drawn["figures"]]
        notes = [str(n) for n in drawn["notes"]]
    except (OSError, ValueError, KeyError, TypeError):
        same, kept, notes = False, [], []
    if same and all((figures / f"{stem}.png").is_file() for stem in kept):
        step(f"figures: tables unchanged, the {len(kept)} figures in {figures} kept", progress)
        return kept, notes
    step(f"figures: drawing into {figures}", progress)
    t0 = time.perf_counter()
    written, notes = plot_all(out, figures)
    write_json_atomic(figures / DRAWN,
                      {"tables_sha256": digest, "figures": written, "notes": notes})  # fmt: skip
    step(f"figures: {len(written)} drawn in {time.perf_counter() - t0:.0f} s", progress)
    return written, notes
