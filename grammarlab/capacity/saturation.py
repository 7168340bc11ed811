"""When has a run stopped memorizing? A stated criterion on its curve of memorized bits.

Pure functions on the sequence of (step, total memorized bits) measured every ``eval_every``
steps. With ``window`` k and ``rel_tol`` r, and ``B_j`` the best total of the evaluations up to
j (a running maximum), the run is saturated at evaluation j when

* at least ``min_steps`` steps were taken and there are 2k evaluations up to j, and
* ``B_j - B_(j-k) <= r * B_j``: the last k evaluations raised the best total by at most a
  fraction r of it (no new record worth the name for k evaluations). A running maximum, not
  single points or window means: at a constant learning rate the total jitters by a few percent
  from one evaluation to the next and now and then drops by up to half (a loss spike, measured
  here, after which it climbs back); a drop must neither end a growing run nor hide its best.
  A best total of 0 never counts as saturated: that model has not started memorizing.

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
    now = float(np.max(bits))
    before = float(np.max(bits[:-k]))
    return now > 0.0 and now - before <= rule.rel_tol * now
