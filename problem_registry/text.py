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


# What a model wrote is stored, never refused: a label or an error message is the model's answer,
# and refusing it would lose the rows of every other version in the same write (issue 16, item 8).
MAX_ANSWER_LENGTH = 1000  # Result.predicted: expected labels are at most 200 characters
MAX_ERROR_LENGTH = 2000  # Result.error
MAX_MESSAGE_LENGTH = 4000  # Run.message


def stored_text(text: str, max_length: int) -> str:
    """``text`` as every backend stores it: NUL and lone surrogates written out, length capped.

    A NUL becomes the four characters ``\\x00`` and a lone surrogate its ``\\udcff`` escape, so
    what a model wrote stays visible; text longer than ``max_length`` (after escaping) is cut to
    ``max_length`` characters, the last of them a marker saying how long it was. Plain text of a
    sane length comes back as the same object (the hot path of a replay). A literal backslash is
    kept as is, so ``\\x00`` written by a model and a NUL are stored alike: the stored form is for
    people to read, not to be decoded.
    """
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = "".join(
                ch.encode("utf-8", "backslashreplace").decode("ascii")
                if 0xD800 <= ord(ch) <= 0xDFFF
                else ch
                for ch in text
            )
    if len(text) > max_length:
        marker = f"... [{len(text):,} characters, cut to {max_length:,}]"
        keep = max_length - len(marker)
        text = text[:keep] + marker if keep > 0 else text[:max_length]
    return text


def visible(text: str, *, newlines: bool = False) -> str:
    """``text`` with every character a terminal would not show as itself written out, as
    ``repr`` writes it (``\\x1b``, ``\\u202e``, ``\\udcff``); ``newlines`` keeps line breaks.

    For a terminal: an escape sequence (CSI, OSC, a C1 control) in a name, label or model answer
    could recolour, retitle or rewrite it (issue 16, item 7).
    """
    if text.isprintable():
        return text
    return "".join(
        ch if ch.isprintable() or (newlines and ch == "\n") else repr(ch)[1:-1] for ch in text
    )
