"""``report --json``'s rows as text, written out directly rather than through :mod:`json`.

The same text as ``json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``
(tests/test_metrics.py holds them equal) at well under half its cost: docs/performance.md has
the measurement that keeps this module (100,000 rows at 1,000 problems x 100 versions).
"""

from __future__ import annotations

import json
from functools import lru_cache

compact_json = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode


# A slug, title or version recurs on every row of its problem or version: encode each once.
json_text = lru_cache(maxsize=8192)(compact_json)


def problem_json(slug: str, title: str, status: str, allowed_regressions: int) -> tuple[str, str]:
    """A problem's keys of a row, before and after the scores (keys sorted)."""
    return (
        f'{{"allowed_regressions":{allowed_regressions},',
        f'"problem":{json_text(slug)},"status":{json_text(status)},"title":{json_text(title)},',
    )


def version_json(model: str, version: str, is_champion: bool) -> tuple[str, str, str]:
    """A version's keys of a row: before the scores, before the polarity, and the last."""
    return (
        f'"champion":{json_scalar(is_champion)},',
        f'"model":{json_text(model)},',
        f'"version":{json_text(version)}}}',
    )


def assemble_json(
    problem: tuple[str, str], version: tuple[str, str, str], scores: str, polarity: str
) -> str:
    """One row of ``report --json``: its parts in sorted-key order."""
    return f"{problem[0]}{version[0]}{scores}{version[1]}{polarity}{problem[1]}{version[2]}"


def json_scalar(value: bool | float | None) -> str:
    """What :mod:`json` writes for None, a bool, an int or a (finite) float."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    return repr(value)
