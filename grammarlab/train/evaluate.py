"""Per-epoch evaluation of a causal LM on sets of grammar strings (the backward pass: step.py).

Every string enters the model as ``bos t_1 .. t_L eos``; the model predicts the L string tokens
and the end token (L + 1 predictions, the start token is never predicted). The loss of Eq. 1 of
"Rethinking memorization in LLMs: on learning by rote vs. with understanding" is, per string, the
mean over those predictions of ``-ln p`` (nats per token), then the mean over strings.
Surprisals are saved in bits (``-log2 p``) per predicted token.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from grammarlab.train import prefix_trie  # the module: a test counts trie_logits's calls
from grammarlab.train.generate import sample_ids
from grammarlab.train.prefix_trie import Trie

if TYPE_CHECKING:
    from grammarlab.train.cpu_parallel import Workers

LN2 = math.log(2.0)
R = TypeVar("R")


@dataclass(frozen=True)
class Encoded:
    """A set of strings as model input: ``ids``/``mask`` [n, Lmax + 2] from TokenMap.encode."""

    name: str
    strings: list[tuple[str, ...]]
    ids: torch.Tensor
    mask: torch.Tensor


@dataclass
class SetResult:
    """One set at one epoch. ``loss`` nats/token (Eq. 1); ``acc`` share of predicted tokens where
    argmax == target; ``token_bits`` float32 [n, Lmax + 1] (NaN padding); ``correct`` bool
    [n, Lmax + 1]; ``greedy_match`` bool [n] (None until computed); ``string_loss`` float64 [n]:
    each string's nats/token (``loss`` is their mean)."""

    loss: float
    acc: float
    token_bits: np.ndarray
    correct: np.ndarray
    greedy_match: np.ndarray | None = None
    string_loss: np.ndarray | None = None

    @property
    def string_bits(self) -> np.ndarray:
        """Surprisal of each whole string in bits, end token included."""
        return np.nansum(self.token_bits.astype(np.float64), axis=1)


def encode_set(name: str, strings: Sequence[tuple[str, ...]], tmap: Any, device: Any) -> Encoded:
    ids, mask = tmap.encode(list(strings))
    return Encoded(name, list(strings), ids.to(device), mask.to(device))


def token_nll(
    model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor, trie: Trie | None = None
):
    """``-ln p`` of every predicted token (float32 [B, W - 1], 0 on padding), the prediction mask
    and argmax == target. Logits are upcast to float32 before the softmax. The last column (the
    longest strings' end token, else padding) is never an input whose prediction is used, so the
    model does not see it: a causal model's other outputs do not depend on it. No KV cache: it
    would copy every layer's keys and values for nothing. ``trie``: the prefix trie of the inputs
    (:func:`plan`), to run the model once per distinct prefix (prefix_trie.trie_logits; the same
    logits up to float rounding)."""
    ids_in, target, tmask = ids[:, :-1], ids[:, 1:], mask[:, 1:]
    if trie is not None:
        logits = prefix_trie.trie_logits(model, trie).float()
    else:
        out = model(input_ids=ids_in, attention_mask=mask[:, :-1].long(), use_cache=False)
        logits = out.logits.float()
    nll = F.cross_entropy(logits.transpose(1, 2), target, reduction="none") * tmask
    correct = (logits.argmax(-1) == target) & tmask
    return nll, tmask, correct


def batch_loss(nll: torch.Tensor, tmask: torch.Tensor) -> torch.Tensor:
    """Sum over strings of each string's mean nats per predicted token (Eq. 1 without the final
    division by the number of strings, so micro-batches add up to the whole set)."""
    return (nll.sum(1) / tmask.sum(1)).sum()


class Accumulator:
    """Collects micro-batch outputs into a :class:`SetResult` for the whole set; micro-batches
    may hold the set's rows in any order (``rows`` says which)."""

    def __init__(self, n: int, width: int) -> None:
        self.n = n
        self.bits = np.full((n, width), np.nan, dtype=np.float32)
        self.correct = np.zeros((n, width), dtype=bool)
        self.string_loss = np.zeros(n)  # nats/token of each string, float64

    def add(self, nll: torch.Tensor, tmask: torch.Tensor, correct: torch.Tensor,
            rows: Sequence[int] | np.ndarray) -> None:  # fmt: skip
        """Outputs of a micro-batch [b, w] for the set's rows ``rows`` [b]; columns past the
        set's width are padding for these rows (another set's longer strings) and are dropped."""
        w = min(nll.shape[1], self.bits.shape[1])
        nll, tmask = nll[:, :w].detach().double().cpu(), tmask[:, :w].cpu()
        self.bits[rows, :w] = torch.where(tmask, nll / LN2, math.nan).numpy()
        self.correct[rows, :w] = correct[:, :w].cpu().numpy()
        self.string_loss[rows] = (nll.sum(1) / tmask.sum(1)).numpy()

    def result(self) -> SetResult:
        predicted = ~np.isnan(self.bits)
        acc = float(self.correct.sum() / predicted.sum()) if predicted.any() else math.nan
        loss = float(self.string_loss.sum()) / max(self.n, 1)
        return SetResult(loss, acc, self.bits, self.correct, string_loss=self.string_loss)


