"""Phase detector: when memorization starts and generalization ends, from recorded loss curves.

Pure functions over per-epoch arrays (losses in nats/token, Eq. 1 of the paper); no torch. The
definitions (each also in its function's docstring; the README copies them):

* **memorization onset** -- the first epoch from which ``test_loss / train_loss > threshold``
  (default 1.05, i.e. test loss more than 5% above train loss) holds at every later epoch to the
  end of training: the paper's "point after which" the ratio exceeds 1.05. ``None`` when the
  ratio is not above the threshold at the last epoch. The **first crossing** is the first epoch at
  which the ratio is above the threshold at all (it may fall back later).
* **end of generalization** -- the epoch of the minimum test loss (the first one on ties).
* **memorization score** -- ``1 - train_loss / test_loss`` per epoch, reported as computed (it can
  be negative when the test loss is below the train loss; plots clip it to [0, 1] and say so), and
  its accuracy form ``train_acc - test_acc`` (paper Fig. 1b).
* **overlap** -- the phases overlap when the memorization onset comes strictly before the end of
  generalization (False when either is absent).
* **sequential runs** (stage 1 on D1, stage 2 on D2): the **re-generalization epoch** is the
  epoch of the minimum test loss within stage 2; the **D1 plateau** is the set of stage-2 epochs
  at which D1's loss is within ``tolerance`` (5%) of that minimum, ``|d1 - m| <= 0.05 m``
  (reported as first, last and count); the **forgetting epoch** is the first stage-2 epoch from
  which D1's loss stays within 5% of the test loss, ``|d1 - test| <= 0.05 test``, at every later
  stage-2 epoch to the end. For sequential runs the single-run quantities above (onset, first
  crossing, end of generalization, overlap) are computed on stage 1 only ("end of training" is the
  end of stage 1); the stage-2 onset uses the D2 loss (``d2_loss``, else ``train_loss``).

Censoring (an event not seen within the recorded epochs is not a value): the onset is
**censored** when the ratio is not above the threshold at the last epoch E (shown ``>E``); the end
of generalization is **right-censored** when the minimum test loss is at the last epoch, i.e. the
test loss is still falling (shown ``>=E``: the true minimum may come later); the forgetting epoch
is censored when D1 is not within tolerance of the test loss at the end of stage 2 (``>E``), the
re-generalization epoch when the stage-2 minimum is at the last epoch (``>=E``). ``overlap`` is
claimed only between observed events; ``overlap_censored`` says that the onset was observed before
a censored end of generalization (an overlap the data cannot confirm). :func:`format_event` prints
an event with its censoring, :func:`summarize_event` gives mean +- std over the seeds that
observed it and how many did not.

Floor-corrected onset: the grammar's own loss on a set, ``G_set`` (nats/token in Eq. 1's units:
per string the exact surprisal in nats over its predicted tokens, end token included, then the
mean over strings), moves the raw ratio: a test set that is harder than the training set *for the
grammar itself* has ``G_test / G_train > 1``. The **floor-corrected onset** is the first epoch from
which ``(L_test / L_train) / (G_test / G_train) > threshold`` holds to the end
(:func:`floor_corrected_onset`; ``floor_ratio`` = G_test / G_train; None when the grammar losses
are unknown, and then not censored but missing).

Forgetting share (sequential runs): D1's advantage over the test loss at the end of stage 1 is
``A0 = test - d1``; at a stage-2 epoch the **share lost** is ``1 - (test - d1) / A0`` (0: nothing
forgotten, 1: D1 is no better than the test set; :func:`forgetting_share`). The **half-forgetting
epoch** is the first stage-2 epoch from which at least half of A0 is lost at every later epoch
(``>E`` when not at the end); ``forgetting_share_final`` is the share at the last epoch.

Stopped runs: a run whose status is not ``done`` (stopped early, still running, failed, diverged)
has not reached its planned last epoch; each of its events is **provisional** at its last epoch:
an onset seen at e may still vanish or move later, a minimum may move later. :func:`event_status`
reports every event of such a row as censored (``>E``, or ``>=e`` with the provisional epoch e as
a lower bound), :func:`is_stopped` tells such rows apart.

Stage switch (sequential runs): ``switch_d1_change`` is the one-step change of D1's loss from the
last stage-1 epoch to the first stage-2 epoch (nats/token; ``switch_test_change`` the same for the
test loss): a large jump there is an optimizer shock (a fresh optimizer or learning-rate restart),
not gradual forgetting. ``d1_first_within_epoch`` is the first stage-2 epoch at which D1 is within
tolerance of the test loss at all (the forgetting epoch is the first from which it *stays* so).

Non-finite values: an epoch whose needed values are NaN or +-inf is *skipped* (treated as not
recorded); it neither starts nor breaks a run of epochs above the threshold, and "to the end"
means to the last epoch with finite values. The mean curve over seeds is NaN at an epoch where
any seed's value is non-finite, so that epoch is skipped too (the mean "breaks" there). Empty
input raises :class:`GrammarlabError`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from grammarlab.errors import GrammarlabError

DEFAULT_THRESHOLD = 1.05
DEFAULT_TOLERANCE = 0.05
_CURVE_FIELDS = ("train_loss", "test_loss", "train_acc", "test_acc", "d1_loss", "d2_loss")


@dataclass(frozen=True, eq=False)
class Curves:
    """Per-epoch curves of one run (or the mean over runs), sorted by epoch.

    Losses are nats/token (Eq. 1), accuracies fractions. Optional curves are ``None`` when not
    recorded. ``stage`` is 1 everywhere for a single-stage run.
    """

    epoch: np.ndarray
    train_loss: np.ndarray
    test_loss: np.ndarray
    stage: np.ndarray = field(default=None)  # type: ignore[assignment]
    train_acc: np.ndarray | None = None
    test_acc: np.ndarray | None = None
    d1_loss: np.ndarray | None = None
    d2_loss: np.ndarray | None = None

    def __post_init__(self) -> None:
        ep = np.asarray(self.epoch, dtype=np.int64).ravel()
        if ep.size == 0:
            raise GrammarlabError(
                "no epochs recorded", hint="the run has no lines in metrics.jsonl yet"
            )
        if len(np.unique(ep)) != ep.size:
            raise GrammarlabError(f"duplicate epochs in curves: {sorted(ep.tolist())}")
        order = np.argsort(ep, kind="stable")
        object.__setattr__(self, "epoch", ep[order])
        stage = np.ones(ep.size, np.int64) if self.stage is None else self.stage
        for name in ("stage", *_CURVE_FIELDS):
            v = stage if name == "stage" else getattr(self, name)
            if v is None:
                continue
            arr = np.asarray(v, dtype=np.int64 if name == "stage" else np.float64).ravel()
            if arr.size != ep.size:
                raise GrammarlabError(f"curve {name!r} has {arr.size} values for {ep.size} epochs")
            object.__setattr__(self, name, arr[order])

    @property
    def sequential(self) -> bool:
        return self.d1_loss is not None and bool(np.any(self.stage >= 2))

    @classmethod
    def from_records(cls, records: Sequence[Mapping[str, Any]]) -> Curves:
        """Curves from metrics.jsonl objects (keys epoch, stage, train_loss, test_loss, ...).

        A missing or null value becomes NaN (skipped by the detectors)."""
        if not records:
            raise GrammarlabError("no epochs recorded", hint="metrics.jsonl is empty")

        def col(key: str) -> np.ndarray | None:
            if not any(key in r for r in records):
                return None
            return np.array([_num(r.get(key)) for r in records], dtype=np.float64)

        for key in ("epoch", "train_loss", "test_loss"):
            if col(key) is None:
                raise GrammarlabError(f"metrics records lack {key!r}")
        stage = col("stage")
        return cls(
            epoch=np.array([int(r["epoch"]) for r in records]),
            train_loss=col("train_loss"),  # type: ignore[arg-type]
            test_loss=col("test_loss"),  # type: ignore[arg-type]
            stage=None if stage is None else np.nan_to_num(stage, nan=1).astype(np.int64),
            **{k: col(k) for k in _CURVE_FIELDS[2:]},
        )

    def select(self, mask: np.ndarray) -> Curves:
        """The epochs where ``mask`` is True."""
        kw = {
            k: (None if getattr(self, k) is None else getattr(self, k)[mask]) for k in _CURVE_FIELDS
        }
        return Curves(epoch=self.epoch[mask], stage=self.stage[mask], **kw)


def _num(v: Any) -> float:
    return float("nan") if v is None else float(v)


def mean_curves(runs: Sequence[Curves]) -> Curves:
    """The mean curve over runs (seeds), aligned by epoch on the epochs all runs recorded.

    At an epoch where any run's value is non-finite the mean is NaN (the detectors skip it). An
    optional curve is kept only when every run has it. Stages are taken from the first run."""
    if not runs:
        raise GrammarlabError("no runs to average")
    common = runs[0].epoch
    for r in runs[1:]:
        common = np.intersect1d(common, r.epoch)
    if common.size == 0:
        raise GrammarlabError("the runs share no epoch; cannot average their curves")
    picked = [r.select(np.isin(r.epoch, common)) for r in runs]
    kw: dict[str, np.ndarray | None] = {}
    for name in _CURVE_FIELDS:
        vals = [getattr(r, name) for r in picked]
        if any(v is None for v in vals):
            kw[name] = None
            continue
        stack = np.vstack(vals)
        mean = stack.mean(axis=0)
        mean[~np.all(np.isfinite(stack), axis=0)] = np.nan
        kw[name] = mean
    return Curves(epoch=common, stage=picked[0].stage, **kw)  # type: ignore[arg-type]


def memorization_score(train_loss: np.ndarray, test_loss: np.ndarray) -> np.ndarray:
    """``1 - train_loss / test_loss`` per epoch (losses in any one unit), as computed: negative
    when the test loss is below the train loss. NaN where a loss is non-finite or the test loss is
    not positive."""
    tr = np.asarray(train_loss, dtype=np.float64)
    te = np.asarray(test_loss, dtype=np.float64)
    ok = np.isfinite(tr) & np.isfinite(te) & (te > 0)
    out = np.full(tr.shape, np.nan)
    out[ok] = 1.0 - tr[ok] / te[ok]
    return out


def memorization_score_acc(train_acc: np.ndarray, test_acc: np.ndarray) -> np.ndarray:
    """Accuracy form of the score, ``train_acc - test_acc`` per epoch (paper Fig. 1b); NaN where
    either is non-finite."""
    tr = np.asarray(train_acc, dtype=np.float64)
    te = np.asarray(test_acc, dtype=np.float64)
    out = tr - te
    out[~(np.isfinite(tr) & np.isfinite(te))] = np.nan
    return out


def _above(train_loss: np.ndarray, test_loss: np.ndarray, threshold: float) -> np.ndarray:
    """Per epoch: 1.0 when test/train > threshold, 0.0 when not, NaN when skipped (non-finite).
    ``test > threshold * train`` avoids dividing by a zero train loss."""
    ok = np.isfinite(train_loss) & np.isfinite(test_loss)
    out = np.full(train_loss.shape, np.nan)
    out[ok] = (test_loss[ok] > threshold * train_loss[ok]).astype(np.float64)
    return out


def stays_from(epochs: np.ndarray, flag: np.ndarray) -> int | None:
    """First epoch from which ``flag`` is 1 at every later non-NaN epoch; None when the last
    non-NaN flag is 0 or there is none."""
    valid = ~np.isnan(flag)
    if not valid.any():
        return None
    ep, f = epochs[valid], flag[valid]
    if f[-1] != 1.0:
        return None
    below = np.flatnonzero(f == 0.0)
    return int(ep[0] if below.size == 0 else ep[below[-1] + 1])


def memorization_onset(
    epochs: np.ndarray,
    train_loss: np.ndarray,
    test_loss: np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
) -> tuple[int | None, int | None]:
    """(onset, first crossing) epochs of memorization.

    onset: the first epoch from which ``test_loss / train_loss > threshold`` at every later epoch
    to the end (epochs with a non-finite loss skipped); first crossing: the first epoch where the
    ratio is above the threshold. Each None when it never happens."""
    epochs = np.asarray(epochs)
    flag = _above(np.asarray(train_loss, float), np.asarray(test_loss, float), threshold)
    hits = np.flatnonzero(flag == 1.0)
    first = int(epochs[hits[0]]) if hits.size else None
    return stays_from(epochs, flag), first


def generalization_end(
    epochs: np.ndarray, test_loss: np.ndarray
) -> tuple[int | None, float | None]:
    """(epoch, value) of the minimum finite test loss, the first such epoch on ties; (None, None)
    when no test loss is finite."""
    te = np.asarray(test_loss, dtype=np.float64)
    ok = np.flatnonzero(np.isfinite(te))
    if ok.size == 0:
        return None, None
    i = ok[np.argmin(te[ok])]  # argmin returns the first of equal minima
    return int(np.asarray(epochs)[i]), float(te[i])


def _within(a: np.ndarray, ref: np.ndarray | float, tol: float) -> np.ndarray:
    """1.0 where ``|a - ref| <= tol * |ref|``, 0.0 where not, NaN where non-finite."""
    ref = np.broadcast_to(np.asarray(ref, dtype=np.float64), a.shape)
    ok = np.isfinite(a) & np.isfinite(ref)
    out = np.full(a.shape, np.nan)
    out[ok] = (np.abs(a[ok] - ref[ok]) <= tol * np.abs(ref[ok])).astype(np.float64)
    return out


@dataclass(frozen=True)
class Phases:
    """Phase epochs of one run or of a mean curve; epochs are ``None`` when absent.

    Losses are nats/token. Sequential-only fields stay ``None`` for single-stage runs."""

    threshold: float
    tolerance: float
    n_epochs: int
    last_epoch: int
    memorization_onset_epoch: int | None
    memorization_first_crossing_epoch: int | None
    generalization_end_epoch: int | None
    min_test_loss: float | None
    test_loss_at_onset: float | None
    overlap: bool
    final_memorization_score: float | None
    max_memorization_score: float | None
    memorization_onset_censored: bool = False
    generalization_end_censored: bool = False
    overlap_censored: bool = False
    stage1_last_epoch: int | None = None
    sequential: bool = False
    regeneralization_epoch: int | None = None
    regeneralization_test_loss: float | None = None
    regeneralization_censored: bool | None = None
    d1_plateau_first_epoch: int | None = None
    d1_plateau_last_epoch: int | None = None
    d1_plateau_count: int | None = None
    d1_first_within_epoch: int | None = None
    forgetting_epoch: int | None = None
    forgetting_censored: bool | None = None
    stage2_memorization_onset_epoch: int | None = None
    stage2_memorization_onset_censored: bool | None = None
    switch_d1_loss_before: float | None = None
    switch_d1_loss_after: float | None = None
    switch_d1_change: float | None = None
    switch_test_change: float | None = None
    floor_ratio: float | None = None
    floor_corrected_onset_epoch: int | None = None
    floor_corrected_onset_censored: bool | None = None
    forgetting_share_final: float | None = None
    forgetting_half_epoch: int | None = None
    forgetting_half_censored: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (None for absent values)."""
        return asdict(self)


