r"""Grammar files: parse nltk's PCFG notation into a frozen :class:`Grammar`.

Notation (the same as ``nltk.PCFG.fromstring``)::

    # a comment on its own line
    S -> A B [0.5] | 'x' [0.5]    # or after a rule
    A -> 'a' [1.0]
    | 'b' [0.0]                    # a line starting with '|' continues the previous left side
    E -> 'x' E [0.4] | [0.6]       # an alternative with no symbols is the empty string

The first rule's left side is the start symbol. Quoted symbols are terminals (one terminal is one
token); bare symbols are nonterminals. A left side may be spread over several lines. An
alternative that is a probability alone (``[0.6]``, anywhere among the alternatives, also on a
continuation line) derives the empty string, as in nltk: its :attr:`Rule.rhs` is ``()``.

Inside quotes a backslash starts a Python string escape (``\\``, ``\'``, ``\"``, ``\n``,
``\xNN``, ``\uNNNN``, ``\N{NAME}``, ...); a malformed one is a ``file:line`` error.
:meth:`Grammar.to_text` writes the backslash, the quote and unprintable characters back as
escapes, so a grammar written out re-parses to the same terminals. (nltk reads backslashes
literally; the two agree on every terminal without one.) A probability is a plain decimal
number, optionally with an exponent (``[0.25]``, ``[1e-3]``); ``[0.2_5]`` and ``[nan]`` are
errors.

This module only reads the text (syntax). :func:`loads` / :func:`load` also run the semantic checks
of :mod:`grammarlab.grammar.validate` and raise one :class:`GrammarError` listing *every* problem.
nltk stops at the first error and checks sums loosely, hence our own parser.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from grammarlab.errors import Diagnostic

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<arrow>->)
      | (?P<bar>\|)
      | (?P<prob>\[[^\]]*\]?)
      | (?P<quoted>'(?:[^'\\]|\\.)*'?|"(?:[^"\\]|\\.)*"?)
      | (?P<name>[^\s\[\]|'"]+)
    )""",
    re.VERBOSE,
)
_NAME = re.compile(r"^[A-Za-z_][\w.\-<>^/]*$")


@dataclass(frozen=True)
class Rule:
    """One production ``lhs -> rhs [prob]``; ``terminal_mask[i]`` tells whether ``rhs[i]`` is a
    terminal (quoted in the file)."""

    lhs: str
    rhs: tuple[str, ...]
    prob: float
    line: int = 0
    terminal_mask: tuple[bool, ...] = ()

    def __post_init__(self) -> None:
        if not self.terminal_mask:
            object.__setattr__(self, "terminal_mask", tuple(False for _ in self.rhs))

    @property
    def nonterminals(self) -> tuple[str, ...]:
        return tuple(s for s, t in zip(self.rhs, self.terminal_mask, strict=True) if not t)

    def rhs_text(self) -> str:
        """The right side as written in a grammar file (terminals quoted and escaped); ``""``
        for the empty alternative."""
        return " ".join(
            _quote(s) if t else s for s, t in zip(self.rhs, self.terminal_mask, strict=True)
        )


@dataclass(frozen=True)
class Grammar:
    """A probabilistic context-free grammar, immutable once parsed.

    ``rules`` keep file order; ``start`` is the first rule's left side. ``header`` holds the
    leading comment block of the file (without ``#``), so tools can write it back.
    """

    rules: tuple[Rule, ...]
    source: str = "<string>"
    header: str = ""

    @property
    def start(self) -> str:
        return self.rules[0].lhs

    @cached_property
    def nonterminals(self) -> tuple[str, ...]:
        """Left sides in order of first appearance (the start symbol first)."""
        return tuple(dict.fromkeys(r.lhs for r in self.rules))

    @cached_property
    def terminals(self) -> tuple[str, ...]:
        """The alphabet, in order of first appearance."""
        seen: dict[str, None] = {}
        for r in self.rules:
            for s, t in zip(r.rhs, r.terminal_mask, strict=True):
                if t:
                    seen.setdefault(s)
        return tuple(seen)

    @cached_property
    def by_lhs(self) -> Mapping[str, tuple[Rule, ...]]:
        out: dict[str, list[Rule]] = {}
        for r in self.rules:
            out.setdefault(r.lhs, []).append(r)
        return {k: tuple(v) for k, v in out.items()}

    @property
    def probs(self) -> np.ndarray:
        return np.array([r.prob for r in self.rules], dtype=np.float64)

    def with_probs(self, probs: Sequence[float], header: str | None = None) -> Grammar:
        """The same rules with new probabilities (in rule order)."""
        if len(probs) != len(self.rules):
            raise ValueError(f"need {len(self.rules)} probabilities, got {len(probs)}")
        rules = tuple(
            Rule(r.lhs, r.rhs, float(p), r.line, r.terminal_mask)
            for r, p in zip(self.rules, probs, strict=True)
        )
        return Grammar(rules, self.source, self.header if header is None else header)

    def to_text(self, header: str | None = None) -> str:
        """Grammar file text: the header as ``#`` comments, then one line per left side."""
        head = self.header if header is None else header
        lines = [f"# {h}".rstrip() for h in head.splitlines()] if head else []
        if lines:
            lines.append("")
        for nt in self.nonterminals:
            alts = " | ".join(
                f"{r.rhs_text()} [{format_prob(r.prob)}]".lstrip() for r in self.by_lhs[nt]
            )
            lines.append(f"{nt} -> {alts}")
        return "\n".join(lines) + "\n"


