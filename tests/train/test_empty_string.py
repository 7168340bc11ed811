"""A run on a grammar with an empty alternative: the empty string enters the model as bos + eos,
its data lines are empty and read back as the empty string, and its loss is over its one
predicted token, the end token."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from grammarlab.errors import GrammarlabError
from grammarlab.grammar.inside import string_logprobs
from grammarlab.grammar.load import load
from grammarlab.runs.folder import RunDir
from grammarlab.runs.launch import run as launch
from grammarlab.train.config import resolve
from grammarlab.train.data import make_datasets
from grammarlab.train.evaluate import encode_set, evaluate_set
from grammarlab.train.restore import load_run_model
from grammarlab.train.tokens import TokenMap, hf_tokenizer

DYCK = "S -> '(' S ')' S [0.3] | [0.7]\n"  # P(empty) = 0.7


def test_the_empty_string_is_bos_eos() -> None:
    tmap = TokenMap.for_tiny(("(", ")"))
    ids, mask = tmap.encode([(), ("(", ")")])
    assert ids.tolist() == [[2, 3, 4, 4], [2, 0, 1, 3]]  # bos=2, eos=3, pad=4
    assert mask.tolist() == [[True, True, False, False], [True] * 4]
    assert tmap.decode([3]) == ()  # a generation that ends at once is the empty string
    assert hf_tokenizer(tmap)("")["input_ids"] == [2, 3]  # the saved tokenizer agrees


def test_a_tiny_run_on_a_grammar_with_the_empty_string(tiny_cfg, tmp_path) -> None:
    gfile = tmp_path / "dyck.cfg"
    gfile.write_text(DYCK)
    # the test set may repeat training strings, so the empty string can be in both
    cfg = tiny_cfg(grammar=str(gfile), n_train=8, n_test=8, disjoint_test=False)
    run = tmp_path / "run"
    assert launch(cfg, run, quiet=True) == "done"
    folder = RunDir(run)
    data = folder.read_data()
    g = load(gfile)
    want = make_datasets(resolve(cfg, g), g).sets
    assert data == want  # empty lines read back as the empty string
    assert () in data["train"] and () in data["test"]
    lines = (run / "data" / "test.txt").read_text().split("\n")
    assert lines.count("") == data["test"].count(()) + 1  # the final newline ends the last line

    # the empty string's loss: -ln p(eos | bos), one predicted token (nats)
    model, tmap, device = load_run_model(run)
    model.eval()
    with torch.no_grad():
        logits = model(torch.tensor([[tmap.bos_id]])).logits[0, -1].double()
    want_nats = -float(torch.log_softmax(logits, -1)[tmap.eos_id])
    res = evaluate_set(model, encode_set("e", [(), ("(", ")")], tmap, device), micro_batch_size=2)
    bits = res.token_bits[0]
    assert np.count_nonzero(~np.isnan(bits)) == 1  # only the end token is predicted
    # float32 logits: a log-softmax over a few logits is exact to ~1e-6 relative
    assert math.isclose(bits[0] * math.log(2), want_nats, rel_tol=1e-5)
    assert math.isclose(res.string_bits[0] * math.log(2), want_nats, rel_tol=1e-5)
    # per_string.csv (the run's analysis, from the data files read back) at the last epoch: the
    # same value for every empty test string, and the grammar's own surprisal -log2 0.7 beside it
    table = folder.read_per_string()
    last = table[(table.epoch == table.epoch.max()) & (table.dataset == "test")]
    empty = [i for i, s in enumerate(data["test"]) if s == ()]
    rows = last.set_index("index").loc[empty]
    np.testing.assert_allclose(rows.model_bits, want_nats / math.log(2), rtol=1e-5)
    np.testing.assert_allclose(rows.grammar_bits, -math.log2(0.7), rtol=1e-12)
    assert math.isclose(string_logprobs(g, [()])[0], math.log(0.7), rel_tol=1e-15)


def test_a_grammar_of_the_empty_string_alone_is_refused_with_a_hint() -> None:
    with pytest.raises(GrammarlabError, match="at least one terminal") as e:
        TokenMap.for_tiny(())
    assert "only string is the empty one" in e.value.diagnostics[0].hint
