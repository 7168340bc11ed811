"""From run results to capacities: tidy tables and the bits-per-parameter fit.

Definitions (units in brackets):

* A run's memorized bits [bits]: the total over its training strings (clipped at 0 per string,
  as Morris et al.; the signed total alongside) of its best measured checkpoint, the largest
  over its measurements (``mem_bits_last``: the last one). Each measurement is exact for the
  model as it was at that step, so the best one is what a model of this size was seen to store;
  at a constant learning rate the total drops now and then by up to half between two
  measurements (measured: a loss spike, after which it climbs back), and the last measurement
  alone would report the spike rather than the model size.
* Capacity of a model size under one dtype and seed [bits]: the largest memorized bits over the
  grid's dataset sizes (Morris et al.: capacity is the maximum of memorization over datasets;
  once the data exceed it, the total stays on a plateau). Its spread is over seeds.
  ``plateau_seen``: the largest dataset has at least twice the capacity's bits and still holds
  at least 90% of it (memorization flattened out instead of following the data). Without a
  plateau, the capacity is a lower bound (the grid's data were too small, or runs too short).
* Bits per parameter: ordinary least squares through the origin of the per-seed capacities on
  the parameter counts, ``a = sum(P C) / sum(P^2)``, with its standard error
  ``sqrt(sum(residual^2) / (n - 1) / sum(P^2))`` and a 95% confidence interval from Student's t
  with n - 1 degrees of freedom (n = number of (model size, seed) points).
* Ceiling [bits]: no model memorizes more than ``dataset_bits - N log2 N`` of N strings
  (:func:`ceiling_bits`); a run near it says that the dataset, not the model, was the limit.
* Ratio [dimensionless]: a run's dataset bits over its model size's mean capacity (same dtype);
  the test loss and the membership AUC are read against it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

PLATEAU_DATA_FACTOR = 2.0  # the largest dataset must hold this many times the capacity's bits
PLATEAU_KEEP = 0.9  # ...and the model must still memorize this share of the capacity there


def ceiling_bits(dataset_bits: float, n_train: int) -> float:
    """The most memorized bits any model can show on N strings of ``dataset_bits`` in all [bits]:
    ``dataset_bits - N log2 N``. Model probabilities of the N strings sum to at most 1, so the sum
    of their surprisals is at least N log2 N (Jensen); a model that stores the set perfectly
    still pays log2 N bits per string to say which one. The clipped total obeys it too (over any
    k <= N strings, k (H - log2 k) grows with k while H - log2 k > 1 / ln 2)."""
    return float(dataset_bits) - n_train * math.log2(n_train)


def best_bits(record: dict[str, Any]) -> dict[str, float]:
    """A run's memorized bits, clipped and signed [bits], at its measurement with the most
    clipped bits (the final one when the record has no curve)."""
    best = max(record["curve"] or [record["final"]], key=lambda p: p["mem_bits"])
    return {"mem_bits": float(best["mem_bits"]), "mem_bits_signed": float(best["mem_bits_signed"]),
            "best_step": best.get("step")}  # fmt: skip


def runs_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per run: its coordinates and final measurement (bits, bits per string, AUC)."""
    rows = []
    for r in records:
        s, f = r["settings"], r["final"]
        best = best_bits(r)
        rows.append({
            "run_id": r["run_id"], "model_id": s["model_id"], "family": s["family"],
            "dtype": s["dtype"], "seed": s["seed"], "n_train": s["n_train"],
            "n_params": r["n_params"], "dataset_bits": r["dataset_bits"],
            "mem_bits": best["mem_bits"], "mem_bits_signed": best["mem_bits_signed"],
            "best_step": best["best_step"], "mem_bits_last": f["mem_bits"],
            "mem_fraction": best["mem_bits"] / r["dataset_bits"],
            "ceiling_bits": ceiling_bits(r["dataset_bits"], s["n_train"]),
            "of_ceiling": best["mem_bits"] / ceiling_bits(r["dataset_bits"], s["n_train"]),
            "train_bits_per_string": f["train_bits_per_string"],
            "test_bits_per_string": f["test_bits_per_string"],
            "test_excess_bits": f["test_excess_bits"], "auc": f["auc"],
            "auc_chance_sd": r["auc_chance_sd"], "saturated": r["saturated"],
            "steps": r["steps"], "seconds": r["seconds"], "cpu_seconds": r.get("cpu_seconds"),
        })  # fmt: skip
    df = pd.DataFrame(rows)
    if len(df):
        df = df.sort_values(["dtype", "n_params", "model_id", "seed", "n_train"])
    return df.reset_index(drop=True)


