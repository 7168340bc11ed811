"""The datasets of a run, drawn from (grammar, data seed).

Each set has its own random stream, spawned from the data seed in a fixed order (train, test,
random, D2), so a set never changes when another set's size changes (e.g. the training set is the
same for every ``n_test``), and the same seed always gives the same sets:

* ``train`` (D1): ``n_train`` strings of the grammar, distinct when ``unique_train``;
* ``test``: ``n_test`` strings of the grammar, i.i.d. (repeats allowed, as in the paper), never a
  training string (D1 or D2) when ``disjoint_test``; otherwise the overlap is reported;
* ``random``: ``n_random`` strings of uniform tokens with the grammar's length distribution;
* ``train2`` (D2, sequential runs only): like ``train``, disjoint from D1 and the test set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grammarlab.errors import ConfigError, GrammarlabError
from grammarlab.grammar.sample import overlap_report, random_strings, sample
from grammarlab.train.config import TrainConfig

Tokens = tuple[str, ...]
STREAMS = ("train", "test", "random", "train2")  # spawn order of the random streams: fixed


@dataclass(frozen=True)
class Datasets:
    """The strings of a run by set name (``train``, ``test``, ``random``, maybe ``train2``)."""

    sets: dict[str, list[Tokens]]
    overlap: dict[str, Any] = field(default_factory=dict)  # test vs train, when not disjoint


def make_datasets(cfg: TrainConfig, grammar: Any) -> Datasets:
    """Draw the sets of a resolved config (``n_test`` an int, ``data_seed`` set)."""
    if cfg.n_test == "auto" or cfg.data_seed is None:
        raise ValueError("make_datasets needs a resolved config (config.resolve)")
    rngs = dict(zip(STREAMS, (np.random.default_rng(s) for s in
                              np.random.SeedSequence(cfg.data_seed).spawn(len(STREAMS))),
                    strict=True))  # fmt: skip
    train = _draw(grammar, cfg.n_train, rngs["train"], cfg.unique_train, (), "n_train")
    sets: dict[str, list[Tokens]] = {"train": train}
    train2: list[Tokens] = []
    if cfg.sequential:
        # D2 is drawn before the test set so the test set can avoid it too; its own stream keeps
        # the test set independent of this choice.
        train2 = _draw(grammar, cfg.n_train, rngs["train2"], cfg.unique_train, train, "n_train")
    exclude = train + train2 if cfg.disjoint_test else []
    test = _draw(grammar, cfg.n_test, rngs["test"], False, exclude, "n_test")
    sets["test"] = test
    if cfg.n_random:
        sets["random"] = random_strings(grammar, cfg.n_random, rngs["random"])
    if cfg.sequential:
        sets["train2"] = train2
    overlap = {} if cfg.disjoint_test else overlap_report(train + train2, test)
    return Datasets(sets, overlap)


def _draw(
    g: Any, n: int, rng: np.random.Generator, unique: bool, exclude: list[Tokens], name: str
) -> list[Tokens]:
    try:
        return sample(g, n, rng, unique=unique, exclude=exclude)
    except GrammarlabError as e:
        d = e.diagnostics[0]
        raise ConfigError(f"cannot draw {name} = {n} strings: {d.message}", file=d.file,
                          line=d.line, hint=d.hint) from None  # fmt: skip
