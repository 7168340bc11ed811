"""The formal languages the field studies, as :class:`Grammar` objects: Dyck-k (optionally
depth-bounded, with or without the empty string), a^n b^n, marked palindromes, arithmetic
expressions and a small English-like grammar with prepositional-phrase attachment ambiguity.

Pure functions in the style of :mod:`grammarlab.grammar.families`: each builds the grammar from
its parameters, checks that it is subcritical (finite expected length) and that its text reads
back with the same probabilities, and writes a header saying what it is, its entropy and the
``grammarlab grammar new`` command that writes it. The entropy is what the engine knows
(:func:`grammarlab.grammar.entropy.analyze`): exact where it proves the grammar unambiguous or
enumerates its language, otherwise a Monte Carlo estimate with its standard error, always with
the exact derivational entropy beside it. The Monte Carlo estimate runs without a time budget
(a fixed number of samples from a fixed seed), so the header is the same on every machine.
Where the string entropy has a closed form, the header gives it too.
"""

from __future__ import annotations

import math
from decimal import Decimal

from grammarlab.errors import GrammarlabError
from grammarlab.grammar.entropy import analyze, expected_length
from grammarlab.grammar.families import LETTERS, _check_int, _round_trip, _wrap
from grammarlab.grammar.parse import Grammar, Rule, format_prob

#: bracket pairs of :func:`dyck_grammar` for k <= 4; beyond, pairs '(1' ')1', '(2' ')2', ...
BRACKETS = (("(", ")"), ("[", "]"), ("{", "}"), ("<", ">"))
MAX_PAIRS = 1024  # Dyck-k: bracket pairs (rules grow as k x depth, at most MAX_RULES)
# Rules of a Dyck grammar: the engine's analysis behind its header (proofs, Monte Carlo) takes
# about 12 s and 250 MB at 3,216 rules (k = 200, depth 8) and grows faster than linearly.
MAX_RULES = 1 << 12
MAX_DEPTH = 1000  # Dyck-k: depth bound
MAX_VARIABLES = 26  # expressions: variables a..z
# Expected tokens per string beyond which a grammar is refused: a depth-bounded Dyck grammar
# with p > 1/2 is subcritical, but its expected length grows like (p/(1-p))^depth.
MAX_EXPECTED_LENGTH = 1e5
MC_SAMPLES = 4000  # default Monte Carlo samples behind a header's estimate
MAX_MC_SAMPLES = 1_000_000
MC_SEED = 0


