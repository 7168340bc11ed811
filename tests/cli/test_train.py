"""grammarlab train: typed flags into the config, one-line errors for user mistakes (exit 2, no
traceback), the run folder from --out, help that points to the config reference."""

from __future__ import annotations

import pytest

import grammarlab
from grammarlab.cli import build_parser, main
from grammarlab.cli.train import config_from_args, out_from_args
from grammarlab.runs.folder import RunDir


def _args(*argv: str):
    return build_parser().parse_args(["train", *argv])


def test_flags_set_typed_fields_without_a_string_round_trip(grammar_file, tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text(f'grammar = "{grammar_file}"\nlr = 0.1\nepochs = 5\n[model]\npreset = "x/y"\n')
    cfg = config_from_args(_args(str(toml), "--set", "lr=0.2", "--lr", "3e-3", "--model",
                                 "llama-tiny", "--sequential", "--lora-rank", "2"))  # fmt: skip
    # the flag's float is the config's float, bit for bit (file < --set < flags)
    assert cfg.lr == float("3e-3") and type(cfg.lr) is float
    assert cfg.epochs == 5 and cfg.model.preset == "llama-tiny" and cfg.sequential
    assert cfg.lora.rank == 2
    # no file: the flags alone
    cfg = config_from_args(_args("--grammar", str(grammar_file), "--n-train", "3", "--seed", "7"))
    assert (cfg.n_train, cfg.seed, cfg.sequential, cfg.lr) == (3, 7, False, None)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--seed", "-1"], ["--seed -1: error: seed must be an integer in [0, 2**63), got -1"]),
        (["--set", "weight_decay=inf"], ["--set weight_decay=inf: error: weight_decay must be a "
                                         "finite number >= 0"]),
        (["--lr", "nan"], ["--lr nan: error: lr must be a finite number > 0"]),
        (["--set", "n_trian=3"], ["unknown config key 'n_trian'", "did you mean 'n_train'?"]),
        (["--epochs", "0"], ["--epochs 0: error: epochs must be an integer >= 1"]),
        (["--set", "lr"], ["bad --set 'lr': expected KEY=VALUE"]),
    ],
)  # fmt: skip
def test_bad_values_are_one_line_errors(grammar_file, tmp_path, capsys, argv, words):
    rc = main(["train", "--grammar", str(grammar_file), "--out", str(tmp_path / "r"), *argv])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    for w in words:
        assert w in err
    assert not (tmp_path / "r").exists()


def test_missing_or_unreadable_config_file(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nope.toml")]) == 2
    assert f"{tmp_path / 'nope.toml'}: error: no such config file" in capsys.readouterr().err
    assert main(["train", str(tmp_path)]) == 2
    assert "a folder, not a config file" in capsys.readouterr().err
    assert main(["train"]) == 2
    assert "error: no grammar given" in capsys.readouterr().err


def test_out_naming_a_file_is_refused(grammar_file, tmp_path, capsys):
    f = tmp_path / "afile"
    f.write_text("x")
    assert main(["train", "--grammar", str(grammar_file), "--out", str(f)]) == 2
    err = capsys.readouterr().err
    assert f"--out {f}: error: the run folder {f} is a file" in err and "Traceback" not in err
    args = _args("--grammar", str(grammar_file), "--out", str(f / "sub"))
    with pytest.raises(grammarlab.GrammarlabError, match=f"is inside {f}, which is a file"):
        out_from_args(args, config_from_args(args))


def test_train_help_points_to_the_reference(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "docs/config.md" in capsys.readouterr().out


def test_cli_train_default_folder_and_clear_errors(grammar_file, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    base = ["train", "--grammar", str(grammar_file), "--n-train", "4", "--epochs", "1", "--quiet",
            "--set", "model.hidden_size=32", "--set", "model.num_layers=1", "--set", "n_test=3",
            "--set", "n_generate=0"]  # fmt: skip
    assert main(base) == 0
    run = tmp_path / "runs/h-pythia-tiny-n4-s0"
    assert [r["epoch"] for r in RunDir(run).read_metrics()] == [0, 1]
    assert main(base) == 0 and "already finished" in capsys.readouterr().err
    assert main(["train", "--grammar", str(grammar_file), "--model", "gpt-9"]) == 2
    assert "--model gpt-9: error: model.preset 'gpt-9' is not a known preset" in (
        capsys.readouterr().err
    )
    assert main(["train", "--grammar", str(grammar_file), "--n-train", "99"]) == 2
    assert "only 18 distinct" in capsys.readouterr().err
    assert main(["train", "--grammar", str(grammar_file), "--set", "epochs"]) == 2
    assert "bad --set 'epochs'" in capsys.readouterr().err
    bad = tmp_path / "bad.cfg"
    bad.write_text("S -> 'a' [0.5]\n")
    assert main(["train", "--grammar", str(bad)]) == 2
    assert f"{bad}:1" in capsys.readouterr().err
