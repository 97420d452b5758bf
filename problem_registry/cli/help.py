"""Help in the user's words: every option and argument shows a placeholder such as ``FILE``, ``N``
or ``NAME@VERSION``, never a Python type (``<bool>``, ``<list[Path]>``, ``<int range>``: what
Typer prints by default, issue 19 item 7).

Commands give their own metavar where a word says more (``--candidate NAME@VERSION``); a
parameter left without one is named after itself here (``--title TITLE``, as argparse does), and
a switch shows none, once, when the command is built.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

import typer
from typer.core import TyperArgument


def humanise(command: Any) -> Any:
    """Give ``command`` and its subcommands a human metavar for every parameter; returns it."""
    if command.help:
        command.help = _reflowed(command.help)
    params: list[Any] = [*command.params, command.get_help_option(typer.Context(command))]
    for param in params:
        if param is None:
            continue
        if param.metavar is None:
            param.metavar = _metavar(param)
        if isinstance(param, TyperArgument):
            # An argument's name column already shows its metavar; Typer would add its Python
            # type beside it, and an argument object takes no metavar for that column.
            param.display_type_rich = _no_type  # type: ignore[method-assign]
    for sub in getattr(command, "commands", {}).values():  # a group's commands
        humanise(sub)
    return command


def choices(values: Iterable[Any]) -> str:
    """The metavar of an option taking one of ``values`` (an Enum class): ``[a|b]``."""
    return "[" + "|".join(str(getattr(value, "value", value)) for value in values) + "]"


def _reflowed(text: str) -> str:
    """The docstring with each paragraph on one line, for the terminal to wrap: Typer keeps the
    line breaks of every paragraph after the first, so help broke mid-sentence wherever the
    source did. A paragraph laid out in columns (two spaces in a row) keeps its lines."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(
        paragraph if "  " in paragraph else " ".join(paragraph.split()) for paragraph in paragraphs
    )


def _metavar(param: Any) -> str:
    if getattr(param, "is_flag", False):
        return ""  # a switch takes no value: show none
    return (param.name or "value").upper()


def _no_type(ctx: Any) -> None:
    return None
