"""The static HTML report: ``build_report(registry, DIR)`` writes DIR/index.html and its pages.

Not part of the core: it imports Jinja2, matplotlib (through :mod:`problem_registry.charts`) and
Pillow, and is imported only by the commands and the pytest session that write a report.
"""

from problem_registry.report.builder import build_report

__all__ = ["build_report"]
