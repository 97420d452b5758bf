"""The report's Jinja2 environment: autoescaped templates and the filters they use.

Built once per process (a report renders a thousand pages with it; Jinja compiles each template
once per environment), by the main process for the index and by each worker for the pages.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from problem_registry.verdicts.status import percent

TEMPLATES = Path(__file__).parent / "templates"
SHADES = 6  # confusion cells: classes shade-0 (none) .. shade-5 (the most), in style.css


@lru_cache(maxsize=1)
def environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        # Every template is HTML: escape by default, including names that select_autoescape's
        # extension list would miss (Jinja2 does not autoescape unless told).
        autoescape=select_autoescape(enabled_extensions=("html", "j2"), default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["percent"] = lambda rate: "–" if rate is None else percent(rate)
    environment.filters["shade"] = shade
    return environment


def shade(count: float, most: float) -> int:
    """How dark a confusion cell is: 0 for none, else 1..SHADES-1 by its share of ``most``."""
    if not count or not most:
        return 0
    return max(1, min(SHADES - 1, round(count / most * (SHADES - 1))))


def render(template: str, **context: object) -> str:
    return environment().get_template(template).render(**context)
