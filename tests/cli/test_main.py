"""The ``grammarlab`` entry point: --version and the config reference command (each subcommand
is tested in tests/cli/test_<module>.py)."""

from __future__ import annotations

import pytest

import grammarlab
from grammarlab.cli import main
from grammarlab.train.config import config_reference


def test_version_and_config_doc(capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out == f"grammarlab {grammarlab.__version__}\n"
    assert main(["config-doc"]) == 0
    assert capsys.readouterr().out == config_reference()
    assert main(["config-doc", "-o", str(tmp_path / "c.md")]) == 0
    assert (tmp_path / "c.md").read_text() == config_reference()