def micro_batches(enc: Encoded, size: int, by_prefix: bool = False):
    """(rows, ids, mask): micro-batches of at most ``size`` strings, each trimmed to its longest
    string; ``rows`` [b] are the strings' indices in ``enc``. The strings are taken in order of
    length (stable), so strings of similar length share a batch and little padding is computed,
    or with ``by_prefix`` in lexicographic order, so strings with common prefixes share a batch
    (for prefix sharing, where padding costs only attention)."""
    if by_prefix:
        order = prefix_trie.lexicographic_order(enc.ids, enc.mask)
        order = torch.from_numpy(order).to(enc.ids.device)
    else:
        order = torch.argsort(enc.mask.sum(1), stable=True)
    if bool((order == torch.arange(len(order), device=order.device)).all()):
        order = None  # already sorted (e.g. all strings of one length): plain slices
    n = enc.ids.shape[0]
    for i in range(0, n, size):
        if order is None:
            rows, ids, mask = (
                np.arange(i, min(i + size, n)),
                enc.ids[i : i + size],
                enc.mask[i : i + size],
            )
        else:
            take = order[i : i + size]
            rows, ids, mask = take.cpu().numpy(), enc.ids[take], enc.mask[take]
        width = int(mask.sum(1).max())
        yield rows, ids[:, :width], mask[:, :width]


@dataclass(frozen=True)
class Batch:
    """One micro-batch of a :class:`Plan`: ``ids``/``mask`` [b, w]; ``parts``: for each set with
    strings in it, (set index, a row selector or None for all rows, the strings' rows in their
    set); ``trie``: the prefix trie of its inputs where sharing pays, else None."""

    ids: torch.Tensor
    mask: torch.Tensor
    parts: tuple[tuple[int, torch.Tensor | None, np.ndarray], ...]
    trie: Trie | None = None


@dataclass(frozen=True)
class Plan:
    """How one or more sets go through the model: their sizes ``(strings, width)`` and the
    micro-batches. The sets of a run never change, so a run plans each group of sets once."""

    sizes: tuple[tuple[int, int], ...]
    batches: tuple[Batch, ...]


