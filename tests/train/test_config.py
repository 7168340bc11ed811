"""TrainConfig: validation messages, TOML round trip, --set overrides, defaults resolution, the
dotted-key helper and the generated reference (docs/config.md)."""

from __future__ import annotations

import dataclasses
import math
import tomllib
from pathlib import Path

import pytest

from grammarlab.errors import ConfigError
from grammarlab.grammar.families import hierarchical_grammar, random_grammar
from grammarlab.grammar.load import loads
from grammarlab.train.config import (
    LoraSpec,
    TrainConfig,
    apply_overrides,
    config_fields,
    config_from_dict,
    config_reference,
    diff_configs,
    dumps_config,
    field_doc,
    flatten_keys,
    is_regular,
    load_config,
    merge_settings,
    resolve,
    set_dotted,
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
        ({"weight_decay": math.inf}, ["weight_decay", "finite number >= 0", "inf"]),
        ({"weight_decay": math.nan}, ["weight_decay", "finite"]),
        ({"lr": math.inf}, ["lr", "finite number > 0"]),
        ({"seed": -1}, ["seed", "[0, 2**63)", "-1"]),
        ({"seed": 2**63}, ["seed", "[0, 2**63)"]),
        ({"model_seed": -3}, ["model_seed", "or unset (= seed)"]),
        ({"lora": {"alpha": math.inf}}, ["lora.alpha", "finite number > 0"]),
        ({"lora": {"targets": []}}, ["lora.targets", "non-empty"]),
        ({"warmup2_epochs": -1, "sequential": True}, ["warmup2_epochs", ">= 0"]),
        ({"warmup2_epochs": 1.5, "sequential": True}, ["warmup2_epochs", "integer"]),
        ({"warmup2_epochs": 2}, ["warmup2_epochs = 2", "sequential run", "sequential = true"]),
        ({"warmup2_epochs": 5, "sequential": True, "epochs2": 5}, ["fewer than the 5 stage-2"]),
        ({"warmup2_epochs": 7, "sequential": True, "epochs": 7}, ["fewer than the 7 stage-2"]),
    ],
)
def test_invalid_fields_name_field_and_valid_values(kw, words):
    with pytest.raises(ConfigError) as e:
        TrainConfig(grammar="g.cfg", **kw)
    for w in words:
        assert w in str(e.value)


def test_warmup2_epochs_unset_or_zero_and_in_range_are_valid(tmp_path):
    assert TrainConfig(grammar="g.cfg").warmup2_epochs is None  # unset: the run id keeps its hash
    assert TrainConfig(grammar="g.cfg", warmup2_epochs=0).warmup2_epochs == 0  # 0: none, anywhere
    c = TrainConfig(grammar="g.cfg", sequential=True, epochs=5, epochs2=3, warmup2_epochs=2)
    assert c.warmup2_epochs == 2
    path = tmp_path / "c.toml"
    path.write_text('grammar = "g.cfg"\nsequential = true\nepochs = 4\nwarmup2_epochs = 4\n')
    with pytest.raises(ConfigError, match=f"{path}:4: error: warmup2_epochs must be fewer"):
        load_config(path)
    assert load_config(path, ["warmup2_epochs=3"]).warmup2_epochs == 3


def test_toml_round_trip_is_exact(tmp_path):
    c = TrainConfig(
        grammar="grammars/a b.cfg", model=ModelSpec("llama-tiny", hidden_size=48), lr=1e-05,
        lora=LoraSpec(rank=4, alpha=8.0, targets=("q_proj", "v_proj")), generate_epochs=(0, 7),
        sequential=True, epochs2=5, n_test=12, warmup2_epochs=2,
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
    with pytest.raises(ConfigError, match="unknown config key 'epoch'") as e:
        apply_overrides({"grammar": "g"}, ["epoch=3"])
    assert "--set epoch=3" in str(e.value) and "did you mean 'epochs'?" in str(e.value)
    with pytest.raises(ConfigError, match="needs a grammar"):
        config_from_dict({})


def test_unknown_keys_suggest_the_closest_one(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('grammar = "g.cfg"\nweight_decy = 0.1\n')
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert f"{path}:2" in str(e.value) and "did you mean 'weight_decay'?" in str(e.value)
    path.write_text('grammar = "g.cfg"\n[lora]\nrnak = 2\n')
    with pytest.raises(ConfigError, match="did you mean 'lora.rank'"):
        load_config(path)
    with pytest.raises(ConfigError, match="unknown config key 'zzz'.*\n.*valid keys: grammar"):
        config_from_dict({"grammar": "g", "zzz": 1})


def test_unreadable_config_files_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="a folder, not a config file"):
        load_config(tmp_path)
    binary = tmp_path / "b.toml"
    binary.write_bytes(b'grammar = "\xff\xfe"\n')
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_config(binary)
    bad = tmp_path / "bad.toml"
    bad.write_text('grammar = "g.cfg"\nepochs = = 3\n')
    with pytest.raises(ConfigError, match=f"{bad}:2: error: invalid TOML"):
        load_config(bad)


def test_merge_settings_sets_typed_values_by_dotted_key():
    data = {"grammar": "g", "model": "llama-tiny", "lora": {"rank": 2}}
    merged = merge_settings(data, {"lr": 3e-3, "model.hidden_size": 48, "lora.alpha": 4.0})
    assert data == {"grammar": "g", "model": "llama-tiny", "lora": {"rank": 2}}  # not mutated
    c = config_from_dict(merged)
    assert c.lr == 3e-3 and c.model == ModelSpec("llama-tiny", hidden_size=48)
    assert (c.lora.rank, c.lora.alpha) == (2, 4.0)


def test_flatten_keys_and_set_dotted_are_inverse():
    nested = {"a": 1, "model": {"preset": "x", "hidden_size": 4}, "grid": {"t": {"u": [1, 2]}}}
    flat = flatten_keys(nested)
    assert flat == {"a": 1, "model.preset": "x", "model.hidden_size": 4, "grid.t.u": [1, 2]}
    rebuilt: dict = {}
    for k, v in flat.items():
        set_dotted(rebuilt, k, v)
    assert rebuilt == nested
    set_dotted(rebuilt, "model", {"num_layers": 2})  # a table value merges into the table
    assert rebuilt["model"] == {"preset": "x", "hidden_size": 4, "num_layers": 2}
    with pytest.raises(ConfigError, match="'a' is a value, not a table"):
        set_dotted(rebuilt, "a.b", 1)


def test_every_key_has_a_description_and_a_unit_entry():
    keys = config_fields()
    assert len(keys) == 33 + 6 + 4  # 33 top-level (2 of them the tables), [model] 6, [lora] 4
    for k in keys:
        doc, unit = field_doc(k)
        assert doc and isinstance(unit, str), k
    for k in ("save_final_model", "n_test", "n_random", "n_generate", "weight_decay", "epochs2",
              "lora.alpha", "lora.targets"):  # fmt: skip
        assert f"| `{k}` |" in config_reference()


def test_docs_config_md_is_the_rendered_reference():
    committed = Path(__file__).resolve().parents[2] / "docs" / "config.md"
    assert committed.read_text(encoding="utf-8") == config_reference(), (
        "docs/config.md is stale: run `python -m grammarlab config-doc -o docs/config.md`"
    )


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
