"""A finished run's model restored from its folder and strings scored with it (grammarlab eval)."""

from __future__ import annotations

import json

import numpy as np
import pytest


def test_score_strings_and_eval_command_match_the_last_epoch(tiny_cfg, tmp_path, capsys):
    from grammarlab.cli import main
    from grammarlab.train.loop import train
    from grammarlab.train.restore import score_strings

    run = tmp_path / "r"
    train(tiny_cfg(epochs=2, n_generate=0, save_final_model=True), run, quiet=True)
    strings = [tuple(s.split()) for s in (run / "data/test.txt").read_text().splitlines()]
    bits, per_token = score_strings(run, strings)
    with np.load(run / "surprisals/epoch_0002.npz") as z:
        np.testing.assert_allclose(bits, np.nansum(z["test_bits"], 1), rtol=1e-5)
    assert [len(t) for t in per_token] == [len(s) + 1 for s in strings]
    assert (run / "final_model/config.json").is_file()
    assert json.loads((run / "final_model/tokens.json").read_text())["terminals"][0] == "1"
    assert main(["eval", str(run), str(run / "data/test.txt"), "--per-token"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(strings)
    first, tokens = lines[0].split("\t")
    assert (
        float(first) == pytest.approx(bits[0], rel=1e-5)
        and len(tokens.split()) == len(strings[0]) + 1
    )
