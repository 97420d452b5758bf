"""The one safe way to read a file that someone else named or could replace: plain files only,
never blocking, never unbounded; and the one way an output file is written, whole or not at all.

A pattern in the store, a CSV named by ``--csv``, a predictions file, a model artifact, a report
folder's manifest and ``pyproject.toml`` can all be swapped for a FIFO, which blocks ``open``
until a writer comes (``replay``, ``export`` and ``report --html`` hung, deaf to SIGTERM), or for
a link to ``/dev/zero``, which never ends (issue 16, item 9). Every reader opens through
:func:`open_plain`: ``O_NONBLOCK`` so a FIFO opens at once, ``fstat`` on the descriptor (not the
name, so nothing changes between the look and the read) to refuse anything but a regular file,
and a size cap. Refusals are :class:`NotPlainFile`, an ``OSError`` whose ``strerror`` says why,
so every caller's existing ``except OSError`` turns it into its own one-line error.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class NotPlainFile(OSError):
    """Refused: not a regular file, a link where none may be (``errno`` ELOOP), or too big."""

    def __init__(self, reason: str, code: int = errno.EINVAL) -> None:
        super().__init__(code, reason)


def open_plain(path: Path | str, *, follow_links: bool = True) -> BinaryIO:
    """``path`` opened for reading if it is a regular file; :class:`NotPlainFile` if not.

    ``follow_links=False`` refuses a symbolic link as the last part of the path (the pattern
    store and bundles hold only real files). Other ``OSError`` (missing, no permission) pass on.
    """
    fd, _size = _open_plain_fd(path, follow_links)
    try:
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _open_plain_fd(path: Path | str, follow_links: bool) -> tuple[int, int]:
    """:func:`open_plain`'s checks; the open descriptor (blocking) and the file's size."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if not follow_links:
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow_links:
            raise NotPlainFile("a symbolic link, not a plain file", errno.ELOOP) from None
        raise
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            mode = status.st_mode
            kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
            raise NotPlainFile(f"{kind}, not a regular file")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd, status.st_size


def read_plain(path: Path | str, *, max_bytes: int, follow_links: bool = True) -> bytes:
    """The whole of a regular file of at most ``max_bytes``; :class:`NotPlainFile` otherwise.

    The size is checked on the open descriptor before reading, and the read stops one byte past
    the cap, so a file that grows meanwhile cannot make it read more. Read on the descriptor
    itself, the size it reported first (a replay reads thousands of small pattern files: a
    buffered file object, and a read buffer sized to the cap, cost more than the bytes).
    """
    fd, size = _open_plain_fd(path, follow_links)
    try:
        if size > max_bytes:
            raise NotPlainFile(f"{size:,} bytes, over the {max_bytes:,}-byte limit")
        limit = max_bytes + 1
        chunks: list[bytes] = []
        total = 0
        ask = size + 1  # all of it, and the end of the file seen in the same call
        while total < limit:
            chunk = os.read(fd, min(ask, limit - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            ask = CHUNK  # it grew meanwhile: on in chunks, never past the cap
    finally:
        os.close(fd)
    if total > max_bytes:
        raise NotPlainFile(f"over the {max_bytes:,}-byte limit")
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def sha256_plain(
    path: Path | str,
    *,
    follow_links: bool = True,
    max_bytes: int | None = None,
    chunk_size: int = CHUNK,
) -> tuple[str, int]:
    """sha256 hex digest and size of a regular file, streamed in chunks (memory stays flat
    whatever its size); :class:`NotPlainFile` when it is not one, or past ``max_bytes``."""
    digest = hashlib.sha256()
    size = 0
    with open_plain(path, follow_links=follow_links) as handle:
        if max_bytes is not None and os.fstat(handle.fileno()).st_size > max_bytes:
            raise NotPlainFile(f"over the {max_bytes:,}-byte limit")
        while chunk := handle.read(chunk_size):
            size += len(chunk)
            if max_bytes is not None and size > max_bytes:
                raise NotPlainFile(f"over the {max_bytes:,}-byte limit")
            digest.update(chunk)
    return digest.hexdigest(), size


def write_atomically(path: Path, data: bytes) -> None:
    """Write through a temporary file beside ``path`` and a rename: a full disk or a killed
    process never leaves half a file (nor the 0-byte chart of issue 16, item 11) under its name.

    Folders on the way are created; the file is readable by all (0644), as outputs are meant to
    be read. An ``OSError`` (not a folder, no right, no space) leaves nothing behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        Path(temporary).chmod(0o644)  # mkstemp makes it private
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
