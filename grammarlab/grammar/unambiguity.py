"""Is every string of a grammar derived one way? Sufficient conditions (proofs of unambiguity)
and a bounded search for a witness of ambiguity, behind one entry point, :func:`prove`.

The proofs, tried in order, cheapest first, on the grammar's useful part (positive-probability
rules over reachable, productive nonterminals; the rest derives nothing):

1. **LL(1)**: the alternatives of every nonterminal have disjoint predict sets (FIRST of the
   right side, plus FOLLOW of the left side when the right side is nullable, with the end of
   the string as a lookahead), and there is no unit cycle: the next token picks the rule of each
   leftmost step, so the leftmost derivation of a string is unique.
2. **Fixed lengths**: every nonterminal derives strings of one length and the alternatives of
   every nonterminal have pairwise disjoint languages.
3. **LALR(1)**, then **canonical LR(1)**: a deterministic shift-reduce parser built from the
   grammar (augmented with ``S' -> S`` and the end-of-string lookahead) has no conflict, so the
   rightmost derivation of a string is unique (Knuth 1965: an LR(k) grammar is unambiguous).
   Empty right sides are reductions of zero symbols. LALR(1) has the LR(0) automaton's states
   (lookaheads propagated to a fixed point), canonical LR(1) splits states by lookahead and
   proves strictly more grammars (e.g. ``S -> 'a' A 'd' | 'b' B 'd' | 'a' B 'e' | 'b' A 'e'``,
   ``A -> 'c'``, ``B -> 'c'``) at the price of many more states; both stop at a work budget
   (:data:`LR_BUDGET` item visits), so a large grammar gives "unknown", never a hang.

All of them are sufficient, not necessary: an unambiguous grammar may have no LR(k) parser at
all (odd palindromes ``S -> 'a' S 'a' | 'b' S 'b' | 'a' | 'b'``). When no proof succeeds, a
bounded search (:data:`WITNESS_BUDGET` steps, strings of up to :data:`WITNESS_LENGTH` tokens)
counts the derivations of every short string exactly and reports the shortest string with two
(from the start, or from another useful nonterminal, which occurs in some sentential form);
a grammar is called ambiguous only with such a witness (or a derivation cycle ``A =>+ A``, which
gives every string through ``A`` infinitely many derivations), otherwise the verdict is unknown.

Why not lark's LALR analysis (``lark.parsers.lalr_analysis``)? Its tables agree with these on
the grammars tried, but it is a parser generator's internal: it builds LALR(1) only (no
canonical LR(1)), takes lark's own grammar objects (terminals through a lexer), resolves a
shift/reduce conflict as a shift with a log message unless ``strict=True`` (which needs another
package) and raises on a reduce/reduce one, where a proof needs the conflict as a value, and has
no work budget for a 1,000-rule grammar. The grammar stage depends on numpy only; the tables
here are a few hundred lines, tested against hand-counted automata and brute-force enumeration.
"""

from __future__ import annotations

from dataclasses import dataclass

from grammarlab.grammar.parse import Grammar, Rule
from grammarlab.grammar.structure import length_bound, productive, reachable, unit_cycle

DISJOINT_BUDGET = 200_000  # steps of the fixed-length disjointness proof before giving up
LR_BUDGET = 2_000_000  # item visits of the LALR(1) and LR(1) constructions, each
WITNESS_BUDGET = 300_000  # string combinations tried by the witness search
WITNESS_LENGTH = 12  # longest string (tokens) the witness search looks at


@dataclass(frozen=True)
class Verdict:
    """``ambiguous``: False when proven unambiguous, True with a witness, None when unknown;
    ``reason`` says which proof succeeded or what was tried (e.g. "proven: LR(1), no conflict
    (12 states)", "witness: ...")."""

    ambiguous: bool | None
    reason: str


