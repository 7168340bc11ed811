"""The two grammar families of the paper "Rethinking memorization in LLMs: on learning by rote vs.
with understanding" (Appendix A.2) as :class:`Grammar` objects.

Pure functions: they build the grammar, write a header comment saying what it is, its parameters,
its exact entropy and the ``grammarlab grammar new`` command that writes it, and return it. Every
probability is checked to survive the trip through the file text (what ships is the text).
"""

from __future__ import annotations

import math
import string
import textwrap
from decimal import Decimal

import numpy as np

from grammarlab.errors import GrammarlabError
from grammarlab.grammar.load import loads
from grammarlab.grammar.parse import Grammar, Rule, format_prob
from grammarlab.grammar.structure import expected_expansions

LETTERS = string.ascii_lowercase
# The paper both families come from, cited by title in every header.
PAPER = '"Rethinking memorization in LLMs: on learning by rote vs. with understanding"'
HEADER_WIDTH = 90  # header paragraphs are wrapped to this many characters (before the "# ")
_TOL_BITS = 1e-6
#: terminal naming schemes of :func:`random_grammar`: "letters" a..z (at most 26), "indexed"
#: t0, t1, ... (Morris et al.'s 2048-symbol vocabulary and beyond), "auto" (letters up to 26)
SYMBOLS = ("auto", "letters", "indexed")
MAX_INDEXED = 1 << 16  # indexed alphabets: a grammar of V x length rules must stay buildable
# Rules of a generated grammar (random: alphabet x length): 2048 symbols x 512 positions. About a
# second per 50,000 rules and 35 bytes per rule, so the largest takes ~20 s and ~40 MB of text.
MAX_RULES = 1 << 20


def random_grammar(
    alphabet_size: int,
    length: int = 64,
    oversample: str | None = None,
    oversample_prob: float | None = None,
    target_bits: float | None = None,
    symbols: str = "auto",
) -> Grammar:
    """The paper's random grammar: strings of exactly ``length`` letters 'a', 'b', ..., each drawn
    independently from the same distribution over the first ``alphabet_size`` letters.

    Uniform by default. With ``oversample_prob`` q, the letter ``oversample`` (default the first
    one) has probability q at every position and the others (1-q)/(l-1) each. With
    ``target_bits``, q >= 1/l is solved so the entropy per string is ``target_bits`` (within 1e-6
    bits, checked on the grammar as read back from its text). ``symbols`` names the terminals
    (:func:`alphabet`): letters a..z, or t0, t1, ... for alphabets beyond 26 (``"auto"``).
    """
    letters = alphabet(alphabet_size, symbols)
    l_ = len(letters)
    n = _check_int("length", length, 1, None)
    if l_ * n > MAX_RULES:
        raise GrammarlabError(
            f"alphabet size {l_} x length {n} = {l_ * n:,} rules is more than the {MAX_RULES:,} "
            "a generated grammar may have",
            hint=f"shorten the strings (at most {MAX_RULES // l_:,} for {l_} symbols) or "
            "shrink the alphabet",
        )
    if oversample_prob is not None and target_bits is not None:
        raise GrammarlabError(
            "give either oversample_prob or target_bits, not both",
            hint="--target-bits solves for the oversampling probability",
        )
    skewed = oversample_prob is not None or target_bits is not None
    if oversample is not None and not skewed:
        raise GrammarlabError(
            f"oversample={oversample!r} needs oversample_prob or target_bits",
            hint="e.g. --oversample a --oversample-prob 0.5, or --oversample a --target-bits 64",
        )
    sym = letters[0] if oversample is None else oversample
    if skewed:
        if l_ < 2:
            raise GrammarlabError("oversampling needs an alphabet of at least 2 letters")
        if sym not in letters:
            raise GrammarlabError(
                f"oversampled letter {sym!r} is not in the alphabet {letters[0]}..{letters[-1]}",
                hint=f"choose one of {', '.join(letters[:26])}" + (", ..." if l_ > 26 else ""),
            )
    if target_bits is not None:
        q = _solve_oversample_prob(l_, n, float(target_bits))
    elif oversample_prob is not None:
        q = float(oversample_prob)
        if not 0.0 < q < 1.0:
            raise GrammarlabError(
                f"oversample_prob must lie strictly between 0 and 1, got {oversample_prob}",
                hint=f"1/{l_} = {1 / l_:.6g} is uniform; values above oversample the letter",
            )
    else:
        q = 1.0 / l_
    probs = {c: (q if c == sym else (1.0 - q) / (l_ - 1)) for c in letters} if skewed else None
    if probs is None:
        probs = {c: 1.0 / l_ for c in letters}

    rules = [Rule("S", ("A1",), 1.0)]
    for i in range(1, n + 1):
        for c in letters:
            rhs, mask = ((c, f"A{i + 1}"), (True, False)) if i < n else ((c,), (True,))
            rules.append(Rule(f"A{i}", rhs, probs[c], terminal_mask=mask))
    g = Grammar(tuple(rules), "<random_grammar>")

    cmd = f"grammarlab grammar new random --alphabet-size {l_} --length {n}"
    if symbols != "auto" and alphabet(l_, "auto") != letters:
        cmd += f" --symbols {symbols}"
    if target_bits is not None:
        cmd += f" --oversample {sym} --target-bits {format_prob(target_bits)}"
    elif oversample_prob is not None:
        cmd += f" --oversample {sym} --oversample-prob {format_prob(q)}"
    g, bits = _round_trip(g)
    if target_bits is not None and abs(bits - target_bits) > _TOL_BITS:
        raise GrammarlabError(
            f"internal: random grammar entropy {bits!r} bits misses target {target_bits!r}"
        )
    unit = "letter" if letters[0] == LETTERS[0] else "symbol"  # t0, t1, ... are not letters
    if skewed:
        dist = (
            f"'{sym}' has probability {format_prob(q)} at every position, each other {unit} "
            f"{format_prob((1.0 - q) / (l_ - 1))}"
        )
    else:
        dist = f"uniform: each {unit} has probability 1/{l_} at every position"
    header = [
        *_wrap(
            f"Random grammar from {PAPER} (Appendix A.2): strings of exactly {n} {unit}s over "
            f"the alphabet {letters[0]}..{letters[-1]} (l~=~{l_}), each position drawn "
            "independently;"
        ),
        f"{dist}.",
        "The paper writes it as S -> A [1]; A -> t_i A [p_i], which never ends (no terminating",
        "rule); here it is a plain PCFG chain of fixed length: S -> A1, A_i -> t A_(i+1) for",
        f"i < {n}, A{n} -> t.",
        *_entropy_lines(bits, n, "every string has exactly one derivation"),
        f"Written by: {cmd} -o FILE",
    ]
    return g.with_probs(g.probs, header="\n".join(header))


