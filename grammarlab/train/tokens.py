"""Grammar terminals <-> model token ids.

A :class:`TokenMap` says which token id stands for each terminal of a grammar, and which ids
start, end and pad a string. Every string enters a model as ``bos t_1 ... t_L eos`` and padding
fills the batch to the longest string; the mask marks the real positions (bos..eos).

Two ways to get one:

* tiny models (built here from a config): ids ``0..n-1`` are the terminals in the given order,
  then ``bos = n``, ``eos = n + 1``, ``pad = n + 2``; ``vocab_size = n + 3`` unless the model
  asks for more rows (``model.vocab_size``): the extra ids ``n + 3..`` are never inputs or
  targets, only more logits for the softmax to spread its mass over, as a pretrained model's
  ~50k are.
* pretrained tokenizers: every terminal must be exactly ONE token. Convention: a terminal is
  tokenized on its own, without special tokens and *without* a leading space (digits and
  letters are single tokens that way in the BPE vocabularies we use, while ``" 1"`` is two
  tokens for SmolLM2). Only if some terminal is not one token that way is the leading-space
  variant (``" a"``) tried, for *all* terminals at once, so one grammar always uses one
  convention. If neither works, the error lists the offending terminals.
  ``bos``/``eos`` are the tokenizer's; a tokenizer without a bos token starts strings with its
  eos token (a common convention for GPT-style models, whose documents are separated by eos).
  ``pad`` is the tokenizer's pad token, else eos (padding is masked, so its id never matters).

Saved models carry a Hugging Face tokenizer (:func:`hf_tokenizer`): a pretrained model's own, or
for a tiny model a ``tokenizers`` word-level tokenizer over the terminals and the three special
tokens, which encodes the text ``"3 1 2"`` (terminals separated by spaces) exactly as
:meth:`TokenMap.encode` does: ``bos 3 1 2 eos``, padded with ``pad``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from grammarlab.errors import GrammarlabError

#: the two tokenization conventions tried for pretrained tokenizers, in order
CONVENTIONS = ("plain", "leading-space")


@dataclass(frozen=True)
class TokenMap:
    """Terminal <-> token id mapping for one (grammar, model) pair."""

    terminals: tuple[str, ...]
    terminal_ids: tuple[int, ...]
    bos_id: int
    eos_id: int
    pad_id: int
    vocab_size: int
    convention: str = "plain"
    #: the Hugging Face tokenizer the map was read from (None for a tiny model: see hf_tokenizer)
    tokenizer: Any = field(default=None, compare=False, repr=False)
    _index: dict[str, int] = field(init=False, repr=False, compare=False)
    _terminal_of: dict[int, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.terminals) != len(self.terminal_ids):
            raise GrammarlabError(
                f"{len(self.terminals)} terminals but {len(self.terminal_ids)} token ids"
            )
        if not self.terminals:
            raise GrammarlabError(
                "a token map needs at least one terminal",
                hint="a grammar whose only string is the empty one has no tokens to learn; give "
                "the grammar a rule with a terminal",
            )
        if len(set(self.terminals)) != len(self.terminals):
            raise GrammarlabError(f"duplicate terminals in {self.terminals}")
        if len(set(self.terminal_ids)) != len(self.terminal_ids):
            clash = _clashes(self.terminals, self.terminal_ids)
            raise GrammarlabError(
                f"different terminals map to the same token id: {clash}",
                hint="each terminal must be its own token",
            )
        specials = {self.bos_id, self.eos_id, self.pad_id}
        bad = [t for t, i in zip(self.terminals, self.terminal_ids, strict=True) if i in specials]
        if bad:
            raise GrammarlabError(f"terminals {bad} map to the bos/eos/pad token id")
        for i in (*self.terminal_ids, *specials):
            if not 0 <= i < self.vocab_size:
                raise GrammarlabError(f"token id {i} outside the vocabulary 0..{self.vocab_size}")
        object.__setattr__(
            self, "_index", dict(zip(self.terminals, self.terminal_ids, strict=True))
        )
        object.__setattr__(
            self, "_terminal_of", dict(zip(self.terminal_ids, self.terminals, strict=True))
        )

    @classmethod
    def for_tiny(cls, terminals: Sequence[str], vocab_size: int | None = None) -> TokenMap:
        """The map of a model built here: terminals are ids 0..n-1, then bos, eos, pad.

        ``vocab_size`` (default n + 3) may add ids n+3..vocab_size-1 that no string ever uses:
        they are rows of the embedding and LM head only, never inputs or targets, so the model
        starts with its probability mass spread over more tokens than the grammar has."""
        n = len(terminals)
        size = n + 3 if vocab_size is None else vocab_size
        if isinstance(size, bool) or not isinstance(size, int) or size < n + 3:
            raise GrammarlabError(
                f"a tiny model's vocabulary of {size!r} tokens cannot hold the grammar's {n} "
                f"terminals plus bos, eos and pad",
                hint=f"set model.vocab_size to at least {n + 3}, or leave it unset",
            )
        return cls(tuple(terminals), tuple(range(n)), n, n + 1, n + 2, size, "tiny")

    def to_dict(self) -> dict[str, Any]:
        """The map as plain JSON types (the ``tokens.json`` of a saved model)."""
        return {
            "terminals": list(self.terminals), "terminal_ids": list(self.terminal_ids),
            "bos_id": self.bos_id, "eos_id": self.eos_id, "pad_id": self.pad_id,
            "vocab_size": self.vocab_size, "convention": self.convention,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TokenMap:
        """Inverse of :meth:`to_dict` (other keys are ignored); a malformed dict is an error."""
        try:
            return cls(tuple(str(t) for t in d["terminals"]),
                       tuple(int(i) for i in d["terminal_ids"]), int(d["bos_id"]),
                       int(d["eos_id"]), int(d["pad_id"]), int(d["vocab_size"]),
                       str(d.get("convention", "plain")))  # fmt: skip
        except (KeyError, TypeError, ValueError) as e:
            raise GrammarlabError(f"not a token map: {type(e).__name__}: {e}") from None

    def encode(self, strings: Sequence[tuple[str, ...]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids of a batch of strings.

        Returns ``input_ids`` LongTensor ``[B, Lmax + 2]`` (``bos, t_1..t_L, eos``, then
        ``pad_id``) and ``mask`` BoolTensor of the same shape, True on the real positions
        (bos..eos). ``Lmax`` is the longest string's length (0 for an empty batch).
        """
        width = max((len(s) for s in strings), default=0) + 2
        ids = torch.full((len(strings), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(strings), width), dtype=torch.bool)
        for row, s in enumerate(strings):
            try:
                toks = [self._index[t] for t in s]
            except KeyError as e:
                raise GrammarlabError(
                    f"string {row} holds {e.args[0]!r}, which is not a terminal of the grammar",
                    hint=f"terminals: {' '.join(self.terminals)}",
                ) from None
            n = len(toks) + 2
            ids[row, :n] = torch.tensor([self.bos_id, *toks, self.eos_id], dtype=torch.long)
            mask[row, :n] = True
        return ids, mask

    def decode(self, ids: Sequence[int]) -> tuple[str, ...] | None:
        """Generated ids (those after bos) -> terminals, stopping at the first eos.

        None when an id that is neither a terminal nor eos comes before eos, or no eos comes.
        """
        out: list[str] = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                return tuple(out)
            t = self._terminal_of.get(i)
            if t is None:
                return None
            out.append(t)
        return None


