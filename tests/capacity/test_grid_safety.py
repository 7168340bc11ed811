"""A grid folder under misuse: two configs of one name, a second process, a diverging run, bad
result files, out-of-range seeds and lengths. Each is one error line (exit 2) or a recorded
outcome, never a traceback and never another config's numbers."""

from __future__ import annotations

import json
import os

import pytest

from grammarlab.capacity.analysis import analyse
from grammarlab.capacity.config import load_config
from grammarlab.capacity.grid import LOCK_FILE, collect, expand, grid_lock, run_grid, run_path
from grammarlab.cli import main
from tests.capacity.fake_records import fake
from tests.capacity.grid_config import CONFIG

# one model, one dataset size: a grid of 1 run (a few seconds)
ONE = CONFIG.split("[[models]]")[0].replace("dataset_sizes = [4, 24]", "dataset_sizes = [4]") + (
    '[[models]]\npreset = "pythia-tiny"\nhidden_size = 8\nnum_layers = 1\nnum_heads = 2\n'
    "intermediate_size = 16\n"
)


def _err(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_two_configs_of_one_name_in_one_folder_never_mix_numbers(config_file, tmp_path):
    out = tmp_path / "grid"
    a = load_config(config_file(text=ONE))
    b = load_config(config_file(text=ONE.replace("lr = 1e-2", "lr = 3e-3")))
    assert a.name == b.name and a.train.lr != b.train.lr
    ra, rb = expand(a)[0], expand(b)[0]
    assert ra.run_id(a) != rb.run_id(b)  # the digest of the settings differs
    assert ra.run_id(a).startswith("pythia-tiny-h8-l1-a2-i16_n4_float32_s0_")
    recs_a = run_grid(a, out)
    recs_b = run_grid(b, out)
    assert len(os.listdir(out / "runs")) == 2
    # each grid reports only its own run, with its own lr
    assert [r["settings"]["train"]["lr"] for r in recs_a] == [1e-2]
    assert [r["settings"]["train"]["lr"] for r in recs_b] == [3e-3]
    assert recs_a[0]["final"] != recs_b[0]["final"]
    # relaunching a skips its file (the same numbers), whatever b wrote beside it
    again = []
    assert run_grid(a, out, progress=lambda rid, rec: again.append(rec)) == recs_a
    assert again == [None]


def test_a_second_process_on_the_grid_folder_is_refused(config_file, tmp_path, capsys):
    out = tmp_path / "grid"
    out.mkdir()
    with grid_lock(out):
        assert main(["capacity", str(config_file(text=ONE)), "--out", str(out), "--quiet"]) == 2
    err = _err(capsys)
    assert "another capacity process is running this grid folder" in err
    assert str(out / LOCK_FILE) in err
    assert not (out / "runs").exists()  # nothing ran
    # once released, the grid runs
    assert main(["capacity", str(config_file(text=ONE)), "--out", str(out), "--quiet"]) == 0


def test_a_symlinked_lock_is_refused_and_its_target_untouched(config_file, tmp_path, capsys):
    out = tmp_path / "grid"
    out.mkdir()
    precious = tmp_path / "precious"
    precious.write_text("keep me")
    (out / LOCK_FILE).symlink_to(precious)
    assert main(["capacity", str(config_file(text=ONE)), "--out", str(out), "--quiet"]) == 2
    assert "it is a symlink" in _err(capsys)
    assert precious.read_text() == "keep me"


def test_a_diverging_run_is_recorded_and_the_grid_goes_on(config_file, tmp_path, capsys):
    """lr = 1e30: Adam's first update moves every weight by ~lr, the logits overflow and the loss
    of the second step is not finite, in every run; the grid still ends (exit 0), each run is
    recorded as diverged, the tables leave them out and the summary names them."""
    out = tmp_path / "grid"
    path = config_file(text=CONFIG.replace("lr = 1e-2", "lr = 1e30"))
    assert main(["capacity", str(path), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "DIVERGED" in captured.err
    recs = collect(out)
    assert len(recs) == 4 and all(r["diverged"] for r in recs)
    assert all(r["steps"] < 10 and "loss" in r["error"] for r in recs)
    assert "4 run(s) diverged (left out)" in captured.out
    assert (out / "diverged.csv").read_text().count("\n") == 5  # header + 4 runs
    # a relaunch keeps them (no retraining)
    seen = []
    run_grid(load_config(path), out, progress=lambda rid, rec: seen.append(rec))
    assert seen == [None] * 4


def test_one_diverged_run_is_left_out_of_the_capacities_of_the_others():
    ok = [fake("m0", "pythia-tiny", 100, 300.0, n, 0) for n in (1, 4)]
    bad = {"run_id": "m0_16", "diverged": True, "error": "loss nan at step 7", "steps": 7,
           "curve": [], "settings": {"model_id": "m0", "family": "pythia-tiny", "n_train": 16,
                                     "seed": 0, "dtype": "float32"}}  # fmt: skip
    t = analyse([*ok, bad])
    assert list(t["runs"]["run_id"]) == [r["run_id"] for r in ok]
    assert t["capacity"]["capacity_bits"].tolist() == [300.0]  # min(4 * 128, 300)
    assert t["diverged"][["run_id", "n_train", "steps"]].values.tolist() == [["m0_16", 16, 7]]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x80\x81\x00binary", "cannot read it (UnicodeDecodeError"),
        (b'{"run_id": ', "cannot read it (JSONDecodeError"),
        (b"[1, 2, 3]", "a JSON list, not an object"),
        (b'{"run_id": "x", "settings": {}}', "it lacks n_params, dataset_bits, final, curve"),
        (b'{"run_id": "x", "settings": {}, "n_params": 1, "dataset_bits": 1, "curve": [],'
         b' "final": {"mem_bits": "lots", "mem_bits_signed": 0, "auc": 0.5}}',
         "its final measurement, curve or sizes are malformed"),
        (None, "cannot read it (IsADirectoryError"),
    ],
)  # fmt: skip
def test_a_bad_result_file_is_one_error_line_naming_it(config_file, tmp_path, capsys,
                                                       content, message):  # fmt: skip
    out = tmp_path / "grid"
    path = config_file(text=ONE)
    target = run_path(out, expand(load_config(path))[0], load_config(path))
    target.parent.mkdir(parents=True)
    if content is None:
        target.mkdir()
    else:
        target.write_bytes(content)
    assert main(["capacity", str(path), "--out", str(out), "--quiet"]) == 2
    err = _err(capsys)
    assert message in err and str(target) in err and "delete the file" in err
    assert len(err.strip().splitlines()) <= 2  # the error line and its hint
    if content is not None:
        assert target.read_bytes() == content  # not overwritten


def test_a_grid_json_that_is_not_an_object_is_an_error(config_file, tmp_path, capsys):
    out = tmp_path / "grid"
    out.mkdir()
    (out / "grid.json").write_text("[]")
    assert main(["capacity", str(config_file(text=ONE)), "--out", str(out), "--quiet"]) == 2
    assert "not a grid description" in _err(capsys)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("seeds = [0]", f"seeds = [{2**70}]"), "seeds[] must be <= 4294967295"),
        (("seeds = [0]", "seeds = [-1]"), "seeds[] must be an integer >= 0"),
        (("length = 6", "length = 1e8"), "length must be an integer >= 1, got 100000000.0"),
        (("length = 6", "length = 100000000"), "length must be <= 254"),
        (("length = 6", "length = 255"), "length must be <= 254"),
        # V = 4, L = 6: 4096 distinct strings; 4000 training + 16 test strings do not fit
        (("dataset_sizes = [4, 24]", "dataset_sizes = [4090]"), "only 4096 distinct strings"),
        (("dataset_sizes = [4, 24]", "dataset_sizes = [3000000]"), "at most 2097152 strings"),
    ],
)
def test_sizes_out_of_range_are_refused_in_one_line(config_file, tmp_path, capsys, edit, message):
    text = CONFIG.replace(*edit)
    if "3000000" in edit[1]:
        text = text.replace("alphabet_size = 4", "alphabet_size = 16")
    path = config_file(text=text)
    assert main(["capacity", str(path), "--out", str(tmp_path / "g"), "--quiet"]) == 2
    err = _err(capsys)
    assert message in err and str(path) in err
    assert not (tmp_path / "g").exists()