def prove(
    g: Grammar,
    *,
    lr_budget: int = LR_BUDGET,
    witness_budget: int = WITNESS_BUDGET,
    witness_length: int = WITNESS_LENGTH,
) -> Verdict:
    """Prove the grammar unambiguous, or find a short string with two derivations (the witness
    search is skipped with ``witness_budget=0``). Probabilities matter only as zero or not."""
    u = useful(g)
    if u is None:
        return Verdict(None, "unknown: the start symbol derives no string")
    t = _Tables(u)
    if _ll1(u, t):
        return Verdict(False, "proven: LL(1), no unit cycle")
    if _fixed_length_disjoint(u):
        return Verdict(False, "proven: fixed lengths, disjoint alternatives")
    tried = []
    cycle = t.derivation_cycle()
    if cycle is not None:
        return Verdict(
            True,
            f"witness: {cycle} =>+ {cycle} (a derivation cycle: every string derived "
            f"through {cycle} has infinitely many derivations)",
        )
    lalr = _lalr(t, lr_budget)
    if lalr.states is not None and lalr.conflict is None:
        return Verdict(False, f"proven: LALR(1), no conflict ({lalr.states} states)")
    tried.append(f"LALR(1): {lalr.why()}")
    if lalr.states is not None:  # conflicts only: canonical LR(1) may still have none
        lr1 = _lr1(t, lr_budget)
        if lr1.states is not None and lr1.conflict is None:
            return Verdict(False, f"proven: LR(1), no conflict ({lr1.states} states)")
        tried.append(f"LR(1): {lr1.why()}")
    if witness_budget > 0:
        w = _witness(t, witness_length, witness_budget)
        if w.string is not None and w.symbol == 0:
            return Verdict(True, f"witness: {_show(t, w.string)} has 2+ derivations")
        if w.string is not None:  # inside a sentence: the symbol is reachable and productive
            return Verdict(
                True,
                f"witness: {t.names[w.symbol]} derives {_show(t, w.string)} in 2+ ways "
                f"({t.names[w.symbol]} is reachable from {t.names[0]} and productive)",
            )
        tried.append(
            f"no witness among strings of up to {w.searched} tokens"
            + (" (search budget spent)" if w.searched < witness_length else "")
        )
    return Verdict(None, "unknown: no proof found (" + "; ".join(tried) + ")")


def useful(g: Grammar) -> Grammar | None:
    """The positive-probability rules whose nonterminals are all reachable and productive (the
    rest derive nothing); None when the start symbol derives no string."""
    if not g.rules:
        return None
    pos = Grammar(tuple(r for r in g.rules if r.prob > 0), g.source, g.header)
    prod = productive(pos) if pos.rules else set()
    if g.start not in prod:
        return None
    keep = [r for r in pos.rules if r.lhs in prod and all(b in prod for b in r.nonterminals)]
    first = [r for r in keep if r.lhs == g.start]
    rest = [r for r in keep if r.lhs != g.start]
    g2 = Grammar(tuple(first + rest), g.source, g.header)  # the start's rules first
    reach = reachable(g2)
    return Grammar(tuple(r for r in g2.rules if r.lhs in reach), g.source, g.header)


# --- symbols as integers ------------------------------------------------------------------