def alphabet(size: int, symbols: str = "auto") -> tuple[str, ...]:
    """The terminal names of a random grammar over ``size`` symbols: ``"letters"`` a, b, ...
    (at most 26), ``"indexed"`` t0, t1, ..., t(size-1) (at most 65536), ``"auto"`` letters up
    to 26 symbols and indexed beyond (Morris et al. use 2048)."""
    if symbols not in SYMBOLS:
        raise GrammarlabError(
            f"symbols must be one of {', '.join(SYMBOLS)}, got {symbols!r}",
            hint="letters: a..z (at most 26); indexed: t0, t1, ...; auto: letters up to 26",
        )
    hi = len(LETTERS) if symbols == "letters" else MAX_INDEXED
    v = _check_int("alphabet_size", size, 1, hi)
    if symbols == "letters" or (symbols == "auto" and v <= len(LETTERS)):
        return tuple(LETTERS[:v])
    return tuple(f"t{i}" for i in range(v))


def hierarchical_grammar(p: float = 0.5) -> Grammar:
    """The paper's hierarchical grammar (Appendix A.2): 21 rules, 4 levels, terminals '1'..'9',
    strings of exactly 72 tokens. Every nonterminal but S has two rules, the first with
    probability ``p`` and the second with ``1 - p`` (0 < p < 1)."""
    p = float(p)
    if not 0.0 < p < 1.0:
        raise GrammarlabError(
            f"p must lie strictly between 0 and 1, got {p}",
            hint="the paper uses p = 0.5, 0.75 and 0.9",
        )
    # 1 - p in decimal arithmetic, so 0.9 gives 0.1 (not 0.09999999999999998) in the file.
    q = float(Decimal(1) - Decimal(format_prob(p)))
    if abs(p + q - 1.0) > 1e-12:
        raise GrammarlabError(f"internal: p + (1 - p) = {p + q!r} for p = {p!r}")
    # (lhs, first rule's right side, second rule's right side), copied from Appendix A.2.
    table = [
        ("A16", "A15 A14 A13", "A13 A15 A14"),
        ("A13", "A11 A12", "A12 A11"),
        ("A14", "A11 A10 A12", "A10 A11 A12"),
        ("A15", "A12 A11 A10", "A11 A12 A10"),
        ("A10", "A7 A9 A8", "A9 A8 A7"),
        ("A11", "A8 A7 A9", "A7 A8 A9"),
        ("A12", "A8 A9 A7", "A9 A7 A8"),
        ("A7", "3 1 2", "1 2 3"),
        ("A8", "6 5 4", "6 4 5"),
        ("A9", "9 8 7", "8 7 9"),
    ]
    rules = [Rule("S", ("A16",), 1.0)]
    for lhs, first, second in table:
        for rhs, prob in ((first, p), (second, q)):
            syms = tuple(rhs.split())
            mask = tuple(s.isdigit() for s in syms)
            rules.append(Rule(lhs, syms, prob, terminal_mask=mask))
    g, bits = _round_trip(Grammar(tuple(rules), "<hierarchical_grammar>"))
    header = [
        *_wrap(
            f"Hierarchical grammar from {PAPER} (Appendix A.2): 21 rules, nonterminal levels "
            "{A16}, {A13,~A14,~A15}, {A10,~A11,~A12}, {A7,~A8,~A9}, terminals '1'..'9'; every "
            "string has exactly 72 tokens. Each nonterminal but S has two rules: the first with "
            f"probability p~=~{format_prob(p)}, the second with 1~-~p~=~{format_prob(q)}."
        ),
        "A derivation makes 36 binary choices (A16 once; A13, A14, A15 once each; 8 of A10..A12;",
        "24 of A7..A9), so the entropy is 36 h(p) bits, h the binary entropy.",
        *_entropy_lines(bits, 72, "the grammar is unambiguous"),
        f"Written by: grammarlab grammar new hierarchical -p {format_prob(p)} -o FILE",
    ]
    return g.with_probs(g.probs, header="\n".join(header))


