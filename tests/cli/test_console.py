"""The console: progress unless --quiet (a bar on a terminal, lines off one), library chatter off
unless the user asked for it."""

from __future__ import annotations

import os

from grammarlab.cli import build_parser
from grammarlab.cli.console import QUIET_LIBRARIES, quiet_libraries, show_progress


def test_progress_unless_quiet(monkeypatch):
    class Tty:
        def __init__(self, tty: bool) -> None:
            self.tty = tty

        def isatty(self) -> bool:
            return self.tty

    for cmd in (["sweep", "s.toml"], ["demo"], ["train"]):
        args = build_parser().parse_args(cmd)
        quiet = build_parser().parse_args([*cmd, "--quiet"])
        monkeypatch.setattr("sys.stderr", Tty(True))
        assert show_progress(args) and not show_progress(quiet)
        monkeypatch.setattr("sys.stderr", Tty(False))
        assert show_progress(args)  # off a terminal: lines instead of a bar (progress())


def test_library_chatter_off_unless_the_user_asked(monkeypatch):
    for name in QUIET_LIBRARIES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "info")  # the user asked for it
    quiet_libraries()
    assert os.environ["TRANSFORMERS_VERBOSITY"] == "info"
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"


def test_progress_off_a_terminal_is_one_line_per_step_with_the_time(capsys):
    import re
    import sys

    from grammarlab.cli.console import Lines, progress, step

    with progress(30, "train", "epochs", every=10) as bar:  # capsys: stderr is no terminal
        assert isinstance(bar, Lines)
        for k in range(1, 31):
            bar.set_postfix(epoch=k)
            bar.update(1)
    step("figures: drawing")
    with progress(3, "x", "runs", show=False) as quiet:
        quiet.update(3)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 4, lines  # epochs 10, 20, 30 (not 31: epoch 0 is no epoch), one step
    assert re.fullmatch(r"\d\d:\d\d:\d\d train: 30/30 epochs \(epoch=30\), \d+ s", lines[2])
    assert lines[3].endswith(" figures: drawing")
    assert sys.stderr.isatty() is False
