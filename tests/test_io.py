"""Atomic writes: the new content replaces the old in one rename; a write that fails leaves the
old file and no temporary file; new files get the usual rights (umask), not mkstemp's 0600."""

from __future__ import annotations

import json
import os
import stat

import pytest

from grammarlab.io import write_atomic, write_json_atomic, write_text_atomic


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
