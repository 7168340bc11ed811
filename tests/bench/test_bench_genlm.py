"""Tests for bench/bench_genlm.py without genlm-grammar installed: grammarlab's side is timed,
its values checked for the field grammars, and the report says genlm was not measured."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from grammarlab.grammar.inside import string_logprobs
from grammarlab.grammar.load import loads

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_genlm", ROOT / "bench" / "bench_genlm.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_genlm"] = module
    spec.loader.exec_module(module)
    return module


def test_field_grammars_are_consistent_and_scored(bench) -> None:
    for name, src in bench.FIELD.items():
        g = loads(src)
        assert np.isfinite(string_logprobs(g, [g.terminals[:0]])[0]) == (name.startswith("Dyck"))


def test_grammarlab_side_runs_and_the_report_says_genlm_is_absent(
    bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench, "N_STRINGS", 200)
    monkeypatch.setattr(bench, "N_CONTEXTS", 20)
    monkeypatch.setattr(bench, "REPEATS", 2)
    row = bench.bench_grammar("a^n b^n", loads(bench.FIELD["a^n b^n"]), False)
    assert len(row["reps"]) == 2 and row["context_length"][1] == row["max_length"]
    assert all("genlm_score_s" not in r for r in row["reps"])
    info = {
        "date": "d", "command": "c", "python": "3", "numpy": "2", "genlm_grammar": None,
        "genlm_maxiter": 10**6, "platform": "p", "cpus": 2, "niceness": 5,
        "omp_num_threads": "1", "pythonhashseed": None, "loadavg_before": (1.0, 1.0, 1.0),
        "loadavg_after": (1.0, 1.0, 1.0),
    }  # fmt: skip
    text = bench.report(info, [row], False)
    assert "genlm-grammar not installed" in text and "| a^n b^n | 2 |" in text
