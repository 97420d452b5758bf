"""The content-addressed pattern files: named by their sha256, checked before they enter.

A file is read once (up to a size limit), hashed, its kind told from its content (image, JSON,
UTF-8 text), verified (images fully decoded by Pillow, with decompression bombs refused), then
written under ``<store>/<aa>/<sha256>.<ext>`` through a temporary file and an atomic rename. The
destination is computed from the hash alone, so no user-supplied path can steer a write, and a
link planted inside the store is refused rather than followed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from problem_registry.config import DEFAULT_MAX_PATTERN_MB, max_pattern_bytes
from problem_registry.enums import PatternKind
from problem_registry.errors import CorruptPattern, UnsafePath
from problem_registry.plain_files import read_plain, sha256_plain

# The default largest pattern file; $PROBLEM_REGISTRY_MAX_PATTERN_MB changes it (config).
MAX_PATTERN_BYTES = DEFAULT_MAX_PATTERN_MB * 1024 * 1024
# JSON becomes Python objects, ~20-30x its size in memory, in the replay and in every worker: a
# 60 MB JSON pattern cost 1.7 GB to add and 2 GB per replay (issue 16, item 12).
MAX_JSON_PATTERN_BYTES = 8 * 1024 * 1024
# Well under Pillow's own warning threshold (89 M pixels): a test pattern is never that large,
# and decoding one would cost hundreds of MB per replay.
MAX_IMAGE_PIXELS = 40_000_000
_IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".ppm"}
# The only formats Pillow may open, everywhere an image is read (issue 16): Pillow tries every
# format it knows by default, EPS included, and loading an EPS runs Ghostscript on the file's
# PostScript. (A JPEG holding several pictures still opens, as "MPO", through "JPEG".)
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM")
# PostScript and EPS (plain, and the DOS EPS binary header): refused by signature, not kept
# as a text pattern, so nobody is tempted to open one with a tool that runs it.
_POSTSCRIPT_SIGNATURES = (b"%!PS", b"\xc5\xd0\xd3\xc6")
_FORMAT_EXTENSIONS = {"JPEG": "jpg", "TIFF": "tif", "MPO": "jpg"}
# A stored file's extension back to the one format to try first when decoding it.
_EXTENSION_FORMATS = {_FORMAT_EXTENSIONS.get(name, name.lower()): (name,) for name in IMAGE_FORMATS}
# Names of files being written into the store; one left behind was cut off by a crash (`check`).
TEMP_PREFIX = ".incoming-"


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    kind: PatternKind
    extension: str
    size_bytes: int


@dataclass(frozen=True)
class InspectedContent:
    """A file's bytes, checked and classified, not yet written anywhere."""

    data: bytes
    sha256: str
    kind: PatternKind
    extension: str

    @property
    def stored(self) -> StoredFile:
        return StoredFile(self.sha256, self.kind, self.extension, len(self.data))


def is_sha256(text: object) -> bool:
    """A lowercase sha256 hex digest: the only names the store gives its files."""
    return isinstance(text, str) and len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_input(path: Path, *, max_bytes: int | None = None) -> bytes:
    """Read a file a user named, refusing folders, FIFOs, devices, empty and oversized files."""
    max_bytes = max_bytes or max_pattern_bytes()
    try:
        data = read_plain(path, max_bytes=max_bytes)
    except OSError as exc:
        raise _unreadable(path, exc, max_bytes) from None
    if not data:
        raise CorruptPattern(f"{path}: the file is empty")
    return data


def hash_input(path: Path, *, max_bytes: int | None = None) -> str:
    """The sha256 of a file a user named, streamed: memory stays flat whatever it holds, so many
    names can be compared (duplicates found) before any file is loaded (issue 16, item 12)."""
    max_bytes = max_bytes or max_pattern_bytes()
    try:
        digest, size = sha256_plain(path, max_bytes=max_bytes)
    except OSError as exc:
        raise _unreadable(path, exc, max_bytes) from None
    if not size:
        raise CorruptPattern(f"{path}: the file is empty")
    return digest


