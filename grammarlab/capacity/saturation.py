"""When has a run stopped memorizing? A stated criterion on its curve of memorized bits.

Pure functions on the sequence of (step, total memorized bits) measured every ``eval_every``
steps. With ``window`` k and ``rel_tol`` r, the run is saturated at evaluation j when

* at least ``min_steps`` steps were taken and there are 2k evaluations up to j, and
* ``mean(M_(j-k+1..j)) - mean(M_(j-2k+1..j-k)) <= r * mean(M_(j-k+1..j))``: the mean total of
  the last k evaluations exceeds the mean of the k before by at most a fraction r of it. Means
  of k points, not single points: at a constant learning rate the memorized bits jitter by a
  few percent from one evaluation to the next, and one low point must not end a growing run.
  A mean at 0 never counts as saturated: that is a model that has not started memorizing.

A run that never meets it within its step budget is reported as not saturated; its memorized
bits are then a lower bound of what it would store.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from grammarlab.capacity.config import SaturationSpec


def saturated_at(steps: Sequence[int], bits: Sequence[float], rule: SaturationSpec) -> int | None:
    """Index of the first evaluation at which the curve is saturated under ``rule``, or None."""
    if len(steps) != len(bits):
        raise ValueError(f"{len(steps)} steps but {len(bits)} values")
    for j in range(2 * rule.window - 1, len(bits)):
        if is_saturated(steps[: j + 1], bits[: j + 1], rule):
            return j
    return None


def is_saturated(steps: Sequence[int], bits: Sequence[float], rule: SaturationSpec) -> bool:
    """Whether the curve ending at its last evaluation meets the criterion of ``rule``."""
    k = rule.window
    if len(bits) < 2 * k or steps[-1] < rule.min_steps:
        return False
    now = float(np.mean(bits[-k:]))
    before = float(np.mean(bits[-2 * k : -k]))
    return now > 0.0 and now - before <= rule.rel_tol * now
