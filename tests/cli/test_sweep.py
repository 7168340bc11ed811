"""grammarlab sweep: dry run, one-line errors for a missing spec or an unknown executor."""

from __future__ import annotations

from tests.sweep.fake_trainer import write_sweep


def test_cli_sweep(tmp_path, monkeypatch, capsys):
    from grammarlab.cli import main

    f = write_sweep(tmp_path, "n_train = [4]\n")
    assert main(["sweep", str(f), "--out", str(tmp_path / "o"), "--dry-run"]) == 0
    assert "1 run" in capsys.readouterr().out
    assert main(["sweep", str(tmp_path / "missing.toml")]) == 2
    capsys.readouterr()
    assert main(["sweep", str(f), "--out", str(tmp_path / "o"), "--executor", "nope"]) == 2
    err = capsys.readouterr().err
    assert "error: unknown executor 'nope'" in err and "gpus" in err and "Traceback" not in err