def _clashes(terminals: Sequence[str], ids: Sequence[int]) -> dict[int, list[str]]:
    by_id: dict[int, list[str]] = {}
    for t, i in zip(terminals, ids, strict=True):
        by_id.setdefault(i, []).append(t)
    return {i: ts for i, ts in by_id.items() if len(ts) > 1}


def _single_token_ids(tokenizer: Any, texts: Sequence[str]) -> tuple[list[int | None], list[str]]:
    """Token id of each text if it is exactly one token (else None), and the pieces it became."""
    ids: list[int | None] = []
    pieces: list[str] = []
    for text in texts:
        enc = tokenizer.encode(text, add_special_tokens=False)
        ids.append(int(enc[0]) if len(enc) == 1 else None)
        pieces.append(str(tokenizer.convert_ids_to_tokens(list(enc))))
    return ids, pieces


def token_map_from_tokenizer(
    tokenizer: Any, terminals: Sequence[str], vocab_size: int, model_name: str = "the model"
) -> TokenMap:
    """The :class:`TokenMap` of a pretrained tokenizer (see the module docstring for the
    conventions). ``vocab_size`` is the width of the model's logits, which may exceed the
    tokenizer's length (Pythia pads its embedding matrix)."""
    terminals = tuple(terminals)
    bad: dict[str, list[str]] = {}
    for convention, prefix in zip(CONVENTIONS, ("", " "), strict=True):
        ids, pieces = _single_token_ids(tokenizer, [prefix + t for t in terminals])
        if all(i is not None for i in ids) and len(set(ids)) == len(ids):
            break
        bad[convention] = [
            f"{t!r} -> {p}" for t, i, p in zip(terminals, ids, pieces, strict=True) if i is None
        ] or [f"two terminals share a token: {_clashes(terminals, ids)}"]
    else:
        lines = "; ".join(f"{c}: {', '.join(b)}" for c, b in bad.items())
        raise GrammarlabError(
            f"not every terminal is a single token of {model_name}'s tokenizer ({lines})",
            hint="use terminals that the tokenizer keeps whole (digits, lowercase letters)",
        )
    eos = tokenizer.eos_token_id
    if eos is None:
        raise GrammarlabError(f"the tokenizer of {model_name} has no eos token")
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else eos
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    return TokenMap(terminals, tuple(int(i) for i in ids), int(bos), int(eos), int(pad),
                    int(vocab_size), convention, tokenizer)  # fmt: skip


