"""Does a registered version load now? The answer ``model show`` gives (issue 18, item 5).

A version is loaded exactly as replay loads it, in a model worker process (model code runs
nowhere else), and dropped at once; nothing is predicted or stored. An endpoint is also asked
whether its model is ready, since loading one contacts nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from problem_registry.adapters import ModelUnavailable, check_loadable, load_model
from problem_registry.enums import LoaderKind
from problem_registry.errors import RegistryError
from problem_registry.replay.workers import LoadSpec, WorkerPool
from problem_registry.store.views import ModelVersionView


@dataclass(frozen=True)
class LoadCheck:
    loads: bool
    reason: str  # why not, or "" when it loads


def check_loads(view: ModelVersionView) -> LoadCheck:
    """Load ``view``'s model as replay would; the reason in one line when it cannot."""
    options_text = json.dumps(view.loader_options) if view.loader_options else None
    try:
        if view.loader_kind == LoaderKind.endpoint.value:
            check_loadable(LoaderKind.endpoint, view.loader, None, view.loader_options)
        if view.loader_kind == LoaderKind.predictions.value:  # data only: read here
            load_model(
                view.ref,
                view.loader_kind,
                view.loader,
                view.artifact_path,
                view.artifact_sha256,
            )
            return LoadCheck(True, "")
        pool = WorkerPool(1)
        try:
            pool.begin_load(
                LoadSpec(
                    view.ref,
                    view.loader_kind,
                    view.loader,
                    view.artifact_path,
                    view.artifact_sha256,
                    options_text,
                )
            )
            pool.finish_load(view.ref)
        finally:
            pool.close()
    except (ModelUnavailable, RegistryError) as exc:
        return LoadCheck(False, str(exc))
    return LoadCheck(True, "")


def location(view: ModelVersionView) -> str:
    """Where the version's model is: its file, URL or URI."""
    if view.artifact_path and view.loader_kind != LoaderKind.python.value:
        return str(Path(view.artifact_path))
    return view.loader
