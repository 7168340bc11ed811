"""The reader of a sweep folder's ``grammars.json``: each grammar's family and label as the sweep
file sets them (the sweep writes the file: :mod:`grammarlab.sweep.spec`). It lives here so the
tables (:mod:`grammarlab.analysis.tables`) read it without importing the sweep stage."""

from __future__ import annotations

import json
from pathlib import Path

LABELS = "grammars.json"  # in the sweep folder: the families and labels the sweep file sets


def read_labels(root: Path | str) -> dict[str, dict[str, str]]:
    """The families and labels of ``<root>/grammars.json`` (grammar path -> {family, label});
    empty when the file is missing or not such a table (tables fall back on the headers)."""
    try:
        data = json.loads((Path(root) / LABELS).read_text(encoding="utf-8"))
        table = data["grammars"]
    except (OSError, ValueError, TypeError, KeyError):
        return {}
    if not isinstance(table, dict):
        return {}
    return {str(k): {f: str(v[f]) for f in ("family", "label") if isinstance(v, dict) and f in v}
            for k, v in table.items()}  # fmt: skip
