"""The training set's load on the model's capacity: ``n * H / C`` bits over bits.

``n * H`` is the expected information of n training strings drawn from the grammar (H its exact
entropy, bits/string); ``C = bits_per_param * n_params`` the model's memorization capacity with
the measured bits per parameter of docs/capacity.md (:data:`BITS_PER_PARAM`: 0.38 for the
GPT-NeoX presets at 20k steps; a parameter, as the capacity measurement is being redone). A load
near or above 1 means the model cannot hold the training set verbatim. ``n_params`` comes from a
run's phases row (``n_params``), else from its saved measures summaries (``final_memU_train_
bits_total / final_memU_bits_per_param``, both written from the run's env.json parameter count).

:func:`collapse` states whether the onsets of all runs fall on one curve of the load: Spearman's
rho of the onset against the load over every finished run (censored onsets ranked last) with
``|rho| >= COLLAPSE_RHO`` and its 95% interval on the same side of 0, over at least
:data:`MIN_LOADS` distinct loads (two clusters always lie on some curve); else they do not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from grammarlab.analysis import stats
from grammarlab.analysis.phases import event_interval, is_stopped

BITS_PER_PARAM = 0.38  # docs/capacity.md, GPT-NeoX presets, float32 (95% CI 0.27 .. 0.49)
COLLAPSE_RHO = 0.8  # |Spearman rho| of onset vs load for "one curve"
MIN_LOADS = 3  # distinct loads (grammar x n x model) the criterion needs


def n_params_of(row: dict[str, Any]) -> float | None:
    """The parameter count of a run's phases row (see the module docstring); None if unknown."""
    v = row.get("n_params")
    if v is not None and not (isinstance(v, float) and math.isnan(v)):
        return float(v)
    tot, per = row.get("final_memU_train_bits_total"), row.get("final_memU_bits_per_param")
    try:
        tot, per = float(tot), float(per)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(tot) and math.isfinite(per)) or per <= 0 or tot <= 0:
        return None
    return float(round(tot / per))


def load_table(phases: Any, bits_per_param: float = BITS_PER_PARAM) -> Any:
    """One row per finished run with a known entropy and parameter count: run, model, grammar,
    n_train, seed, entropy_bits, n_params, ``train_bits`` (n H), ``capacity_bits`` (C),
    ``load`` (n H / C), the onset epoch, ``onset_censored`` and ``last_epoch``; and
    ``bits_per_param`` (the C used)."""
    import pandas as pd

    rows = []
    recs = [] if phases is None or len(phases) == 0 else phases.to_dict("records")
    for r in recs:
        if is_stopped(r) or str(r.get("duplicate_of") or "nan") != "nan":
            continue
        p, H, n = n_params_of(r), r.get("entropy_bits"), r.get("n_train")
        iv = event_interval(r, "memorization_onset")
        if p is None or iv is None or H is None or n is None:
            continue
        H, n = float(H), float(n)
        if not (math.isfinite(H) and math.isfinite(n)):
            continue
        cap = bits_per_param * p
        rows.append({
            "run": r.get("run"), "model": r.get("model"), "grammar": r.get("grammar"),
            "n_train": n, "seed": r.get("seed"), "entropy_bits": H, "n_params": p,
            "train_bits": n * H, "capacity_bits": cap, "load": n * H / cap,
            "onset_epoch": iv[0], "onset_censored": iv[0] != iv[1],
            "last_epoch": r.get("stage1_last_epoch") or r.get("last_epoch"),
            "bits_per_param": bits_per_param,
        })  # fmt: skip
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Collapse:
    """Whether the onsets fall on one curve of the load: the correlation and the verdict."""

    corr: stats.Correlation
    collapses: bool

    def label(self) -> str:
        c = self.corr
        if not math.isfinite(c.rho):
            return f"not established ({c.n} runs with a load)"
        word = "collapse onto one curve" if self.collapses else "do not collapse onto one curve"
        return (f"the onsets {word} of the load: Spearman rho = {c.rho:.2f} [95% CI "
                f"{c.lo:.2f}, {c.hi:.2f}] over {c.n} runs (criterion |rho| >= {COLLAPSE_RHO} "
                f"with the interval on one side of 0, over >= {MIN_LOADS} distinct "
                "loads)")  # fmt: skip


def collapse(table: Any) -> Collapse:
    """:class:`Collapse` of a :func:`load_table` (censored onsets ranked last)."""
    if table is None or len(table) == 0:
        return Collapse(stats.spearman([], [], -1), False)
    y = [math.inf if c else e for e, c in zip(table.onset_epoch, table.onset_censored,
                                               strict=True)]  # fmt: skip
    c = stats.spearman(list(table.load), y, -1)
    ok = (math.isfinite(c.rho) and abs(c.rho) >= COLLAPSE_RHO and (c.lo > 0 or c.hi < 0)
          and table["load"].round(12).nunique() >= MIN_LOADS)  # fmt: skip
    return Collapse(c, bool(ok))