class _Tables:
    """The useful grammar as integers: nonterminals 0..n-1 (the start is 0) and the augmented
    start n; terminal k is symbol n + 1 + k, and bit k of a lookahead set (a Python int), the end
    of the string being terminal ``n_t``. Rule ``n_r`` is ``S' -> S``. An item (rule, dot) is
    one integer: ``item0[rule] + dot``."""

    def __init__(self, g: Grammar) -> None:
        nts = list(g.nonterminals)
        self.names = nts + ["S'"]
        self.n = n = len(nts)
        idx = {a: i for i, a in enumerate(nts)}
        self.terms = list(g.terminals)
        tid = {t: n + 1 + k for k, t in enumerate(self.terms)}
        self.end = n + 1 + len(self.terms)
        self.rules: list[Rule] = list(g.rules)
        self.lhs = [idx[r.lhs] for r in g.rules] + [n]
        self.rhs = [
            tuple(tid[s] if m else idx[s] for s, m in zip(r.rhs, r.terminal_mask, strict=True))
            for r in g.rules
        ] + [(0,)]
        self.by_lhs: list[list[int]] = [[] for _ in range(n + 1)]
        for i, a in enumerate(self.lhs):
            self.by_lhs[a].append(i)
        self._nullable_first()
        # items: the symbol after the dot (-1 at the end) and the lookahead set the rest of the
        # right side after that symbol contributes, with whether that rest is nullable
        self.item0, self.sym, self.item_rule = [], [], []
        self.tail_first, self.tail_null = [], []
        for r, rhs in enumerate(self.rhs):
            self.item0.append(len(self.sym))
            for d in range(len(rhs) + 1):
                self.sym.append(rhs[d] if d < len(rhs) else -1)
                self.item_rule.append(r)
                f, nl = self.first_of(rhs[d + 1 :])
                self.tail_first.append(f)
                self.tail_null.append(nl)
        self.starts = [[self.item0[r] for r in rs] for rs in self.by_lhs]

    def is_nt(self, s: int) -> bool:
        return 0 <= s <= self.n

    def bit(self, s: int) -> int:
        return 1 << (s - self.n - 1)

    def _children_first(self) -> list[int]:
        """Rule numbers ordered so that a nonterminal's rules come after the rules of the
        nonterminals on their right sides (a depth-first postorder; a cycle's back edge is
        skipped): the fixed points below then settle an acyclic grammar in one pass instead of
        one pass per level (a 100,000-rule chain listed from the top)."""
        kids = [[x for r in rs for x in self.rhs[r] if self.is_nt(x)] for rs in self.by_lhs]
        seen, order = [False] * (self.n + 1), []
        for root in range(self.n + 1):
            if seen[root]:
                continue
            seen[root] = True
            stack = [(root, iter(kids[root]))]
            while stack:
                a, it = stack[-1]
                nxt = next((b for b in it if not seen[b]), None)
                if nxt is None:
                    order.append(a)
                    stack.pop()
                else:
                    seen[nxt] = True
                    stack.append((nxt, iter(kids[nxt])))
        return [r for a in order for r in self.by_lhs[a]]

    def _nullable_first(self) -> None:
        n = self.n
        self.nullable = [False] * (n + 1)
        self.first = [0] * (n + 1)
        self.order = self._children_first()
        changed = True
        while changed:
            changed = False
            for r in self.order:
                a, rhs = self.lhs[r], self.rhs[r]
                f, nl = self.first_of(rhs)
                if f & ~self.first[a]:
                    self.first[a] |= f
                    changed = True
                if nl and not self.nullable[a]:
                    self.nullable[a] = True
                    changed = True

    def first_of(self, seq: tuple[int, ...]) -> tuple[int, bool]:
        """FIRST of a symbol sequence (a lookahead set) and whether it is nullable."""
        f = 0
        for s in seq:
            if not self.is_nt(s):
                return f | self.bit(s), False
            f |= self.first[s]
            if not self.nullable[s]:
                return f, False
        return f, True

    def follow(self) -> list[int]:
        """FOLLOW of each nonterminal, with the end of the string after the start."""
        fol = [0] * (self.n + 1)
        fol[0] = 1 << (self.end - self.n - 1)
        parents_first = [r for r in reversed(self.order) if r != len(self.rhs) - 1]
        changed = True
        while changed:
            changed = False
            for r in parents_first:
                a, rhs = self.lhs[r], self.rhs[r]
                for d, s in enumerate(rhs):
                    if self.is_nt(s):
                        f, nl = self.first_of(rhs[d + 1 :])
                        new = f | (fol[a] if nl else 0)
                        if new & ~fol[s]:
                            fol[s] |= new
                            changed = True
        return fol

    def derivation_cycle(self) -> str | None:
        """A nonterminal A with A =>+ A (through rules A -> x B y with x, y nullable), or None."""
        succ: list[set[int]] = [set() for _ in range(self.n)]
        for a, rhs in zip(self.lhs[:-1], self.rhs[:-1], strict=True):
            for d, s in enumerate(rhs):
                if self.is_nt(s) and all(
                    self.is_nt(x) and self.nullable[x] for x in rhs[:d] + rhs[d + 1 :]
                ):
                    succ[a].add(s)
        # one depth-first search over all nodes (linear): an edge back to a node still on the
        # stack closes a cycle through it
        state = [0] * self.n  # 0 unseen, 1 on the stack, 2 done
        for root in range(self.n):
            if state[root]:
                continue
            state[root] = 1
            stack = [(root, iter(succ[root]))]
            while stack:
                a, it = stack[-1]
                b = next(it, None)
                if b is None:
                    state[a] = 2
                    stack.pop()
                elif state[b] == 1:
                    return self.names[b]
                elif state[b] == 0:
                    state[b] = 1
                    stack.append((b, iter(succ[b])))
        return None

    def term_name(self, k: int) -> str:
        return "end of string" if k == len(self.terms) else repr(self.terms[k])

    def rule_text(self, r: int) -> str:
        if r == len(self.rules):
            return f"S' -> {self.names[0]}"
        rule = self.rules[r]
        return f"{rule.lhs} -> {rule.rhs_text() or '(empty)'}"


