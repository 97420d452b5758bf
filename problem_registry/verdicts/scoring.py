"""Whether an answer is right: the one definition, in SQL, shared by every number and gate.

Everything is scored from stored results against the **current** expectations, so relabelling a
pattern changes every number without any model being called:

- exact / any-of: right when the predicted label is one of the pattern's expected labels;
- forbidden (``not``): right when there is a predicted label and it is none of them;
- range: right when the numeric value lies in ``[expect_min, expect_max]`` (a non-numeric answer
  is wrong);
- an **errored** result (the model raised on that input, or a predictions file had no line for
  it) is answered and wrong: it counts in ``errored`` and in ``wrong``;
- a **missing** result (never replayed: the version is unavailable, or the file was refused) is
  not answered: it counts in ``missing`` only, and ``error_rate`` is ``wrong / answered`` (None
  when nothing was answered). Old versions that cannot load keep an honest rate on what they did
  answer; the gates refuse a candidate with missing answers instead (see :mod:`gates`).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa


def correct_expression(pattern: Any, result: Any, label: Any) -> Any:
    """1 when ``result`` meets ``pattern``'s current expectation, else 0, as SQL.

    ``label`` is ``expected_label`` outer-joined on ``(pattern.id, result.predicted)``: at most one
    row matches (it is the primary key), so the join never multiplies rows.
    """
    return sa.case(
        (result.c.error.is_not(None), 0),
        (
            pattern.c.expect_kind == "range",
            sa.case(
                (result.c.value.between(pattern.c.expect_min, pattern.c.expect_max), 1), else_=0
            ),
        ),
        (
            pattern.c.expect_kind == "not",
            sa.case(
                (sa.and_(result.c.predicted.is_not(None), label.c.label.is_(None)), 1), else_=0
            ),
        ),
        else_=sa.case((label.c.label.is_not(None), 1), else_=0),
    )
