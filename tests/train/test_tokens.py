"""TokenMap (terminal <-> id), the pretrained-tokenizer conventions, and the word-level Hugging
Face tokenizer of a tiny model, round-tripped on every shipped grammar."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from grammarlab.errors import GrammarlabError
from grammarlab.grammar.load import load
from grammarlab.grammar.sample import sample
from grammarlab.train.tokens import (
    TokenMap,
    hf_tokenizer,
    special_token_names,
    token_map_from_tokenizer,
    word_level_tokenizer,
)

DIGITS = tuple("123456789")
SHIPPED = sorted((Path(__file__).resolve().parents[2] / "grammars").glob("*.cfg"))


def test_tiny_token_map_layout():
    tm = TokenMap.for_tiny(("x", "y"))
    assert (tm.terminal_ids, tm.bos_id, tm.eos_id, tm.pad_id, tm.vocab_size) == ((0, 1), 2, 3, 4, 5)


def test_tiny_token_map_with_extra_vocabulary_keeps_the_terminal_ids():
    small, big = TokenMap.for_tiny(DIGITS), TokenMap.for_tiny(DIGITS, vocab_size=2048)
    assert big.vocab_size == 2048
    assert (big.terminal_ids, big.bos_id, big.eos_id, big.pad_id) == (
        small.terminal_ids, small.bos_id, small.eos_id, small.pad_id)  # fmt: skip
    strings = [tuple(s) for s in ("123", "98765", "", "5")]
    ids, mask = big.encode(strings)
    assert torch.equal(ids, small.encode(strings)[0])
    assert int(ids.max()) < len(DIGITS) + 3  # the extra ids 12..2047 never enter a string
    assert big.decode([12, big.eos_id]) is None  # an extra id is no terminal
    assert TokenMap.for_tiny(DIGITS, vocab_size=12) == small


@pytest.mark.parametrize("bad", [11, 0, -5, True, 12.0])
def test_tiny_token_map_vocabulary_too_small_is_an_error(bad):
    with pytest.raises(GrammarlabError, match="at least 12"):
        TokenMap.for_tiny(DIGITS, vocab_size=bad)


def test_encode_pads_and_masks():
    tm = TokenMap.for_tiny(("x", "y"))  # x=0 y=1 bos=2 eos=3 pad=4
    ids, mask = tm.encode([("x", "y", "y"), ("y",), ()])
    assert ids.dtype == torch.long and mask.dtype == torch.bool
    assert ids.tolist() == [[2, 0, 1, 1, 3], [2, 1, 3, 4, 4], [2, 3, 4, 4, 4]]
    assert mask.tolist() == [[True] * 5, [True] * 3 + [False] * 2, [True] * 2 + [False] * 3]
    empty_ids, empty_mask = tm.encode([])
    assert empty_ids.shape == empty_mask.shape == (0, 2)


def test_decode_round_trip_and_failures():
    tm = TokenMap.for_tiny(DIGITS)
    strings = [("1", "9", "5"), ("7",)]
    ids, mask = tm.encode(strings)
    for row, s in zip(ids, strings, strict=True):
        assert tm.decode(row[1:].tolist()) == s  # after bos; stops at eos, padding ignored
    eos, bos, pad = tm.eos_id, tm.bos_id, tm.pad_id
    assert tm.decode([eos]) == ()
    assert tm.decode([0, 1]) is None  # no eos
    assert tm.decode([0, bos, eos]) is None  # bos is not a terminal
    assert tm.decode([0, pad, eos]) is None
    assert tm.decode([0, eos, 99]) == ("1",)  # anything after eos is ignored


def test_encode_unknown_terminal_is_an_error():
    tm = TokenMap.for_tiny(DIGITS)
    with pytest.raises(GrammarlabError, match="'0'.*not a terminal"):
        tm.encode([("1", "0")])


def test_token_map_rejects_inconsistent_ids():
    with pytest.raises(GrammarlabError, match="same token id"):
        TokenMap(("a", "b"), (0, 0), 1, 2, 2, 5)
    with pytest.raises(GrammarlabError, match="bos/eos/pad"):
        TokenMap(("a", "b"), (0, 2), 1, 2, 2, 5)
    with pytest.raises(GrammarlabError, match="outside the vocabulary"):
        TokenMap(("a",), (7,), 1, 2, 2, 5)


class FakeTokenizer:
    """A word-piece stand-in: known pieces are single tokens, anything else is split per char."""

    def __init__(self, vocab: dict[str, int], bos: int | None, eos: int, pad: int | None):
        self.vocab, self.bos_token_id, self.eos_token_id, self.pad_token_id = vocab, bos, eos, pad
        self.inv = {i: t for t, i in vocab.items()}

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        assert not add_special_tokens
        if text in self.vocab:
            return [self.vocab[text]]
        return [self.vocab.get(c, 0) for c in text]

    def convert_ids_to_tokens(self, ids: list[int]) -> list[str]:
        return [self.inv.get(i, "?") for i in ids]


def test_tokenizer_map_plain_convention_and_eos_fallbacks():
    tok = FakeTokenizer({"<unk>": 0, "<eos>": 1, "a": 5, "b": 6, " ": 7}, bos=None, eos=1, pad=None)
    tm = token_map_from_tokenizer(tok, ("a", "b"), vocab_size=10)
    assert tm.convention == "plain" and tm.terminal_ids == (5, 6)
    assert tm.bos_id == tm.eos_id == tm.pad_id == 1  # no bos: eos starts strings; pad = eos
    assert tm.vocab_size == 10


def test_tokenizer_map_leading_space_convention_for_all_terminals():
    # "ab" is two tokens without a space, so every terminal takes the " x" form
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "a": 3, " a": 4, " ab": 5, "b": 6}
    tm = token_map_from_tokenizer(FakeTokenizer(vocab, 1, 2, 0), ("a", "ab"), vocab_size=7)
    assert tm.convention == "leading-space" and tm.terminal_ids == (4, 5)
    assert (tm.bos_id, tm.eos_id, tm.pad_id) == (1, 2, 0)


def test_tokenizer_map_lists_offending_terminals():
    vocab = {"<unk>": 0, "</s>": 1, "a": 2, "b": 3, "1": 4}
    with pytest.raises(GrammarlabError, match=r"'10'.*'ab'") as err:
        token_map_from_tokenizer(FakeTokenizer(vocab, None, 1, None), ("a", "10", "ab"), 5, "m")
    assert "'a' ->" not in str(err.value).split("plain:")[1].split(";")[0]  # 'a' was fine


def test_to_dict_round_trip_and_malformed_dict():
    tm = TokenMap(("a", "b"), (7, 3), 1, 2, 0, 10, "leading-space")
    assert TokenMap.from_dict(tm.to_dict()) == tm
    assert TokenMap.from_dict(TokenMap.for_tiny(DIGITS).to_dict()).convention == "tiny"
    with pytest.raises(GrammarlabError, match="not a token map.*terminal_ids"):
        TokenMap.from_dict({"terminals": ["a"]})
    with pytest.raises(GrammarlabError, match="same token id"):
        TokenMap.from_dict({**tm.to_dict(), "terminal_ids": [7, 7]})


# ---------------------------------------------------------------- word-level HF tokenizer


def _reloaded(tmap: TokenMap, folder: Path):
    """The tokenizer as a Hugging Face user gets it: saved, then AutoTokenizer.from_pretrained."""
    from transformers import AutoTokenizer

    hf_tokenizer(tmap).save_pretrained(folder)
    return AutoTokenizer.from_pretrained(folder)


def test_tiny_tokenizer_encodes_like_the_token_map(tmp_path):
    tm = TokenMap.for_tiny(("3", "1", "2"))  # 3=0 1=1 2=2 bos=3 eos=4 pad=5
    tok = _reloaded(tm, tmp_path)
    assert len(tok) == tm.vocab_size == 6
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (3, 4, 5)
    assert tok("3 1 2").input_ids == [3, 0, 1, 2, 4]
    assert tok.encode("3 1 2", add_special_tokens=False) == [0, 1, 2]
    assert tok.decode([3, 0, 1, 2, 4], skip_special_tokens=True) == "3 1 2"
    batch = tok(["3 1 2", "2", ""], padding=True, return_tensors="pt")
    ids, mask = tm.encode([("3", "1", "2"), ("2",), ()])
    assert torch.equal(batch.input_ids, ids)
    assert torch.equal(batch.attention_mask, mask.long())
    # the model that goes with it: the map again
    assert token_map_from_tokenizer(tok, tm.terminals, tm.vocab_size).terminal_ids == (0, 1, 2)


def test_tiny_tokenizer_refuses_a_word_that_is_no_terminal(tmp_path):
    tok = _reloaded(TokenMap.for_tiny(("3", "1", "2")), tmp_path)
    with pytest.raises(Exception, match="UNK|unk"):  # no unknown token: the model has no id
        tok("3 9")


def test_special_token_names_step_aside_for_terminals(tmp_path):
    assert special_token_names(("a",)) == ("<bos>", "<eos>", "<pad>")
    terms = ("<bos>", "<<bos>>", "<pad>", "x")
    bos, eos, pad = special_token_names(terms)
    assert (bos, eos, pad) == ("<<<bos>>>", "<eos>", "<<pad>>")
    tm = TokenMap.for_tiny(terms)
    tok = _reloaded(tm, tmp_path)
    assert tok("<bos> x <pad>").input_ids == [tm.bos_id, 0, 3, 2, tm.eos_id]
    assert tok.bos_token == bos and tok.pad_token_id == tm.pad_id


def test_hf_tokenizer_of_a_pretrained_map_is_its_own():
    sentinel = object()
    tm = TokenMap(("a",), (5,), 1, 2, 2, 10, "plain", sentinel)
    assert hf_tokenizer(tm) is sentinel
    assert tm == TokenMap(("a",), (5,), 1, 2, 2, 10, "plain")  # the tokenizer is not compared


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_tiny_tokenizer_round_trip_on_every_shipped_grammar(path, tmp_path):
    """Every terminal alone, and 200 sampled strings: the reloaded tokenizer gives the TokenMap's
    ids, and decoding gives the text back."""
    grammar = load(path)
    tm = TokenMap.for_tiny(grammar.terminals)
    tok = _reloaded(tm, tmp_path)
    assert len(tok) == tm.vocab_size
    strings = [(t,) for t in grammar.terminals]
    strings += sample(grammar, 200, np.random.default_rng(0))
    ids, mask = tm.encode(strings)
    for row, s in enumerate(strings):
        text = " ".join(s)
        enc = tok(text).input_ids
        assert enc == ids[row, mask[row]].tolist()
        assert tok.decode(enc, skip_special_tokens=True) == text
        assert tm.decode(enc[1:]) == s
    batch = tok([" ".join(s) for s in strings], padding=True, return_tensors="pt")
    assert torch.equal(batch.input_ids, ids) and torch.equal(batch.attention_mask, mask.long())


def test_word_level_tokenizer_records_the_context_length(tmp_path):
    tok = word_level_tokenizer(TokenMap.for_tiny(("a",)), max_length=256)
    assert tok.model_max_length == 256
