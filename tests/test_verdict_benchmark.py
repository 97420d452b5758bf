"""The verdict benchmark keeps working: a tiny slice, checked for structure, never for figures."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "verdicts.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verdicts_benchmark", BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny() -> tuple[ModuleType, dict[str, Any]]:
    bench = _load()
    return bench, bench.run("tiny", seed=3, workers=1, pairs=2, transforms=4)


def _rates(node: Any) -> list[float]:
    """Every rate-like figure in the result (the values under keys naming a rate)."""
    found: list[float] = []
    if isinstance(node, dict):
        for key, value in node.items():
            words = ("fail", "review", "flag", "predicted", "measured", "plain_ci")
            if isinstance(value, float) and any(w in key for w in words):
                found.append(value)
            else:
                found.extend(_rates(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_rates(value))
    return found


def test_one_row_per_rule_with_every_column(tiny: tuple[ModuleType, dict[str, Any]]) -> None:
    bench, result = tiny
    names = [spec.name for spec in bench.evaluate.rule_specs()]
    assert [row["rule"] for row in result["rules"]] == names
    for row in result["rules"]:
        assert set(row) >= {"not_worse", "plain_ci_fail_run8", "plain_ci_fail_run_all", "10+ pts"}
        assert set(row["not_worse"]) == {"cases", "fail_run8", "review_run8", "fail_run_all"}
    assert result["meta"]["problems"] == 8
    assert {"default", "default, labels-only model"} <= {p["rule"] for p in result["power"]}
    assert set(result["canary"]) == {"point", "interval"}


def test_rates_are_rates_and_the_result_is_json(tiny: tuple[ModuleType, dict[str, Any]]) -> None:
    _, result = tiny
    rates = _rates(result)
    assert rates and all(0.0 <= r <= 1.0 for r in rates)
    assert json.loads(json.dumps(result)) == result


def test_markdown_has_a_line_per_rule(tiny: tuple[ModuleType, dict[str, Any]]) -> None:
    bench, result = tiny
    text = bench.report.markdown(result)
    for row in result["rules"]:
        assert f"| {row['rule']} |" in text
