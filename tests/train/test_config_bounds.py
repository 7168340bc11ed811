"""Config values a user controls are bounded and type-checked with a one-line refusal: a value
where a table belongs, sets too large for memory, generate epochs beyond the run."""

from __future__ import annotations

import dataclasses

import pytest

from grammarlab.errors import ConfigError
from grammarlab.train.config import (
    BYTES_PER_TOKEN,
    MAX_GENERATE,
    MAX_SET,
    TrainConfig,
    config_from_dict,
    memory_problem,
)


@pytest.mark.parametrize(("table", "value"), [("lora", 3), ("lora", "x"), ("model", 3)])
def test_a_value_where_a_table_belongs_is_an_error_naming_the_key(table, value):
    where = {table: {"file": "c.toml", "line": 2}}
    with pytest.raises(ConfigError) as e:
        config_from_dict({"grammar": "g.cfg", table: value}, where)
    assert str(e.value).startswith("c.toml:2: error: ")
    assert f"{table} must be" in str(e.value)


@pytest.mark.parametrize(
    ("key", "top"),
    [
        ("n_train", MAX_SET),
        ("n_test", MAX_SET),
        ("n_random", MAX_SET),
        ("n_generate", MAX_GENERATE),
    ],
)
def test_set_sizes_are_bounded(key, top):  # fmt: skip
    TrainConfig(grammar="g.cfg", **{key: top})  # the bound itself is allowed
    with pytest.raises(ConfigError, match=rf"{key} must be at most {top:,}") as e:
        TrainConfig(grammar="g.cfg", **{key: 10**9})
    assert e.value.key == key


def test_generate_epochs_beyond_the_run_are_refused():
    TrainConfig(grammar="g.cfg", epochs=5, generate_epochs=(0, 5))
    with pytest.raises(ConfigError, match="generate_epochs must be a list of epochs >= 0 and <= "
                       "the run's last epoch 5"):  # fmt: skip
        TrainConfig(grammar="g.cfg", epochs=5, generate_epochs=(0, 6))
    # a sequential run's last epoch is epochs + epochs2
    TrainConfig(grammar="g.cfg", epochs=5, sequential=True, epochs2=3, generate_epochs=(8,))
    with pytest.raises(ConfigError, match="last epoch 8"):
        TrainConfig(grammar="g.cfg", epochs=5, sequential=True, epochs2=3, generate_epochs=(9,))


def test_memory_problem_is_the_stated_bound():
    cfg = TrainConfig(grammar="g.cfg", n_train=10, n_test=20, n_random=30)
    # 60 strings of 8 + 2 tokens at BYTES_PER_TOKEN bytes: 60 * 10 * 100 = 60,000 bytes
    need = 60 * 10 * BYTES_PER_TOKEN
    assert memory_problem(cfg, 8.0, 2 * need) == ""  # exactly half the memory: fits
    why = memory_problem(cfg, 8.0, 2 * need - 1)
    assert "about 60 strings of 8 tokens" in why and f"{BYTES_PER_TOKEN} bytes per token" in why
    seq = dataclasses.replace(cfg, sequential=True)  # D2 doubles the training strings
    assert memory_problem(seq, 8.0, 2 * need) != ""
    assert memory_problem(seq, 8.0, 2 * 70 * 10 * BYTES_PER_TOKEN) == ""
