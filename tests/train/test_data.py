"""Datasets of a run: seeded, distinct, disjoint, independent streams, clear errors."""

from __future__ import annotations

import dataclasses

import pytest

from grammarlab.errors import ConfigError
from grammarlab.grammar.language import language
from grammarlab.grammar.load import load
from grammarlab.train.config import resolve
from grammarlab.train.data import make_datasets


def _sets(cfg):
    g = load(cfg.grammar)
    return make_datasets(resolve(cfg, g), g), g


def test_same_seed_same_sets_and_other_seed_other_sets(tiny_cfg):
    a, _ = _sets(tiny_cfg(seed=1))
    b, _ = _sets(tiny_cfg(seed=1))
    c, _ = _sets(tiny_cfg(seed=2))
    assert a.sets == b.sets
    assert a.sets["train"] != c.sets["train"]


def test_sizes_distinct_train_disjoint_test_random_lengths(tiny_cfg):
    d, g = _sets(tiny_cfg(n_train=8, n_test=30, n_random=20))
    train, test, rnd = d.sets["train"], d.sets["test"], d.sets["random"]
    assert (len(train), len(test), len(rnd)) == (8, 30, 20)
    assert len(set(train)) == 8 and not set(train) & set(test)
    lang = language(g)
    assert set(train) <= lang and set(test) <= lang
    lengths = {len(s) for s in lang}  # random strings: uniform tokens, grammar lengths
    assert {len(s) for s in rnd} <= lengths and set().union(*rnd) <= set(g.terminals)
    assert d.overlap == {}


def test_train_set_does_not_depend_on_other_sizes(tiny_cfg):
    a, _ = _sets(tiny_cfg(n_test=3, n_random=2))
    b, _ = _sets(tiny_cfg(n_test=9, n_random=0, sequential=True))
    assert a.sets["train"] == b.sets["train"] and "random" not in b.sets


def test_sequential_d2_disjoint_from_d1_and_test(tiny_cfg):
    d, _ = _sets(tiny_cfg(n_train=5, n_test=20, sequential=True))
    d1, d2, test = (set(d.sets[k]) for k in ("train", "train2", "test"))
    assert len(d.sets["train2"]) == 5 == len(d2)
    assert not d1 & d2 and not d2 & test and not d1 & test


def test_overlap_reported_when_test_not_disjoint(tiny_cfg):
    # 18 strings in the language, 10 of them in train: 40 i.i.d. test strings overlap surely
    d, _ = _sets(tiny_cfg(n_train=10, n_test=40, disjoint_test=False))
    inside = sum(s in set(d.sets["train"]) for s in d.sets["test"])
    assert d.overlap["n_test_in_train"] == inside > 0


def test_too_many_distinct_strings_is_a_clear_error(tiny_cfg):
    with pytest.raises(ConfigError, match="n_train = 19.*only 18 distinct"):
        _sets(tiny_cfg(n_train=19))
    with pytest.raises(ConfigError, match="n_train = 10"):  # D1 + D2 = 20 > 18
        _sets(tiny_cfg(n_train=10, sequential=True))


def test_unresolved_config_is_refused(tiny_cfg):
    cfg = tiny_cfg()
    with pytest.raises(ValueError):
        make_datasets(dataclasses.replace(cfg, n_test="auto"), load(cfg.grammar))
