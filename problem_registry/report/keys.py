"""What a report folder already holds: a content key per file, and the manifest that keeps them.

A file's key is a hash of everything it is drawn from, salted with the versions of the code
that draws it (this package, matplotlib, Pillow, Jinja2) and :data:`LAYOUT`. A report rebuilt
into the same folder redraws a file only when its key changed, and deletes the files the new
report no longer has (the pages of deleted problems). The contract: a key never stays the same
when the picture would differ; it may change when the picture would not (a redraw too many,
never one too few), so keys are built from ``repr`` of plain data, never from a ``set``, whose
order changes between processes.
"""

from __future__ import annotations

import hashlib
import json
import re
import stat
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from problem_registry.plain_files import read_plain, write_atomically

MANIFEST = ".report-manifest.json"
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
LAYOUT = 3  # bump when a change to the drawing code should redraw every report
# The only names a report gives the files it may delete again: problem slugs and fixed words
# (see builder.OWNED). A manifest is read from a folder anyone may have edited (issue 16: its
# ``../x`` and ``/abs/x`` entries were deleted), so an entry of any other shape is ignored.
_NAME = r"[a-z0-9]+(?:-[a-z0-9]+)*"
_KEY = re.compile(r"[0-9a-f]{64}", re.ASCII)
OWNED_PATH = re.compile(
    rf"images/{_NAME}\.png|problems/{_NAME}\.html|problems/{_NAME}/{_NAME}\.png", re.ASCII
)


def _salt() -> str:
    found = []
    for package in ("problem-registry", "matplotlib", "pillow", "jinja2"):
        try:
            found.append(f"{package}={version(package)}")
        except PackageNotFoundError:
            found.append(f"{package}=?")
    return f"layout={LAYOUT};" + ";".join(found)


SALT = _salt()


def content_key(kind: str, *parts: Any) -> str:
    """A file's key: ``kind`` and the plain data it is drawn from (see the module's contract)."""
    return hashlib.sha256(repr((SALT, kind, parts)).encode("utf-8")).hexdigest()


@dataclass
class Manifest:
    """``files``: each file the report wrote, by path relative to its folder, with its key;
    ``source``: the key of everything the report was drawn from (see builder.py), "" if unknown."""

    files: dict[str, str] = field(default_factory=dict)
    source: str = ""

    @classmethod
    def load(cls, root: Path) -> Manifest:
        """The folder's manifest; an empty one when it has none or it cannot be read."""
        try:
            # A report folder is untrusted: its manifest may be a FIFO, a link to /dev/zero, or
            # JSON nested past the recursion limit (issue 16, items 9 and 11).
            data = read_plain(root / MANIFEST, max_bytes=MAX_MANIFEST_BYTES, follow_links=False)
            document = json.loads(data.decode("utf-8"))
            files = document["files"]
            if document.get("salt") != SALT or not isinstance(files, dict):
                return cls()
            source = document.get("source")
            return cls(
                {str(path): str(key) for path, key in files.items() if is_owned(path)},
                source if isinstance(source, str) and _KEY.fullmatch(source) else "",
            )
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            return cls()

    def is_current(self, root: Path, path: str, key: str) -> bool:
        """``path`` holds what ``key`` describes: same key, and the file still there, itself
        (a link planted under a report's name is drawn over, never kept)."""
        return self.files.get(path) == key and is_plain_file_inside(root, path)

    def save(self, root: Path) -> None:
        document = {
            "salt": SALT,
            "source": self.source,
            "files": dict(sorted(self.files.items())),
        }
        write_atomically(root / MANIFEST, (json.dumps(document, indent=1) + "\n").encode())


def is_owned(path: object) -> bool:
    """``path`` (relative to a report folder) has the shape of a file a report writes there."""
    return isinstance(path, str) and OWNED_PATH.fullmatch(path) is not None


def is_plain_file_inside(root: Path, path: str) -> bool:
    """``root / path`` is a regular file reached without any link: the only kind a report removes.

    Checked with ``lstat`` at each step, so neither the file nor a folder on its way may be a
    symbolic link (issue 16: a linked ``problems`` folder had its target's files deleted).
    """
    if not is_owned(path):
        return False
    current = root
    for part in path.split("/"):
        current = current / part
        try:
            mode = current.lstat().st_mode
        except OSError:
            return False
        if stat.S_ISLNK(mode):
            return False
    return stat.S_ISREG(mode)
