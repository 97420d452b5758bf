"""Where new patterns come from besides single files: a ``label/file`` folder and a CSV.

Both are untrusted input: links are refused, and a CSV's paths must stay beside it
(:func:`~problem_registry.store.paths.inside`).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from problem_registry.enums import Polarity, Source
from problem_registry.errors import InvalidValue, UnsafePath
from problem_registry.expectations import Expectation
from problem_registry.plain_files import read_plain
from problem_registry.store.paths import inside

CSV_COLUMNS = ("path", "expected", "polarity", "note")
MAX_CSV_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class NewPattern:
    """One file to add to a problem, with everything its row needs."""

    path: Path
    expectation: Expectation
    polarity: Polarity = Polarity.positive
    source: Source = Source.contrived
    note: str = ""
    origin: str = ""  # where it was read from, for messages: "labels.csv line 3"


def labelled_files(folder: Path) -> list[Path]:
    """The files of a ``label/file`` folder, sorted; links and stray files are refused."""
    if not folder.is_dir():
        raise InvalidValue(f"{folder} is not a folder; lay it out as {folder}/<label>/<file>")
    found: list[Path] = []
    for label_dir in sorted(folder.iterdir()):
        if label_dir.name.startswith("."):
            continue
        _refuse_link(label_dir)
        if not label_dir.is_dir():
            raise InvalidValue(
                f"{label_dir} is a file directly in {folder}; put each file in a folder named "
                "after its expected label"
            )
        for path in sorted(label_dir.iterdir()):
            if path.name.startswith("."):
                continue
            _refuse_link(path)
            if path.is_dir():
                raise InvalidValue(f"{path} is a folder; labels are one level deep: label/file")
            found.append(path)
    if not found:
        raise InvalidValue(f"no files in {folder}; lay it out as {folder}/<label>/<file>")
    return found


def read_csv(csv_path: Path, *, source: Source = Source.contrived) -> list[NewPattern]:
    base = csv_path.resolve().parent
    try:
        # A plain file of bounded size: a FIFO named by --csv hung the import (issue 16, item 9).
        text = read_plain(csv_path, max_bytes=MAX_CSV_BYTES).decode("utf-8-sig")
        with io.StringIO(text, newline="") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip() for name in reader.fieldnames or []]
            missing = [name for name in ("path", "expected") if name not in header]
            if missing:
                raise InvalidValue(
                    f"{csv_path} lacks column {missing[0]!r}; the header must be "
                    f"{','.join(CSV_COLUMNS)} (polarity and note optional)"
                )
            rows = list(reader)
    except OSError as exc:
        raise InvalidValue(f"cannot read CSV {csv_path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InvalidValue(f"cannot read CSV {csv_path}: {exc}") from None
    new: list[NewPattern] = []
    for line, row in enumerate(rows, start=2):
        where = f"{csv_path} line {line}"
        if None in row:  # DictReader's key for the fields past the header's (their values: a list)
            raise InvalidValue(
                f"{where} has more fields than the header ({', '.join(header)}); quote a field "
                'that holds a comma: "a,b"'
            )
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        if not row.get("path"):
            raise InvalidValue(f"{where}: empty path")
        path = inside(base, Path(row["path"]), what=f"{where}: path {row['path']!r}")
        try:
            expectation = Expectation.parse(row.get("expected", ""))
            polarity = Polarity(row.get("polarity") or Polarity.positive.value)
        except (ValueError, InvalidValue) as exc:  # InvalidExpectation too: name the row
            raise InvalidValue(f"{where}: {exc}") from None
        new.append(NewPattern(path, expectation, polarity, source, row.get("note", ""), where))
    if not new:
        raise InvalidValue(f"{csv_path} has a header but no rows")
    return new


def _refuse_link(path: Path) -> None:
    if path.is_symlink():
        raise UnsafePath(f"{path} is a symbolic link; import real files only")