def floor_corrected_onset(
    epochs: np.ndarray,
    train_loss: np.ndarray,
    test_loss: np.ndarray,
    floor_ratio: float,
    threshold: float = DEFAULT_THRESHOLD,
) -> int | None:
    """First epoch from which ``(test / train) / floor_ratio > threshold`` holds to the end
    (``floor_ratio`` = G_test / G_train, the grammar's own losses in nats/token); None when it
    does not hold at the last epoch. Computed as the onset of the curves with the training loss
    scaled by the floor ratio: ``test > threshold * floor_ratio * train``."""
    if not (math.isfinite(floor_ratio) and floor_ratio > 0):
        raise GrammarlabError(f"the floor ratio G_test / G_train must be finite and > 0, got "
                              f"{floor_ratio}")  # fmt: skip
    tr = np.asarray(train_loss, dtype=np.float64) * floor_ratio
    return memorization_onset(epochs, tr, test_loss, threshold)[0]


def forgetting_share(
    d1_loss: np.ndarray, test_loss: np.ndarray, d1_before: float, test_before: float
) -> np.ndarray:
    """Per stage-2 epoch the share of D1's advantage over the test loss that is lost:
    ``1 - (test - d1) / (test_before - d1_before)`` (the advantage at the end of stage 1). NaN
    everywhere when there was no advantage (``test_before <= d1_before``) or a value is
    non-finite."""
    d1 = np.asarray(d1_loss, dtype=np.float64)
    te = np.asarray(test_loss, dtype=np.float64)
    a0 = float(test_before) - float(d1_before)
    if not (math.isfinite(a0) and a0 > 0):
        return np.full(d1.shape, np.nan)
    out = 1.0 - (te - d1) / a0
    out[~(np.isfinite(d1) & np.isfinite(te))] = np.nan
    return out


