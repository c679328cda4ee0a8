"""Output paths are checked before any work starts: a backtest that runs for minutes must
not end in an internal error (and lost results) because its report folder cannot be written.

Writability is probed by creating (and removing) a file, not asked of os.access: that also
catches read-only file systems and holds when running as root.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from kinetic_rules.errors import ConfigError
from kinetic_rules.files import check_regular


def check_output_dir(path: Path, flag: str) -> None:
    """`path` is, or can be created as, a folder we can write files into."""
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"{flag} {path}: is a file, not a folder; give a folder")
        _probe(path, flag, path)
        return
    parent = _existing_ancestor(path)
    if not parent.is_dir():
        raise ConfigError(f"{flag} {path}: {parent} is a file, so no folder can be made there")
    _probe(parent, flag, path)


def check_output_file(path: Path, flag: str) -> None:
    """`path` names a file we can (re)place: not a folder, in a folder that exists and can
    be written."""
    if path.is_dir():
        raise ConfigError(f"{flag} {path}: is a folder; give a file name")
    if path.is_symlink():  # replacing it would replace the link, not the file it names
        target = path.resolve()
        raise ConfigError(f"{flag} {path}: is a symbolic link; give the file itself ({target})")
    if path.exists():
        try:  # the file is replaced whole: a device or a FIFO must never be replaced
            check_regular(path)
        except OSError as problem:
            reason = problem.strerror or str(problem)
            raise ConfigError(
                f"{flag} {path}: {reason}; leave out {flag} to write to standard output"
            ) from None
    parent = path.parent
    if not parent.exists():
        raise ConfigError(f"{flag} {path}: the folder {parent} does not exist")
    if not parent.is_dir():
        raise ConfigError(f"{flag} {path}: {parent} is a file, not a folder")
    _probe(parent, flag, path)


def _existing_ancestor(path: Path) -> Path:
    for candidate in path.absolute().parents:
        if candidate.exists():
            return candidate
    return Path(path.absolute().anchor)


def _probe(folder: Path, flag: str, path: Path) -> None:
    try:
        handle, name = tempfile.mkstemp(prefix=".kinetic-rules-probe-", dir=folder)
    except OSError as problem:
        reason = problem.strerror or str(problem)
        raise ConfigError(f"{flag} {path}: cannot write in {folder} ({reason})") from None
    os.close(handle)
    os.unlink(name)
