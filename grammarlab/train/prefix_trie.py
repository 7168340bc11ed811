"""Shared prefixes computed once: a batch of strings as a prefix trie (tree attention).

In a causal model the hidden state at position i depends only on tokens 0..i, so two strings
that start with the same k tokens have the same hidden states at their first k positions. A
grammar's strings share prefixes (a hierarchical grammar's far more than a random one's), so the
model need not compute them once per string: :func:`build_trie` turns a micro-batch into its
prefix trie, one node per distinct prefix, and :func:`trie_logits` runs the model once per node.

Everything but attention (embeddings, projections, MLPs, norms, the LM head: nearly all of the
FLOPs) runs over the N nodes as one packed sequence, with each node's depth as its position id
(rotary embeddings see the same positions as in the string). Attention gathers every string's
path of nodes back into the usual [strings, positions] layout, runs plain causal attention there
(the same work as without the trie) and keeps one copy of each node's output. Gradients flow
through the gathers, so a node's weight is the sum over the strings through it. The logits of
every (string, position) are exactly the ones of the plain forward pass, up to float rounding;
the tests check this for each architecture, with LoRA, with gradients and on strings of unequal
length.

The attention runs as a transformers attention function registered under ``ATTENTION``, switched
on while any call is running (calls from several CPU workers at once share the switch);
:func:`supports` says which models it is known to be right for (those that apply their attention
through the transformers attention interface and take position ids: GPT-NeoX, Llama, Mistral).
Models with dropout must not use it in training (one dropout mask per node instead of per
string); ours have none (models.disable_dropout).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

ATTENTION = "grammarlab_prefix_trie"
# Below this share of a pass's positions saved (evaluate.plan) the plain forward is used: the
# trie's extra work (gathers, attention on gathered inputs) costs about what it saves there. A
# random grammar's batches (2-3% shared) ran 0-5% slower with the trie on the 0.1M-parameter
# model (bench/bench_train.py).
MIN_SAVED = 0.05
SUPPORTED = ("gpt_neox", "llama", "mistral")  # config.model_type values checked by the tests


@dataclass(frozen=True)
class Trie:
    """The prefix trie of a batch ``ids``/``mask`` [b, W] (padding at the end of each row).

    ``tokens`` [N] and ``depth`` [N]: each node's token and position; ``path`` [b, W]: the node
    of each (row, position), arbitrary where ``mask`` is False; ``owner`` [N]: one flat index
    ``row * W + position`` per node, a place in the [b, W] layout where it occurs;
    ``positions``: the number of (row, position) pairs in ``mask``."""

    tokens: torch.Tensor
    depth: torch.Tensor
    path: torch.Tensor
    owner: torch.Tensor
    positions: int

    @property
    def size(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def saved(self) -> float:
        """Share of the positions the trie does not compute."""
        return 1.0 - self.size / max(self.positions, 1)


def lexicographic_order(ids: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """Row order [b] sorting ``ids`` [b, W] lexicographically over the positions in ``mask``;
    padding sorts before every token, so a prefix comes before its extensions."""
    keyed = torch.where(mask.bool(), ids, -1).cpu().numpy()
    return np.lexsort(keyed.T[::-1])


def build_trie(ids: torch.Tensor, mask: torch.Tensor) -> Trie:
    """Sort the rows lexicographically; a row's positions before its longest common prefix with
    the row above are that row's nodes, the others are new nodes (numbered in row-major order,
    so a running maximum down each column carries the node of a shared position)."""
    device = ids.device
    s, m = ids.cpu().numpy(), mask.cpu().numpy().astype(bool)
    b, w = s.shape
    order = lexicographic_order(ids, mask)
    s, m = np.where(m, s, -1)[order], m[order]
    same = np.zeros((b, w), dtype=bool)
    same[1:] = (s[1:] == s[:-1]) & m[1:] & m[:-1]
    shared = np.cumprod(same, axis=1).astype(bool)  # the common prefix with the row above
    new = m & ~shared
    number = np.cumsum(new.reshape(-1)).reshape(b, w) - 1
    path = np.maximum.accumulate(np.where(new, number, -1), axis=0)
    path = np.maximum(path, 0)  # padding above every node of its column: any node will do
    rows, cols = np.nonzero(new)  # row-major, i.e. in node order
    unsorted = np.empty_like(path)
    unsorted[order] = path

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64)).to(device)

    return Trie(t(s[rows, cols]), t(cols), t(unsorted), t(order[rows] * w + cols), int(m.sum()))


def supports(model: torch.nn.Module) -> bool:
    """Whether :func:`trie_logits` is known to give ``model``'s logits: an architecture the tests
    check, and no sliding window shorter than the model's context (the trie's attention sees the
    whole prefix, as full attention does)."""
    config = getattr(model, "config", None)
    window = getattr(config, "sliding_window", None)
    longest = getattr(config, "max_position_embeddings", None)
    full = window is None or (longest is not None and window >= longest)
    return getattr(config, "model_type", None) in SUPPORTED and full


def _trie_attention(module, query, key, value, attention_mask, *, trie: Trie | None = None,
                    **kwargs):  # fmt: skip
    """Attention over [1, heads, N, dim] node states: gather each string's path into
    [b, heads, W, dim], causal attention there (transformers' SDPA function: grouped-query heads
    and scaling as usual), and one output per node, as [1, N, heads, dim]."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if trie is None:  # a call that is not ours (cannot happen inside trie_logits)
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    b, w = trie.path.shape
    flat = trie.path.reshape(-1)

    def rows(x: torch.Tensor) -> torch.Tensor:  # [1, heads, N, dim] -> [b, heads, W, dim]
        # index_select of a contiguous copy: ~10x faster on a CPU than of the strided view (or
        # than advanced indexing, whose backward is the slow accumulating index_put_)
        nodes = x[0].transpose(0, 1).contiguous()  # [N, heads, dim]
        return nodes.index_select(0, flat).view(b, w, *nodes.shape[1:]).transpose(1, 2)

    out, _ = sdpa_attention_forward(module, rows(query), rows(key), rows(value), None,
                                    is_causal=True, **kwargs)  # fmt: skip
    out = out.reshape(b * w, *out.shape[2:]).index_select(0, trie.owner)  # [N, heads, dim]
    return out.unsqueeze(0), None


