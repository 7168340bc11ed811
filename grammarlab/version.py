"""The package version: one place, read by pyproject.toml, ``grammarlab --version`` and every run
folder's env.json."""

__version__ = "0.1.0"
