"""Stage 1, the grammar: parse and validate PCFG text files, structural facts, exact
probabilities (inside), exact entropies, entropy control, the paper's grammar families and seeded
sampling. Pure numpy; no torch."""

from grammarlab.grammar.load import load, loads
from grammarlab.grammar.parse import Grammar, Rule

__all__ = ["Grammar", "Rule", "load", "loads"]
