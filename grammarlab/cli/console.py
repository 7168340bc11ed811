"""Console noise: progress only where asked (grammarlab.progress draws it: a bar on a terminal,
lines with the time off one), library chatter off unless asked; the matplotlib backend of the
commands that draw figures (the library itself never sets one)."""

from __future__ import annotations

import argparse
import os

from grammarlab.progress import Lines, elapsed, progress, step

__all__ = ["Lines", "elapsed", "figure_backend", "progress", "quiet_libraries", "show_progress",
           "step"]  # fmt: skip

# Hugging Face libraries print download/loading progress bars and advisory logging by default;
# the command's own output is what the user asked for. Set before transformers is imported (it
# is imported lazily, and sweep workers inherit the environment); a value the user exported wins.
QUIET_LIBRARIES = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # huggingface_hub's bars, and transformers' (same flag)
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
}


def quiet_libraries() -> None:
    """Turn the Hugging Face libraries' progress bars and info/warning logging off, unless the
    user set these environment variables (e.g. ``TRANSFORMERS_VERBOSITY=info``)."""
    for name, value in QUIET_LIBRARIES.items():
        os.environ.setdefault(name, value)


def show_progress(args: argparse.Namespace) -> bool:
    """Show progress unless ``--quiet``: a bar on a terminal, lines off one (:func:`progress`)."""
    return not getattr(args, "quiet", False)


def figure_backend() -> None:
    """Draw with matplotlib's Agg backend (files only, no window): the commands that save
    figures call this; importing grammarlab.plot leaves the backend alone, so a notebook keeps
    its inline plots."""
    import matplotlib

    matplotlib.use("Agg")