def dyck_grammar(
    k: int = 2,
    p: float = 0.4,
    depth: int | None = None,
    empty: bool = False,
    *,
    mc_samples: int = MC_SAMPLES,
    seed: int = MC_SEED,
) -> Grammar:
    """Dyck-k: well-nested strings over ``k`` bracket pairs, each pair drawn uniformly.

    ``empty=True`` is the textbook grammar ``S -> '(' S ')' S [p/k] | ... | [1-p]``, whose
    language includes the empty string (it needs the parser's empty alternatives). The default
    leaves the empty string out: ``S -> P S [p] | P [1-p]``, ``P -> '(' S ')' [p/k] | '(' ')'
    [(1-p)/k] | ...``; its distribution is the textbook one conditioned on a non-empty string.
    Both are critical at p = 1/2 (a node has 2p expected children), so p < 1/2 unless
    ``depth`` bounds the nesting: then nonterminals are indexed by depth (``S1`` .. ``SD``), a
    pair opened at depth D is empty, no string nests deeper than D, and any 0 < p < 1 works.
    """
    k = _check_int("k", k, 1, MAX_PAIRS)
    if depth is not None:
        depth = _check_int("depth", depth, 1, MAX_DEPTH)
    rules_needed = (2 * k + 2) * (depth or 1)
    if rules_needed > MAX_RULES:
        raise GrammarlabError(
            f"k = {k} bracket pairs x depth {depth} = {rules_needed:,} rules is more than the "
            f"{MAX_RULES:,} a generated grammar may have",
            hint="lower k or the depth bound",
        )
    p = _open_prob("p", p)
    if depth is None and p >= 0.5:
        raise GrammarlabError(
            f"p = {format_prob(p)} makes Dyck critical or worse: each node has 2p >= 1 expected "
            "children, so the expected string length is infinite",
            hint="choose p < 0.5 (0.4: about 10 tokens per non-empty string), or bound the "
            "nesting with --depth, which allows any 0 < p < 1",
        )
    pairs = _brackets(k)
    q = _one_minus(p)
    rules: list[Rule] = []
    # one level S (and P) without a depth bound; levels S1..SD with one: a pair opened at
    # level d holds level d + 1, a pair opened at level D holds nothing
    levels = [""] if depth is None else [str(d) for d in range(1, depth + 1)]
    for i, d in enumerate(levels):
        nxt = d if depth is None else (levels[i + 1] if i + 1 < depth else None)
        s, pn = f"S{d}", f"P{d}"
        if empty:
            for o, c in pairs:
                inside = "" if nxt is None else f" S{nxt}"
                rules.append(_rule(s, f"'{o}'{inside} '{c}' {s}", p / k))
            rules.append(_rule(s, "", q))
        else:
            rules += [_rule(s, f"{pn} {s}", p), _rule(s, pn, q)]
            for o, c in pairs:
                if nxt is not None:
                    rules.append(_rule(pn, f"'{o}' S{nxt} '{c}'", p / k))
                rules.append(_rule(pn, f"'{o}' '{c}'", (1.0 if nxt is None else q) / k))
    g, _ = _round_trip(Grammar(tuple(rules), "<dyck_grammar>"))
    name = f"Dyck-{k}"
    shape = (
        "S -> '(' S ')' S [p/k] | ... | [1-p] (the textbook grammar; the empty string is in the "
        "language)"
        if empty
        else "S -> P S [p] | P [1-p], P -> '(' S ')' [p/k] | '(' ')' [(1-p)/k] | ... (no empty "
        "string: the textbook distribution conditioned on a non-empty string)"
    )
    bound = (
        f" Nesting is bounded by depth {depth}: S1..S{depth} are the levels, a pair opened at "
        f"depth {depth} is empty."
        if depth is not None
        else ""
    )
    hand = None
    if depth is None:
        # textbook form: each S node chooses among k pairs (p/k each) or stop (1-p), and there
        # are 1/(1-2p) S nodes in expectation -> H = (h(p) + p log2 k) / (1 - 2p)
        h = (_h2(p) + p * math.log2(k)) / (1 - 2 * p)
        if not empty:  # conditioned on x != "": (H + (1-p) log2(1-p)) / p + log2 p
            h = (h + q * math.log2(q)) / p + math.log2(p)
        hand = (
            "H0 = (h(p) + p log2 k) / (1 - 2p)"
            if empty
            else "(H0 + (1-p) log2(1-p)) / p + log2 p, H0 = (h(p) + p log2 k) / (1 - 2p)",
            h,
        )
    cmd = f"grammarlab grammar new dyck -k {k} -p {format_prob(p)}"
    cmd += (f" --depth {depth}" if depth is not None else "") + (" --empty" if empty else "")
    paragraph = (
        f"{name} ({k} bracket pair{'s' if k > 1 else ''}: "
        f"{' '.join(o + c for o, c in pairs[:8])}{' ...' if k > 8 else ''}), the well-nested "
        f"strings; p~=~{format_prob(p)}. {shape}.{bound} The Dyck languages are the core of "
        "every context-free language (Chomsky and Schutzenberger, 1963). Unambiguous: a "
        "string's bracket matching is its derivation."
    )
    return _with_header(g, paragraph, hand, cmd, mc_samples, seed)


