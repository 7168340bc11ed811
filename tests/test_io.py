"""Atomic writes: the new content replaces the old in one rename; a write that fails leaves the
old file and no temporary file; new files get the usual rights (umask), not mkstemp's 0600.
Streams (a character device, a FIFO, ``-``) are written into, never replaced: a device node and a
FIFO made in the test's own folder, never the machine's /dev/null. Output paths that cannot be
written are refused before any work."""

from __future__ import annotations

import json
import os
import socket
import stat
import threading

import pytest

from grammarlab.errors import GrammarlabError
from grammarlab.io import (
    check_output,
    check_output_folder,
    write_atomic,
    write_json_atomic,
    write_text_atomic,
)


def test_text_and_json_replace_the_old_content(tmp_path):
    f = tmp_path / "sub" / "a.txt"
    write_text_atomic(f, "old\n")
    write_text_atomic(f, "nouveau é\n")
    assert f.read_text(encoding="utf-8") == "nouveau é\n"
    j = tmp_path / "s.json"
    write_json_atomic(j, {"b": 1, "a": [1.5, None]})
    assert json.loads(j.read_text()) == {"a": [1.5, None], "b": 1}
    assert j.read_text().endswith("\n") and j.read_text().index('"a"') < j.read_text().index('"b"')
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json", "sub"]  # no temporary left


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("old\n")

    def half(p):
        p.write_text("half of the new")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        write_atomic(f, half)
    assert f.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
    with pytest.raises(KeyboardInterrupt):  # an interrupt, too, removes the temporary file
        write_atomic(f, lambda p: (_ for _ in ()).throw(KeyboardInterrupt()))
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_new_files_get_the_rights_of_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644


# --- what is not a regular file is written into, never replaced


def _mknod_char(path) -> None:
    """A character device node with /dev/null's numbers (1, 3), made in a test folder; skips
    where creating device nodes is not permitted (not root, a container without CAP_MKNOD)."""
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except (PermissionError, OSError) as e:
        pytest.skip(f"cannot make a device node here: {e}")


def test_a_character_device_is_written_into_and_stays_a_device(tmp_path):
    dev = tmp_path / "null"
    _mknod_char(dev)
    before = os.stat(dev)
    write_text_atomic(dev, "into the device\n")
    write_json_atomic(dev, {"a": 1})
    after = os.stat(dev)
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev
    assert after.st_ino == before.st_ino  # the same node, not a new one renamed over it
    assert [p.name for p in tmp_path.iterdir()] == ["null"]  # no temporary file was made
    link = tmp_path / "link"  # a symlink followed (as -o does) reaches the device too
    link.symlink_to(dev)
    write_text_atomic(link, "x", follow_symlinks=True)
    assert link.is_symlink() and stat.S_ISCHR(os.stat(dev).st_mode)


def test_a_fifo_is_streamed_into(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()  # opening a FIFO for writing waits for a reader
    text = "".join(f"line {i}\n" for i in range(20_000))  # more than a pipe's 64 KiB buffer
    write_text_atomic(fifo, text)
    reader.join(timeout=30)
    assert not reader.is_alive() and got == [text.encode()]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["pipe"]


def test_dash_is_standard_output(tmp_path, capfd):
    print("before", flush=True)  # earlier output on the same stream is kept, not truncated
    write_text_atomic("-", "to stdout\n")
    assert capfd.readouterr().out == "before\nto stdout\n"
    assert not list(tmp_path.iterdir()) and not os.path.exists("-")


def test_a_symlink_is_replaced_unless_followed(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("precious\n")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    # by default (files the program owns): the link is replaced, its target untouched
    write_text_atomic(link, "new\n")
    assert not link.is_symlink() and link.read_text() == "new\n"
    assert target.read_text() == "precious\n"
    # followed (a path the user named): the target gets the content, the link stays
    link.unlink()
    link.symlink_to(target)
    write_text_atomic(link, "through\n", follow_symlinks=True)
    assert link.is_symlink() and target.read_text() == "through\n"
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "sub" / "new.txt")
    write_text_atomic(dangling, "made\n", follow_symlinks=True)
    assert dangling.is_symlink() and (tmp_path / "sub/new.txt").read_text() == "made\n"


def test_a_folder_or_a_socket_is_refused(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(OSError, match="is a directory"):
        write_text_atomic(tmp_path / "d", "x")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "s"))
        with pytest.raises(OSError, match="not a regular file, device or FIFO"):
            write_text_atomic(tmp_path / "s", "x")
    finally:
        sock.close()
    assert stat.S_ISSOCK(os.lstat(tmp_path / "s").st_mode)


@pytest.mark.parametrize("kind", ["dir", "parent-file", "readonly-file", "readonly-dir"])
def test_check_output_refuses_what_cannot_be_written(tmp_path, kind):
    if kind.startswith("readonly") and os.geteuid() == 0:
        pytest.skip("root writes read-only files and folders")
    (tmp_path / "f").write_text("")
    (tmp_path / "ro").mkdir()
    path, words = {
        "dir": (tmp_path, "it is a directory"),
        "parent-file": (tmp_path / "f" / "out.txt", "is not a folder"),
        "readonly-file": (tmp_path / "f", "it is read-only"),
        "readonly-dir": (tmp_path / "ro" / "out.txt", "is read-only"),
    }[kind]
    os.chmod(tmp_path / "f", 0o444)
    os.chmod(tmp_path / "ro", 0o555)
    try:
        with pytest.raises(GrammarlabError, match=words) as e:
            check_output(path, "-o")
    finally:
        os.chmod(tmp_path / "ro", 0o755)
    assert str(e.value).startswith(f"-o: error: cannot write {path}")
    check_output(tmp_path / "new" / "out.txt", "-o")  # a new file in new folders: fine
    check_output("-", "-o")
    with pytest.raises(GrammarlabError, match="it is not a folder"):
        check_output_folder(tmp_path / "f", "--out")
    check_output_folder(tmp_path / "new", "--out")
