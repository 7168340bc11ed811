"""Training refuses what it cannot do before it starts (a critical grammar, sets too large for
the memory) and a failed weights write (safetensors' own error type) ends as a one-line error
with status ``failed``, not a traceback with status ``running``."""

from __future__ import annotations

import pytest
from safetensors import SafetensorError

import grammarlab.train.data as data
from grammarlab.cli import main
from grammarlab.errors import ConfigError, GrammarlabError
from grammarlab.runs import checkpoint
from grammarlab.runs.folder import RunDir
from grammarlab.train import loop
from grammarlab.train.config import dumps_config


def _no_sampling(*a, **k):
    raise AssertionError("strings were drawn")


@pytest.mark.parametrize("rules", ["S -> S S [0.5] | 'a' [0.5]",  # radius exactly 1
                                   "S -> A A [0.5] | 'a' [0.5]\nA -> S [1]"])  # fmt: skip
def test_a_critical_grammar_is_refused_before_any_string_is_drawn(tiny_cfg, tmp_path,
                                                                  monkeypatch, rules):  # fmt: skip
    g = tmp_path / "crit.cfg"
    g.write_text(rules + "\n")
    monkeypatch.setattr(data, "sample", _no_sampling)
    with pytest.raises(GrammarlabError, match=r"crit.cfg: error: the grammar is critical"):
        loop.train(tiny_cfg(grammar=str(g)), tmp_path / "r", quiet=True)


def test_sets_larger_than_the_memory_are_refused_before_drawing(tiny_cfg, tmp_path, monkeypatch):
    g = tmp_path / "long.cfg"
    g.write_text("S -> 'a' S [0.99999] | 'b' [0.00001]\n")  # 1e5 tokens per string on average
    monkeypatch.setattr(data, "sample", _no_sampling)
    with pytest.raises(ConfigError, match=r"more than half of this machine's"):
        loop.train(tiny_cfg(grammar=str(g), n_test=1_000_000), tmp_path / "r", quiet=True)


def test_a_full_disk_in_a_safetensors_write_fails_the_run_with_one_line(
    tiny_cfg, tmp_path, monkeypatch, capsys
):
    def full(*a, **k):  # what safetensors raises when the disk fills (not an OSError)
        raise SafetensorError('Error while serializing: IoError(Os { code: 28, kind: '
                              'StorageFull, message: "No space left on device" })')  # fmt: skip

    monkeypatch.setattr(checkpoint, "save_file", full)
    toml = tmp_path / "c.toml"
    toml.write_text(dumps_config(tiny_cfg(n_generate=0, checkpoint_every=1)))
    assert main(["train", str(toml), "--out", str(tmp_path / "r"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "error: cannot write the run folder: No space left on device" in err
    assert "Traceback" not in err
    st = RunDir(tmp_path / "r").read_status()
    assert st.state == "failed" and "No space left on device" in st.message
    assert not (tmp_path / "r" / "checkpoint.tmp").exists()


def test_safetensors_errors_map_to_their_os_error():
    e = loop.safetensors_os_error(SafetensorError("IoError(Os { code: 122, kind: x })"))
    assert (e.errno, e.strerror) == (122, "Disk quota exceeded")
    e = loop.safetensors_os_error(SafetensorError("header too large"))
    assert e.errno is None and "header too large" in e.strerror


def test_cpu_workers_beyond_the_machine_are_refused(tiny_cfg, tmp_path, monkeypatch):
    import os

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    with pytest.raises(ConfigError, match=r"cpu_workers = 3 is more than this machine's 2 CPUs"):
        loop.train(tiny_cfg(cpu_workers=3), tmp_path / "r", quiet=True)
