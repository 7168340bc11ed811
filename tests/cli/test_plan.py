"""``grammarlab plan``: the verdict in words, user mistakes as one-line errors."""

from __future__ import annotations

from grammarlab.cli import main


def test_plan_says_whether_it_fits_and_what_would(capsys):
    assert main(["plan", "--model", "llama3-8b", "--gpu-memory-gb", "80"]) == 0
    out = capsys.readouterr().out
    assert "8,030,261,248 parameters" in out
    assert "verdict: does NOT fit" in out and "FSDP over" in out
    assert main(["plan", "--model", "llama3-8b", "--gpu-memory-gb", "80", "--gpus", "8"]) == 0
    assert "verdict: fits" in capsys.readouterr().out


def test_plan_tiny_model_needs_vocab_and_bad_flags_are_errors(capsys):
    assert main(["plan", "--model", "pythia-tiny", "--gpu-memory-gb", "1", "--vocab", "29"]) == 0
    assert "verdict: fits" in capsys.readouterr().out
    assert main(["plan", "--model", "pythia-tiny", "--gpu-memory-gb", "1"]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["plan", "--model", "llama3-8b", "--gpu-memory-gb", "-1"]) == 2
    assert "--gpu-memory-gb" in capsys.readouterr().err
