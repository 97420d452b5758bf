"""The static HTML report: ``build_report(registry, DIR)`` writes DIR/index.html and its pages.

Not part of the core: it imports Jinja2, matplotlib (through :mod:`problem_registry.charts`) and
Pillow, and is imported only by the commands and the pytest session that write a report.
:func:`write_report` does the same and says which files it drew, kept, or deleted: a report
rebuilt into its folder draws again only what changed.
"""

from problem_registry.report.builder import ReportBuild, build_report, write_report

__all__ = ["ReportBuild", "build_report", "write_report"]