def detect_phases(
    curves: Curves,
    threshold: float = DEFAULT_THRESHOLD,
    tolerance: float = DEFAULT_TOLERANCE,
    floor_ratio: float | None = None,
) -> Phases:
    """All phase quantities of one run's (or a mean) curves; see the module docstring.
    ``floor_ratio``: G_test / G_train of the stage-1 sets, for the floor-corrected onset."""
    if not threshold > 0 or not tolerance >= 0:
        raise GrammarlabError(
            f"need threshold > 0 and tolerance >= 0, got {threshold}, {tolerance}"
        )
    seq = curves.sequential
    c1 = curves.select(curves.stage <= 1) if seq else curves
    if c1.epoch.size == 0:
        raise GrammarlabError("a sequential run without stage-1 epochs")
    onset, first = memorization_onset(c1.epoch, c1.train_loss, c1.test_loss, threshold)
    gen_end, min_test = generalization_end(c1.epoch, c1.test_loss)
    score = memorization_score(c1.train_loss, c1.test_loss)
    fin = score[np.isfinite(score)]
    at_onset = None if onset is None else float(c1.test_loss[c1.epoch == onset][0])
    gen_censored = gen_end is not None and gen_end == _last_finite(c1.epoch, c1.test_loss)
    extra: dict[str, Any] = {}
    if seq:
        c2 = curves.select(curves.stage >= 2)
        extra = _sequential(c2, threshold, tolerance)
        extra.update(_switch(c1, c2))
        extra.update(_forgetting_share(c1, c2))
    if floor_ratio is not None:
        fc = floor_corrected_onset(c1.epoch, c1.train_loss, c1.test_loss, floor_ratio, threshold)
        extra.update(floor_ratio=float(floor_ratio), floor_corrected_onset_epoch=fc,
                     floor_corrected_onset_censored=fc is None)  # fmt: skip
    return Phases(
        threshold=float(threshold),
        tolerance=float(tolerance),
        n_epochs=int(curves.epoch.size),
        last_epoch=int(curves.epoch[-1]),
        memorization_onset_epoch=onset,
        memorization_first_crossing_epoch=first,
        generalization_end_epoch=gen_end,
        min_test_loss=min_test,
        test_loss_at_onset=at_onset,
        overlap=bool(
            onset is not None and gen_end is not None and not gen_censored and onset < gen_end
        ),
        final_memorization_score=float(fin[-1]) if fin.size else None,
        max_memorization_score=float(fin.max()) if fin.size else None,
        memorization_onset_censored=onset is None,
        generalization_end_censored=bool(gen_censored),
        overlap_censored=bool(onset is not None and gen_censored),
        stage1_last_epoch=int(c1.epoch[-1]),
        sequential=seq,
        **extra,
    )


