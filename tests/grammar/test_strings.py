"""The one-per-line strings format: writing from token indices, reading bytes, bad files."""

from __future__ import annotations

import numpy as np
import pytest

from grammarlab.errors import GrammarlabError
from grammarlab.grammar.strings import (
    decode_strings,
    encode_lines,
    format_strings,
    parse_strings,
    read_strings,
)

STRINGS = [("a", "bb"), ("é",), ("12", "a", "12", "bb"), ("bb",)]


@pytest.mark.parametrize(
    "terminals",
    [("a", "bb", "é", "12"), ("a", "b", "c")],  # mixed byte widths; one width (a 2D copy)
)
def test_encode_lines_is_format_strings(terminals: tuple[str, ...]) -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 6, size=50)
    ids = rng.integers(0, len(terminals), size=int(lengths.sum())).astype(np.int32)
    ends = np.cumsum(lengths)
    strings = [
        tuple(terminals[i] for i in ids[e - k : e]) for e, k in zip(ends, lengths, strict=True)
    ]
    assert encode_lines(terminals, ids, lengths) == format_strings(strings).encode("utf-8")
    assert encode_lines(terminals, ids[:0], lengths[:0]) == b""


def test_decode_round_trip_and_bom() -> None:
    data = format_strings(STRINGS).encode("utf-8")
    assert decode_strings(data) == STRINGS
    assert decode_strings(b"\xef\xbb\xbf" + data) == STRINGS  # a byte order mark is ignored


def test_an_empty_line_is_the_empty_string() -> None:
    assert parse_strings("a b\n\nc\n", "f.txt") == [("a", "b"), (), ("c",)]
    # each newline ends one string; text after the last one is one more string
    assert parse_strings("") == []
    assert parse_strings("\n") == [()]
    assert parse_strings("a\n") == parse_strings("a") == [("a",)]
    assert parse_strings("a\n\n") == [("a",), ()]
    assert parse_strings("\r\na\r\n  \n") == [(), ("a",), ()]  # CRLF; spaces alone: empty
    for strings in ([()], [(), ()], [("a",), ()], [(), ("a", "b"), (), ()]):
        assert parse_strings(format_strings(strings)) == strings  # what is written reads back


@pytest.mark.parametrize(
    "lengths", [[0], [0, 0], [0, 2, 0], [1, 0, 3, 0, 0, 1], [2, 2, 0], [0, 1, 1]]
)
def test_encode_lines_writes_empty_strings_as_empty_lines(lengths: list[int]) -> None:
    terminals = ("a", "bb", "\u00e9")
    rng = np.random.default_rng(len(lengths))
    ids = rng.integers(0, 3, size=sum(lengths)).astype(np.int32)
    ends = np.cumsum(lengths)
    strings = [
        tuple(terminals[i] for i in ids[e - n : e]) for n, e in zip(lengths, ends, strict=True)
    ]
    data = encode_lines(terminals, ids, np.asarray(lengths))
    assert data == format_strings(strings).encode("utf-8")
    assert decode_strings(data) == strings


def test_binary_files_are_refused_with_a_line(tmp_path) -> None:
    bad = tmp_path / "bin.txt"
    bad.write_bytes(b"a b\nc\n\xff\xfe\x00\x01")
    with pytest.raises(GrammarlabError, match="not a UTF-8 text file") as e:
        read_strings(bad)
    assert (e.value.diagnostics[0].file, e.value.diagnostics[0].line) == (str(bad), 3)
    nul = tmp_path / "nul.txt"
    nul.write_bytes(b"a\nb\x00c\n")
    with pytest.raises(GrammarlabError, match="NUL bytes") as e:
        read_strings(nul)
    assert e.value.diagnostics[0].line == 2


def test_unreadable_paths(tmp_path) -> None:
    with pytest.raises(GrammarlabError, match="is a directory"):
        read_strings(tmp_path)
    with pytest.raises(GrammarlabError, match="no such file"):
        read_strings(tmp_path / "missing.txt")