def _register() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION, _trie_attention)


@dataclass
class _Switch:
    """A model's attention switch while it is on: callers inside, the name switched to, and each
    config with its name before."""

    name: str
    before: list[tuple[Any, str]]
    callers: int = 0


_SWITCHED: dict[int, _Switch] = {}  # id(model) -> its switch while on
_SWITCH_LOCK = threading.Lock()


@contextmanager
def _attention(model: torch.nn.Module, name: str) -> Iterator[None]:
    """Every config of ``model`` set to attention ``name`` while any caller is inside (restored
    when the last one leaves): the CPU workers (cpu_parallel.py) run tries at the same time. One
    name at a time: a caller asking for another while the switch is on is an error."""
    from transformers import PretrainedConfig

    with _SWITCH_LOCK:
        entry = _SWITCHED.get(id(model))
        if entry is None:
            found = (getattr(m, "config", None) for m in model.modules())
            configs = {id(c): c for c in found if isinstance(c, PretrainedConfig)}
            before = [(c, c._attn_implementation) for c in configs.values()]
            entry = _SWITCHED[id(model)] = _Switch(name, before)
            for c, _ in before:
                c._attn_implementation = name
        elif entry.name != name:
            raise RuntimeError(f"attention is switched to {entry.name!r}, not {name!r}")
        entry.callers += 1
    try:
        yield
    finally:
        with _SWITCH_LOCK:
            entry.callers -= 1
            if entry.callers == 0:
                del _SWITCHED[id(model)]
                for c, old in entry.before:
                    c._attn_implementation = old


def trie_logits(model: torch.nn.Module, trie: Trie) -> torch.Tensor:
    """Logits [b, W, vocab] of ``model`` on the batch of ``trie`` (:func:`build_trie`), computed
    once per node and gathered back to every (row, position); arbitrary at masked positions."""
    with _attention(model, ATTENTION):
        out = model(input_ids=trie.tokens[None], position_ids=trie.depth[None], use_cache=False,
                    trie=trie)  # fmt: skip
    logits = out.logits[0]
    return logits.index_select(0, trie.path.reshape(-1)).view(*trie.path.shape, -1)


_register()