def _sequential(c2: Curves, threshold: float, tol: float) -> dict[str, Any]:
    """Stage-2 quantities: re-generalization, D1 plateau, forgetting, stage-2 onset."""
    regen, m = generalization_end(c2.epoch, c2.test_loss)
    d1 = c2.d1_loss
    assert d1 is not None
    out: dict[str, Any] = {"regeneralization_epoch": regen, "regeneralization_test_loss": m}
    if m is not None:
        plateau = c2.epoch[_within(d1, m, tol) == 1.0]
        out["d1_plateau_count"] = int(plateau.size)
        if plateau.size:
            out["d1_plateau_first_epoch"] = int(plateau[0])
            out["d1_plateau_last_epoch"] = int(plateau[-1])
    out["regeneralization_censored"] = regen is not None and regen == _last_finite(
        c2.epoch, c2.test_loss
    )
    within = _within(d1, c2.test_loss, tol)
    hits = np.flatnonzero(within == 1.0)
    out["d1_first_within_epoch"] = int(c2.epoch[hits[0]]) if hits.size else None
    out["forgetting_epoch"] = stays_from(c2.epoch, within)
    out["forgetting_censored"] = out["forgetting_epoch"] is None
    d2 = c2.d2_loss if c2.d2_loss is not None else c2.train_loss
    onset2 = memorization_onset(c2.epoch, d2, c2.test_loss, threshold)[0]
    out["stage2_memorization_onset_epoch"] = onset2
    out["stage2_memorization_onset_censored"] = onset2 is None
    return out


