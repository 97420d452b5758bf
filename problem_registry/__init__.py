"""problem-registry: every known model problem in a database, replayed against every version.

The names below are imported lazily: this package is imported by the pytest plugin entry point in
every pytest run of every project that installs it, and must cost nothing there.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "Registry": "problem_registry.store.registry",
    "NewPattern": "problem_registry.store.patterns",
    "Expectation": "problem_registry.expectations",
    "RegistryError": "problem_registry.errors",
}

if TYPE_CHECKING:
    from problem_registry.errors import RegistryError
    from problem_registry.expectations import Expectation
    from problem_registry.store.patterns import NewPattern
    from problem_registry.store.registry import Registry

__all__ = ["Expectation", "NewPattern", "Registry", "RegistryError", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'problem_registry' has no attribute {name!r}")