def special_token_names(terminals: Sequence[str]) -> tuple[str, str, str]:
    """Names of a tiny model's bos, eos and pad tokens: ``<bos> <eos> <pad>``, each wrapped in
    more angle brackets while a terminal has that name (a grammar may use ``'<bos>'``)."""
    taken = set(terminals)
    names = []
    for base in ("bos", "eos", "pad"):
        name = f"<{base}>"
        while name in taken:
            name = f"<{name}>"
        names.append(name)
    return names[0], names[1], names[2]


def word_level_tokenizer(tmap: TokenMap, max_length: int | None = None) -> Any:
    """A ``PreTrainedTokenizerFast`` for a tiny model's map: a ``tokenizers`` word-level model
    whose vocabulary is the terminals (their ids) and bos/eos/pad (:func:`special_token_names`).
    Text is split at whitespace (terminals hold none); encoding adds ``bos``/``eos`` around the
    string, as :meth:`TokenMap.encode` does; decoding joins terminals with spaces. A word that is
    no terminal is an error (there is no unknown token: the model has no id for one).
    ``max_length``: the model's context in tokens (bos and eos included), if known."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    bos, eos, pad = special_token_names(tmap.terminals)
    vocab = dict(zip(tmap.terminals, tmap.terminal_ids, strict=True))
    vocab.update({bos: tmap.bos_id, eos: tmap.eos_id, pad: tmap.pad_id})
    core = Tokenizer(models.WordLevel(vocab, unk_token=None))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", special_tokens=[(bos, tmap.bos_id), (eos, tmap.eos_id)]
    )
    kw = {} if max_length is None else {"model_max_length": max_length}
    return PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token=bos, eos_token=eos, pad_token=pad, **kw
    )


def hf_tokenizer(tmap: TokenMap, max_length: int | None = None) -> Any:
    """The Hugging Face tokenizer that goes with ``tmap``'s model: the pretrained one it was read
    from, else (a tiny model) :func:`word_level_tokenizer`."""
    if tmap.tokenizer is not None:
        return tmap.tokenizer
    return word_level_tokenizer(tmap, max_length)