def _last_finite(epochs: np.ndarray, values: np.ndarray) -> int | None:
    """The last epoch with a finite value (None when there is none)."""
    ok = np.flatnonzero(np.isfinite(np.asarray(values, dtype=np.float64)))
    return int(np.asarray(epochs)[ok[-1]]) if ok.size else None


def _switch(c1: Curves, c2: Curves) -> dict[str, Any]:
    """The one-step change at the stage switch (nats/token): D1's and the test loss at the last
    stage-1 epoch and at the first stage-2 epoch, one optimizer update apart."""
    d1a, d1b = c1.d1_loss if c1.d1_loss is not None else c1.train_loss, c2.d1_loss
    out: dict[str, Any] = {}
    if d1b is None or c2.epoch.size == 0:
        return out
    before, after = float(d1a[-1]), float(d1b[0])
    if math.isfinite(before) and math.isfinite(after):
        out.update(switch_d1_loss_before=before, switch_d1_loss_after=after,
                   switch_d1_change=after - before)  # fmt: skip
    t0, t1 = float(c1.test_loss[-1]), float(c2.test_loss[0])
    if math.isfinite(t0) and math.isfinite(t1):
        out["switch_test_change"] = t1 - t0
    return out


def _forgetting_share(c1: Curves, c2: Curves) -> dict[str, Any]:
    """The final forgetting share and the half-forgetting epoch (module docstring)."""
    d1a = c1.d1_loss if c1.d1_loss is not None else c1.train_loss
    if c2.d1_loss is None or c2.epoch.size == 0:
        return {}
    share = forgetting_share(c2.d1_loss, c2.test_loss, float(d1a[-1]), float(c1.test_loss[-1]))
    fin = share[np.isfinite(share)]
    if not fin.size:
        return {}
    flag = np.where(np.isfinite(share), (share >= 0.5).astype(np.float64), np.nan)
    half = stays_from(c2.epoch, flag)
    return {"forgetting_share_final": float(fin[-1]), "forgetting_half_epoch": half,
            "forgetting_half_censored": half is None}  # fmt: skip