def test_the_largest_allowed_length_and_seed_are_accepted(config_file):
    text = CONFIG.replace("length = 6", "length = 254").replace(
        "seeds = [0]", f"seeds = [{2**32 - 1}]"
    )
    cfg = load_config(config_file(text=text))
    assert cfg.length == 254 and cfg.seeds == (2**32 - 1,)


def test_a_result_file_records_its_settings_digest(config_file, tmp_path):
    out = tmp_path / "grid"
    cfg = load_config(config_file(text=ONE))
    [rec] = run_grid(cfg, out)
    run = expand(cfg)[0]
    assert rec["run_id"] == run.run_id(cfg) == run_path(out, run, cfg).stem
    assert json.loads(run_path(out, run, cfg).read_text())["settings"] == run.settings(cfg)


def test_parallel_workers_write_the_same_run_ids(config_file, tmp_path):
    """--workers 2: the worker processes rebuild the config from plain data; their run ids (the
    settings' digest) must be the ones this process computes, or a relaunch would redo them."""
    cfg = load_config(config_file())
    out = tmp_path / "grid"
    recs = run_grid(cfg, out, workers=2)
    ids = sorted(r.run_id(cfg) for r in expand(cfg))
    assert sorted(rec["run_id"] for rec in recs) == ids
    assert sorted(p.stem for p in (out / "runs").iterdir()) == ids
    seen = []
    run_grid(cfg, out, progress=lambda rid, rec: seen.append(rec))
    assert seen == [None] * len(ids)
