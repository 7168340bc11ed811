"""docs/tutorial.md stays true: its files are written and its commands run, in order, at a tiny
size (2 epochs, one seed, one training-set size), and the numbers its prose quotes hold."""

from __future__ import annotations

import math
import re
import shlex
from pathlib import Path

import pytest

from grammarlab.cli import main
from grammarlab.grammar.entropy import analyze
from grammarlab.grammar.load import load

TUTORIAL = Path(__file__).resolve().parents[1] / "docs" / "tutorial.md"
BLOCK = re.compile(r"^```(\w+)(?: file=(\S+))?\n(.*?)^```", re.MULTILINE | re.DOTALL)
# the sweep file at a tiny size: (text in the tutorial, text in the test)
TINY = [
    ("epochs = 100", "epochs = 2"),
    ("n_test = 32", "n_test = 8"),
    ("n_train = [8, 64]", "n_train = [8]"),
    ("seed = [0, 1, 2]", "seed = [0]"),
]


def _blocks() -> list[tuple[str, str | None, str]]:
    return [m.groups() for m in BLOCK.finditer(TUTORIAL.read_text(encoding="utf-8"))]


def test_the_tutorial_has_files_and_commands():
    blocks = _blocks()
    assert [name for _, name, _ in blocks if name] == ["robot.cfg", "robot_sweep.toml"]
    commands = [ln for kind, _, text in blocks if kind == "bash" for ln in text.splitlines()]
    assert commands and all(c.startswith("grammarlab ") for c in commands)


def test_the_quoted_entropy_is_the_hand_derivation(tmp_path):
    (name, text), *_ = [(n, t) for _, n, t in _blocks() if n == "robot.cfg"]
    (tmp_path / name).write_text(text)
    # S is expanded a geometric number of times (it stops with probability 1/2: 2 expansions
    # expected), each a choice among (0.3, 0.2, 0.5); each 'go' or 'turn' (1 of the 2 expected
    # expansions) adds a direction of 1 bit -> H = 2 H(0.3, 0.2, 0.5) + 1
    hand = 2 * -sum(p * math.log2(p) for p in (0.3, 0.2, 0.5)) + 1
    rep = analyze(load(tmp_path / name))
    assert rep.entropy_exact and rep.entropy_bits == pytest.approx(hand, abs=1e-9)
    assert f"{hand:.6g} bits per string" in " ".join(TUTORIAL.read_text().split())
    assert rep.expected_length == pytest.approx(3.0, abs=1e-12)


def test_the_tutorial_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for kind, name, text in _blocks():
        if name is not None:
            if name == "robot_sweep.toml":
                for big, tiny in TINY:
                    assert big in text
                    text = text.replace(big, tiny)
            Path(name).write_text(text)
        elif kind == "bash":
            for line in text.splitlines():
                assert main(shlex.split(line)[1:]) == 0, line
    out = capsys.readouterr().out
    assert "exact: unambiguous" in out
    assert "Exact string entropy: 6.000000000 bits per string" in Path("robot_H6.cfg").read_text()
    derived = sorted(p.name for p in Path("runs/robot/grammars").glob("*.cfg"))
    assert derived == [f"robot_temper_H{h}.cfg" for h in (2, 4, 6)]
    assert Path("figures/robot/fig5_entropy_sweep.png").exists()
    report = Path("robot_report.md").read_text()
    claims = ["Lower entropy is easier to generalize to", "Higher entropy is easier to memorize"]
    prose = " ".join(TUTORIAL.read_text().split())
    for claim in claims:
        assert claim in report and claim in prose
