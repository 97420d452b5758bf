"""Which model versions a gallery shows: ``name@version`` refs from what a user typed.

A bare version (``v3``) is accepted when only one model has it, and refused as ambiguous
otherwise, so ``--version v3`` works in the common one-model registry without ever picking
the wrong model's ``v3`` in a shared one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from problem_registry.errors import AmbiguousReference, ModelNotFound

if TYPE_CHECKING:
    from problem_registry.store.registry import Registry


def resolve_version(registry: Registry, text: str) -> str:
    """``name@version``, or a bare version that only one model has, as a ``name@version`` ref."""
    return resolve_versions(registry, [text])[0]


def resolve_versions(registry: Registry, texts: Sequence[str]) -> list[str]:
    """:func:`resolve_version` for many, reading the registered versions once."""
    known = registry.models.list()
    refs = {v.ref for v in known}
    out = []
    for text in texts:
        if "@" in text:
            if text not in refs:
                raise ModelNotFound(f"no model version {text}; see `problem-registry model list`")
            out.append(text)
            continue
        matches = [v.ref for v in known if v.version == text]
        if not matches:
            raise ModelNotFound(f"no model version {text!r}; see `problem-registry model list`")
        if len(matches) > 1:
            raise AmbiguousReference(
                f"version {text!r} exists for several models ({', '.join(matches)}); "
                "give NAME@VERSION"
            )
        out.append(matches[0])
    return out