def _show(t: _Tables, s: tuple[int, ...]) -> str:
    if not s:
        return "the empty string"
    words = " ".join(t.terms[x - t.n - 1] for x in s)
    return f"the string '{words}' ({len(s)} token{'s' if len(s) > 1 else ''})"


# --- LL(1) and fixed lengths ----------------------------------------------------------------


def _ll1(g: Grammar, t: _Tables) -> bool:
    """Sufficient for unambiguity: the predict sets of every nonterminal's alternatives (FIRST
    of the right side, plus FOLLOW of the left side when it is nullable) are pairwise disjoint,
    and there is no unit cycle, so the next token (or the end of the string) picks the rule of
    each leftmost step."""
    fol = t.follow()
    for a in range(t.n):
        seen = 0
        n_null = 0
        for r in t.by_lhs[a]:
            f, nl = t.first_of(t.rhs[r])
            if nl:
                n_null += 1
                f |= fol[a]
            if seen & f or n_null > 1:
                return False
            seen |= f
    return not unit_cycle(g)


class _Budget(Exception):
    pass


def _fixed_length_disjoint(g: Grammar, budget: int = DISJOINT_BUDGET) -> bool | None:
    """Sufficient for unambiguity when every nonterminal derives strings of one length: the
    alternatives of every nonterminal have pairwise disjoint languages (then the split of a string
    among a right side's symbols is forced, and by induction the derivation is unique). Returns
    None when not every nonterminal has a single length or the work budget runs out, False when
    two alternatives may share a string (a cycle back to a pair already on the way counts as
    sharing: conservative)."""
    size = length_bound(g, min)
    # one length each iff every rule is tight: its shortest yield is its left side's (then every
    # derivation has the shortest length, by induction); linear, unlike the longest yields
    for r in g.rules:
        if sum(r.terminal_mask) + sum(size[b] for b in r.nonterminals) != size[r.lhs]:
            return None
    steps = [0]
    memo: dict = {}

    def ln(x: tuple[str, bool]) -> int:
        return 1 if x[1] else size[x[0]]

    def alts(a: str) -> list[tuple]:
        return [tuple(zip(r.rhs, r.terminal_mask, strict=True)) for r in g.by_lhs[a]]

    def meet(xs: tuple, ys: tuple) -> bool:
        """Do two equal-length symbol sequences share a string?"""
        key = (xs, ys) if xs <= ys else (ys, xs)
        if key in memo:
            return memo[key]
        steps[0] += 1
        if steps[0] > budget:
            raise _Budget
        memo[key] = True  # a cycle back here is assumed to meet (conservative)
        if not xs or not ys:
            res = True  # the other side has length 0 as well: both derive the empty string
        elif xs[0] == ys[0]:
            res = meet(xs[1:], ys[1:])
        elif ln(xs[0]) == ln(ys[0]):
            if xs[0][1] and ys[0][1]:
                res = False
            else:
                res = meet((xs[0],), (ys[0],)) if len(xs) > 1 else _expand(xs, ys)
                res = res and meet(xs[1:], ys[1:])
        else:
            res = _expand(xs, ys) if ln(xs[0]) > ln(ys[0]) else _expand(ys, xs)
        memo[key] = res
        return res

    def _expand(xs: tuple, ys: tuple) -> bool:
        """Expand xs's leading nonterminal (the longer block, or either of equal blocks)."""
        if xs[0][1]:
            xs, ys = ys, xs
        return any(meet(alt + xs[1:], ys) for alt in alts(xs[0][0]))

    try:
        for a in g.nonterminals:
            rs = alts(a)
            for i in range(len(rs)):
                for j in range(i + 1, len(rs)):
                    if meet(rs[i], rs[j]):
                        return False
    except (_Budget, RecursionError):
        return None
    return True


# --- LALR(1) and canonical LR(1) ------------------------------------------------------------


@dataclass(frozen=True)
class _Automaton:
    """What a construction found: ``states`` built (None when the budget ran out, then
    ``spent`` says how far it got) and the first conflict (None: none)."""

    states: int | None
    conflict: str | None
    budget: int
    spent: int = 0

    def why(self) -> str:
        if self.states is None:
            return f"budget of {self.budget:,} item visits exceeded after {self.spent:,} states"
        return f"{self.conflict} ({self.states} states)"