def anbn_grammar(p: float = 0.8, *, mc_samples: int = MC_SAMPLES, seed: int = MC_SEED) -> Grammar:
    """a^n b^n (n >= 1): ``S -> 'a' S 'b' [p] | 'a' 'b' [1-p]``, so P(a^n b^n) = p^(n-1) (1-p),
    n geometric, and the entropy is h(p) / (1-p) bits per string (h the binary entropy)."""
    p = _open_prob("p", p)
    q = _one_minus(p)
    rules = (_rule("S", "'a' S 'b'", p), _rule("S", "'a' 'b'", q))
    g, _ = _round_trip(Grammar(rules, "<anbn_grammar>"))
    paragraph = (
        f"a^n~b^n for n >= 1, the classic non-regular language: S -> 'a' S 'b' [p] | 'a' 'b' "
        f"[1-p] with p~=~{format_prob(p)}, so P(a^n~b^n) = p^(n-1)~(1-p) and n is geometric "
        f"with mean 1/(1-p) = {1 / q:.6g}. Unambiguous: the string fixes n."
    )
    hand = ("h(p) / (1-p), h the binary entropy", _h2(p) / q)
    cmd = f"grammarlab grammar new anbn -p {format_prob(p)}"
    return _with_header(g, paragraph, hand, cmd, mc_samples, seed)


def palindrome_grammar(
    alphabet_size: int = 2, p: float = 0.8, *, mc_samples: int = MC_SAMPLES, seed: int = MC_SEED
) -> Grammar:
    """Marked palindromes w c reverse(w) over the first ``alphabet_size`` letters, the next
    letter the centre marker: ``S -> 'a' S 'a' [p/l] | ... | 'c' [1-p]``. |w| is geometric
    (mean p/(1-p)) and its letters uniform, so the entropy is (h(p) + p log2 l) / (1-p)."""
    l_ = _check_int("alphabet_size", alphabet_size, 1, len(LETTERS) - 1)
    p = _open_prob("p", p)
    q = _one_minus(p)
    letters, mark = LETTERS[:l_], LETTERS[l_]
    rules = [_rule("S", f"'{c}' S '{c}'", p / l_) for c in letters] + [_rule("S", f"'{mark}'", q)]
    g, _ = _round_trip(Grammar(tuple(rules), "<palindrome_grammar>"))
    paragraph = (
        f"Marked palindromes w~{mark}~reverse(w) over {letters[0]}..{letters[-1]} "
        f"(l~=~{l_}), centre marker '{mark}': S -> 'a' S 'a' [p/l] | ... | '{mark}' [1-p] with "
        f"p~=~{format_prob(p)}; |w| is geometric with mean p/(1-p) = {p / q:.6g}. The marker "
        "makes the language deterministic (the unmarked palindromes are context-free but not "
        "deterministic). Unambiguous: the marker fixes the centre."
    )
    hand = ("(h(p) + p log2 l) / (1-p)", (_h2(p) + p * math.log2(l_)) / q)
    cmd = f"grammarlab grammar new palindrome --alphabet-size {l_} -p {format_prob(p)}"
    return _with_header(g, paragraph, hand, cmd, mc_samples, seed)


