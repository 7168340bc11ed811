"""Sampling strings from a model, restricted to the grammar's terminals and the end token.

A pretrained model's vocabulary has ~50k tokens, of which a grammar uses a few dozen. Sampling
from the whole softmax wastes one full forward per token on strings that stop being grammar
strings at their first stray token, and almost never draws the end token: with SmolLM2 every
sample of a short fine-tune was ``<invalid>``. Here every step draws only among the allowed ids
(the terminals' and ``eos``): the logits of all other ids are set to ``-inf`` before the softmax,
so the draw follows the model's conditional distribution *given that the next token is a
terminal or the end* (renormalized over those ids). The first ``eos`` ends a sample.

Consequences for what the samples measure: a sample is always a sequence of terminals; it is a
grammar string or not (run_analysis checks that with the grammar's exact probabilities), and it
is an explicit non-member (``<invalid>`` in the generations file) only when no end token came
within ``max_tokens``. The mass the model puts outside the allowed ids is not seen by the samples
(the loss and the surprisals still count it).

Keys and values are kept in a :class:`transformers.DynamicCache`, so each step runs the model on
one new token per row; only the last position's logits are computed (``logits_to_keep=1``,
where the model accepts it). Sampling draws from an explicit ``torch.Generator``: the same
generator state gives the same samples.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch

INVALID = "<invalid>"  # a generated sample that does not decode to terminals + end token


def allowed_ids(tmap: Any) -> torch.Tensor:
    """Token ids a sample may contain: the grammar's terminals, then the end token."""
    return torch.tensor([*tmap.terminal_ids, tmap.eos_id], dtype=torch.long)


def _cache_keywords(model: torch.nn.Module) -> tuple[str, bool]:
    """(name of the forward's cache argument, whether it takes ``logits_to_keep``).
    transformers >= 5.2x calls the cache ``cache`` and warns on ``past_key_values`` (removed in
    5.40); older versions know only ``past_key_values``. A peft wrapper passes keywords through
    to its base model, whose signature decides."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    params = inspect.signature(type(base).forward).parameters
    return ("cache" if "cache" in params else "past_key_values"), "logits_to_keep" in params


def _forward(model: torch.nn.Module, ids: torch.Tensor, cache: Any, keys: tuple[str, bool]):
    """Last-position logits [B, V] of ``ids`` appended to ``cache`` (float32)."""
    name, keep = keys
    kw: dict[str, Any] = {name: cache, "use_cache": True}
    if keep:
        kw["logits_to_keep"] = 1
    return model(input_ids=ids, **kw).logits[:, -1].float()


@torch.inference_mode()
def sample_ids(
    model: torch.nn.Module,
    prefix: torch.Tensor,
    allowed: torch.Tensor | None,
    eos_id: int,
    steps: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Continue equal-length prefixes [B, P] by at most ``steps`` tokens drawn among ``allowed``
    ids only (logits of every other id masked to -inf; None: the whole vocabulary): multinomial
    sampling with ``generator``, or greedy (argmax over the allowed ids) without one. Rows that
    produced ``eos_id`` are filled with ``eos_id`` afterwards; stops once every row has.
    Returns [B, <= steps]."""
    from transformers import DynamicCache

    device = prefix.device
    allowed = None if allowed is None else allowed.to(device)
    cache, keys = DynamicCache(), _cache_keywords(model)
    logits = _forward(model, prefix, cache, keys)
    done = torch.zeros(prefix.shape[0], dtype=torch.bool, device=device)
    tokens = []
    for t in range(steps):
        # [B, |allowed|]: the mask, without a V-wide copy
        sub = logits if allowed is None else logits.index_select(1, allowed)
        if generator is None:
            pick = sub.argmax(-1)
        else:
            probs = torch.softmax(sub, -1)
            pick = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        ids = pick if allowed is None else allowed[pick]
        nxt = torch.where(done, torch.full_like(pick, eos_id), ids)
        tokens.append(nxt)
        done |= nxt == eos_id
        if bool(done.all()) or t == steps - 1:
            break
        logits = _forward(model, nxt[:, None], cache, keys)
    return torch.stack(tokens, 1) if tokens else prefix[:, :0]


def generate_strings(
    model: torch.nn.Module,
    tmap: Any,
    n: int,
    max_tokens: int,
    generator: torch.Generator,
    batch_size: int = 64,
) -> list[tuple[str, ...] | None]:
    """``n`` strings sampled from the model after ``bos``, over the grammar's terminals and the
    end token only (module docstring); at most ``max_tokens`` tokens including the end token.
    None for a sample without an end token within the limit (written ``<invalid>``);
    ``batch_size`` rows are sampled together."""
    if n <= 0:
        return []
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        allowed = allowed_ids(tmap)
        out: list[tuple[str, ...] | None] = []
        for start in range(0, n, batch_size):
            b = min(batch_size, n - start)
            prefix = torch.full((b, 1), tmap.bos_id, dtype=torch.long, device=device)
            ids = sample_ids(model, prefix, allowed, tmap.eos_id, max_tokens, generator)
            out += [tmap.decode(row.tolist()) for row in ids.cpu()]
        return out
    finally:
        model.train(was_training)


def share_decoded(samples: Sequence[tuple[str, ...] | None]) -> float:
    """Share of samples that ended with the end token within the limit (not ``<invalid>``)."""
    return sum(s is not None for s in samples) / len(samples) if samples else float("nan")


def format_generations(samples: Sequence[tuple[str, ...] | None]) -> str:
    """One sample per line (tokens separated by spaces); ``<invalid>`` for an undecodable one
    (no end token within the length limit). A sample that ends at once (the empty string) is an
    empty line."""
    return "".join((INVALID if s is None else " ".join(s)) + "\n" for s in samples)
