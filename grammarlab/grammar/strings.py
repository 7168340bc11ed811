"""Strings as token tuples, and their one-per-line text format (tokens separated by single spaces).

Every part of grammarlab passes strings as ``tuple[str, ...]`` of terminals; files hold one string
per line, in UTF-8 (a leading byte order mark is ignored). This module is the one place that
converts between the two, and :func:`encode_lines` writes the same text straight from token
indices (the sampler's arrays) without a Python object per token.

The empty string (a grammar with an empty alternative derives it) is an empty line. Every line
ends with a newline when written, so the rule for reading is: each newline ends one string, and
text after the last newline, if any, is one more string. ``"a\n\n"`` is therefore two strings,
``a`` and the empty one, exactly what writing them gives; ``""`` holds no string and ``"\n"``
one empty string. A line of only spaces is the empty string too (it has no tokens).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from grammarlab.errors import GrammarlabError

Tokens = tuple[str, ...]


def format_string(tokens: Sequence[str]) -> str:
    return " ".join(tokens)


def format_strings(strings: Iterable[Sequence[str]]) -> str:
    """One string per line, tokens separated by single spaces, trailing newline."""
    return "".join(format_string(s) + "\n" for s in strings)


def encode_lines(terminals: Sequence[str], ids: np.ndarray, lengths: np.ndarray) -> bytes:
    """The UTF-8 bytes of :func:`format_strings` for strings given as indices into
    ``terminals``: ``ids`` holds all strings' tokens concatenated, ``lengths`` their lengths.
    Every token's bytes are gathered with numpy, then followed by a space, or a newline at the
    end of a string; an empty string's newline is inserted where it belongs."""
    lengths = np.asarray(lengths)
    empty = np.flatnonzero(lengths == 0)
    if len(empty):
        full = np.flatnonzero(lengths > 0)
        body = np.frombuffer(encode_lines(terminals, ids, lengths[full]), np.uint8)
        ends = np.flatnonzero(body == ord("\n")) + 1  # one past each non-empty line
        before = np.searchsorted(full, empty)  # non-empty strings before each empty one
        at = np.where(before > 0, ends[np.maximum(before - 1, 0)] if len(ends) else 0, 0)
        return np.insert(body, at, ord("\n")).tobytes()
    enc = [t.encode("utf-8") for t in terminals]
    if len(ids) == 0:
        return b""
    n_bytes = np.asarray([len(b) for b in enc], dtype=np.int64)
    table = np.frombuffer(b"".join(enc), dtype=np.uint8)
    t_start = np.cumsum(n_bytes) - n_bytes  # where each terminal's bytes start in table
    size = n_bytes[ids]  # bytes per token, without its separator
    end = np.cumsum(size + 1)  # one past each token's separator in the output
    out = np.empty(int(end[-1]), dtype=np.uint8)
    if bool(np.all(n_bytes == n_bytes[0])):  # one width (e.g. one-character tokens): a 2D copy
        w = int(n_bytes[0])
        out.reshape(-1, w + 1)[:, :w] = table.reshape(-1, w)[ids]
    else:
        excl = np.cumsum(size) - size
        within = np.arange(int(size.sum())) - np.repeat(excl, size)
        src = np.repeat(t_start[ids], size) + within
        out[np.repeat(end - size - 1, size) + within] = table[src]
    out[end - 1] = ord(" ")
    out[end[np.cumsum(lengths) - 1] - 1] = ord("\n")
    return out.tobytes()


def parse_strings(text: str, source: str = "<stdin>") -> list[Tokens]:
    """Read strings in the one-per-line format: one string per line, an empty line the empty
    string (see the module docstring for the final newline)."""
    return [tuple(line.split()) for line in text.splitlines()]


def decode_strings(data: bytes, source: str = "<stdin>") -> list[Tokens]:
    """Read strings from the bytes of a strings file (UTF-8, optional byte order mark). A file
    that is not UTF-8 text, or holds NUL bytes, is refused with the line of the first bad byte."""
    hint = "a strings file is UTF-8 text: one string per line, tokens separated by spaces"
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise GrammarlabError(
            f"not a UTF-8 text file ({e.reason} at byte {e.start})",
            file=source,
            line=data.count(b"\n", 0, e.start) + 1,
            hint=hint,
        ) from None
    if "\0" in text:
        raise GrammarlabError(
            "the file holds NUL bytes: a binary file, not strings",
            file=source,
            line=text.count("\n", 0, text.index("\0")) + 1,
            hint=hint,
        )
    return parse_strings(text, source)


def read_strings(path: str | Path) -> list[Tokens]:
    """Read a strings file (see :func:`decode_strings`)."""
    p = Path(path)
    if p.is_dir():
        raise GrammarlabError(
            "is a directory, not a strings file",
            file=str(p),
            hint="give a file with one string per line, or no INPUT to read stdin",
        )
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise GrammarlabError(f"no such file: {p}", file=str(p)) from None
    except OSError as e:
        raise GrammarlabError(f"cannot read the file: {e.strerror}", file=str(p)) from None
    return decode_strings(data, str(p))
