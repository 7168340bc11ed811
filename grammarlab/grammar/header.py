"""The machine-readable lines of a grammar file's header: its family, its label and a stated
entropy, as ``key: value`` comment lines in the leading comment block::

    # Dyck-2 with nesting probability 0.4 (any prose)
    # family: dyck
    # label: Dyck-2, p = 0.4
    # entropy: monte-carlo
    # entropy_bits: 12.345678901
    # entropy_se_bits: 0.0123

Only the keys of :data:`KEYS` are read, in lower case at the start of a header line; any other
line (``Exact entropy: ...``, ``Written by: ...``) is prose. ``entropy`` names which quantity
``entropy_bits`` is (:data:`ENTROPY_QUANTITIES`): the exact string entropy (bits per string),
the derivational entropy (bits per derivation, an upper bound of the string entropy) or a Monte
Carlo estimate of the string entropy with its standard error ``entropy_se_bits``.

Sweeps, tables, figures and the report take a grammar's family and label from the sweep file
first, then from these lines, and from the file name last (:func:`family_from_name`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields

from grammarlab.errors import GrammarError

KEYS = ("family", "label", "entropy", "entropy_bits", "entropy_se_bits")
ENTROPY_QUANTITIES = ("string", "derivational", "monte-carlo")
_LINE = re.compile(r"^(?P<key>[a-z_]+)\s*:\s*(?P<value>.*?)\s*$")


@dataclass(frozen=True)
class HeaderFields:
    """What a header states (None: not stated). Entropies in bits (per string, or per derivation
    for the derivational entropy)."""

    family: str | None = None
    label: str | None = None
    entropy: str | None = None
    entropy_bits: float | None = None
    entropy_se_bits: float | None = None

    def lines(self) -> list[str]:
        """The header lines (without ``#``) that state the fields that are set."""
        out = []
        for f in fields(self):
            v = getattr(self, f.name)
            if v is not None:
                out.append(f"{f.name}: {v!r}" if isinstance(v, float) else f"{f.name}: {v}")
        return out


def header_fields(text: str, source: str = "<string>") -> HeaderFields:
    """The fields stated in the leading comment block of grammar file text ``text`` (the lines
    starting with ``#`` before the first rule; blank lines allowed between them), or in a
    :attr:`grammarlab.grammar.parse.Grammar.header` (the same lines without ``#``: pass
    ``"# " +`` each line, or use :func:`fields_of_header`). Raises :class:`GrammarError` naming
    the file and line of a key stated twice or a value that is not valid."""
    found: dict[str, tuple[str, int]] = {}
    for lineno, raw in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        stripped = raw.strip()
        if not stripped:
            continue
        if not stripped.startswith("#"):
            break
        m = _LINE.match(stripped[1:].strip())
        if m is None or m["key"] not in KEYS:
            continue
        key = m["key"]
        if key in found:
            raise GrammarError(
                f"header key {key!r} is stated twice (first on line {found[key][1]})",
                file=source,
                line=lineno,
                hint="keep one line per key",
            )
        found[key] = (m["value"], lineno)
    return _fields(found, source)


def fields_of_header(header: str, source: str = "<string>") -> HeaderFields:
    """:func:`header_fields` of a parsed grammar's header (``Grammar.header``, no ``#``)."""
    return header_fields("\n".join(f"# {line}" for line in header.splitlines()), source)


def _fields(found: dict[str, tuple[str, int]], source: str) -> HeaderFields:
    out: dict[str, object] = {}
    for key, (value, lineno) in found.items():
        if not value:
            raise GrammarError(f"header key {key!r} has no value", file=source, line=lineno)
        if key == "entropy" and value not in ENTROPY_QUANTITIES:
            raise GrammarError(
                f"header key 'entropy' must name a quantity, got {value!r}",
                file=source,
                line=lineno,
                hint=f"one of {', '.join(ENTROPY_QUANTITIES)}",
            )
        if key in ("entropy_bits", "entropy_se_bits"):
            try:
                x = float(value)
            except ValueError:
                x = math.nan
            if not (math.isfinite(x) and x >= 0):
                raise GrammarError(
                    f"header key {key!r} must be a finite number >= 0 (bits), got {value!r}",
                    file=source,
                    line=lineno,
                )
            out[key] = x
        else:
            out[key] = value
    if "entropy_bits" in out and "entropy" not in out:
        raise GrammarError(
            "header key 'entropy_bits' needs 'entropy: QUANTITY' saying which entropy it is",
            file=source,
            line=found["entropy_bits"][1],
            hint=f"add a line 'entropy: ' + one of {', '.join(ENTROPY_QUANTITIES)}",
        )
    if "entropy_se_bits" in out and out.get("entropy") != "monte-carlo":
        raise GrammarError(
            "header key 'entropy_se_bits' applies to 'entropy: monte-carlo' only",
            file=source,
            line=found["entropy_se_bits"][1],
        )
    return HeaderFields(**out)  # type: ignore[arg-type]


def family_from_name(name: str) -> str:
    """The fallback family of a grammar known only by its file name (stem): the name up to the
    first ``_`` (``random_l26`` -> ``random``)."""
    return str(name).split("_")[0]