def seed_capacities(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (model size, dtype, seed): its capacity [bits] (max memorized bits over
    dataset sizes), the dataset size where it was reached, whether that run saturated, and
    whether a plateau was seen (see the module docstring)."""
    rows = []
    for key, g in runs.groupby(["model_id", "family", "dtype", "seed"], sort=True):
        best = g.loc[g["mem_bits"].idxmax()]
        largest = g.loc[g["n_train"].idxmax()]
        cap = float(best["mem_bits"])
        plateau = bool(
            cap > 0
            and largest["dataset_bits"] >= PLATEAU_DATA_FACTOR * cap
            and largest["mem_bits"] >= PLATEAU_KEEP * cap
        )
        rows.append({
            "model_id": key[0], "family": key[1], "dtype": key[2], "seed": key[3],
            "n_params": int(best["n_params"]), "capacity_bits": cap,
            "at_n_train": int(best["n_train"]), "saturated": bool(best["saturated"]),
            "plateau_seen": plateau, "bits_per_param": cap / float(best["n_params"]),
        })  # fmt: skip
    return pd.DataFrame(rows)


def capacity_table(seeds: pd.DataFrame) -> pd.DataFrame:
    """One row per (model size, dtype): mean capacity over seeds [bits], its standard deviation
    (ddof 1; NaN for one seed), min and max, bits per parameter, and how many seeds saturated
    and showed a plateau."""
    if not len(seeds):
        return pd.DataFrame()
    g = seeds.groupby(["model_id", "family", "dtype", "n_params"], sort=True)
    out = g.agg(
        capacity_bits=("capacity_bits", "mean"), capacity_sd=("capacity_bits", "std"),
        capacity_min=("capacity_bits", "min"), capacity_max=("capacity_bits", "max"),
        n_seeds=("seed", "count"), n_saturated=("saturated", "sum"),
        n_plateau=("plateau_seen", "sum"),
    ).reset_index()  # fmt: skip
    out["bits_per_param"] = out["capacity_bits"] / out["n_params"]
    return out.sort_values(["dtype", "n_params"]).reset_index(drop=True)


def fit_through_origin(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """OLS of y = a x (no intercept): slope a, its standard error and a 95% t interval; NaN
    error and interval with fewer than two points or all x at 0."""
    from scipy.stats import t as student_t

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = len(x)
    sxx = float((x * x).sum())
    if n == 0 or sxx == 0.0:
        return {"slope": math.nan, "se": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                "n": n}  # fmt: skip
    a = float((x * y).sum()) / sxx
    if n < 2:
        return {"slope": a, "se": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n": n}
    se = math.sqrt(float(((y - a * x) ** 2).sum()) / (n - 1) / sxx)
    q = float(student_t.ppf(0.975, n - 1))
    return {"slope": a, "se": se, "ci_low": a - q * se, "ci_high": a + q * se, "n": n}


def fit_table(seeds: pd.DataFrame) -> pd.DataFrame:
    """Bits per parameter per dtype (all families together, ``family = "all"``) and per
    (family, dtype): the through-origin fit of capacity [bits] on parameters."""
    rows = []
    if not len(seeds):
        return pd.DataFrame()
    for dtype, g in seeds.groupby("dtype", sort=True):
        groups = [("all", g)]
        if g["family"].nunique() > 1:
            groups += list(g.groupby("family", sort=True))
        for family, h in groups:
            fit = fit_through_origin(h["n_params"].to_numpy(), h["capacity_bits"].to_numpy())
            rows.append({"dtype": dtype, "family": family,
                         "bits_per_param": fit["slope"], "se": fit["se"],
                         "ci95_low": fit["ci_low"], "ci95_high": fit["ci_high"],
                         "n_points": fit["n"], "n_sizes": h["model_id"].nunique(),
                         "all_plateau": bool(h["plateau_seen"].all())})  # fmt: skip
    return pd.DataFrame(rows)


def ratio_table(runs: pd.DataFrame, caps: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with ``capacity_bits`` (its model size's mean over seeds, same dtype) and
    ``ratio`` = dataset bits / capacity."""
    if not len(runs) or not len(caps):
        return runs.assign(capacity_bits=np.nan, ratio=np.nan)
    m = runs.merge(caps[["model_id", "dtype", "capacity_bits"]], on=["model_id", "dtype"])
    m["ratio"] = m["dataset_bits"] / m["capacity_bits"]
    return m


def summary(caps: pd.DataFrame, fits: pd.DataFrame, diverged: pd.DataFrame | None = None) -> str:
    """A plain-text table: capacity per model size and dtype, then the fits, then the runs that
    diverged (not counted)."""
    tail = ""
    if diverged is not None and len(diverged):
        tail = (f"\n{len(diverged)} run(s) diverged (left out): "
                + ", ".join(diverged["run_id"]))  # fmt: skip
    if not len(caps):
        return "no finished runs" + tail
    lines = [f"{'model':32} {'dtype':9} {'params':>7} {'capacity bits':>20} {'bits/param':>10} "
             f"{'saturated':>9} {'plateau':>7}"]  # fmt: skip
    for r in caps.itertuples():
        sd = "" if math.isnan(r.capacity_sd) else f" +- {r.capacity_sd:.0f}"
        lines.append(
            f"{r.model_id:32} {r.dtype:9} {r.n_params:7d} {f'{r.capacity_bits:.0f}{sd}':>20} "
            f"{r.bits_per_param:10.3f} {f'{r.n_saturated}/{r.n_seeds}':>9} "
            f"{f'{r.n_plateau}/{r.n_seeds}':>7}"
        )
    lines.append("")
    for r in fits.itertuples():
        ci = ("" if math.isnan(r.se) else
              f" +- {r.se:.3f} (95% CI {r.ci95_low:.3f} .. {r.ci95_high:.3f})")  # fmt: skip
        note = "" if r.all_plateau else "  [no plateau in some sizes: lower bound]"
        lines.append(f"bits/param {r.dtype} {r.family}: {r.bits_per_param:.3f}{ci}, "
                     f"{r.n_points} points{note}")  # fmt: skip
    return "\n".join(lines) + tail


STEP_MARKS = (500, 1000, 2000, 3000, 4000, 5000)  # steps at which steps_table reads the curves


def steps_table(records: list[dict[str, Any]], marks: tuple[int, ...] = STEP_MARKS) -> pd.DataFrame:
    """One row per finished run and step mark: the best memorized bits (clipped) [bits] of its
    measurements up to that step. A run that stopped earlier (saturated, or its budget ended)
    keeps its last best (``stopped`` True): what the run would have shown is not known, only
    that the rule saw no growth. Marks beyond the grid's ``max_steps`` are left out."""
    rows = []
    for r in records:
        if r.get("diverged") is True or not r["curve"]:
            continue
        s = r["settings"]
        budget = s.get("train", {}).get("max_steps", r["steps"])
        for mark in marks:
            if mark > budget:
                continue
            upto = [p["mem_bits"] for p in r["curve"] if p["step"] <= mark]
            rows.append({"model_id": s["model_id"], "family": s["family"], "dtype": s["dtype"],
                         "seed": s["seed"], "n_train": s["n_train"], "step": mark,
                         "mem_bits": float(max(upto)) if upto else 0.0,
                         "stopped": r["steps"] < mark})  # fmt: skip
    return pd.DataFrame(rows, columns=["model_id", "family", "dtype", "seed", "n_train", "step",
                                       "mem_bits", "stopped"])  # fmt: skip


def diverged_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per diverged run (loss no longer finite): its coordinates, steps and message."""
    cols = ["run_id", "model_id", "family", "dtype", "seed", "n_train", "steps", "error"]
    rows = [{"run_id": r["run_id"], **{k: r["settings"].get(k) for k in cols[1:6]},
             "steps": r.get("steps"), "error": r.get("error")}
            for r in records if r.get("diverged") is True]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def analyse(records: list[dict[str, Any]]) -> dict[str, pd.DataFrame]:
    """All tables of a grid: runs, seed capacities, capacities, fits, runs with ratios, and the
    diverged runs (left out of every other table)."""
    diverged = diverged_table(records)
    runs = runs_table([r for r in records if r.get("diverged") is not True])
    seeds = seed_capacities(runs) if len(runs) else pd.DataFrame()
    caps = capacity_table(seeds)
    return {"runs": runs, "seed_capacity": seeds, "capacity": caps,
            "fit": fit_table(seeds), "ratio": ratio_table(runs, caps),
            "steps": steps_table(records), "diverged": diverged}  # fmt: skip
