"""Per-pattern results as CSV, for a notebook (issue 19, item 11: ``report --csv FILE``).

One row per pattern x version: ``problem, pattern, file, sha256, polarity, model, version,
expected, answer, error, correct, score``, where ``correct`` is judged against the *current*
expectation (empty: no result) and ``score`` is the probability the model's scores gave the
expected answer (empty: labels only). ``pandas.read_csv`` reads it as it is. Problems are read
:data:`~problem_registry.verdicts.timeline.PROBLEMS_PER_QUERY` at a time and written as they
come, so memory does not grow with the registry; the file appears whole or not at all.
"""

from __future__ import annotations

import contextlib
import csv
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from problem_registry.errors import OutputError
from problem_registry.refs import RefLike
from problem_registry.store.registry import Registry
from problem_registry.verdicts.metrics import pattern_results
from problem_registry.verdicts.timeline import PROBLEMS_PER_QUERY

COLUMNS = (
    "problem",
    "pattern",
    "file",
    "sha256",
    "polarity",
    "model",
    "version",
    "expected",
    "answer",
    "error",
    "correct",
    "score",
)
# A cell a spreadsheet would run as a formula (CSV injection): a label is user text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def write_results_csv(
    registry: Registry,
    path: Path,
    *,
    model: str | None = None,
    versions: Sequence[RefLike] | None = None,
    problems: Sequence[str] | None = None,
) -> int:
    """Write the rows to ``path`` (replaced atomically); how many rows were written."""
    chosen = list(problems) if problems is not None else [v.slug for v in registry.problems.list()]
    belongs = registry.problems.models()
    path = Path(path)
    folder = path.parent if str(path.parent) else Path()
    try:
        handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".csv", dir=folder)
    except OSError as exc:
        raise _unwritable(path, exc) from None
    written = 0
    try:
        with os.fdopen(handle, "w", newline="", encoding="utf-8") as stream:
            writer = csv.writer(stream)
            writer.writerow(COLUMNS)
            for start in range(0, len(chosen), PROBLEMS_PER_QUERY):
                chunk = chosen[start : start + PROBLEMS_PER_QUERY]
                for r in pattern_results(registry, problems=chunk, model=model, versions=versions):
                    names = belongs.get(r.problem)
                    if names and r.model not in names:  # not a model it belongs to
                        continue
                    writer.writerow(
                        [
                            r.problem,
                            r.pattern_id,
                            _cell(r.file),
                            r.sha256,
                            r.polarity,
                            r.model,
                            r.version,
                            _cell(r.expected),
                            _cell(r.predicted if r.answered and r.error is None else None),
                            _cell(r.error),
                            "" if r.correct is None else str(r.correct).lower(),
                            "" if r.p_expected is None else repr(float(r.p_expected)),
                        ]
                    )
                    written += 1
        Path(temporary).chmod(0o644)
        Path(temporary).replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            Path(temporary).unlink()
        raise _unwritable(path, exc) from None
    except BaseException:
        with contextlib.suppress(OSError):
            Path(temporary).unlink()
        raise
    return written


def _cell(text: str | None) -> str:
    """User text as a cell; one a spreadsheet would run as a formula gets a leading quote (a
    number, "-0.5" from a regressor, is left as it is)."""
    if text is None:
        return ""
    if text.startswith(_FORMULA_START):
        try:
            float(text)
        except ValueError:
            return f"'{text}"
    return text


def _unwritable(path: Path, exc: OSError) -> OutputError:
    return OutputError(
        f"cannot write {path}: {exc.strerror or exc}; choose a file in a folder you can write to"
    )
