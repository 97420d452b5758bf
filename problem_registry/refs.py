"""A model version's name, ``NAME@VERSION``: parsed, printed and "not found" in one place.

Every layer names versions with :class:`ModelRef`; the library's functions also take the text
form (``"digits@v3"``) for notebooks and parse it once, at their boundary, with :meth:`ModelRef.of`.
"""

from __future__ import annotations

from dataclasses import dataclass

from problem_registry.errors import InvalidValue, ModelNotFound

SEPARATOR = "@"


def format_ref(name: str, version: str) -> str:
    """``NAME@VERSION``: the one spelling, also for hot loops that hold the two parts."""
    return f"{name}{SEPARATOR}{version}"


@dataclass(frozen=True, order=True)
class ModelRef:
    name: str
    version: str

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        """``NAME@VERSION`` as ``--candidate`` and friends take it; anything else is refused."""
        name, sep, version = text.partition(SEPARATOR)
        if not sep or not name or not version:
            raise InvalidValue(f"{text!r} is not NAME@VERSION, e.g. digits@v3")
        return cls(name, version)

    @classmethod
    def of(cls, ref: ModelRef | str) -> ModelRef:
        return ref if isinstance(ref, ModelRef) else cls.parse(ref)

    def __str__(self) -> str:
        return format_ref(self.name, self.version)

    def not_found(self, where: str = "") -> ModelNotFound:
        """The error for a version the registry does not hold, worded once."""
        return ModelNotFound(f"no model version {self}{where}; see `problem-registry model list`")


RefLike = ModelRef | str
