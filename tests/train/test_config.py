"""TrainConfig: validation messages, TOML round trip, --set overrides, defaults resolution."""

from __future__ import annotations

import dataclasses
import tomllib

import pytest

from grammarlab.errors import ConfigError
from grammarlab.grammar.families import hierarchical_grammar, random_grammar
from grammarlab.grammar.load import loads
from grammarlab.train.config import (
    LoraSpec,
    TrainConfig,
    apply_overrides,
    config_from_dict,
    diff_configs,
    dumps_config,
    is_regular,
    load_config,
    resolve,
)
from grammarlab.train.models import ModelSpec


def test_defaults_are_the_papers():
    c = TrainConfig(grammar="g.cfg")
    assert (c.n_train, c.n_test, c.n_random, c.epochs) == (8, "auto", 10, 100)
    assert c.model == ModelSpec("pythia-tiny") and c.lora.rank == 0 and c.dtype == "float32"


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"n_train": 0}, ["n_train", ">= 1", "0"]),
        ({"n_test": "many"}, ["n_test", '"auto"', "'many'"]),
        ({"epochs": 2.5}, ["epochs", "integer"]),
        ({"lr": -1.0}, ["lr", "> 0"]),
        ({"dtype": "float16"}, ["dtype", '"float32" or "bfloat16"']),
        ({"device": "tpu"}, ["device", '"auto" or "cpu" or "cuda"']),
        ({"sequential": 1}, ["sequential", "true or false"]),
        ({"generate_epochs": [0, -1]}, ["generate_epochs", "epochs >= 0"]),
        ({"lora": {"rank": -2}}, ["lora.rank", ">= 0"]),
        ({"lora": {"dropout": 1.0}}, ["lora.dropout", "[0, 1)"]),
    ],
)
def test_invalid_fields_name_field_and_valid_values(kw, words):
    with pytest.raises(ConfigError) as e:
        TrainConfig(grammar="g.cfg", **kw)
    for w in words:
        assert w in str(e.value)


def test_toml_round_trip_is_exact(tmp_path):
    c = TrainConfig(
        grammar="grammars/a b.cfg", model=ModelSpec("llama-tiny", hidden_size=48), lr=1e-05,
        lora=LoraSpec(rank=4, alpha=8.0, targets=("q_proj", "v_proj")), generate_epochs=(0, 7),
        sequential=True, epochs2=5, n_test=12,
    )  # fmt: skip
    text = dumps_config(c)
    assert config_from_dict(tomllib.loads(text)) == c
    path = tmp_path / "c.toml"
    path.write_text(text)
    assert load_config(path) == c
    assert "[model]" in text and "[lora]" in text and "epochs2 = 5" in text


def test_set_overrides_parse_types_and_dotted_keys(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('grammar = "g.cfg"\nepochs = 5\n[model]\npreset = "pythia-tiny"\n')
    c = load_config(path, ["epochs=7", "lr=1e-3", "model.hidden_size=128", "sequential=true",
                           "generate_epochs=0,3", "lora.targets=[\"q\", \"v\"]", "n_test=auto",
                           "model_seed=none"])  # fmt: skip
    assert c.epochs == 7 and c.lr == 1e-3 and c.model.hidden_size == 128 and c.sequential
    assert c.generate_epochs == (0, 3) and c.lora.targets == ("q", "v") and c.n_test == "auto"
    assert c.model_seed is None


def test_unknown_key_in_toml_names_key_valid_keys_and_line(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('grammar = "g.cfg"\n\n[model]\npreset = "pythia-tiny"\nhidden = 3\n')
    with pytest.raises(ConfigError) as e:
        load_config(path)
    msg = str(e.value)
    assert f"{path}:5" in msg and "model.hidden" in msg and "hidden_size" in msg


def test_bad_value_in_toml_points_at_its_line(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('grammar = "g.cfg"\nn_train = 0\n')
    with pytest.raises(ConfigError, match=f"{path}:2: error: n_train must be"):
        load_config(path)
    with pytest.raises(ConfigError, match="--set n_train=-1: error: n_train"):
        load_config(path, ["n_train=-1"])


def test_bad_set_syntax_and_keys():
    for bad in (["epochs"], ["=3"], ["foo.bar=1"], ["model.preset.x=1"]):
        with pytest.raises(ConfigError):
            apply_overrides({}, bad)
    with pytest.raises(ConfigError, match="unknown config key 'epoch'"):
        config_from_dict(apply_overrides({"grammar": "g"}, ["epoch=3"]))
    with pytest.raises(ConfigError, match="needs a grammar"):
        config_from_dict({})


def test_is_regular_and_auto_n_test():
    # the paper's random grammar is regular (n_test 10), the hierarchical one is not (100)
    rnd, hier = random_grammar(2, 4), hierarchical_grammar(0.5)
    assert is_regular(rnd) and not is_regular(hier)
    assert not is_regular(loads("S -> 'a' S 'b' [0.5] | 'c' [0.5]\n"))
    assert resolve(TrainConfig(grammar="g"), rnd).n_test == 10
    r = resolve(TrainConfig(grammar="g", n_train=64, seed=3), hier)
    assert r.n_test == 100 and r.lr == 3e-3 and (r.data_seed, r.model_seed) == (3, 3)
    assert r.micro_batch_size == 100 and r.generate_epochs == (0, 100) and r.epochs2 is None
    s = resolve(TrainConfig(grammar="g", sequential=True, epochs=4, data_seed=9), hier)
    assert s.epochs2 == 4 and s.generate_epochs == (0, 8) and s.data_seed == 9
    assert resolve(r, hier) == r  # resolving twice changes nothing


def test_diff_configs_lists_dotted_keys():
    a = TrainConfig(grammar="g")
    b = dataclasses.replace(a, epochs=3, model=ModelSpec("pythia-tiny", hidden_size=32))
    assert diff_configs(a, b) == ["epochs", "model.hidden_size"]
    assert diff_configs(a, a) == []


def test_model_may_be_given_as_a_preset_name(tmp_path):
    assert TrainConfig(grammar="g.cfg", model="llama-tiny").model == ModelSpec(preset="llama-tiny")
    f = tmp_path / "c.toml"
    f.write_text('grammar = "g.cfg"\nmodel = "mistral-tiny"\n')
    assert load_config(f).model == ModelSpec(preset="mistral-tiny")
    with pytest.raises(ConfigError, match="model.preset 'nope' is not a known preset"):
        TrainConfig(grammar="g.cfg", model="nope")