def phases_over_seeds(
    runs: Sequence[Curves],
    threshold: float = DEFAULT_THRESHOLD,
    tolerance: float = DEFAULT_TOLERANCE,
) -> tuple[list[Phases], Phases]:
    """Phases of each run (seed) and of their mean curve (see :func:`mean_curves`)."""
    per = [detect_phases(r, threshold, tolerance) for r in runs]
    return per, detect_phases(mean_curves(runs), threshold, tolerance)


# ----------------------------------------------------------------------------- censored events

#: event -> (epoch field, censored field, how it is censored, field of the last epoch observed).
#: ">" : not reached by the last epoch E (the event, if any, comes after E);
#: ">=": the value at E is a lower bound (the curve was still falling at E).
EVENTS: dict[str, tuple[str, str, str, str]] = {
    "memorization_onset": ("memorization_onset_epoch", "memorization_onset_censored", ">",
                           "stage1_last_epoch"),
    "generalization_end": ("generalization_end_epoch", "generalization_end_censored", ">=",
                           "stage1_last_epoch"),
    "regeneralization": ("regeneralization_epoch", "regeneralization_censored", ">=",
                         "last_epoch"),
    "forgetting": ("forgetting_epoch", "forgetting_censored", ">", "last_epoch"),
    "stage2_memorization_onset": ("stage2_memorization_onset_epoch",
                                  "stage2_memorization_onset_censored", ">", "last_epoch"),
    "floor_corrected_onset": ("floor_corrected_onset_epoch", "floor_corrected_onset_censored",
                              ">", "stage1_last_epoch"),
    "forgetting_half": ("forgetting_half_epoch", "forgetting_half_censored", ">", "last_epoch"),
}  # fmt: skip


