"""Production feedback into patterns (issue 20): production predictions come in as *cases*
(``ingest``), are ranked for a tester (``queue``), become patterns or are discarded
(``review``), have neighbours (``similarity``), and batches are compared (``drift``).

A layer above ``verdicts`` and below the surfaces: no typer, rich, pytest, matplotlib or Jinja2.
"""