def format_prob(p: float) -> str:
    """Shortest decimal that reads back as the same float, never in exponent notation (nltk's
    reader does not accept ``1e-05``)."""
    return np.format_float_positional(float(p), unique=True, trim="-")


def _quote(s: str) -> str:
    """A terminal as a quoted literal that :func:`parse` reads back as ``s``: single quotes
    unless ``s`` holds one and no double quote; the backslash, the chosen quote and unprintable
    characters escaped."""
    q = "'" if "'" not in s or '"' in s else '"'
    out = []
    for c in s:
        if c == "\\" or c == q:
            out.append("\\" + c)
        elif not c.isprintable():
            n = ord(c)
            out.append(
                f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"
            )
        else:
            out.append(c)
    return q + "".join(out) + q


_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


_UNKNOWN_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*(\\[^\\'\"abfnrtv0-7xuUN])")


def _unescape(body: str) -> str:
    """Decode the Python string escapes in a terminal's text (between its quotes). Non-ASCII
    characters pass through unchanged; a malformed escape raises ``ValueError``."""
    if "\\" not in body:
        return body
    bad = _UNKNOWN_ESCAPE.search(body)
    if bad:
        raise ValueError(f"unknown escape '{bad.group(1)}'")
    try:
        return body.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError as e:
        raise ValueError(e.reason) from None


def _strip_comment(line: str) -> str:
    """Remove a ``#`` comment that is outside quotes."""
    quote = None
    i = 0
    while i < len(line):
        c = line[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "#":
            return line[:i]
        i += 1
    return line


def parse(text: str, source: str = "<string>") -> tuple[Grammar, list[Diagnostic]]:
    """Read grammar text; return the rules that parsed and a diagnostic per syntax error.

    Lines with syntax errors are skipped, so the caller can still run the semantic checks on the
    rest and report every problem at once. A leading byte order mark (U+FEFF, which some Windows
    editors write) is ignored.
    """
    text = text.removeprefix("\ufeff")
    diags: list[Diagnostic] = []
    rules: list[Rule] = []
    header: list[str] = []
    in_header = True
    lhs: str | None = None
    for lineno, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if in_header and stripped.startswith("#"):
            header.append(stripped[1:].strip() if stripped != "#" else "")
            continue
        if stripped:
            in_header = False
        line = _strip_comment(raw).strip()
        if not line:
            continue
        tokens, err = _tokenize(line)
        if err:
            diags.append(Diagnostic(source, lineno, err[0], err[1]))
            lhs = None
            continue
        if tokens[0][0] == "bar":
            if lhs is None:
                diags.append(
                    Diagnostic(
                        source,
                        lineno,
                        "a line starting with '|' must continue a rule",
                        "write 'LHS -> ...' first, or put the alternatives on the rule's line",
                    )
                )
                continue
            body = tokens[1:]
        elif len(tokens) >= 2 and tokens[0][0] == "name" and tokens[1][0] == "arrow":
            lhs = tokens[0][1]
            if not _NAME.match(lhs):
                diags.append(
                    Diagnostic(
                        source,
                        lineno,
                        f"bad nonterminal name {lhs!r}",
                        "nonterminals start with a letter or '_' (e.g. S, NP, A16)",
                    )
                )
                lhs = None
                continue
            body = tokens[2:]
        else:
            kind, val = tokens[0]
            what = "a quoted terminal" if kind == "quoted" else repr(val)
            diags.append(
                Diagnostic(
                    source,
                    lineno,
                    f"expected 'NONTERMINAL -> ...' but the line starts with {what}",
                    "each rule reads like: S -> A 'x' [0.5] | 'y' [0.5]",
                )
            )
            lhs = None
            continue
        new_rules, err = _alternatives(lhs, body, lineno)
        if err:
            diags.append(Diagnostic(source, lineno, err[0], err[1]))
            continue
        rules.extend(new_rules)
    return Grammar(tuple(rules), source, "\n".join(header).strip("\n")), diags


def _tokenize(line: str) -> tuple[list[tuple[str, str]], tuple[str, str] | None]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(line):
        m = _TOKEN.match(line, pos)
        if not m or m.end() == pos:
            if line[pos:].strip() == "":
                break
            return [], (f"unexpected text {line[pos:].strip()!r}", None)
        pos = m.end()
        kind = m.lastgroup
        val = m.group(kind)
        if kind == "quoted" and (len(val) < 2 or val[-1] != val[0]):
            return [], (
                f"unterminated quote in {val!r}",
                "close the terminal with a matching quote",
            )
        if kind == "prob" and not val.endswith("]"):
            return [], (f"unterminated probability {val!r}", "write probabilities like [0.5]")
        tokens.append((kind, val))
    if not tokens:
        return [], ("empty line", None)
    return tokens, None


def _alternatives(
    lhs: str, body: list[tuple[str, str]], lineno: int
) -> tuple[list[Rule], tuple[str, str] | None]:
    rules: list[Rule] = []
    syms: list[str] = []
    mask: list[bool] = []
    expect_bar = False
    if not body:
        return [], (f"rule for {lhs} has no right-hand side", "write e.g. S -> 'a' [1.0]")
    for kind, val in body:
        if expect_bar and kind != "bar":
            return [], (
                f"text after the probability of an alternative of {lhs}: {val!r}",
                "separate alternatives with '|', each ending in its [probability]",
            )
        if kind == "arrow":
            return [], ("unexpected '->' (one rule per line)", "put each left side on its own line")
        if kind == "bar":
            if not expect_bar:
                return [], (
                    f"an alternative of {lhs} has no probability before '|'",
                    _EMPTY_HINT
                    if not syms
                    else "end every alternative with [p], e.g. A -> 'a' [0.5] | 'b' [0.5]",
                )
            expect_bar = False
            continue
        if kind == "prob":
            inner = val[1:-1].strip()
            if not _NUMBER.fullmatch(inner):
                return [], (f"probability {val} is not a number", "write e.g. [0.25]")
            p = float(inner)
            rules.append(Rule(lhs, tuple(syms), p, lineno, tuple(mask)))
            syms, mask = [], []
            expect_bar = True
            continue
        if kind == "quoted":
            try:
                term = _unescape(val[1:-1])
            except ValueError as e:
                return [], (
                    f"bad escape in terminal {val}: {e}",
                    "write a backslash as \\\\ ; escapes are Python's (\\n, \\x41, \\u00e9, "
                    "\\N{LATIN SMALL LETTER E WITH ACUTE})",
                )
            if term == "" or any(c.isspace() for c in term):
                return [], (
                    f"terminal {val} is empty or contains whitespace",
                    "a terminal is one token, written without spaces, e.g. 'a' or '12'",
                )
            syms.append(term)
            mask.append(True)
        else:
            if not _NAME.match(val):
                return [], (
                    f"bad symbol {val!r}",
                    "quote terminals ('a'); nonterminals start with a letter or '_'",
                )
            syms.append(val)
            mask.append(False)
    if not expect_bar:
        return [], (
            f"the last alternative of {lhs} has no probability",
            _EMPTY_HINT if not syms else "end every alternative with [p], e.g. A -> 'a' [1.0]",
        )
    return rules, None


_EMPTY_HINT = (
    "an empty alternative is its probability alone, e.g. S -> '(' S ')' S [0.4] | [0.6]; "
    "every alternative ends with [p]"
)
