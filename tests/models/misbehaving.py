"""Models that misbehave in every way issue 16 lists, beside a healthy one to compare with.

Each answers (when it answers) what it sees: an image's top-left pixel (``"(0, 0, 255)"``) or a
JSON input's ``word``, so a version handed an input another version edited answers differently.
Every loader takes no artifact; ``module:callable`` names them, e.g.
``tests.models.misbehaving:exits``.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

from PIL import Image


def describe(item: Any) -> str:
    if isinstance(item, Image.Image):
        return str(item.getpixel((0, 0)))
    if isinstance(item, dict):
        return str(item["word"])
    return str(item)


def _answers(items: Sequence[Any]) -> list[str]:
    return [describe(item) for item in items]


def healthy(artifact: str | None = None) -> Any:
    return _answers


def exits(artifact: str | None = None) -> Any:
    """``os._exit(0)`` while predicting: the process ends at once, "successfully"."""

    def predict(items: Sequence[Any]) -> Any:
        os._exit(0)

    return predict


def sys_exits(artifact: str | None = None) -> Any:
    def predict(items: Sequence[Any]) -> Any:
        sys.exit(0)

    return predict


def segfaults(artifact: str | None = None) -> Any:
    def predict(items: Sequence[Any]) -> Any:
        os.kill(os.getpid(), signal.SIGSEGV)
        time.sleep(10)

    return predict


def exits_while_loading(artifact: str | None = None) -> Any:
    os._exit(3)


def hangs(artifact: str | None = None) -> Any:
    def predict(items: Sequence[Any]) -> Any:
        time.sleep(3600)

    return predict


def prints(artifact: str | None = None) -> Any:
    """Chatty on stdout, through Python and through the file descriptor; right answers."""

    def predict(items: Sequence[Any]) -> list[str]:
        print("model says hello", flush=True)
        os.write(1, b"{not json\n")
        return _answers(items)

    return predict


def mutates(artifact: str | None = None) -> Any:
    """Pastes red over every image and rewrites every JSON input, then answers what it sees."""

    def predict(items: Sequence[Any]) -> list[str]:
        for item in items:
            if isinstance(item, Image.Image):
                item.paste((255, 0, 0), (0, 0, *item.size))
            elif isinstance(item, dict):
                item["word"] = "poisoned"
        return _answers(items)

    return predict


def raises(artifact: str | None = None) -> Any:
    def predict(items: Sequence[Any]) -> Any:
        raise ValueError("cannot read this input")

    return predict


def one_short(artifact: str | None = None) -> Any:
    def predict(items: Sequence[Any]) -> list[str]:
        return _answers(items)[:-1]

    return predict


class _Unlistable:
    """Looks like a 1-D numpy array, but its tolist() raises."""

    ndim = 1

    def __init__(self, count: int) -> None:
        self.count = count

    def __len__(self) -> int:
        return self.count

    def tolist(self) -> list[Any]:
        raise RuntimeError("this array cannot be listed")


def unlistable(artifact: str | None = None) -> Any:
    def predict(items: Sequence[Any]) -> Any:
        return _Unlistable(len(items))

    return predict


def surrogate(artifact: str | None = None) -> Any:
    """A label with a lone surrogate: no UTF-8 encoding exists for it."""

    def predict(items: Sequence[Any]) -> list[str]:
        return ["bad \udc80 label" for _ in items]

    return predict


def odd_objects(artifact: str | None = None) -> Any:
    """Answers an object of its own class: unusable, and never unpickled by the replay."""

    class Answer:
        pass

    def predict(items: Sequence[Any]) -> list[Any]:
        return [Answer() for _ in items]

    return predict


# For the property test: the loader of each behaviour, and whether a replay must skip it.
BEHAVIOURS: dict[str, tuple[str, bool]] = {
    "healthy": ("healthy", False),
    "prints": ("prints", False),
    "mutates": ("mutates", False),
    "raises": ("raises", False),
    "exits": ("exits", True),
    "sys_exits": ("sys_exits", True),
    "one_short": ("one_short", True),
    "unlistable": ("unlistable", True),
    "surrogate": ("surrogate", False),  # stored escaped since item 8
}


def uses_processes(artifact: str | None = None) -> Any:
    """Starts a process of its own (as joblib or a DataLoader would) to answer."""
    import multiprocessing

    def predict(items: Sequence[Any]) -> list[str]:
        answers = _answers(items)
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            return pool.map(str, answers)

    return predict


def nul_label(artifact: str | None = None) -> Any:
    """A label with a NUL, which PostgreSQL refuses in text (issue 16, item 8)."""

    def predict(items: Sequence[Any]) -> list[str]:
        return [f"nul\x00{describe(item)}" for item in items]

    return predict


def unstorable_error(artifact: str | None = None) -> Any:
    """Raises with a NUL and a lone surrogate in its message."""

    def predict(items: Sequence[Any]) -> Any:
        raise ValueError("bad \x00 input \udcff here")

    return predict


def unstorable_loader(artifact: str | None = None) -> Any:
    """Cannot load, and says so with a NUL and a lone surrogate: the reason reaches the run."""
    raise RuntimeError("weights \x00 missing \udcff")


def huge_label(artifact: str | None = None) -> Any:
    """A 5 MB label per input: stored cut to the documented cap (issue 16, item 12)."""

    def predict(items: Sequence[Any]) -> list[str]:
        return ["x" * 5_000_000 for _ in items]

    return predict


def hangs_telling_pid(artifact: str | None = None) -> Any:
    """Hangs, after writing its worker's pid to ``$HANG_PID_FILE`` (for the kill -9 test)."""

    def predict(items: Sequence[Any]) -> Any:
        with open(os.environ["HANG_PID_FILE"], "w") as handle:  # noqa: PTH123
            handle.write(str(os.getpid()))
        time.sleep(3600)

    return predict


def echoes(artifact: str | None = None) -> Any:
    """Answers a JSON input's ``answer``, or raises its ``raise``: any text a model can write."""

    def predict(items: Sequence[Any]) -> list[Any]:
        answers: list[Any] = []
        for item in items:
            if isinstance(item, dict) and "raise" in item:
                answers.append(ValueError(item["raise"]))
            else:
                answers.append(item.get("answer") if isinstance(item, dict) else describe(item))
        return answers

    return predict
