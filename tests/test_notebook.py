"""examples/quickstart.ipynb runs top to bottom (grammar -> sweep -> load_runs -> a figure) in a
fresh kernel; skipped where the notebook tools (nbclient, nbformat, ipykernel: the ``dev``
extra) are not installed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"


def test_quickstart_notebook_runs_and_shows_a_figure(tmp_path, monkeypatch):
    for mod in ("nbclient", "nbformat", "ipykernel"):
        pytest.importorskip(mod, reason=f"{mod} is not installed (pip install -e '.[dev]')")
    import nbformat
    from nbclient import NotebookClient

    # the kernel imports this checkout's grammarlab, not another installed copy
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))  # fmt: skip
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()  # fmt: skip
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "bits per string (exact: True)" in text
    # the last cell shows the figure inline: a PNG in its output
    assert any("image/png" in o.get("data", {}) for o in nb.cells[-1].outputs)
