"""Output paths the user names, for every command that writes one: a folder where a file is
meant, a file where a folder is meant, a read-only path, and a run folder's own file are each a
one-line error naming the flag (exit 2), before any work and with nothing written; a character
device and a FIFO (made in the test's folder, never the machine's /dev/null) are written into and
stay what they are."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest
from hand_grammars import SMALL

from grammarlab.cli import main
from tests.analysis.run_folders import write_run

ROOT = Path(__file__).resolve().parents[2]
SWEEP = ROOT / "examples/entropy_sweep.toml"
CAPACITY = ROOT / "experiments/capacity_cpu_reduced.toml"


def _one_error(capsys, flag: str, *words: str) -> None:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"{flag}: error: cannot write"), err
    for w in words:
        assert w in lines[0], (w, err)


def _argv(cmd: str, tmp_path: Path, out: Path) -> list[str]:
    run = tmp_path / "run"
    if not run.exists():
        write_run(run)
    return {
        "report": ["report", str(run), "-o", str(out)],
        "report-tables": ["report", str(run), "-o", str(tmp_path / "r.md"), "--tables", str(out)],
        "config-doc": ["config-doc", "-o", str(out)],
        "plot": ["plot", str(tmp_path), "-o", str(out)],
        "capacity": ["capacity", str(CAPACITY), "--out", str(out)],
        "sweep": ["sweep", str(SWEEP), "--out", str(out)],
    }[cmd]


FILE_OUTPUTS = {"report": "--output", "config-doc": "--out"}
FOLDER_OUTPUTS = {"report-tables": "--tables", "plot": "--out", "capacity": "--out",
                  "sweep": "--out"}  # fmt: skip


@pytest.mark.parametrize("cmd", FILE_OUTPUTS)
def test_a_folder_as_the_output_file_is_a_one_line_error(tmp_path, capsys, cmd):
    (tmp_path / "d").mkdir()
    assert main(_argv(cmd, tmp_path, tmp_path / "d")) == 2
    _one_error(capsys, FILE_OUTPUTS[cmd], str(tmp_path / "d"), "it is a directory")
    assert not list((tmp_path / "d").iterdir())


@pytest.mark.parametrize("cmd", FOLDER_OUTPUTS)
def test_a_file_as_the_output_folder_is_a_one_line_error(tmp_path, capsys, cmd):
    (tmp_path / "f").write_text("kept\n")
    assert main(_argv(cmd, tmp_path, tmp_path / "f")) == 2
    _one_error(capsys, FOLDER_OUTPUTS[cmd], str(tmp_path / "f"), "it is not a folder")
    assert (tmp_path / "f").read_text() == "kept\n"
    assert main(_argv(cmd, tmp_path, tmp_path / "f" / "sub")) == 2  # below a file
    _one_error(capsys, FOLDER_OUTPUTS[cmd], "is not a folder")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files and folders")
@pytest.mark.parametrize("cmd", [*FILE_OUTPUTS, *FOLDER_OUTPUTS])
def test_a_read_only_output_is_a_one_line_error(tmp_path, capsys, cmd):
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    try:
        assert main(_argv(cmd, tmp_path, ro / "out")) == 2
    finally:
        os.chmod(ro, 0o755)
    _one_error(capsys, {**FILE_OUTPUTS, **FOLDER_OUTPUTS}[cmd], f"{ro} is read-only")
    assert not list(ro.iterdir())


@pytest.mark.parametrize("name", ["metrics.jsonl", "config.toml", "data/train.txt", "phases.json"])
def test_no_command_overwrites_a_run_folders_own_file(tmp_path, capsys, name):
    run = tmp_path / "run"
    write_run(run)
    (run / "phases.json").write_text("{}\n")
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert main(["report", str(run), "-o", str(run / name)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"--output: error: {run / name} is the run folder {run}'s own ")
    assert main(["config-doc", "-o", str(run / name)]) == 2
    assert capsys.readouterr().err.startswith(f"--out: error: {run / name} is the run folder")
    link = tmp_path / "link.md"  # a symlink into the run is the run's file too
    link.symlink_to(run / name)
    assert main(["report", str(run), "-o", str(link)]) == 2
    capsys.readouterr()
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    # a new file of the user's in the run folder is not one of the run's own: written
    assert main(["report", str(run), "-o", str(run / "report.md")]) == 0
    assert (run / "report.md").read_text().startswith("# Findings")


def test_sample_into_a_device_or_a_fifo_keeps_them(tmp_path, capsys):
    g = tmp_path / "g.cfg"
    g.write_text(SMALL)
    dev = tmp_path / "null"
    try:
        os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # /dev/null's numbers
    except OSError:
        dev = None  # device nodes not permitted here: the FIFO still runs
    if dev is not None:
        ino = os.stat(dev).st_ino
        assert main(["grammar", "sample", str(g), "-n", "50", "-o", str(dev)]) == 0
        assert stat.S_ISCHR(os.stat(dev).st_mode) and os.stat(dev).st_ino == ino
        assert main(["config-doc", "-o", str(dev)]) == 0 and stat.S_ISCHR(os.stat(dev).st_mode)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    assert main(["grammar", "sample", str(g), "-n", "50", "--seed", "1", "-o", str(fifo)]) == 0
    reader.join(timeout=30)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and len(got[0].decode().splitlines()) == 50
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["g.cfg", "pipe", *(["null"] if dev is not None else [])]
    )  # no temporary file left beside them
    if dev is None:
        pytest.skip("device nodes cannot be made here (the FIFO passed)")
