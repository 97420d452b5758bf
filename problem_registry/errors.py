"""Every mistake a user can make has its own exception class.

The CLI turns any :class:`RegistryError` into one line on stderr and exit code 1; the pytest plugin
turns it into a usage error. A message names the thing that is wrong and, where there is one, the
fix, because it is all the user will see: no traceback accompanies it.
"""

from __future__ import annotations

from problem_registry.redaction import redact_text

# Who is writing when nothing names anyone: recorded as is, with an UnknownUserWarning.
UNKNOWN_USER = "unknown"


class UnknownUserWarning(UserWarning):
    """Something was recorded as added by "unknown": no --user, $PROBLEM_REGISTRY_USER,
    $GITHUB_ACTOR or $USER names who is writing (a container often has no $USER; issue 19)."""


class RegistryError(Exception):
    """A user-facing error: the message alone must tell the user what to do.

    Its text never holds a credential: it goes through :func:`redact_text` here, so every
    message shown by the CLI, the pytest plugin or a stored run is cleaned wherever it was built,
    whatever driver text it quotes (issue 16).
    """

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact_text(arg) if isinstance(arg, str) else arg for arg in args))


class ConfigError(RegistryError):
    """The configuration (flag, environment or pyproject.toml) cannot be used."""


class DatabaseUnavailable(RegistryError):
    """The database cannot be reached, opened or is locked beyond the busy timeout."""


class NoRegistry(RegistryError):
    """No registry where the settings point: only ``init`` creates one (issue 19), so a command
    run in the wrong folder says so instead of leaving an empty ``registry.db`` behind."""


class SchemaMismatch(RegistryError):
    """The database schema is older or newer than this version of problem-registry."""


class NotFound(RegistryError):
    """A problem, pattern or model version that does not exist was named."""


class ProblemNotFound(NotFound):
    pass


class PatternNotFound(NotFound):
    pass


class ModelNotFound(NotFound):
    pass


class AlreadyExists(RegistryError):
    """Something with the same identity is already registered."""


class DuplicateProblem(AlreadyExists):
    pass


class DuplicatePattern(AlreadyExists):
    pass


class DuplicateModel(AlreadyExists):
    pass


class PatternConflict(AlreadyExists):
    """A re-import names a pattern the problem holds with another expectation (issue 19)."""


class AmbiguousReference(RegistryError):
    """A short reference (hash prefix) matches more than one thing."""


class InvalidValue(RegistryError):
    """A value given by the user is malformed: a slug, an expectation, a gate, a metric..."""


class InvalidExpectation(InvalidValue):
    pass


class CorruptPattern(RegistryError):
    """A pattern file cannot be stored or used: unreadable, truncated, not the kind it claims."""


class UnsafePath(RegistryError):
    """A path points outside where it may, or through a link: refused before anything is read."""


class BundleError(RegistryError):
    """An export bundle is malformed or inconsistent."""


class OutputError(RegistryError):
    """A report or chart cannot be written where asked: not a folder, no right, a full disk."""
