"""Text a user or a model wrote, as the terminal shows it: never markup, never a control sequence.

Titles, labels, file names and notes come from the command line, CSV files, bundles and models.
Handed to rich as strings they were parsed as markup: ``[/oops]`` raised ``MarkupError`` after
the pattern was committed, so every later list or show crashed, and ``[red]x.txt`` showed as
``x.txt``. Printed raw, an escape sequence (CSI, OSC, a C1 control) can recolour, retitle or
rewrite the terminal (issue 16, item 7). Every table, field list and message of the CLI goes
through :func:`~problem_registry.text.visible` and :func:`cell` here, the one place such text is
prepared for a terminal (the pytest plugin's summary uses ``visible`` too).
"""

from __future__ import annotations

import re
from typing import Any

from rich.text import Text

from problem_registry.text import visible

__all__ = ["cell", "json_safe", "visible"]

# What JSON leaves as is but a terminal acts on: DEL and the C1 controls (0x9b is CSI on its own),
# and the bidirectional overrides and isolates that reorder what is shown.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def cell(value: Any) -> Text:
    """A table cell or title for rich: the value's text, made visible, never parsed as markup."""
    return Text("" if value is None else visible(str(value), newlines=True))


def json_safe(text: str) -> str:
    """JSON text with the characters a terminal acts on but JSON leaves raw as ``\\uXXXX``."""
    return _JSON_UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
