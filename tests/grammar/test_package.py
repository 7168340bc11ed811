"""The grammar package reaches every submodule without an explicit import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grammarlab.grammar as pkg


def test_submodules_list_every_module_of_the_package():
    files = {p.stem for p in Path(pkg.__file__).parent.glob("*.py") if p.stem != "__init__"}
    assert set(pkg.SUBMODULES) == files


def test_a_fresh_interpreter_reaches_a_submodule_through_the_package():
    code = ("import grammarlab, sys; assert 'grammarlab.grammar.sample' not in sys.modules; "
            "print(callable(grammarlab.grammar.sample.sample))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