def _wrap(text: str) -> list[str]:
    """A header paragraph as lines of at most HEADER_WIDTH characters; ``~`` is a space where
    no line may break (inside a formula or a set)."""
    return [line.replace("~", " ") for line in textwrap.wrap(text, HEADER_WIDTH)]


def _check_int(name: str, value: object, lo: int, hi: int | None) -> int:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not ok or value < lo or (hi is not None and value > hi):
        rng = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise GrammarlabError(f"{name} must be an integer {rng}, got {value!r}")
    return int(value)


def _position_entropy_bits(q: float, l_: int) -> float:
    """Entropy in bits of one letter: q for the oversampled one, (1-q)/(l-1) for each other."""
    r = (1.0 - q) / (l_ - 1)
    return -(q * math.log2(q) if q > 0 else 0.0) - (l_ - 1) * (r * math.log2(r) if r > 0 else 0.0)


def _solve_oversample_prob(l_: int, n: int, target_bits: float) -> float:
    """q in [1/l, 1) with n * H(q) = target_bits; H falls from log2(l) at q = 1/l to 0 at q = 1."""
    hi_bits = n * math.log2(l_)
    if not math.isfinite(target_bits) or not 0.0 < target_bits <= hi_bits + _TOL_BITS:
        raise GrammarlabError(
            f"target {target_bits} bits is out of reach for {l_} letters and length {n}",
            hint=f"reachable range by oversampling one letter: (0, {hi_bits!r}] bits per string",
        )
    per_pos = min(target_bits / n, math.log2(l_))
    if per_pos >= math.log2(l_):
        return 1.0 / l_

    from scipy.optimize import brentq  # scipy is heavy: imported when needed (CLI start-up)

    def excess(q: float) -> float:
        return _position_entropy_bits(q, l_) - per_pos

    # xtol far below 1e-12: dH/dq is modest away from q = 1, so the bits error is ~1e-13.
    return float(brentq(excess, 1.0 / l_, 1.0, xtol=1e-15, rtol=4 * np.finfo(float).eps))


def _derivational_entropy_bits(g: Grammar) -> float:
    """Sum over nonterminals of (expected expansions) x (entropy of its rule choice), in bits."""
    counts = expected_expansions(g)
    total = 0.0
    for a, c in zip(g.nonterminals, counts, strict=True):
        ps = np.array([r.prob for r in g.by_lhs[a]])
        ps = ps[ps > 0]
        total += float(c) * float(-(ps * np.log2(ps)).sum())
    return total


def _round_trip(g: Grammar) -> tuple[Grammar, float]:
    """Write ``g`` as text, read it back, check every probability survived and each left side
    sums to 1 within 1e-9; return the read-back grammar and its derivational entropy in bits."""
    back = loads(g.to_text(), g.source)
    if not np.array_equal(back.probs, g.probs):
        raise GrammarlabError("internal: probabilities changed in the text round trip")
    for a, rules in back.by_lhs.items():
        s = sum(r.prob for r in rules)
        if abs(s - 1.0) > 1e-9:
            raise GrammarlabError(f"internal: probabilities of {a} sum to {s!r}, not 1")
    return back, _derivational_entropy_bits(back)


def _entropy_lines(bits: float, tokens: int, why: str) -> list[str]:
    return [
        f"Exact entropy: {bits:.9f} bits per string, {bits / tokens:.9f} bits per token",
        f"({tokens} tokens per string; the string entropy equals the derivational entropy,",
        f"as {why}).",
    ]
