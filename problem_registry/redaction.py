"""Credentials never leave the process in a message: the one function every shown text goes through.

A database URL carries a password in more places than ``user:password@`` (all that SQLAlchemy's
``hide_password`` hides): a ``?password=`` query parameter (or ``pass``, ``passwd``,
``sslpassword``...), a libpq ``password=`` hidden inside another parameter, and, when a password
holds an unescaped ``@``, a "host" that is really its tail. Drivers quote these in their error
texts (issue 16). :func:`redact_url` is how a URL is shown; :func:`redact_text` is what every
message goes through (:class:`~problem_registry.errors.RegistryError` applies it to its own
text), told the URLs it may quote so their secrets are hidden wherever they appear. Both hide
too much rather than too little: a message may lose a few characters, never show a password.
"""

from __future__ import annotations

import re
from urllib.parse import quote, quote_plus, unquote, unquote_plus

MASK = "***"
# Secrets shorter than this are hidden where their form shows them (``:x@``, ``password=x``), but
# not looked for anywhere else: replacing every "a" of a message would make it unreadable.
MIN_LITERAL_SECRET = 4
# A key whose value is a secret, in a URL query, a libpq DSN or a driver's text: any key ending in
# one of these words (password, sslpassword, db_password, passwd, pass, pwd, secret, token...).
_SECRET_KEY = r"[A-Za-z0-9_.-]*?(?:password|passwd|passphrase|pass|pwd|secret|token)"
_KEY_VALUE = re.compile(
    rf"(?<![A-Za-z0-9_.-])({_SECRET_KEY})(\s*(?:=|%3D)\s*)"
    # An already hidden value first, so a second pass keeps what followed it (``***:``).
    r"(\*\*\*|'(?:[^'\\]|\\.)*'?|\"[^\"]*\"?|[^\s&;,'\"]*)",
    re.IGNORECASE,
)
_SECRET_KEY_ONLY = re.compile(_SECRET_KEY, re.IGNORECASE)
# ``scheme://user:password@``: up to the last ``@`` of the run, so an unescaped ``@`` inside the
# password (which SQLAlchemy takes as the end of it) hides the password's tail too.
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)(\S*)@")


def redact_text(text: str, *urls: str) -> str:
    """``text`` with every credential hidden: those of ``urls`` (in any encoding) wherever they
    appear, and anything shaped like one (``scheme://user:***@``, ``password=***``)."""
    for url in urls:
        if url and url in text:
            text = text.replace(url, redact_url(url))
    return _shaped(_without_pieces(text, set().union(*map(_secrets_of, urls))))


def _shaped(text: str) -> str:
    """``text`` with whatever is shaped like a credential hidden: ``scheme://user:***@`` and
    ``password=***`` (and its kin), whoever's it is."""
    text = _USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    return _KEY_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)


def _without_pieces(text: str, secrets: set[str]) -> str:
    """``text`` with every run of it that also runs inside a secret (at least
    :data:`MIN_LITERAL_SECRET` characters, any letter case) replaced by :data:`MASK`.

    Drivers quote a secret in pieces and in their own escapes: cut at a quote, an ``@`` or a
    ``/``, re-rendered by SQLAlchemy, lower-cased as a host name, ``\\'`` in a repr. Looking for
    every stretch a secret shares with the text hides all of these without naming each form.
    """
    if not secrets:
        return text
    width = MIN_LITERAL_SECRET
    grams = {
        folded[i : i + width]
        for secret in secrets
        for folded in [_fold(secret)]
        for i in range(len(folded) - width + 1)
    }
    folded_text = _fold(text)
    hidden = [False] * len(text)
    for i in range(len(text) - width + 1):
        if folded_text[i : i + width] in grams:
            hidden[i : i + width] = [True] * width
    if not any(hidden):
        return text
    pieces = []
    for i, char in enumerate(text):
        if not hidden[i]:
            pieces.append(char)
        elif i == 0 or not hidden[i - 1]:
            pieces.append(MASK)
    return "".join(pieces)


def _fold(text: str) -> str:
    """``text`` lower-cased character by character, keeping its length (so positions agree)."""
    return "".join(low if len(low := char.lower()) == 1 else char for char in text)


def redact_url(url: str) -> str:
    """A database URL as anyone may see it: user name, host and database kept, secrets hidden."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return _shaped(url)
    password = _userinfo_password(rest)
    if password is not None:
        start, end = password
        rest = f"{rest[:start]}{MASK}{rest[end:]}"
    head, question, query = rest.partition("?")
    if question:
        pairs = []
        for pair in query.split("&"):
            key, equals, value = pair.partition("=")
            if equals and _SECRET_KEY_ONLY.fullmatch(unquote_plus(key)):
                value = MASK
            pairs.append(f"{key}{equals}{value}")
        rest = f"{head}?{'&'.join(pairs)}"
    return _shaped(_without_pieces(f"{scheme}://{rest}", _secrets_of(url)))


def _userinfo_password(rest: str) -> tuple[int, int] | None:
    """Where the password of ``user:password@host...`` (the part after ``://``) starts and ends.

    As SQLAlchemy reads it (a user name without ``:`` or ``/``, then ``:``), but ending at the
    last ``@``: a password holding an unescaped ``@`` is hidden whole, not up to its first one.
    """
    user = re.match(r"[^:/]*:", rest)
    at = rest.rfind("@")
    if user is None or at < user.end():
        return None
    return user.end(), at


def _secrets_of(url: str) -> set[str]:
    """Every form in which ``url``'s secrets could be quoted: as written, decoded, re-encoded."""
    _scheme, separator, rest = url.partition("://")
    if not separator:
        return set()
    found: list[str] = []
    password = _userinfo_password(rest)
    if password is not None:
        secret = rest[password[0] : password[1]]
        found += [secret, *secret.split("@")]  # SQLAlchemy ends it at the first "@"
        if _KEY_VALUE.search(unquote_plus(secret)):
            # A "password" that holds ``password=``: SQLAlchemy's reading of a raw "@" in a query
            # password, re-rendered. Its "host" is that password's tail.
            found.append(re.split(r"[/:?]", rest[password[1] + 1 :], maxsplit=1)[0])
    for pair in rest.partition("?")[2].split("&"):
        key, _, value = pair.partition("=")
        if _SECRET_KEY_ONLY.fullmatch(unquote_plus(key)):
            # An unescaped "@" in a query password makes SQLAlchemy read all before it as the
            # user part and the rest as the host, which drivers then name: hide each piece.
            found += [value, *value.split("@")]
        # A DSN inside a parameter: its quoted password may hold a quote that ends it early,
        # so everything from the password to the parameter's end counts as secret too.
        inner = unquote_plus(value)
        for match in _KEY_VALUE.finditer(inner):
            found += [match.group(3), inner[match.start(3) :]]
    forms: set[str] = set()
    for secret in found:
        for decoded in {secret, unquote(secret), unquote_plus(secret)}:
            forms.update((decoded, quote(decoded, safe=""), quote_plus(decoded)))
    return {form for form in forms if len(form) >= MIN_LITERAL_SECRET}