def plan(encs: Sequence[Encoded], micro_batch_size: int, share_prefixes: bool = False,
         min_batches: int = 1) -> Plan:  # fmt: skip
    """The sets' strings together, in micro-batches of at most ``micro_batch_size`` strings and
    at least ``min_batches`` micro-batches (one for each worker, cpu_parallel.py) where there are
    enough strings (:func:`micro_batches`; lexicographic order with ``share_prefixes``). With
    ``share_prefixes`` every micro-batch gets its prefix trie if the tries together save at
    least prefix_trie.MIN_SAVED of the positions, else none does (one kind of forward pass per
    plan: the workers' passes run at the same time)."""
    sizes = tuple((len(e.strings), e.ids.shape[1] - 1) for e in encs)
    if not encs:
        return Plan(sizes, ())
    width = max(e.ids.shape[1] for e in encs)

    def pad(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, width - t.shape[1]))  # id 0 / mask False: never attended or scored

    merged = Encoded("+".join(e.name for e in encs), [s for e in encs for s in e.strings],
                     torch.cat([pad(e.ids) for e in encs]),
                     torch.cat([pad(e.mask) for e in encs]))  # fmt: skip
    owner = np.concatenate([np.full(len(e.strings), j) for j, e in enumerate(encs)])
    local = np.concatenate([np.arange(len(e.strings)) for e in encs])
    size = max(1, min(micro_batch_size, -(-len(merged.strings) // max(min_batches, 1))))
    batches = []
    for rows, ids, mask in micro_batches(merged, size, share_prefixes):
        parts = []
        for j in np.unique(owner[rows]):
            sel = owner[rows] == j
            pick = None if sel.all() else torch.from_numpy(sel).to(ids.device)
            parts.append((int(j), pick, local[rows][sel]))
        batches.append(Batch(ids, mask, tuple(parts)))
    if share_prefixes:
        # the inputs whose prediction is used: all but the last column
        tries = [prefix_trie.build_trie(b.ids[:, :-1], b.mask[:, 1:]) for b in batches]
        nodes, positions = sum(t.size for t in tries), sum(t.positions for t in tries)
        if 1.0 - nodes / max(positions, 1) >= prefix_trie.MIN_SAVED:
            batches = [Batch(b.ids, b.mask, b.parts, t)
                       for b, t in zip(batches, tries, strict=True)]  # fmt: skip
    return Plan(sizes, tuple(batches))


def worker_count(p: Plan, workers: Workers | None) -> int:
    """How many workers a pass over ``p`` uses: one per micro-batch at most."""
    return 1 if workers is None else min(workers.n, len(p.batches))


def in_callers_modes(fn: Callable[[int], R]) -> Callable[[int], R]:
    """``fn`` run under the calling thread's grad and inference modes, which are per thread:
    a worker thread would otherwise run with its own defaults."""
    inference, grad = torch.is_inference_mode_enabled(), torch.is_grad_enabled()

    def run(j: int) -> R:
        with torch.inference_mode(inference), torch.set_grad_enabled(grad):
            return fn(j)

    return run


def collect(p: Plan, outs: Sequence[Sequence[tuple]], w: int) -> list[SetResult]:
    """Each set's :class:`SetResult` from the outputs (nll, tmask, correct) of the micro-batches,
    worker j having run batches j, j + w, ..."""
    accs = [Accumulator(size, width) for size, width in p.sizes]
    for j, worker_outs in enumerate(outs):
        for b, (nll, tmask, correct) in zip(p.batches[j::w], worker_outs, strict=True):
            for k, pick, rows in b.parts:
                if pick is None:
                    accs[k].add(nll, tmask, correct, rows)
                else:
                    accs[k].add(nll[pick], tmask[pick], correct[pick], rows)
    return [a.result() for a in accs]


def run_plan(model: torch.nn.Module, p: Plan, workers: Workers | None = None) -> list[SetResult]:
    """Loss (nats/token), accuracy and per-token surprisals (bits) of each set of ``p``, under
    the caller's grad / inference mode; every string's numbers are its own, as if its set were
    evaluated alone (up to float rounding). ``workers`` (cpu_parallel.Workers): worker j runs
    micro-batches j, j + W, ... at the same time as the others. The pass with the backward pass
    is step.forward_backward."""
    w = worker_count(p, workers)

    def share(j: int) -> list[tuple]:
        outs = []
        for b in p.batches[j::w]:
            nll, tmask, correct = token_nll(model, b.ids, b.mask, b.trie)
            outs.append((nll.detach(), tmask, correct))
        return outs

    run = in_callers_modes(share)
    return collect(p, [run(0)] if w == 1 else workers.map(run, range(w)), w)


@torch.inference_mode()
def evaluate_plan(model: torch.nn.Module, p: Plan,
                  workers: Workers | None = None) -> list[SetResult]:  # fmt: skip
    """:func:`run_plan` without gradients."""
    return run_plan(model, p, workers=workers)


def evaluate_sets(
    model: torch.nn.Module,
    encs: Sequence[Encoded],
    micro_batch_size: int,
    share_prefixes: bool = False,
) -> list[SetResult]:
    """Loss, accuracy and surprisals of each set, no gradients. The sets' strings go through the
    model together (micro-batches across sets), so several small sets cost one forward call
    instead of one each (:func:`plan`, :func:`run_plan`)."""
    return evaluate_plan(model, plan(encs, micro_batch_size, share_prefixes))


def evaluate_set(model: torch.nn.Module, enc: Encoded, micro_batch_size: int,
                 share_prefixes: bool = False) -> SetResult:  # fmt: skip
    """:func:`evaluate_sets` of one set."""
    return evaluate_sets(model, [enc], micro_batch_size, share_prefixes)[0]


def greedy_matches(model: torch.nn.Module, enc: Encoded, prefix_tokens: int, eos_id: int):
    """bool [n]: greedy decoding from ``bos`` + the first ``min(prefix_tokens, L)`` string tokens
    reproduces the rest of the string and then the end token exactly (Carlini et al.'s
    extraction test; a string not longer than the prefix only tests its end token). Decodes
    with the KV cache over the whole vocabulary (generate.sample_ids); the runner reads the same
    test off the teacher-forced pass instead (:func:`greedy_matches_from_correct`)."""
    lengths = enc.mask.sum(1).cpu() - 2
    p_len = torch.clamp(lengths, max=prefix_tokens)
    match = np.zeros(len(enc.strings), dtype=bool)
    for p in sorted(set(p_len.tolist())):
        rows = torch.nonzero(p_len == p).squeeze(1)
        steps = int(lengths[rows].max()) - p + 1
        got = sample_ids(model, enc.ids[rows.to(enc.ids.device), : p + 1], None, eos_id, steps)
        for j, r in enumerate(rows.tolist()):
            want = enc.ids[r, p + 1 : int(lengths[r]) + 2]  # rest of the string, then eos
            match[r] = got.shape[1] >= want.shape[0] and bool(
                torch.equal(got[j, : want.shape[0]], want)
            )
    return match


def greedy_matches_from_correct(
    correct: np.ndarray, lengths: Sequence[int], prefix_tokens: int
) -> np.ndarray:
    """bool [n]: the same test as :func:`greedy_matches`, read off the teacher-forced argmax
    correctness ``correct`` [n, L+1] (position i predicts string token i+1, the last one the end
    token) instead of decoding.

    Greedy decoding from the true prefix reproduces the rest exactly if and only if the argmax at
    every later position, given the true prefix up to it, is the true next token: while the
    decoded tokens agree with the string, the decoder sees exactly the teacher-forced context, and
    the first disagreement is a teacher-forced argmax error. So the decode loop (about 40 extra
    forward calls per set and epoch) is not needed; a test checks the two agree."""
    lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
    p = np.minimum(lengths, prefix_tokens)
    cols = np.arange(correct.shape[1])[None, :]
    window = (cols >= p[:, None]) & (cols <= lengths[:, None])  # tokens p+1..L, then the end
    return np.all(correct | ~window, axis=1)