def is_stopped(row: Mapping[str, Any]) -> bool:
    """True when a phases dict or table row is of a run that has not finished: ``stopped`` set,
    or a ``status`` other than ``done`` (a row without a status is taken as finished)."""
    if _truthy(row.get("stopped")):
        return True
    st = row.get("status")
    return isinstance(st, str) and st.strip() != "" and st.strip() != "done"


def event_interval(row: Mapping[str, Any], event: str) -> tuple[float, float] | None:
    """The event's epoch as an interval for the statistics (:mod:`grammarlab.analysis.stats`):
    observed ``[e, e]``; not reached by E (``>``) ``[E + 1, inf]``; a lower bound e (``>=``, or a
    provisional epoch of a stopped run) ``[e, inf]``; None when missing."""
    status, e, last = event_status(row, event)
    if status == "observed" and e is not None:
        return (e, e)
    if status != "censored":
        return None
    if e is not None:
        return (e, math.inf)
    if last is None:
        return (-math.inf, math.inf)
    return (float(last) + (1.0 if EVENTS[event][2] == ">" else 0.0), math.inf)


def _present(v: Any) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def _truthy(v: Any) -> bool:
    """A censoring flag from a dict or a CSV row (bool, 0/1, "True"/"False", NaN = False)."""
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes")
    return _present(v) and bool(v)


def event_status(row: Mapping[str, Any], event: str) -> tuple[str, float | None, int | None]:
    """(status, epoch, last epoch) of ``event`` in a phases dict or table row. status is
    ``observed``, ``censored`` or ``missing`` (the run does not have the event: a single-stage run
    asked for forgetting, or an old phases file without censoring flags and no epoch)."""
    epoch_key, cens_key, kind, last_key = EVENTS[event]
    last = row.get(last_key)
    if not _present(last):
        last = row.get("last_epoch")
    last_i = int(last) if _present(last) else None
    e = row.get(epoch_key)
    if is_stopped(row):  # every event provisional: a lower bound at best
        if _present(e):
            return "censored", float(e), last_i
        if _present(row.get(cens_key)) or event in ("memorization_onset", "generalization_end"):
            return "censored", None, last_i
        return "missing", None, last_i
    if _truthy(row.get(cens_key)):
        return "censored", (float(e) if _present(e) else None), last_i
    if not _present(row.get(cens_key)) and kind == ">=" and _present(e) and e == last_i:
        return "censored", float(e), last_i  # a file without the flag: at the last epoch
    if _present(e):
        return "observed", float(e), last_i
    if event == "memorization_onset" and last_i is not None:
        return "censored", None, last_i  # never reached by E (also in files without the flag)
    return "missing", None, last_i