def _unreadable(path: Path, exc: OSError, max_bytes: int) -> CorruptPattern:
    if isinstance(exc, FileNotFoundError):
        return CorruptPattern(f"{path}: missing; give the path of an image, text or JSON file")
    return CorruptPattern(
        f"{path}: {exc.strerror or exc}; give the path of an image, text or JSON file "
        f"of at most {max_bytes:,} bytes"
    )


def inspect_content(data: bytes, name: str) -> InspectedContent:
    """Tell the kind from the content and verify it; ``name`` is only used in messages and hints."""
    suffix = Path(name).suffix.lower()
    if data.startswith(_POSTSCRIPT_SIGNATURES):
        raise CorruptPattern(
            f"{name}: PostScript/EPS is refused (reading it runs a PostScript interpreter); "
            "convert it to PNG"
        )
    digest = sha256_of(data)
    image_format = _image_format(data)
    if image_format is not None or suffix in _IMAGE_EXTENSIONS:
        fmt = _verify_image(data, name)
        extension = _FORMAT_EXTENSIONS.get(fmt, fmt.lower())
        return InspectedContent(data, digest, PatternKind.image, extension)
    text = _utf8(data, name)
    stripped = text.lstrip("\ufeff \t\r\n")
    small = len(data) <= MAX_JSON_PATTERN_BYTES  # larger text that looks like JSON stays text
    if suffix == ".json" or (small and stripped[:1] in ("{", "[")):
        if not small:
            raise CorruptPattern(
                f"{name}: {len(data):,} bytes of JSON is over the {MAX_JSON_PATTERN_BYTES:,}-byte "
                "limit for a JSON pattern (parsed, it would take ~25x that in every replay)"
            )
        try:
            json.loads(text.lstrip("\ufeff"))  # as decode() reads it: editors add a BOM
        except ValueError as exc:
            if suffix == ".json":
                raise CorruptPattern(f"{name}: not valid JSON ({exc})") from None
        except RecursionError:  # "[[[[..." 100k deep: no model could be given it (item 11)
            raise CorruptPattern(
                f"{name}: JSON nested too deeply to read (past Python's recursion limit)"
            ) from None
        else:
            return InspectedContent(data, digest, PatternKind.json, "json")
    return InspectedContent(data, digest, PatternKind.text, "txt")


def _image_format(data: bytes) -> str | None:
    """Pillow's guess from the header alone, without decoding pixels."""
    from PIL import Image  # here, not at the top: a warm replay reads no image (~10 ms)

    try:
        with warnings.catch_warnings():
            # The size is judged (and refused) by _verify_image; don't warn on the user's stderr.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as image:
                image_format: str | None = image.format
                return image_format
    except Image.DecompressionBombError:
        # An image by its header, too large even to open: _verify_image refuses it as a bomb,
        # rather than the text check calling it "not UTF-8" when its name lacks an image suffix.
        return "oversized"
    except Exception:
        return None


def _verify_image(data: bytes, name: str) -> str:
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as image:
                width, height = image.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise CorruptPattern(
                        f"{name}: {width}x{height} image is over the {MAX_IMAGE_PIXELS:,}-pixel "
                        "limit (a decompression bomb, or far larger than a test pattern needs)"
                    )
                fmt = image.format or "PNG"
                image.load()  # decodes every pixel: catches truncation that verify() misses
    except CorruptPattern:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise CorruptPattern(f"{name}: refused as a decompression bomb") from None
    except UnidentifiedImageError:
        raise CorruptPattern(
            f"{name}: named like an image but not one Pillow can read; give a real PNG, JPEG, "
            "GIF, BMP, TIFF, WebP or PPM file"
        ) from None
    except Exception as exc:
        reason = str(exc) or type(exc).__name__
        raise CorruptPattern(f"{name}: not a readable image ({reason})") from None
    return fmt


