"""Stage 1, the grammar: parse and validate PCFG text files, structural facts, exact
probabilities (inside), exact entropies, entropy control, the paper's grammar families and seeded
sampling. Pure numpy; no torch.

Every submodule is reachable from the package without importing it first
(``grammarlab.grammar.sample.sample(g, 10, seed=0)``); each is imported when first used.
"""

import importlib
from types import ModuleType

from grammarlab.grammar.load import load, loads
from grammarlab.grammar.parse import Grammar, Rule

SUBMODULES = (
    "cnf", "dataset", "earley", "entropy", "families", "formal", "header", "inside", "language",
    "load", "parse", "sample", "strings", "structure", "tune", "unambiguity", "validate",
)  # fmt: skip

__all__ = ["Grammar", "Rule", "load", "loads", *SUBMODULES]


def __getattr__(name: str) -> ModuleType:
    if name in SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
