"""A replay that could not read some pattern content fails, naming the patterns (issue 17).

A runner missing content used to print "0 predicted" and exit 0: a green replay that replayed
nothing. The CLI's ``replay`` and the pytest plugin both end with this one line instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from problem_registry.replay.summary import ReplaySummary

MAX_NAMED = 5


def unreadable_message(summary: ReplaySummary) -> str:
    """One line naming the patterns whose content could not be read, and the fix."""
    names = [name for refused in summary.refused for name in refused.patterns]
    shown = ", ".join(names[:MAX_NAMED])
    if len(names) > MAX_NAMED:
        shown += f" and {len(names) - MAX_NAMED} more"
    return (
        f"the content of {len(summary.refused)} pattern file(s) could not be read, so they were "
        f"not replayed: {shown or 'no pattern uses them'}; restore them (problem-registry import "
        "BUNDLE, or `problem-registry check` where the files are) or remove those patterns"
    )
