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
    """The tidy tables (curves, phases, measures, per_string, per_position) of a run folder, a
    sweep folder or a folder of saved tables, with each run's family, label and exact
    ``entropy_bits``. See :func:`grammarlab.analysis.tables.load_runs`."""
    from grammarlab.analysis.tables import load_runs as _load_runs

    return _load_runs(path)
