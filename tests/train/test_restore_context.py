"""``eval`` scores only strings that fit the model's context (256 positions for a tiny model,
bos and eos included); a longer one is refused naming its file and line."""

from __future__ import annotations

import pytest

from grammarlab.cli import main
from grammarlab.errors import GrammarlabError
from grammarlab.runs.launch import run
from grammarlab.train.restore import score_strings


@pytest.fixture
def trained(tiny_cfg, tmp_path):
    run(tiny_cfg(n_generate=0), tmp_path / "r", quiet=True)
    return tmp_path / "r"


def test_strings_beyond_the_context_are_refused_with_the_bound(trained, tmp_path, capsys):
    fits = ("1",) * 254  # 254 tokens + bos + eos = 256 positions
    bits, per_token = score_strings(trained, [fits])
    assert len(per_token[0]) == 255
    why = r"s.txt:2: error: a string of 255 tokens does not fit the model's context of 256"
    with pytest.raises(GrammarlabError, match=why + r" positions \(at most 254 tokens"):
        score_strings(trained, [("1",), ("1",) * 255], "s.txt")
    path = tmp_path / "long.txt"
    path.write_text("1 2\n" + " ".join(["1"] * 100_000) + "\n")
    assert main(["eval", str(trained), str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{path}:2: error: a string of 100,000 tokens does not fit")
    assert "Traceback" not in err
