"""Strings as dataset rows, with each string's exact probability: JSON Lines and Parquet.

One row per string: ``set`` (for a run's data sets: train, test, random, train2; absent for
samples), ``text`` (its tokens joined by spaces, the line of the text format),
``tokens`` (a list of terminals), ``length`` (tokens) and ``surprisal_bits`` (-log2 P(string)
under the grammar, exact: summed over all derivations, not the probability of the derivation
that drew it). The text format (one string per line) is :mod:`grammarlab.grammar.strings`'.
A Parquet file loads with ``pandas.read_parquet`` and ``datasets.load_dataset("parquet",
data_files=...)``; pyarrow writes it (the ``data`` extra), imported only here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from grammarlab.grammar.inside import surprisal_bits
from grammarlab.grammar.parse import Grammar

FORMATS = ("text", "jsonl", "parquet")
COLUMNS = ("text", "tokens", "length", "surprisal_bits")
Tokens = tuple[str, ...]


def batch_strings(g: Grammar, ids: np.ndarray, lengths: np.ndarray) -> list[Tokens]:
    """The strings of one :func:`grammarlab.grammar.sample.sample_batches` batch as tuples."""
    terms = np.asarray(g.terminals, dtype=object)
    ends = np.cumsum(lengths)
    return [tuple(terms[ids[e - n : e]]) for e, n in zip(ends, lengths, strict=True)]


Batch = Sequence[Tokens] | tuple[str, Sequence[Tokens]]  # strings, or (set name, strings)


def rows(
    g: Grammar, strings: Sequence[Tokens], set_name: str | None = None
) -> dict[str, list[Any]]:
    """The dataset columns (:data:`COLUMNS`, after ``set`` when ``set_name`` is given) of
    ``strings``; ``surprisal_bits`` is ``inf`` for a string outside the language."""
    bits = surprisal_bits(g, strings) if strings else np.zeros(0)
    head = {} if set_name is None else {"set": [set_name] * len(strings)}
    return head | {
        "text": [" ".join(s) for s in strings],
        "tokens": [list(s) for s in strings],
        "length": [len(s) for s in strings],
        "surprisal_bits": [float(b) for b in bits],
    }


def _split(batch: Batch) -> tuple[str | None, Sequence[Tokens]]:
    if len(batch) == 2 and isinstance(batch[0], str):
        return batch[0], batch[1]  # type: ignore[return-value]
    return None, batch  # type: ignore[return-value]


def jsonl_chunks(g: Grammar, batches: Iterable[Batch]) -> Iterator[bytes]:
    """JSON Lines, one object per string, batch by batch (memory: one batch); an impossible
    string's surprisal is written as null (JSON has no infinity). A batch is a list of strings
    or a pair (set name, strings)."""
    for batch in batches:
        name, strings = _split(batch)
        cols = rows(g, strings, name)
        out = []
        for i in range(len(strings)):
            row = {k: v[i] for k, v in cols.items()}
            if not np.isfinite(row["surprisal_bits"]):
                row["surprisal_bits"] = None
            out.append(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n")
        yield "".join(out).encode("utf-8")


def write_parquet(
    path: Path, g: Grammar, batches: Iterable[Batch], *, with_set: bool = False
) -> int:
    """Write the rows of ``batches`` to the Parquet file ``path`` (one row group per batch, so
    memory stays one batch); the number of rows. ``with_set``: batches are (set name, strings)
    pairs and the file has a ``set`` column first."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fields = [
        ("text", pa.string()),
        ("tokens", pa.list_(pa.string())),
        ("length", pa.int64()),
        ("surprisal_bits", pa.float64()),
    ]
    schema = pa.schema([("set", pa.string()), *fields] if with_set else fields)
    n = 0
    with pq.ParquetWriter(str(path), schema) as w:
        for batch in batches:
            name, strings = _split(batch)
            w.write_table(pa.Table.from_pydict(rows(g, strings, name), schema=schema))
            n += len(strings)
        if n == 0:  # an empty file still carries the schema
            w.write_table(schema.empty_table())
    return n
