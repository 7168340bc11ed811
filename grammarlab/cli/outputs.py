"""The checks every command makes on the output paths the user names, before any work is done.

An output path that cannot be written (a folder where a file is meant, a read-only file or
folder) is a one-line error naming the flag; so is one of a run folder's own files (its
metrics, config, data, checkpoints, analysis: the names of :data:`grammarlab.runs.folder.LAYOUT`):
no command overwrites a run's files with its output. A write that fails anyway (a full disk, a
read-only file system) is the same one-line error (:func:`write_error`).
"""

from __future__ import annotations

import os
from pathlib import Path

from grammarlab.errors import GrammarlabError
from grammarlab.io import STDOUT, check_output, check_output_folder


def _run_folder_of(path: Path) -> tuple[Path, str] | None:
    """(run folder, its file name) when ``path`` (symlinks followed) is one of a run folder's own
    files or lies inside one of its own folders; None otherwise."""
    from grammarlab.runs.folder import CONFIG, ENV, LAYOUT, METRICS, STATUS

    real = Path(os.path.realpath(path))
    for folder in real.parents:
        name = real.relative_to(folder).parts[0]
        is_run = (folder / CONFIG).is_file() and any(
            (folder / n).exists() for n in (STATUS, ENV, METRICS)
        )
        if is_run:
            return (folder, name) if name in LAYOUT else None
    return None


def _not_a_run_file(path: Path | str, flag: str) -> None:
    if str(path) == STDOUT:
        return
    hit = _run_folder_of(Path(path))
    if hit is not None:
        folder, name = hit
        raise GrammarlabError(
            f"{path} is the run folder {folder}'s own {name}: it is not overwritten",
            file=flag,
            hint=f"{flag} names a new file, e.g. {folder / 'report.md'} or one outside the run",
        )


def output_file(path: Path | str, flag: str) -> None:
    """Refuse an output file that cannot be written or is a run folder's own file."""
    check_output(path, flag)
    _not_a_run_file(path, flag)


def output_folder(path: Path | str, flag: str) -> None:
    """Refuse an output folder that cannot be written or is (inside) a run folder's own one."""
    check_output_folder(path, flag)
    _not_a_run_file(path, flag)


def write_error(path: Path | str, flag: str, e: OSError) -> GrammarlabError:
    """The one-line error of a write that failed (``e``), naming the flag."""
    return GrammarlabError(
        f"cannot write {path}: {e.strerror or e}",
        file=flag,
        hint=f"{flag} must name a path you can write to (and a disk with free space)",
    )
