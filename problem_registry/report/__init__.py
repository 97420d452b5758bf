"""The static HTML report, with the pictures it is made of: ``charts/`` (matplotlib) and
``gallery/`` (Pillow).

Not part of the core, and imported only by the commands and the pytest session that write a
report: :func:`~problem_registry.report.builder.build_report` writes DIR/index.html and its pages,
:func:`~problem_registry.report.builder.write_report` also says which files it drew, kept or
deleted. This package imports nothing itself, so a gallery is drawn without loading matplotlib.
"""