def format_event(row: Mapping[str, Any], event: str) -> str:
    """An event epoch as a table shows it: ``12`` when observed, ``>=100`` / ``>100`` when
    censored at the last epoch 100 (see :data:`EVENTS`), ``-`` when the run has no such event."""
    status, e, last = event_status(row, event)
    if status == "observed":
        return f"{int(e)}" if e is not None and float(e).is_integer() else f"{e:.3g}"
    if status == "censored" and is_stopped(row):
        at = f"stopped at {last}" if last is not None else "stopped"
        return f">={_num_text(e)} ({at})" if e is not None else f">{last} ({at})"
    if status == "censored":
        return f"{EVENTS[event][2]}{last}" if last is not None else "censored"
    return "-"


def _num_text(e: float) -> str:
    return f"{int(e)}" if float(e).is_integer() else f"{e:.3g}"


@dataclass(frozen=True)
class EventSummary:
    """An event over seeds: mean and sample standard deviation (ddof = 1; NaN with one value) of
    the epochs of the seeds that observed it, how many did, how many were censored (and at which
    last epochs), how many lack it."""

    event: str
    n_runs: int
    n_observed: int
    n_censored: int
    mean: float
    std: float
    censored_at: tuple[int, ...] = ()
    n_stopped: int = 0  # runs stopped early: provisional, neither observed nor censored
    stopped_at: tuple[int, ...] = ()

    def label(self) -> str:
        """e.g. ``12.3 +/- 1.5 (3 of 5 seeds observed; 2 censored >=100)``; runs stopped early
        are counted apart (``1 stopped early at 23: provisional``)."""
        kind = EVENTS[self.event][2]
        cens = ""
        if self.n_censored:
            at = sorted(set(self.censored_at))
            where = "/".join(f"{kind}{a}" for a in at) if at else "censored"
            cens = f"; {self.n_censored} censored {where}"
        if self.n_stopped:
            at = "/".join(str(a) for a in sorted(set(self.stopped_at)))
            cens += f"; {self.n_stopped} stopped early{' at ' + at if at else ''}: provisional"
        if not self.n_observed and not self.n_censored:
            return f"provisional ({self.n_runs} run{'s' if self.n_runs > 1 else ''}{cens})"
        if not self.n_observed:
            head = "/".join(f"{kind}{a}" for a in sorted(set(self.censored_at))) or "-"
            return f"{head} (0 of {self.n_runs} seeds observed{cens})"
        sd = "" if math.isnan(self.std) else f" +/- {self.std:.1f}"
        return f"{self.mean:.1f}{sd} ({self.n_observed} of {self.n_runs} seeds observed{cens})"


def summarize_event(rows: Sequence[Mapping[str, Any]], event: str) -> EventSummary:
    """:class:`EventSummary` of ``event`` over phases dicts or table rows (one per seed).
    Censored seeds never enter the mean: they are counted instead."""
    if event not in EVENTS:
        raise GrammarlabError(f"unknown event {event!r}", hint=f"events: {', '.join(EVENTS)}")
    obs, cens, stopped = [], [], []
    for r in rows:
        status, e, last = event_status(r, event)
        if status == "censored" and is_stopped(r):
            stopped.append(last if last is not None else -1)
        elif status == "observed" and e is not None:
            obs.append(e)
        elif status == "censored":
            cens.append(last if last is not None else -1)
    v = np.asarray(obs, dtype=np.float64)
    mean = float(v.mean()) if v.size else math.nan
    std = float(v.std(ddof=1)) if v.size > 1 else math.nan
    return EventSummary(event, len(rows), int(v.size), len(cens), mean, std,
                        tuple(int(c) for c in cens if c >= 0), len(stopped),
                        tuple(int(c) for c in stopped if c >= 0))  # fmt: skip