def expr_grammar(
    variables: int = 3,
    add: float = 0.3,
    mul: float = 0.3,
    paren: float = 0.2,
    *,
    mc_samples: int = MC_SAMPLES,
    seed: int = MC_SEED,
) -> Grammar:
    """Arithmetic expressions in the textbook left-recursive grammar
    ``E -> E '+' T [add] | T``, ``T -> T '*' F [mul] | F``, ``F -> '(' E ')' [paren] | 'a' |
    'b' | ...`` over ``variables`` variables (uniform). An E holds 1/(1-add) terms, a term
    1/(1-mul) factors, so the grammar is subcritical iff paren < (1-add)(1-mul)."""
    v = _check_int("variables", variables, 1, MAX_VARIABLES)
    add, mul, paren = _open_prob("add", add), _open_prob("mul", mul), _open_prob("paren", paren)
    qa, qm, qp = _one_minus(add), _one_minus(mul), _one_minus(paren)
    if paren >= qa * qm:
        raise GrammarlabError(
            f"paren = {format_prob(paren)} makes the expressions critical or worse: an E holds "
            f"1/(1-add) * 1/(1-mul) = {1 / (qa * qm):.6g} factors, each a parenthesized E with "
            "probability paren, so E has paren / ((1-add)(1-mul)) >= 1 expected E children",
            hint=f"choose paren < (1-add)(1-mul) = {qa * qm:.6g}, or lower add or mul",
        )
    names = LETTERS[:v]
    rules = [
        _rule("E", "E '+' T", add),
        _rule("E", "T", qa),
        _rule("T", "T '*' F", mul),
        _rule("T", "F", qm),
        _rule("F", "'(' E ')'", paren),
        *(_rule("F", f"'{x}'", qp / v) for x in names),
    ]
    g, _ = _round_trip(Grammar(tuple(rules), "<expr_grammar>"))
    paragraph = (
        "Arithmetic expressions, the textbook left-recursive grammar (Aho, Sethi and Ullman, "
        "'Compilers'): E -> E '+' T [add] | T, T -> T '*' F [mul] | F, F -> '(' E ')' [paren] | "
        f"{' | '.join(repr(x) for x in names)}, with add~=~{format_prob(add)}, "
        f"mul~=~{format_prob(mul)}, paren~=~{format_prob(paren)}; '*' binds tighter than '+', "
        "both associate to the left. Unambiguous: precedence and associativity fix the tree."
    )
    cmd = (
        f"grammarlab grammar new expr --variables {v} --add {format_prob(add)} "
        f"--mul {format_prob(mul)} --paren {format_prob(paren)}"
    )
    return _with_header(g, paragraph, None, cmd, mc_samples, seed)


# The toy lexicon of :func:`english_grammar`: (part of speech, words), each word uniform.
LEXICON = (
    ("Det", ("the", "a")),
    ("N", ("man", "dog", "telescope", "park")),
    ("V", ("saw", "walked")),
    ("P", ("with", "in")),
)


def english_grammar(
    p: float = 0.25, *, mc_samples: int = MC_SAMPLES, seed: int = MC_SEED
) -> Grammar:
    """A toy English grammar with prepositional-phrase attachment ambiguity: ``S -> NP VP``,
    ``VP -> V NP [1-p] | VP PP [p]``, ``NP -> Det N [1-p] | NP PP [p]``, ``PP -> P NP`` and a
    small lexicon (:data:`LEXICON`). "the man saw a dog with a telescope" has two derivations
    (the PP attached to the verb phrase or to the noun phrase). An NP has 2p expected NP
    children (its own NP and the PP's), so p < 1/2."""
    p = _open_prob("p", p)
    if p >= 0.5:
        raise GrammarlabError(
            f"p = {format_prob(p)} makes the grammar critical or worse: NP -> NP PP gives an "
            "NP 2p >= 1 expected NP children, so the expected sentence length is infinite",
            hint="choose p < 0.5 (0.25: 9.5 words per sentence on average)",
        )
    q = _one_minus(p)
    rules = [
        _rule("S", "NP VP", 1.0),
        _rule("VP", "V NP", q),
        _rule("VP", "VP PP", p),
        _rule("NP", "Det N", q),
        _rule("NP", "NP PP", p),
        _rule("PP", "P NP", 1.0),
    ]
    for pos, words in LEXICON:
        rules += [_rule(pos, f"'{w}'", 1.0 / len(words)) for w in words]
    g, _ = _round_trip(Grammar(tuple(rules), "<english_grammar>"))
    paragraph = (
        "A toy English grammar with prepositional-phrase attachment ambiguity: S -> NP VP, "
        f"VP -> V NP [1-p] | VP PP [p], NP -> Det N [1-p] | NP PP [p], PP -> P NP, p~=~"
        f"{format_prob(p)}, over a lexicon of {sum(len(w) for _, w in LEXICON)} words. "
        "Ambiguous: in 'the man saw a dog with a telescope' the PP attaches to the verb phrase "
        "or to the noun phrase (two derivations), so the string entropy is below the "
        "derivational entropy."
    )
    cmd = f"grammarlab grammar new english -p {format_prob(p)}"
    return _with_header(g, paragraph, None, cmd, mc_samples, seed)


