"""A run config as the plan sees it (grammarlab.scale.from_config), and architectures read from
a saved model directory's config.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grammarlab.errors import ConfigError
from grammarlab.grammar.load import load
from grammarlab.scale.arch import architecture_of, architecture_of_directory
from grammarlab.scale.from_config import run_facts
from grammarlab.train.config import TrainConfig
from grammarlab.train.export import save_hf_model
from grammarlab.train.models import ModelSpec, count_parameters, load_model

RANDOM_26 = str(Path(__file__).resolve().parents[2] / "grammars" / "random_26.cfg")


def test_run_facts_take_model_sizes_dtype_lora_and_batch_from_the_config():
    spec = ModelSpec("llama-tiny", hidden_size=48, num_layers=3, num_heads=2)
    cfg = TrainConfig(grammar=RANDOM_26, model=spec, n_train=5, micro_batch_size=2,
                      dtype="bfloat16", lora={"rank": 4})  # fmt: skip
    f = run_facts(cfg, load(RANDOM_26))
    assert (f.model, f.dtype, f.lora_rank, f.n_train, f.micro_batch) == (
        "llama-tiny", "bfloat16", 4, 5, 2)  # fmt: skip
    assert (f.arch.hidden, f.arch.layers, f.arch.heads) == (48, 3, 2)
    assert f.arch.vocab == 26 + 3  # 26 letters + bos, eos, pad
    assert f.max_len == 64  # every string of the random grammar has 64 letters
    s = f.setup()
    assert (s.mode, s.dtype, s.seq_len, s.lora_rank, s.n_seqs) == ("lora", "bfloat16", 66, 4, 2)
    # the tiny model the run would build has exactly the planned parameters
    model, _ = load_model(spec, load(RANDOM_26).terminals, seed=0)
    assert f.arch.n_params() == count_parameters(model)


def test_run_facts_longest_string_is_the_longest_training_string(grammar_file):
    # conftest's grammar: A in {1 2, 2 1 5, 2 1 6 7}, B in {3 5, 3 6 7, 4 4}, S -> A B | B A:
    # 18 distinct strings of 4 to 7 tokens; all 18 drawn (distinct) include a 7-token one, in
    # one pass (micro_batch_size unset: the largest set, at most n_train)
    cfg = TrainConfig(grammar=str(grammar_file), model="pythia-tiny", n_train=18, n_test=2,
                      n_random=0, disjoint_test=False)  # fmt: skip
    f = run_facts(cfg, load(grammar_file))
    assert f.max_len == 7 and f.micro_batch == 18 and f.lora_rank == 0
    assert f.setup().mode == "plain" and f.arch.vocab == 7 + 3


def test_a_saved_model_directory_is_planned_from_its_config_json(tmp_path):
    terminals = tuple("abc")
    model, tmap = load_model(ModelSpec("mistral-tiny", hidden_size=32), terminals, seed=0)
    save_hf_model(tmp_path / "m", model, tmap)
    a = architecture_of(str(tmp_path / "m"))
    assert a.family == "mistral" and a.hidden == 32 and a.vocab == 6
    assert a.n_params() == count_parameters(model)
    (tmp_path / "bad").mkdir()
    with pytest.raises(ConfigError, match="no config.json"):
        architecture_of_directory(tmp_path / "bad")
    (tmp_path / "bad" / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ConfigError, match="no memory formulas"):
        architecture_of(str(tmp_path / "bad"))
    (tmp_path / "bad" / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ConfigError, match="has no hidden_size"):
        architecture_of(str(tmp_path / "bad"))
