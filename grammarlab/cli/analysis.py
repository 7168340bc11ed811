"""``grammarlab phases RUN_DIR`` and ``grammarlab measures RUN_DIR``: thin shells over
:mod:`grammarlab.analysis.phases` and :mod:`grammarlab.analysis.measures`.

``phases --json`` prints one JSON object: for a single run folder, that run's phases (keys of
:meth:`grammarlab.analysis.phases.Phases.to_dict`, null when absent); for a folder of several runs,
``{"n_runs": k, "runs": {RUN_ID: phases, ...}, "mean": phases of the mean curve}`` where RUN_ID is
the run's path relative to RUN_DIR and the mean curve averages the runs epoch by epoch.

The readable table prints event epochs as :func:`grammarlab.analysis.phases.format_event` does
(``>=100`` / ``>100`` when censored at the last epoch 100, never as a value); its mean line gives
each event over the runs (:func:`grammarlab.analysis.phases.summarize_event`: the mean over the
runs that observed it and how many did), the other columns from the mean curve.

The run folder's reader (grammarlab.runs.folder) is imported inside the commands: it imports
torch, which ``grammarlab --help`` must not.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grammarlab.analysis.phases import (
    DEFAULT_THRESHOLD,
    DEFAULT_TOLERANCE,
    Curves,
    format_event,
    phases_over_seeds,
    summarize_event,
)
from grammarlab.cli.grammar import parquet_out, write_chunks, write_file
from grammarlab.cli.outputs import output_file
from grammarlab.errors import GrammarlabError
from grammarlab.grammar.dataset import jsonl_chunks, write_parquet

if TYPE_CHECKING:
    from grammarlab.runs.folder import RunDir

# what the readable table shows, in order: (key, header)
_PHASE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("memorization_onset_epoch", "onset"),
    ("memorization_first_crossing_epoch", "first>thr"),
    ("generalization_end_epoch", "gen_end"),
    ("min_test_loss", "min_test"),
    ("overlap", "overlap"),
)
_SEQ_COLUMNS: tuple[tuple[str, str], ...] = (
    ("regeneralization_epoch", "regen"),
    ("d1_plateau_first_epoch", "plateau_from"),
    ("d1_plateau_last_epoch", "plateau_to"),
    ("d1_first_within_epoch", "d1_within"),
    ("forgetting_epoch", "forget"),
    ("switch_d1_change", "switch_d1"),  # D1's loss change in the first stage-2 update (nats/tok)
)
# epoch column -> the censorable event it shows (grammarlab.analysis.phases.EVENTS)
_EVENTS = {
    "memorization_onset_epoch": "memorization_onset",
    "generalization_end_epoch": "generalization_end",
    "regeneralization_epoch": "regeneralization",
    "forgetting_epoch": "forgetting",
}
_MEASURE_COLUMNS = (
    "excess_test_bits",
    "memU_train_bits_total",
    "memU_test_bits_mean",
    "memU_bits_per_param",
    "mia_auc",
    "mia_auc_ref",
    "greedy_extraction_rate_train",
    "gen_novel_share",
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "phases",
        help="memorization onset and end of generalization of a run (or each run and their mean)",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder or a folder of runs")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_THRESHOLD,
        help="memorization starts when test/train loss stays above this (default 1.05)",
    )
    p.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help="sequential runs: relative closeness of D1's loss for plateau/forgetting (0.05)",
    )
    p.set_defaults(func=cmd_phases)

    m = sub.add_parser("measures", help="(re)compute and write a run's memorization measures")
    m.add_argument("run_dir", metavar="RUN_DIR", help="a run folder or a folder of runs")
    m.set_defaults(func=cmd_measures)

    d = sub.add_parser(
        "data",
        help="a run's data sets (train, test, random, train2) as a dataset: one row per string "
        "with its set, tokens, length and exact surprisal in bits under the run's grammar",
    )
    d.add_argument("run_dir", metavar="RUN_DIR", help="a run folder")
    d.add_argument("--format", choices=("jsonl", "parquet"), default="jsonl")
    d.add_argument("-o", "--out", help="output file, written atomically (jsonl default: stdout)")
    d.set_defaults(func=cmd_data)


def _phases_of(runs: list[RunDir], root: Path, threshold: float, tolerance: float) -> Any:
    from grammarlab.analysis.run_analysis import finite_records  # torch (runs.folder)
    from grammarlab.runs.folder import run_id

    curves = {}
    for r in runs:
        records = r.read_metrics(partial_ok=True)  # a run being written: its last line warns
        if not records:
            raise GrammarlabError("metrics.jsonl has no epochs yet", file=str(r))
        curves[run_id(r, root)] = Curves.from_records(finite_records(records) or records)
    per_seed, mean_phases = phases_over_seeds(list(curves.values()), threshold, tolerance)
    per = {k: ph.to_dict() for k, ph in zip(curves, per_seed, strict=True)}
    return per, (mean_phases.to_dict() if len(curves) > 1 else None)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True))  # noqa: E731
    return "\n".join([line(header)] + [line(r) for r in rows])


def cmd_phases(args: argparse.Namespace) -> int:
    from grammarlab.runs.folder import find_runs  # torch: not for every command's start-up

    root = Path(args.run_dir)
    runs = find_runs(root)
    per, mean = _phases_of(runs, root, args.threshold, args.tolerance)
    if args.json:
        obj = next(iter(per.values())) if mean is None else {
            "n_runs": len(per), "runs": per, "mean": mean
        }  # fmt: skip
        print(json.dumps(obj, allow_nan=False))
        return 0
    seq = any(e["sequential"] for e in per.values())
    cols = _PHASE_COLUMNS + (_SEQ_COLUMNS if seq else ())
    header = ["run"] + [h for _, h in cols] + ["epochs"]
    rows = [
        [k] + [_cell(e, key) for key, _ in cols] + [_fmt(e["n_epochs"])] for k, e in per.items()
    ]
    if mean is not None:
        _warn_if_configs_differ(runs)
        runs_ = list(per.values())
        rows.append([f"mean of {len(per)}"] + [
            summarize_event(runs_, _EVENTS[key]).label() if key in _EVENTS else _fmt(mean.get(key))
            for key, _ in cols
        ] + [_fmt(mean["n_epochs"])])  # fmt: skip
    print(f"phases (test/train loss threshold {args.threshold}; losses in nats/token; "
          ">=E / >E: censored at the last epoch E)")  # fmt: skip
    print(_table(header, rows))
    return 0


def _cell(phases: dict[str, Any], key: str) -> str:
    """One table cell: an event censored as format_event prints it, other values plainly."""
    return format_event(phases, _EVENTS[key]) if key in _EVENTS else _fmt(phases.get(key))


def _warn_if_configs_differ(runs: list[RunDir]) -> None:
    """The mean is meant over seeds: say so when runs differ in more than seed-like keys."""
    cfgs = [{k: v for k, v in r.config_values().items() if "seed" not in k} for r in runs]
    keys = sorted({k for c in cfgs for k in c if any(c.get(k) != d.get(k) for d in cfgs)})
    if keys:
        print(f"note: the runs differ in {', '.join(keys)}; the mean mixes them", file=sys.stderr)


def cmd_measures(args: argparse.Namespace) -> int:
    from grammarlab.analysis.run_analysis import write_run_analysis
    from grammarlab.runs.folder import find_runs, run_id

    root = Path(args.run_dir)
    for run in find_runs(root):
        write_run_analysis(run)
        rows = run.read_measures()
        print(f"{run_id(run, root)}: wrote phases.json, measures.jsonl, per_string.csv, "
              f"per_position.csv ({len(rows)} epochs)")  # fmt: skip
        if not rows:
            continue
        if len(rows) > 12:  # first, last and evenly spaced epochs between
            step = (len(rows) - 1) / 11
            rows = [rows[round(i * step)] for i in range(12)]
        cols = [c for c in _MEASURE_COLUMNS if any(c in r for r in rows)]
        print(
            _table(
                ["epoch", *cols], [[str(r["epoch"])] + [_fmt(r.get(c)) for c in cols] for r in rows]
            )
        )
    print("bits per string unless _per_token; memU with the grammar as the reference model")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from grammarlab.runs.folder import RunDir  # torch

    run = RunDir(Path(args.run_dir))
    if args.format == "parquet":
        parquet_out(args.out)
    if args.out is not None:
        output_file(args.out, "--out")
    sets = run.read_data()
    if not sets:
        raise GrammarlabError("no data sets in this folder (data/*.txt)", file=str(run),
                              hint="give a run folder that has started training")  # fmt: skip
    g = run.read_grammar()
    batches = list(sets.items())
    if args.format == "jsonl":
        write_chunks(args.out, "--out", jsonl_chunks(g, batches))
    else:
        write_file(args.out, "--out", lambda tmp: write_parquet(tmp, g, batches, with_set=True))
    return 0
