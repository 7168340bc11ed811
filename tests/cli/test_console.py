"""The console: progress bars only on a terminal and not with --quiet, library chatter off unless
the user asked for it."""

from __future__ import annotations

import os

from grammarlab.cli import build_parser
from grammarlab.cli.console import QUIET_LIBRARIES, quiet_libraries, show_progress


def test_progress_only_on_a_terminal_and_not_when_quiet(monkeypatch):
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
        assert not show_progress(args)


def test_library_chatter_off_unless_the_user_asked(monkeypatch):
    for name in QUIET_LIBRARIES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "info")  # the user asked for it
    quiet_libraries()
    assert os.environ["TRANSFORMERS_VERBOSITY"] == "info"
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
