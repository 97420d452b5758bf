"""``--shard I/N``: a deterministic share of a replay's pattern files, for a CI matrix (issue 17).

Shard ``I`` of ``N`` holds the pattern files whose id is ``I - 1`` modulo ``N``: every job of the
matrix computes the same split from the same registry, the shards are disjoint and together hold
every file, and consecutive ids (files added together) spread evenly over the shards, so each
job predicts about ``1/N`` of every version's missing pairs. A final job gates on the stored
results of all shards and predicts nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from problem_registry.errors import InvalidValue

_SHARD = re.compile(r"^\s*(\d{1,4})\s*/\s*(\d{1,4})\s*$")


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based, as a CI matrix counts
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"2/3"``; a one-line :class:`InvalidValue` for anything else."""
        match = _SHARD.match(text or "")
        if match is None:
            raise InvalidValue(f"shard {text!r} is not I/N (say 2/3: the second of three shards)")
        index, count = int(match.group(1)), int(match.group(2))
        if not 1 <= index <= count:
            raise InvalidValue(f"shard {text!r}: I must be from 1 to N (say 1/{max(count, 1)})")
        return cls(index, count)

    def clause(self, file_id: Any) -> Any:
        """The SQL condition "this file id is in the shard" (the same on SQLite and PostgreSQL)."""
        return file_id % self.count == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"
