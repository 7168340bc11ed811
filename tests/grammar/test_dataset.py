"""Dataset rows: each string's tokens, length and exact surprisal (hand-derived here), written
as JSON Lines and Parquet; the Parquet file loads with pandas and with Hugging Face datasets."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from grammarlab.cli import main
from grammarlab.grammar.dataset import batch_strings, jsonl_chunks, rows
from grammarlab.grammar.load import loads
from grammarlab.grammar.sample import sample, sample_batches

RIGHT = "S -> 'a' S [0.5] | 'b' [0.5]\n"  # P(a^k b) = 2^-(k+1)
# ambiguous: 'a a a' has two derivations, P = 2 * 0.4^2 * 0.6^3
AMBIG = "S -> S S [0.4] | 'a' [0.6]\n"


def test_rows_carry_the_exact_surprisal_summed_over_derivations():
    g = loads(RIGHT)
    r = rows(g, [("b",), ("a", "a", "b"), ("a",)])
    assert r["text"] == ["b", "a a b", "a"] and r["length"] == [1, 3, 1]
    assert r["tokens"] == [["b"], ["a", "a", "b"], ["a"]]
    assert r["surprisal_bits"][:2] == [pytest.approx(1.0, abs=1e-12), pytest.approx(3.0, abs=1e-12)]
    assert r["surprisal_bits"][2] == math.inf  # 'a' alone is not in the language
    (bits,) = rows(loads(AMBIG), [("a", "a", "a")])["surprisal_bits"]
    assert bits == pytest.approx(-math.log2(2 * 0.4**2 * 0.6**3), abs=1e-12)


def test_batches_give_the_same_strings_as_sample():
    g = loads(AMBIG)
    got = [s for ids, n in sample_batches(g, 50, np.random.default_rng(3))
           for s in batch_strings(g, ids, n)]  # fmt: skip
    assert got == sample(g, 50, np.random.default_rng(3))


def test_jsonl_writes_null_for_an_impossible_string():
    g = loads(RIGHT)
    lines = b"".join(jsonl_chunks(g, [[("a",), ("b",)]])).decode().splitlines()
    assert [json.loads(x)["surprisal_bits"] for x in lines] == [None, 1.0]


def test_cli_formats_hold_the_text_format_s_strings(tmp_path, capsys):
    gf = tmp_path / "g.cfg"
    gf.write_text(AMBIG)
    for fmt in ("text", "jsonl", "parquet"):
        out = tmp_path / f"s.{fmt}"
        argv = ["grammar", "sample", str(gf), "-n", "40", "--seed", "5", "--format", fmt]
        assert main([*argv, "-o", str(out)]) == 0
    text = (tmp_path / "s.text").read_text().splitlines()
    js = [json.loads(x) for x in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert [r["text"] for r in js] == text
    assert all(r["length"] == len(r["tokens"]) == len(r["text"].split()) for r in js)
    g = loads(AMBIG)
    want = rows(g, [tuple(t.split()) for t in text])["surprisal_bits"]
    assert [r["surprisal_bits"] for r in js] == want
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    df = pd.read_parquet(tmp_path / "s.parquet")
    assert list(df.columns) == ["text", "tokens", "length", "surprisal_bits"]
    assert df["text"].tolist() == text and df["surprisal_bits"].tolist() == want
    # parquet to stdout is refused with one line
    assert main(["grammar", "sample", str(gf), "-n", "2", "--format", "parquet"]) == 2
    assert "give it with -o" in capsys.readouterr().err


def test_the_parquet_file_loads_with_hugging_face_datasets(tmp_path):
    pytest.importorskip("datasets")
    gf, out = tmp_path / "g.cfg", tmp_path / "s.parquet"
    gf.write_text(RIGHT)
    assert (
        main(["grammar", "sample", str(gf), "-n", "30", "--format", "parquet", "-o", str(out)]) == 0
    )
    code = (
        "import datasets, sys; d = datasets.load_dataset('parquet', data_files=sys.argv[1], "
        "split='train'); print(d.num_rows, d[0]['length'] == len(d[0]['tokens']), "
        "sorted(d.column_names))"
    )
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_CACHE": str(tmp_path / "c"), "HF_HOME": str(tmp_path / "hf")}  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code, str(out)], env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[0] == "30 True ['length', 'surprisal_bits', 'text', 'tokens']"
