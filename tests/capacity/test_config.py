"""The capacity config file: every mistake is one error line naming the file (and the line)."""

import pytest

from grammarlab.capacity.config import config_from_dict, load_config
from grammarlab.cli import main
from grammarlab.errors import ConfigError
from tests.capacity.grid_config import CONFIG


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ("alphabet_size = 4", "alphabet_size = 70000"),
            "alphabet_size must be an integer 2..65536",
        ),
        (("max_steps = 200", "max_step = 300"), "unknown config key 'train.max_step'"),
        (('preset = "llama-tiny"', 'preset = "pythia-1b"'), "only applies to tiny presets"),
        (("dtypes = {dtypes}", 'dtypes = ["float16"]'), "dtypes[] must be one of"),
    ],
)
def test_bad_config_is_one_error_line(config_file, tmp_path, capsys, edit, message):
    path = config_file(text=CONFIG.replace(*edit))
    assert main(["capacity", str(path), "--out", str(tmp_path / "g"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert str(path) in err


@pytest.mark.parametrize(
    ("edit", "key", "message"),
    [
        (("lr = 1e-2", "lr = -1.0"), "lr = -1.0", "train.lr must be a number > 0.0"),
        (("window = 2", "window = 0"), "window = 0", "saturation.window must be an integer >= 1"),
        (("length = 6", "length = 0"), "length = 0", "length must be an integer >= 1"),
    ],
)
def test_a_bad_value_is_a_config_error_at_its_file_and_line(config_file, edit, key, message):
    text = CONFIG.replace(*edit)
    path = config_file(text=text)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    d = e.value.diagnostics[0]
    # 1-based line of the offending key in the written file (the fixture formats {dtypes} into
    # one line, so line numbers are those of the template)
    line = text.splitlines().index(key) + 1
    assert (d.file, d.line) == (str(path), line)
    assert message in d.message


def test_a_config_reads_back_from_its_plain_data(config_file):
    cfg = load_config(config_file('["float32", "bfloat16"]'))
    assert cfg.dtypes == ("float32", "bfloat16")
    assert [m.preset for m in cfg.models] == ["pythia-tiny", "llama-tiny"]
    # every string of the uniform grammar: L log2 V = 6 * 2 bits
    assert cfg.string_bits == 12.0
    # what a grid folder's grid.json stores is the same config again
    assert config_from_dict(cfg.to_dict()) == cfg
