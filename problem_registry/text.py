"""Text a user gives (titles, descriptions, notes, labels, names) is checked before it is stored.

SQLite stores any string, but PostgreSQL refuses a NUL character, and neither driver can encode a
lone surrogate: what Python makes of a command-line argument, a file name or a JSON ``"\\udcff"``
escape that is not valid UTF-8. Unchecked, such text fails deep inside a transaction with a
driver's traceback, and on one backend only (issue 6, hostile input). Checked here, it is one
clear :class:`~problem_registry.errors.InvalidValue` on both.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from problem_registry.errors import UNKNOWN_USER, InvalidValue, UnknownUserWarning


def storable(text: str, what: str, *, max_length: int | None = None) -> str:
    """``text`` unchanged if every backend can store it; ``what`` names it in the error."""
    if "\x00" in text:
        raise InvalidValue(f"{what} contains a NUL character; remove it")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidValue(
            f"{what} is not valid UTF-8 (character {exc.start + 1}); give it as UTF-8 text"
        ) from None
    if max_length is not None and len(text) > max_length:
        raise InvalidValue(f"{what} is {len(text)} characters long; the most is {max_length}")
    return text


MAX_USER_LENGTH = 100  # Pattern.added_by, ModelVersion.registered_by


def user_name(user: str) -> str:
    """Who is writing, as a pattern or model version records it: checked like any user text.

    Checked where it is stored rather than when settings are read, so a read-only command still
    works with a name that could not be stored.
    """
    what = "the user name (--user, $PROBLEM_REGISTRY_USER, $GITHUB_ACTOR or $USER)"
    return storable(user, what, max_length=MAX_USER_LENGTH)


def recording(user: str) -> None:
    """Called just before ``user`` is written: warns (:class:`UnknownUserWarning`) when nothing
    named who is writing, so "added by unknown" is never recorded without a word (issue 19)."""
    if user == UNKNOWN_USER:
        warnings.warn(
            UnknownUserWarning(
                "nothing says who is writing (no --user, $PROBLEM_REGISTRY_USER, $GITHUB_ACTOR "
                "or $USER), so this is recorded as added by 'unknown'; set one, e.g. "
                "export PROBLEM_REGISTRY_USER=$(whoami)"
            ),
            stacklevel=3,
        )


def is_storable(text: str) -> bool:
    """Whether a lookup may send ``text`` to the database at all (else it names nothing there)."""
    try:
        storable(text, "")
    except InvalidValue:
        return False
    return True


def file_name(path: Path, *, max_length: int = 255) -> str:
    """A file's name as a pattern remembers it: bytes that are not UTF-8 become U+FFFD.

    The name is only shown to people, so a file whose name is not UTF-8 (Python holds its bytes
    as lone surrogates) is still added rather than refused for it.
    """
    name = "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in path.name)
    return name[:max_length]
