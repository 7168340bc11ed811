"""File writes that never leave half a file, and never replace what is not a regular file.

A regular file (or a new path) is written to a temporary file in the same folder, fsynced, then
renamed over the target: a crash or kill leaves either the old file or the new one, never half
of one. A target that is a stream is written in place instead, as a shell redirection would:
a character device (``/dev/null``, a terminal), a FIFO, or ``-`` (standard output). A rename over
those would replace the device node or the pipe by a regular file (for every other process on
the machine, in the case of ``/dev/null``). Anything else that exists and is not a regular file
(a folder, a block device, a socket) is refused with an :class:`OSError`.

Symbolic links: by default a symlink target is itself replaced by the new regular file (the link
goes, the file it pointed to is untouched), so a link planted in a folder the program owns (a
run folder) never redirects a write outside it. ``follow_symlinks=True`` is for paths the user
names (``-o FILE``): the write goes through the link to what it points at, as ``>`` in a shell
would, and the link stays.

:func:`check_output` and :func:`check_output_folder` refuse, before any work is done, an output
path that cannot be written, with a one-line error naming the flag.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grammarlab.errors import GrammarlabError

STDOUT = "-"  # the output path that means standard output


def is_stream(path: Path | str) -> bool:
    """True for ``-`` and for an existing character device or FIFO (symlinks followed)."""
    if str(path) == STDOUT:
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def write_atomic(
    path: Path | str, write: Callable[[Path], None], *, follow_symlinks: bool = False
) -> None:
    """Call ``write(p)`` to produce the content of ``path``: ``p`` is a temporary file moved over
    ``path`` atomically, or, for a stream target (``-``, a character device, a FIFO), the target
    itself (``-``: a temporary file copied to standard output once complete). ``follow_symlinks``:
    write through a symlink ``path`` to its target instead of replacing the link (module doc)."""
    if str(path) == STDOUT:
        _to_stdout(write)
        return
    path = Path(path)
    if follow_symlinks and path.is_symlink():
        path = Path(os.path.realpath(path))  # the end of the chain (which may not exist yet)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):
        write(path)  # open(..., "w") on a device or a pipe writes into it; nothing is renamed
        return
    if mode is not None and not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        what = "a directory" if stat.S_ISDIR(mode) else "not a regular file, device or FIFO"
        raise OSError(errno.EISDIR if stat.S_ISDIR(mode) else errno.EINVAL, f"{path} is {what}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the file normal rights
    try:
        write(tmp_path)
        with open(tmp_path, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _to_stdout(write: Callable[[Path], None]) -> None:
    """Standard output may be a regular file that earlier output went to: writing it by name
    (``/dev/stdout``) would truncate that, so the content goes through a temporary file and is
    appended to the open stream."""
    with tempfile.TemporaryDirectory(prefix="grammarlab-out.") as d:
        tmp = Path(d) / "out"
        write(tmp)
        sys.stdout.flush()
        with open(tmp, "rb") as f:
            shutil.copyfileobj(f, sys.stdout.buffer)
        sys.stdout.buffer.flush()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: Path | str, text: str, *, follow_symlinks: bool = False) -> None:
    write_atomic(path, lambda p: p.write_text(text, encoding="utf-8"),
                 follow_symlinks=follow_symlinks)  # fmt: skip


def write_json_atomic(path: Path | str, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _refuse(path: Path | str, flag: str, what: str, hint: str) -> GrammarlabError:
    return GrammarlabError(f"cannot write {path}: {what}", file=flag, hint=hint)


def check_output(path: Path | str, flag: str) -> None:
    """Refuse, before any work, an output file named by ``flag`` that cannot be written: a
    folder, a read-only file, or a new file in a folder that cannot be written to (``-``,
    devices and FIFOs are streamed into: accepted)."""
    if is_stream(path):
        return
    p = Path(path)
    real = Path(os.path.realpath(p))  # what a write through a symlink reaches
    hint = f"{flag} names the file to write, in a folder you can write to"
    if real.is_dir():
        raise _refuse(p, flag, "it is a directory", f"{flag} names the file to write, e.g. out.txt")
    if real.exists() and not os.access(real, os.W_OK):
        raise _refuse(p, flag, "it is read-only", hint)
    if real.exists() and not real.is_file():
        raise _refuse(p, flag, "it is not a regular file, device or FIFO", hint)
    if not real.exists():
        base = _nearest_existing(real.parent)
        if not base.is_dir():
            raise _refuse(p, flag, f"{base} is not a folder", hint)
        if not os.access(base, os.W_OK | os.X_OK):
            raise _refuse(p, flag, f"{base} is read-only", hint)
    elif not os.access(real.parent, os.W_OK | os.X_OK):
        # the file is replaced by a rename: its folder must be writable too
        raise _refuse(p, flag, f"its folder {real.parent} is read-only", hint)


def check_output_folder(path: Path | str, flag: str) -> None:
    """Refuse, before any work, an output folder named by ``flag`` that cannot be written: an
    existing file, a read-only folder, or a new folder under one that cannot be written to."""
    p = Path(path)
    hint = f"{flag} names a folder you can write to"
    if p.exists() and not p.is_dir():
        raise _refuse(p, flag, "it is not a folder", hint)
    base = _nearest_existing(p)
    if not base.is_dir():
        raise _refuse(p, flag, f"{base} is not a folder", hint)
    if not os.access(base, os.W_OK | os.X_OK):
        raise _refuse(p, flag, "it is read-only" if base == p else f"{base} is read-only", hint)
