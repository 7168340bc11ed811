"""The grammar's own loss on a run's sets, in Eq. 1's units: the floor under the model's loss.

``G_set`` = per string the exact surprisal (nats) over its predicted tokens (its L tokens and the
end token: L + 1), then the mean over the set's strings: what a model equal to the grammar would
score as its loss on that set (nats/token). ``G_test / G_train`` is how much harder the test set
is than the training set *for the grammar itself*; the floor-corrected onset divides the raw
ratio by it (:func:`grammarlab.analysis.phases.floor_corrected_onset`).

:func:`sweep_floors` recomputes the floors of a sweep's runs without training: it expands the sweep
file, draws each run's sets from its resolved config (:func:`grammarlab.train.data.make_datasets`,
a pure function of the grammar and the data seed) and keeps the runs whose id (which ends in the
hash of the resolved config and grammar text) is in the saved tables. ``python -m
grammarlab.analysis.floors SWEEP.toml RESULTS_DIR`` writes ``RESULTS_DIR/floors.csv`` (columns
``run``, ``grammar_train_loss``, ``grammar_test_loss``, ``floor_ratio``), which the report merges
into the phases by run id.
"""

from __future__ import annotations

import math
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from grammarlab.errors import GrammarlabError
from grammarlab.grammar import inside
from grammarlab.grammar.load import load
from grammarlab.io import write_atomic
from grammarlab.sweep.spec import load_sweep
from grammarlab.train.data import make_datasets

LN2 = math.log(2.0)
FLOOR_COLUMNS = ("grammar_train_loss", "grammar_test_loss", "floor_ratio")


def set_floor(grammar_bits: np.ndarray, lengths: np.ndarray) -> float:
    """Mean over strings of ``grammar_bits * ln 2 / (L + 1)``: nats per predicted token (Eq. 1),
    ``lengths`` the strings' token counts L (end token not counted). NaN for an empty set; inf
    when a string is impossible under the grammar."""
    b = np.asarray(grammar_bits, dtype=np.float64)
    n = np.asarray(lengths, dtype=np.float64) + 1.0
    if b.shape != n.shape:
        raise GrammarlabError(f"{b.size} grammar surprisals for {n.size} strings")
    return float(np.mean(b * LN2 / n)) if b.size else math.nan


def floors_of_sets(grammar: Any, train: Sequence[Sequence[str]],
                   test: Sequence[Sequence[str]]) -> dict[str, float]:  # fmt: skip
    """``grammar_train_loss``, ``grammar_test_loss`` (nats/token) and their ratio test/train."""

    out = {}
    for name, strings in (("train", train), ("test", test)):
        bits = np.asarray(inside.surprisal_bits(grammar, list(strings)), dtype=np.float64)
        out[f"grammar_{name}_loss"] = set_floor(bits, np.array([len(s) for s in strings]))
        out[f"grammar_{name}_bits_mean"] = float(np.mean(bits)) if bits.size else math.nan
    tr, te = out["grammar_train_loss"], out["grammar_test_loss"]
    out["floor_ratio"] = te / tr if tr > 0 and math.isfinite(tr) and math.isfinite(te) else math.nan
    return out


def sweep_floors(sweep_file: Path | str) -> list[dict]:
    """One row per run of the sweep: ``grammar`` (file stem), ``n_train``, ``seed`` and the
    :data:`FLOOR_COLUMNS` of its stage-1 training set (D1) and its test set, with the mean
    grammar bits per string of each set (``grammar_{train,test}_bits_mean``, to check the sets
    against a run's saved measures)."""

    rows = []
    with tempfile.TemporaryDirectory() as tmp:  # derived grammars are written here
        sweep = load_sweep(sweep_file, out=tmp)
        for r in sweep.runs:
            g = load(r.config.grammar)
            sets = make_datasets(r.config, g).sets
            rows.append({"grammar": Path(r.config.grammar).stem, "n_train": r.config.n_train,
                         "seed": r.config.seed,
                         **floors_of_sets(g, sets["train"], sets["test"])})  # fmt: skip
    return rows


def check_against_measures(floors: Any, measures: Any, tol: float = 1e-4) -> Any:
    """The floor rows (with ``run``) whose recomputed mean grammar bits per string agree with the
    run's saved measures (``grammar_test_bits_mean``; ``model_train_bits_mean -
    excess_train_bits`` for the training set, ``model_d1_bits_mean`` in sequential runs) at
    every stage-1 epoch, to ``tol`` bits: the saved
    measures are float32 surprisals summed over <= 100 tokens, so their means carry ~1e-5 bits
    of rounding; a different draw of the sets differs by whole bits. Rows of runs without
    measures are kept (nothing to check); a mismatch raises."""
    if measures is None or len(measures) == 0:
        return floors
    m = measures[measures.get("stage", 1) == 1] if "stage" in measures else measures
    model_train = "model_train_bits_mean" if "model_train_bits_mean" in m else "model_d1_bits_mean"
    g = m.assign(gtrain=m[model_train] - m["excess_train_bits"])
    g = g.groupby("run")[["gtrain", "grammar_test_bits_mean"]].agg(["min", "max"])
    for r in floors.itertuples():
        if r.run not in g.index:
            continue
        row = g.loc[r.run]
        for col, mine in (("gtrain", r.grammar_train_bits_mean),
                          ("grammar_test_bits_mean", r.grammar_test_bits_mean)):  # fmt: skip
            lo, hi = row[(col, "min")], row[(col, "max")]
            if not (abs(lo - mine) <= tol and abs(hi - mine) <= tol):
                raise GrammarlabError(f"run {r.run}: the redrawn sets give {mine:.6f} grammar "
                                      f"bits/string, the saved measures {lo:.6f}..{hi:.6f}",
                                      hint="the sweep file or the sampler changed since the "
                                      "run")  # fmt: skip
    return floors


def main(argv: Sequence[str]) -> int:
    """``python -m grammarlab.analysis.floors SWEEP.toml RESULTS_DIR``: write floors.csv for the
    runs of RESULTS_DIR/phases.csv."""
    import pandas as pd

    if len(argv) != 2:
        print("usage: python -m grammarlab.analysis.floors SWEEP.toml RESULTS_DIR", file=sys.stderr)
        return 2
    sweep, results = Path(argv[0]), Path(argv[1])
    ph = pd.read_csv(results / "phases.csv")
    fl = pd.DataFrame(sweep_floors(sweep))
    keys = ["grammar", "n_train", "seed"]
    df = ph[["run", *keys]].merge(fl, on=keys, how="left")
    missing = df[df["floor_ratio"].isna()]
    if len(missing):
        raise GrammarlabError(f"{len(missing)} runs of the tables are not points of this sweep "
                              f"(e.g. {missing['run'].iloc[0]})", file=str(sweep))  # fmt: skip
    mpath = [p for p in (results / "measures.csv", results / "measures.csv.gz") if p.is_file()]
    check_against_measures(df, pd.read_csv(mpath[0]) if mpath else None)
    df = df[["run", *FLOOR_COLUMNS]]
    write_atomic(results / "floors.csv", lambda p: df.to_csv(p, index=False))
    print(f"wrote {results / 'floors.csv'} ({len(df)} runs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
