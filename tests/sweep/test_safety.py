"""Hostile sweep input: one-line errors (exit 2, never a traceback), nothing written outside
the sweep folder or in a dry run, and a locked run never exits 0."""

from __future__ import annotations

import fcntl
import os

import pytest

from grammarlab.cli import main
from grammarlab.errors import GrammarlabError
from grammarlab.grammar.families import random_grammar
from grammarlab.runs.folder import LOCK
from grammarlab.sweep.spec import Resources, load_sweep, resources_from_dict
from grammarlab.sweep.tables import collect
from tests.sweep.fake_trainer import AB, write_sweep

DERIVE = """name = "d"
[base]
epochs = 2
[base.model]
preset = "pythia-tiny"
[[derive]]
grammar = "ab.cfg"
entropy_bits = [1.0, 1.5]
method = "skew"
"""


def _sweep_file(tmp_path, text: str):
    (tmp_path / "ab.cfg").write_text(AB)
    f = tmp_path / "s.toml"
    f.write_text(text)
    return f


def _one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    first = err.splitlines()[0]
    assert "error:" in first, err
    for n in needles:
        assert n in err, (n, err)
    return err


def _files(root) -> set:
    return {p.relative_to(root) for p in root.rglob("*")}


def test_a_derive_name_cannot_leave_the_sweep_folder(tmp_path, capsys):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    f = _sweep_file(work, DERIVE.replace('name = "d"\n', "").replace(
        '[[derive]]\n', '[[derive]]\nname = "../../dir/file"\n'))  # fmt: skip
    before = _files(tmp_path)
    for extra in ([], ["--dry-run"]):
        rc = main(["sweep", str(f), "--out", str(work / "out"), *extra])
        assert rc == 2
        _one_line_error(capsys, str(f), "derive.name")
    assert _files(tmp_path) == before  # nothing written anywhere, the sweep folder included
    assert not (tmp_path / "dir").exists()


def test_a_grammars_folder_that_is_a_symlink_out_is_refused(tmp_path):
    f = _sweep_file(tmp_path, DERIVE)
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "grammars").symlink_to(elsewhere)
    with pytest.raises(GrammarlabError, match="not a folder inside the sweep folder"):
        load_sweep(f, out=out)
    assert list(elsewhere.iterdir()) == []


def test_dry_run_writes_nothing_and_lists_the_same_runs(tmp_path, capsys):
    f = _sweep_file(tmp_path, DERIVE)
    out = tmp_path / "out"
    assert main(["sweep", str(f), "--out", str(out), "--dry-run"]) == 0
    listed = capsys.readouterr().out
    assert not out.exists()  # derived grammars included
    sw = load_sweep(f, out=out)  # what a real run writes: the same ids
    assert sorted(p.name for p in (out / "grammars").iterdir()) == [
        "ab_skew_H1.5.cfg", "ab_skew_H1.cfg"]  # fmt: skip
    for r in sw.runs:
        assert f"{r.run_id}\tnew" in listed


def test_setup_as_one_string_is_one_line():
    assert resources_from_dict({"setup": "echo hi"}).setup == ("echo hi",)
    assert Resources(setup=["a", "b"]).setup == ("a", "b")
    with pytest.raises(GrammarlabError, match="resources.setup"):
        resources_from_dict({"setup": 3})


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\xff\xfe", "not a UTF-8 text file"),
        (None, "is a directory"),
        ('[base]\ngrammar = "ab.cfg"\ngrid = 3\n', "unknown config key 'grid'"),  # in [base]
        ('grid = 3\n[base]\ngrammar = "ab.cfg"\n', "[grid] must be a table"),
        (DERIVE.replace("[1.0, 1.5]", '["abc"]'), "derive.entropy_bits must be numbers"),
        (DERIVE.replace('method = "skew"', 'entropy = "shannon"'), "derive.entropy must be"),
        (DERIVE.replace('method = "skew"', "bogus = 1"), "unknown [[derive]] key"),
        (DERIVE.replace('method = "skew"', 'label = "{nope}"'), "derive.label"),
    ],
)
def test_bad_sweep_files_are_one_line_errors(tmp_path, capsys, content, needle):
    (tmp_path / "ab.cfg").write_text(AB)
    f = tmp_path / "s.toml"
    if content is None:
        f.mkdir()
    elif isinstance(content, bytes):
        f.write_bytes(content)
    else:
        f.write_text(content)
    assert main(["sweep", str(f), "--out", str(tmp_path / "out"), "--dry-run"]) == 2
    _one_line_error(capsys, str(f), needle)


def test_out_naming_a_file_and_workers_zero_are_one_line_errors(tmp_path, capsys):
    f = write_sweep(tmp_path, "n_train = [4]\n")
    (tmp_path / "file").write_text("x")
    assert main(["sweep", str(f), "--out", str(tmp_path / "file")]) == 2
    _one_line_error(capsys, "--out", "it is not a folder")
    assert (tmp_path / "file").read_text() == "x"
    f.write_text(f'out = "{tmp_path / "file"}"\n' + f.read_text())
    assert main(["sweep", str(f)]) == 2
    _one_line_error(capsys, str(f), "is a file")
    with pytest.raises(SystemExit) as e:  # argparse: one usage line, exit 2
        main(["sweep", str(f), "--workers", "0"])
    assert e.value.code == 2
    assert "--workers" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "text", "needle"),
    [
        ("phases.csv", "grammar,n_train\nab,4\n", "lacks the column(s) run"),
        ("phases.csv", "run\nr1\n", None),  # the one column phases need: read
        ("curves.csv", "run,epoch\nr1,0\n", "lacks the column(s) dataset, loss"),
        ("phases.csv.gz", "not gzip", "not a readable CSV table"),
    ],
)
def test_saved_tables_with_wrong_columns_name_the_file(tmp_path, name, text, needle):
    (tmp_path / name).write_text(text)
    if not name.startswith("phases"):
        (tmp_path / "phases.csv").write_text("run\nr1\n")
    if needle is None:
        assert list(collect(tmp_path).phases.run) == ["r1"]
        return
    with pytest.raises(GrammarlabError, match=needle.replace("(", r"\(").replace(")", r"\)")) as e:
        collect(tmp_path)
    assert e.value.diagnostics[0].file == str(tmp_path / name)


def test_a_locked_run_does_not_exit_zero(tmp_path, capsys):
    f = write_sweep(tmp_path, "n_train = [4]\n")
    # a grammar with enough strings for the real trainer's test set (ab.cfg has 4)
    (tmp_path / "ab.cfg").write_text(random_grammar(4, length=6).to_text())
    out = tmp_path / "out"
    (run,) = load_sweep(f, out=out).runs
    # another process holds the run: an flock on another open file of the lock (RunDir.lock is
    # re-entrant within one process, so it would not stand for another process)
    run.run_dir.mkdir(parents=True)
    fd = os.open(run.run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        rc = main(["sweep", str(f), "--out", str(out), "--executor", "local", "--quiet"])
    finally:
        os.close(fd)
    assert rc == 4
    err = capsys.readouterr().err
    assert "1 locked" in err and "exit status 4" in err


def test_a_sweep_folder_that_cannot_be_written_is_a_one_line_error(tmp_path, capsys):
    f = write_sweep(tmp_path, "n_train = [4]\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "configs").write_text("a file where the run configs go")  # root may write anything
    assert main(["sweep", str(f), "--out", str(out), "--quiet"]) == 2
    _one_line_error(capsys, "cannot write into the sweep folder")
    assert (out / "configs").read_text() == "a file where the run configs go"