class _Work:
    def __init__(self, budget: int) -> None:
        self.left = budget

    def spend(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise _Budget


def _closure(t: _Tables, kernel: dict[int, int], work: _Work) -> dict[int, int]:
    """LR(1) closure: item -> lookahead set. An item A -> x . B y with lookaheads L adds
    B -> . z with lookaheads FIRST(y L). With all lookaheads 0 it is the LR(0) closure."""
    la = dict(kernel)
    todo = list(kernel)
    while todo:
        i = todo.pop()
        b = t.sym[i]
        if not t.is_nt(b):
            continue
        new = t.tail_first[i] | (la[i] if t.tail_null[i] else 0)
        work.spend(len(t.starts[b]))
        for j in t.starts[b]:
            old = la.get(j)
            if old is None:
                la[j] = new
                todo.append(j)
            elif new & ~old:
                la[j] = old | new
                todo.append(j)
    return la


def _gotos(t: _Tables, items: dict[int, int]) -> dict[int, dict[int, int]]:
    """Successor kernels by symbol: the items with that symbol after the dot, dot moved."""
    out: dict[int, dict[int, int]] = {}
    for i, la in items.items():
        s = t.sym[i]
        if s >= 0:
            out.setdefault(s, {})[i + 1] = la
    return out


def _conflict(t: _Tables, items: dict[int, int]) -> str | None:
    """The first shift/reduce or reduce/reduce conflict among a state's items, or None."""
    shift = 0
    for i in items:
        s = t.sym[i]
        if s > t.n:
            shift |= t.bit(s)
    seen: list[tuple[int, int]] = []
    for i, la in items.items():
        if t.sym[i] >= 0:
            continue
        r = t.item_rule[i]
        if la & shift:
            return f"shift/reduce conflict on {t.term_name(_low(la & shift))} ({t.rule_text(r)})"
        for r2, la2 in seen:
            if la & la2:
                return (
                    f"reduce/reduce conflict on {t.term_name(_low(la & la2))} "
                    f"({t.rule_text(r2)} | {t.rule_text(r)})"
                )
        seen.append((r, la))
    return None


def _low(bits: int) -> int:
    return (bits & -bits).bit_length() - 1


def _lalr(t: _Tables, budget: int) -> _Automaton:
    """LALR(1): the LR(0) automaton, then lookaheads propagated along its transitions until no
    kernel item's set grows (the union of the canonical LR(1) lookaheads of each LR(0) state)."""
    work = _Work(budget)
    start = {t.item0[len(t.rules)]: 0}
    kernels: list[tuple[int, ...]] = [tuple(start)]
    index = {kernels[0]: 0}
    trans: list[dict[int, int]] = []
    try:
        k = 0
        while k < len(kernels):  # the LR(0) automaton, breadth first
            items = _closure(t, dict.fromkeys(kernels[k], 0), work)
            row = {}
            for s, kern in _gotos(t, items).items():
                key = tuple(sorted(kern))
                if key not in index:
                    index[key] = len(kernels)
                    kernels.append(key)
                row[s] = index[key]
            trans.append(row)
            k += 1
        la = [dict.fromkeys(kern, 0) for kern in kernels]
        la[0][kernels[0][0]] = 1 << (t.end - t.n - 1)
        # every state once (its closure's spontaneous lookaheads), then those whose kernel grew
        todo = list(range(len(kernels) - 1, -1, -1))
        queued = set(todo)
        while todo:
            k = todo.pop()
            queued.discard(k)
            for s, kern in _gotos(t, _closure(t, la[k], work)).items():
                dest = la[trans[k][s]]
                grew = False
                for i, bits in kern.items():
                    if bits & ~dest[i]:
                        dest[i] |= bits
                        grew = True
                if grew and trans[k][s] not in queued:
                    queued.add(trans[k][s])
                    todo.append(trans[k][s])
        for k in range(len(kernels)):
            c = _conflict(t, _closure(t, la[k], work))
            if c is not None:
                return _Automaton(len(kernels), c, budget)
    except _Budget:
        return _Automaton(None, None, budget, len(kernels))
    return _Automaton(len(kernels), None, budget)


def _lr1(t: _Tables, budget: int) -> _Automaton:
    """Canonical LR(1) (Knuth 1965): states are kernels with their lookahead sets, built
    breadth first; stops at the first conflict."""
    work = _Work(budget)
    start = ((t.item0[len(t.rules)], 1 << (t.end - t.n - 1)),)
    kernels = [start]
    index = {start: 0}
    try:
        k = 0
        while k < len(kernels):
            items = _closure(t, dict(kernels[k]), work)
            c = _conflict(t, items)
            if c is not None:
                return _Automaton(len(kernels), c, budget)
            for kern in _gotos(t, items).values():
                key = tuple(sorted(kern.items()))
                if key not in index:
                    index[key] = len(kernels)
                    kernels.append(key)
            k += 1
    except _Budget:
        return _Automaton(None, None, budget, len(kernels))
    return _Automaton(len(kernels), None, budget)


# --- a witness of ambiguity -----------------------------------------------------------------


@dataclass(frozen=True)
class _Found:
    string: tuple[int, ...] | None  # a shortest string with 2+ derivations from ``symbol``
    symbol: int  # the start (0) when it has one of that length, else another nonterminal
    searched: int  # every string up to this many tokens was searched


def _witness(t: _Tables, max_len: int, budget: int) -> _Found:
    """Count the derivations of every string of up to ``max_len`` tokens from each nonterminal,
    capped at 2 (the least fixed point of the counting equations, reached by iteration as the
    capped counts only grow), for lengths 0, 1, 2, ...; the first string of the start with
    count 2 is the witness. Counting runs over rules and splits of the string among the right
    side's symbols, so distinct counts are distinct derivation trees. A useful nonterminal
    with such a string is a witness too (it occurs in some sentential form), used when the start
    has none of the same length."""
    n = t.n
    big = max_len + 1  # "longer than anything searched"
    minlen = [big] * n
    changed = True
    while changed:  # shortest yield per nonterminal (capped), to prune splits
        changed = False
        for r in range(len(t.rules)):
            m = min(big, sum(1 if not t.is_nt(s) else minlen[s] for s in t.rhs[r]))
            if m < minlen[t.lhs[r]]:
                minlen[t.lhs[r]] = m
                changed = True
    rest = []  # per rule, the shortest yield of the right side from each position on
    for rhs in t.rhs[:-1]:
        tail = [0] * (len(rhs) + 1)
        for d in range(len(rhs) - 1, -1, -1):
            tail[d] = tail[d + 1] + (1 if not t.is_nt(rhs[d]) else minlen[rhs[d]])
        rest.append(tail)
    tab: list[dict[tuple[int, ...], int]] = [{} for _ in range(n)]
    work = _Work(budget)
    searched = -1
    try:
        for length in range(max_len + 1):
            # strings of this length depend on shorter ones (final) and, through nullable
            # symbols and unit rules, on others of this length: iterate to the fixed point
            cur: list[dict[tuple[int, ...], int]] = [{} for _ in range(n)]
            changed = True
            while changed:
                changed = False
                for a in range(n):
                    new: dict[tuple[int, ...], int] = {}
                    for r in t.by_lhs[a]:
                        for s, c in _combine(t, r, tab, length, rest[r], work).items():
                            new[s] = min(2, new.get(s, 0) + c)
                    if new != cur[a]:
                        cur[a] = new
                        tab[a].update(new)
                        changed = True
            searched = length
            for a in range(n):  # the start first
                two = sorted(s for s, c in cur[a].items() if c > 1)
                if two:
                    return _Found(two[0], a, length)
    except _Budget:
        pass
    return _Found(None, 0, max(searched, 0))


def _combine(t: _Tables, r: int, tab: list, length: int, rest: list[int], work: _Work) -> dict:
    """Strings of exactly ``length`` tokens derived by rule ``r`` from the current tables, with
    their derivation counts (capped at 2)."""
    part: dict[tuple[int, ...], int] = {(): 1}
    for d, s in enumerate(t.rhs[r]):
        room = length - rest[d + 1]
        src = {(s,): 1} if not t.is_nt(s) else tab[s]
        work.spend(len(part) * len(src) + 1)
        nxt: dict[tuple[int, ...], int] = {}
        for u, cu in part.items():
            for v, cv in src.items():
                if len(u) + len(v) <= room:
                    w = u + v
                    nxt[w] = min(2, nxt.get(w, 0) + cu * cv)
        part = nxt
        if not part:
            break
    return {u: c for u, c in part.items() if len(u) == length}
