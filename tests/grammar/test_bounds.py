"""Tests for the engine's bounds: deep strings scored within the stated bounds, long ones refused
with the bound named (checked before the work on the chart path, as the work goes on the Earley
path), and linear-time structure passes on long unit chains."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest

from grammarlab.cli import main
from grammarlab.errors import GrammarlabError
from grammarlab.grammar import earley, inside
from grammarlab.grammar.inside import string_logprobs, token_surprisals_bits
from grammarlab.grammar.load import loads

DYCK = "S -> '(' S ')' S [0.4] | [0.6]\n"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(["grammar", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return rc, out, err


def test_deep_dyck_nesting_is_scored_exactly() -> None:
    # (^n )^n has one derivation: n rules S -> ( S ) S and n + 1 empty S (the innermost and
    # the n trailing ones), so log P = n log 0.4 + (n + 1) log 0.6
    g = loads(DYCK)
    for n in (200, 300):
        s = ("(",) * n + (")",) * n
        want = n * math.log(0.4) + (n + 1) * math.log(0.6)
        assert string_logprobs(g, [s])[0] == pytest.approx(want, rel=1e-12)
        bits = token_surprisals_bits(g, [s])[0]
        assert bits.sum() == pytest.approx(-want / math.log(2), rel=1e-12)


def test_deep_dyck_40_nesting_is_scored_exactly_on_the_earley_path() -> None:
    # 40 bracket pairs: 280 binary rules after binarization, so the Earley path; nested 300
    # deep (brackets cycling through the 40 kinds), one derivation as above
    k = 40
    alts = " | ".join(f"'o{i}' S 'c{i}' S [{0.4 / k!r}]" for i in range(k))
    g = loads(f"S -> {alts} | [0.6]")
    assert inside._use_earley(inside.compile_cnf(inside.empty_free(g).grammar))
    n = 300
    s = tuple(f"o{i % k}" for i in range(n)) + tuple(f"c{i % k}" for i in reversed(range(n)))
    want = n * math.log(0.4 / k) + (n + 1) * math.log(0.6)
    assert string_logprobs(g, [s])[0] == pytest.approx(want, rel=1e-12)
    bits = token_surprisals_bits(g, [s])[0]
    assert bits.sum() == pytest.approx(-want / math.log(2), rel=1e-12)


def test_cli_refuses_a_5000_token_ambiguous_string_before_the_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gfile = tmp_path / "ss.cfg"
    gfile.write_text("S -> S S [0.4] | 'a' [0.6]\n")
    strings = tmp_path / "in.txt"
    strings.write_text("a a a\n" + " ".join(["a"] * 5000) + "\n")
    t = time.perf_counter()
    rc, out, err = run(capsys, "score", str(gfile), str(strings))
    assert rc == 2 and out == ""
    lines = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(lines) == 1 and "length 5000" in lines[0]
    assert f"{inside.MAX_CHART_TERMS:,}" in lines[0]
    assert time.perf_counter() - t < 60  # refused before the ~10^10 terms (hours) of work


def test_chart_path_term_bound_is_exact_when_the_worst_case_is_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # S -> S S | 'a' on n tokens: the inside sums take one term per (start, split, end),
    # C(n + 1, 3) of them; the bound set between the counts of n = 30 and n = 40 lets one pass
    g = loads("S -> S S [0.4] | 'a' [0.6]")
    c = inside.compile_cnf(g)
    assert inside.chart_terms(c, 30, False) == math.comb(31, 3)
    monkeypatch.setattr(inside, "MAX_CHART_TERMS", math.comb(35, 3))
    assert np.isfinite(string_logprobs(g, [("a",) * 30])[0])
    with pytest.raises(GrammarlabError, match=rf"string 1 \(length 40\).*{math.comb(41, 3):,}"):
        string_logprobs(g, [("a",) * 30, ("a",) * 40])


def test_earley_refuses_a_string_once_its_work_passes_the_step_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    g = loads("S -> S S [0.4] | 'a' [0.6]")
    monkeypatch.setattr(inside, "_REGULAR_FAST_PATH", False)
    monkeypatch.setattr(inside, "EARLEY_MIN_RULES", 0)
    monkeypatch.setattr(earley, "MAX_STEPS", 20_000)
    assert np.isfinite(string_logprobs(g, [("a",) * 20])[0])  # C(21, 3) = 1,330 steps at most
    with pytest.raises(GrammarlabError, match=r"string 0 \(length 5000\).*20,000"):
        string_logprobs(g, [("a",) * 5000])


@pytest.mark.parametrize("mixed", [False, True])
def test_info_and_sample_on_a_long_unit_chain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mixed: bool
) -> None:
    # N0 -> N1 -> ... -> N19999 -> 'a', listed from the top: fixed-point passes in file order
    # took one pass per level (quadratic: minutes at this size, hours at 100,000 rules)
    n = 20_000
    alt = " | 'a' [0.5]" if mixed else ""
    p = 0.5 if mixed else 1.0
    lines = [f"N{i} -> N{i + 1} [{p}]{alt}" for i in range(n - 1)] + [f"N{n - 1} -> 'a' [1.0]"]
    gfile = tmp_path / "chain.cfg"
    gfile.write_text("\n".join(lines) + "\n")
    rc, out, _ = run(capsys, "info", str(gfile))
    assert rc == 0 and "strings           1\n" in out  # one string: 'a'
    assert f"derivations       {n if mixed else 1}" in out
    rc, out, _ = run(capsys, "sample", str(gfile), "-n", "3")
    assert rc == 0 and out.split() == ["a", "a", "a"]
