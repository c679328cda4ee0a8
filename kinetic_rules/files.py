"""Opening the files a user names — strategies, candle files — so that none can hang us.

A named pipe (FIFO) blocks whoever opens it until a writer appears, and a device such as
/dev/zero never ends. Files are therefore opened with O_NONBLOCK (which makes opening a
FIFO return at once) and checked with fstat on the open descriptor (so the file checked
is the file read) before a byte is read: anything but a regular file is refused with a
plain reason. This module sits below every stage so each reads files the same way.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_NOCTTY = getattr(os, "O_NOCTTY", 0)


def kind(mode: int) -> str:
    """What a file is, in words, from its st_mode."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _refuse(path: str | Path, mode: int) -> OSError:
    what = kind(mode)
    reason = f"is {what}, not a regular file" if what != "not a regular file" else what
    return OSError(errno.EINVAL, reason, str(path))


def check_regular(path: str | Path) -> None:
    """OSError (with a plain strerror) unless `path` is a regular file; never blocks."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise _refuse(path, mode)


def open_regular(path: str | Path) -> BinaryIO:
    """`path` opened for binary reading, or OSError if it is missing or not a regular file."""
    descriptor = os.open(path, os.O_RDONLY | _NONBLOCK | _NOCTTY)
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise _refuse(path, mode)
        if _NONBLOCK:
            os.set_blocking(descriptor, True)  # a regular file: reads behave as usual
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def read_regular(path: str | Path, limit: int | None = None) -> bytes:
    """The bytes of a regular file; with `limit`, at most limit + 1 of them, so a caller can
    tell that a file is too large without reading all of it."""
    with open_regular(path) as handle:
        return handle.read() if limit is None else handle.read(limit + 1)