def _brackets(k: int) -> tuple[tuple[str, str], ...]:
    if k <= len(BRACKETS):
        return BRACKETS[:k]
    return tuple((f"({i}", f"){i}") for i in range(1, k + 1))


def _rule(lhs: str, rhs: str, prob: float) -> Rule:
    """A rule from its right side written as in a grammar file ('x' terminals, bare
    nonterminals; the empty string for an empty alternative)."""
    syms = rhs.split()
    mask = tuple(s.startswith("'") for s in syms)
    return Rule(lhs, tuple(s.strip("'") if t else s for s, t in zip(syms, mask, strict=True)),
                float(prob), terminal_mask=mask)  # fmt: skip


def _open_prob(name: str, p: object) -> float:
    """``p`` as a float strictly between 0 and 1, or a one-line error naming ``name``."""
    try:
        x = float(p)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        x = math.nan
    if not 0.0 < x < 1.0:
        raise GrammarlabError(f"{name} must lie strictly between 0 and 1, got {p!r}")
    return x


def _one_minus(p: float) -> float:
    """1 - p in decimal arithmetic, so 0.8 gives 0.2 in the file (not 0.19999999999999996)."""
    return float(Decimal(1) - Decimal(format_prob(p)))


def _h2(p: float) -> float:
    """Binary entropy in bits."""
    return -p * math.log2(p) - (1 - p) * math.log2(1 - p)


def _with_header(
    g: Grammar,
    paragraph: str,
    hand: tuple[str, float] | None,
    cmd: str,
    mc_samples: int,
    seed: int,
) -> Grammar:
    """``g`` with its header: the paragraph, the entropy the engine knows (exact, or a Monte
    Carlo estimate over ``mc_samples`` derivations from ``seed`` with no time budget, so the same
    on every machine), the closed form ``hand`` = (formula, bits) where there is one, and the
    command that writes the file."""
    n = _check_int("mc_samples", mc_samples, 2, MAX_MC_SAMPLES)
    seed = _check_int("seed", seed, 0, 2**63 - 1)
    if n != MC_SAMPLES:
        cmd += f" --mc-samples {n}"
    if seed != MC_SEED:
        cmd += f" --seed {seed}"
    e_len = expected_length(g)
    if not e_len <= MAX_EXPECTED_LENGTH:
        raise GrammarlabError(
            f"the expected string length is {e_len:.6g} tokens, more than the "
            f"{MAX_EXPECTED_LENGTH:g} a generated grammar may have",
            hint="lower the probabilities that continue a string (-p, --add, --mul, --paren) "
            "or the depth bound",
        )
    rep = analyze(g, mc_samples=n, seed=seed, mc_seconds=math.inf)
    e_len, h_d = rep.expected_length, rep.derivational_entropy_bits
    if rep.entropy_exact:
        h = rep.entropy_bits
        assert h is not None
        ent = [
            f"Exact entropy: {h:.9f} bits per string, {h / e_len:.9f} bits per token",
            f"(over the expected length of {e_len:.9g} tokens; {rep.ambiguity_reason}).",
        ]
    else:
        h = rep.entropy_bits
        est = "none (no sample scored)" if h is None else (
            f"{h:.6f} +- {rep.entropy_stderr_bits:.6f} bits per string (1 s.e.), "
            f"{h / e_len:.6f} bits per token"
        )  # fmt: skip
        ent = _wrap(
            f"Estimated entropy (Monte Carlo, {rep.mc_samples_used} of {n} sampled derivations "
            f"scored, seed {seed}): {est} over the expected length of {e_len:.9g} tokens; "
            f"ambiguity: {rep.ambiguity_reason}. Derivational entropy (exact, an upper bound of "
            f"the string entropy): {h_d:.9f} bits per derivation."
        )
    if hand is not None:
        ent += _wrap(f"By hand: {hand[0]} = {hand[1]:.9f} bits per string.")
    header = [*_wrap(paragraph), *ent, f"Written by: {cmd} -o FILE"]
    return g.with_probs(g.probs, header="\n".join(header))