def _utf8(data: bytes, name: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptPattern(
            f"{name}: not an image, and not UTF-8 text (bad byte at offset {exc.start}); "
            "convert it to UTF-8 or to an image format"
        ) from None
    if "\x00" in text:
        raise CorruptPattern(f"{name}: looks binary (contains NUL bytes), and is not an image")
    return text


def decode(data: bytes, kind: PatternKind, extension: str | None = None) -> Any:
    """A pattern's input as the model receives it: a PIL image, a str, or a parsed JSON value.

    ``extension`` (the stored file's, given by the format found at ``pattern add``) lets Pillow
    try that format first instead of probing each (a replay decodes thousands of images)."""
    if kind is PatternKind.image:
        from PIL import Image

        first = _EXTENSION_FORMATS.get(extension or "")
        if first is not None:
            try:
                image = Image.open(io.BytesIO(data), formats=first)
                image.load()
                return image
            except Exception:
                pass  # not what its name says: every allowed format, as without a name
        image = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
        image.load()
        return image
    text = data.decode("utf-8").lstrip("\ufeff")
    return json.loads(text) if kind is PatternKind.json else text


class PatternStore:
    """Files on disk, named by content; the database rows point here by sha256."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def relative_path(self, sha256: str, extension: str) -> str:
        return f"{sha256[:2]}/{sha256}.{extension}"

    def path_of(self, sha256: str, extension: str) -> Path:
        return self.root / self.relative_path(sha256, extension)

    def put(self, content: InspectedContent) -> Path:
        """Write once; a file already present with the right content is left as it is."""
        destination = self._safe_destination(content.sha256, content.extension)
        if destination.is_file() and sha256_of(destination.read_bytes()) == content.sha256:
            return destination
        folder = destination.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=folder)
            try:
                with os.fdopen(handle, "wb") as stream:
                    stream.write(content.data)
                    stream.flush()
                    os.fsync(stream.fileno())
                Path(temporary).replace(destination)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise CorruptPattern(
                f"cannot write to the pattern store {self.root}: {exc.strerror or exc}"
            ) from None
        return destination

    def read(self, sha256: str, extension: str) -> bytes:
        """The stored bytes, verified against their name, so a tampered file is never scored."""
        # Text, not a Path: a replay reads thousands of small files, and pathlib's joins cost
        # as much as the read itself.
        path = f"{self.root}/{sha256[:2]}/{sha256}.{extension}"
        try:
            # A plain file of the store, never a link, a FIFO or a device (issue 16, item 9).
            data = read_plain(path, max_bytes=max_pattern_bytes(), follow_links=False)
        except FileNotFoundError:
            raise CorruptPattern(
                f"pattern file {self.relative_path(sha256, extension)} is missing from "
                f"{self.root}; restore it (problem-registry import) or remove the pattern"
            ) from None
        except OSError as exc:
            raise CorruptPattern(
                f"pattern file {self.relative_path(sha256, extension)} in {self.root} cannot be "
                f"read: {exc.strerror or exc}; restore it (problem-registry import) or remove "
                "the pattern"
            ) from None
        if sha256_of(data) != sha256:
            raise CorruptPattern(
                f"pattern file {self.relative_path(sha256, extension)} in {self.root} was altered "
                "on disk (its sha256 no longer matches); restore it or remove the pattern"
            )
        return data

    def discard(self, sha256: str, extension: str) -> None:
        path = self._safe_destination(sha256, extension)
        path.unlink(missing_ok=True)

    def _safe_destination(self, sha256: str, extension: str) -> Path:
        if not is_sha256(sha256):
            raise UnsafePath(f"{sha256!r} is not a sha256 hex digest")
        if not extension.isalnum():
            raise UnsafePath(f"{extension!r} is not a file extension")
        root = self.root.resolve()
        destination = self.path_of(sha256, extension)
        for part in (destination.parent, destination):
            if part.is_symlink():
                raise UnsafePath(
                    f"{part} is a symbolic link inside the pattern store; the store only holds "
                    "real files: remove the link"
                )
        if not destination.parent.resolve().is_relative_to(root) and destination.parent.exists():
            raise UnsafePath(f"{destination} resolves outside the pattern store {root}")
        return destination


def sha256_of_file(path: Path, *, chunk_size: int = 1 << 20) -> str:
    """Hash a possibly large file (a model artifact) without reading it into memory; a FIFO or a
    device is refused (:class:`~problem_registry.plain_files.NotPlainFile`), never read."""
    return sha256_plain(path, chunk_size=chunk_size)[0]
