"""Loading a model never runs code from the model's folder: custom code (``auto_map``) is refused
with one line whatever stdin says, pickled weights are never unpickled, and every Hugging Face
loader gets ``trust_remote_code=False``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from grammarlab.cli import main
from grammarlab.errors import GrammarlabError
from grammarlab.train.export import load_hf_weights, save_final_model
from grammarlab.train.models import ModelSpec, load_model

ROOT = Path(__file__).resolve().parents[2]
TERMINALS = tuple("ab")


def _saved(tmp_path: Path) -> Path:
    model, tmap = load_model(ModelSpec("pythia-tiny", num_layers=1), TERMINALS, seed=0)
    save_final_model(tmp_path / "m", model, tmap)
    return tmp_path / "m"


def _with_custom_code(path: Path, marker: Path) -> None:
    """What a hostile model folder looks like: its config names a model type that only its own
    Python file defines, and that file writes ``marker`` when imported."""
    cfg = json.loads((path / "config.json").read_text())
    cfg["model_type"] = "evil"
    cfg["auto_map"] = {"AutoConfig": "modeling_evil.EvilConfig",
                       "AutoModelForCausalLM": "modeling_evil.EvilModel"}  # fmt: skip
    (path / "config.json").write_text(json.dumps(cfg))
    (path / "modeling_evil.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\n"
        "from transformers import GPTNeoXConfig, GPTNeoXForCausalLM\n"
        "class EvilConfig(GPTNeoXConfig):\n    model_type = 'evil'\n"
        "class EvilModel(GPTNeoXForCausalLM):\n    config_class = EvilConfig\n"
    )


def test_a_model_folder_with_custom_code_is_refused_even_when_stdin_says_yes(tmp_path):
    folder, marker = _saved(tmp_path), tmp_path / "PWNED"
    _with_custom_code(folder, marker)
    (tmp_path / "g.cfg").write_text("S -> 'a' S [0.3] | 'b' [0.7]\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "grammarlab", "train", "--grammar", str(tmp_path / "g.cfg"),
           "--model", str(folder), "--n-train", "2", "--epochs", "1", "--set", "n_test=2",
           "--out", str(tmp_path / "run"), "--quiet"]  # fmt: skip
    done = subprocess.run(cmd, input="y\n" * 20, capture_output=True, text=True, env=env,
                          timeout=300, check=False)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert not marker.exists()  # the folder's code never ran
    assert done.stderr.startswith(f"{folder / 'config.json'}: error: the model directory asks "
                                  "to run its own Python code (auto_map)")  # fmt: skip
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 2


def test_a_crafted_run_config_pointing_at_custom_code_is_refused_by_eval(tiny_cfg, tmp_path,
                                                                         capsys):  # fmt: skip
    from grammarlab.runs.launch import run

    folder, marker = _saved(tmp_path), tmp_path / "PWNED"
    _with_custom_code(folder, marker)
    cfg = tiny_cfg(n_generate=0)
    run(cfg, tmp_path / "run", quiet=True)
    text = (tmp_path / "run" / "config.toml").read_text()
    (tmp_path / "run" / "config.toml").write_text(
        text.replace('preset = "pythia-tiny"', f"preset = {json.dumps(str(folder))}")
        .replace("hidden_size = 32\n", "")
        .replace("num_layers = 1\n", "")
    )
    (tmp_path / "s.txt").write_text("1 2 3 5\n")
    assert main(["eval", str(tmp_path / "run"), str(tmp_path / "s.txt")]) == 2
    assert "asks to run its own Python code (auto_map)" in capsys.readouterr().err
    assert not marker.exists()


def test_pickled_weights_are_refused_and_never_unpickled(tmp_path, monkeypatch):
    folder = _saved(tmp_path)
    from safetensors.torch import load_file

    torch.save(load_file(str(folder / "model.safetensors")), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()

    def no_unpickling(*a, **k):
        raise AssertionError("torch.load was called on a user file")

    monkeypatch.setattr(torch, "load", no_unpickling)
    with pytest.raises(GrammarlabError, match=r"pytorch_model.bin: error: the model's weights "
                       r"are in pytorch_model.bin, a pickle format"):  # fmt: skip
        load_model(ModelSpec(str(folder)), TERMINALS, seed=0)


def test_safetensors_beside_a_pickle_load_and_the_pickle_is_never_read(tmp_path, monkeypatch):
    folder = _saved(tmp_path)
    (folder / "pytorch_model.bin").write_bytes(b"not even a pickle")
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load called"))
    model, _ = load_model(ModelSpec(str(folder)), TERMINALS, seed=0)
    load_hf_weights(folder, model)  # the resume path, too


def test_every_hugging_face_loader_gets_trust_remote_code_false(tmp_path, monkeypatch):
    import transformers

    folder = _saved(tmp_path)
    (folder / "tokens.json").unlink()  # a plain Hugging Face folder: its tokenizer is loaded
    calls = []
    for cls in (transformers.AutoModelForCausalLM, transformers.AutoTokenizer,
                transformers.GPTNeoXForCausalLM):  # fmt: skip
        real = cls.from_pretrained.__func__

        def spy(klass, *a, _real=real, _name=cls.__name__, **k):
            calls.append((_name, k.get("trust_remote_code", "absent")))
            return _real(klass, *a, **k)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(spy))
    model, _ = load_model(ModelSpec(str(folder)), TERMINALS, seed=0)
    load_hf_weights(folder, model)
    names = {n for n, _ in calls}
    assert {"AutoModelForCausalLM", "AutoTokenizer", "GPTNeoXForCausalLM"} <= names
    assert all(v is False for _, v in calls), calls


def test_the_final_model_is_never_written_through_a_symbolic_link(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    model, tmap = load_model(ModelSpec("pythia-tiny", num_layers=1), TERMINALS, seed=0)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "final_model.tmp").symlink_to(outside, target_is_directory=True)
    with pytest.raises(GrammarlabError, match="final_model.tmp is a symbolic link"):
        save_final_model(tmp_path / "run" / "final_model", model, tmap)
    assert [p.name for p in outside.iterdir()] == ["keep.txt"]
