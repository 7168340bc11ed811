"""grammarlab capacity: user mistakes on the command line are one-line errors (the grid itself is
tested in tests/capacity)."""

from __future__ import annotations

from grammarlab.cli import main


def test_bad_workers_or_missing_config_are_one_line_errors(tmp_path, capsys):
    missing = tmp_path / "none.toml"
    assert main(["capacity", str(missing), "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert err == "--workers: error: --workers must be >= 1, got 0\n"
    assert main(["capacity", str(missing), "--out", str(tmp_path / "g")]) == 2
    err = capsys.readouterr().err
    assert f"{missing}: error: no such config file" in err and "Traceback" not in err
    assert not (tmp_path / "g").exists()
