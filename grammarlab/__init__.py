"""grammarlab: how language models learn formal languages by rote and with understanding.

A testbed for the paper "Rethinking memorization in LLMs: on learning by rote vs. with
understanding" (fine-tunes on strings of probabilistic grammars, memorization and generalization
phases), with memorization measured in bits as in Morris et al. 2025, "How much do language models
memorize?".

The data flows one way: grammar -> samples -> training -> curves -> phases/measures -> plots.
"""

from grammarlab.errors import GrammarlabError
from grammarlab.grammar import Grammar, load, loads
from grammarlab.version import __version__

__all__ = ["Grammar", "GrammarlabError", "__version__", "load", "loads", "load_runs"]


def load_runs(path):  # noqa: ANN001, ANN201 - re-exported lazily (pandas import is slow)
    """Metrics, phases and measures of a run, or of every run under a folder, as tidy DataFrames.
    See :func:`grammarlab.analysis.results.load_runs`."""
    from grammarlab.analysis.results import load_runs as _load_runs

    return _load_runs(path)
