"""Fixtures of the figure tests: a synthetic sweep (8 finished runs: 2 grammars x n in {4, 8} x
2 seeds) with the entropy injected by grammar name, and every figure of it drawn once."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

import grammarlab.analysis.tables as sweep_tables_mod
from grammarlab.plot.registry import plot_all
from tests.plot.synthetic import GRAMMARS, write_run


def _entropy_by_name(text: str, src: str, notes: list[str]) -> float:
    """Entropy by grammar name (the header comment) instead of the entropy engine."""
    return GRAMMARS[text.split()[1]]


def _write_sweep(root: Path) -> Path:
    for g in GRAMMARS:
        for n in (4, 8):
            for s in (0, 1):
                write_run(root / f"{g}-n{n}-s{s}", g, n, s)
    return root


@pytest.fixture
def sweep(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep_tables_mod, "_entropy_of_text", _entropy_by_name)
    return _write_sweep(tmp_path / "sw")


@pytest.fixture(scope="package")
def all_figures(tmp_path_factory):
    """Every kind drawn once for the synthetic sweep (the figure modules check their own data):
    out (the folder), written (stems) and notes."""
    tmp = tmp_path_factory.mktemp("figures")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sweep_tables_mod, "_entropy_of_text", _entropy_by_name)
        written, notes = plot_all(_write_sweep(tmp / "sw"), tmp / "fig")
    return SimpleNamespace(out=tmp / "fig", written=written, notes=notes)
