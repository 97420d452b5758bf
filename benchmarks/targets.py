"""Issue 7's targets, each computed from measurements of the same run (keys of ``run.LABELS``).

"Start-up" has to be named for each target, as the issue leaves it open:

* for a cold replay, the tool's start-up is its warm replay of the same registry (process, imports,
  opening the registry, the Run record, finding nothing missing) and the model's is its own
  import and loading of every version; (c) minus both is what replaying itself costs;
* for a warm replay, start-up is ``problem-registry --version`` (the CLI with nothing to do) for
  the issue's target, and ``python -c 'import sqlalchemy, sqlmodel'`` for the CLI's.
"""

from __future__ import annotations

import argparse

from results import Target

Values = dict[str, float | None]


def evaluate(v: Values, args: argparse.Namespace) -> list[Target]:
    return [*_replay(v, args), *_history(v), *_pytest(v), _memory(v)]


def headline(v: Values) -> float | None:
    """How many times faster a cold replay is than the hand-written tests, for the README."""
    return _ratio(v.get("e_handwritten_scaled"), v.get("c_cold_replay"))


def _replay(v: Values, args: argparse.Namespace) -> list[Target]:
    cold, floor = v["c_cold_replay"], v["b_decode_plus_raw"]
    warm, model = v["warm_replay_same"], v["startup_model"]
    assert cold is not None and floor is not None and warm is not None and model is not None
    work = cold - warm - model
    per_row = v["f_per_row_us"]
    assert per_row
    cold0, floor0 = v["c0_cold_replay"], v["b0_decode_plus_raw"]
    assert cold0 is not None and floor0 is not None
    own_us = (cold0 - warm - model - floor0) / _results(v) * 1e6
    sizes = f"P={args.problems} M={args.versions} {args.cost_ms} ms/input"
    return [
        Target(
            "cold replay <= 1.15 x (b) + start-up",
            work / floor,
            1.15,
            "x",
            f"((c) - tool start-up {warm:.3f} s - model start-up {model:.3f} s) / (b); {sizes}",
        ),
        Target(
            "tool's own cost per stored result <= 3 x (f) per row",
            own_us / per_row,
            3.0,
            "x",
            f"((c) - start-ups - (b)) / results, both without the busy cost = {own_us:.2f} us, "
            f"over (f)'s "
            f"{per_row:.2f} us per row",
        ),
        Target(
            "replay with nothing missing within 1 s of python + SQLAlchemy start-up",
            warm - v["startup_sqlalchemy"],  # type: ignore[operator]
            1.0,
            "s",
            "warm replay of (c)'s registry - python -c 'import sqlalchemy, sqlmodel'",
        ),
    ]


def _history(v: Values) -> list[Target]:
    warm, cli = v["d_warm_replay"], v["startup_cli"]
    return [
        Target(
            "warm replay, P=1000 M=100, within 1 s of start-up",
            None if warm is None or cli is None else warm - cli,
            1.0,
            "s",
            "(d) - problem-registry --version",
        ),
        Target(
            "report --json <= 1.5 x (g), SQLite",
            _ratio(v["g_report_json"], v["g_raw_group_by"]),
            1.5,
            "x",
            "CLI wall, start-up included, over the raw GROUP BY",
        ),
        Target(
            "report --json <= 1.5 x (g), PostgreSQL",
            _ratio(v.get("g_pg_report_json"), v.get("g_pg_raw_group_by")),
            1.5,
            "x",
            "the same on a throwaway PostgreSQL server holding a copy of the history; "
            "start-up alone (report --json, no rows): "
            + _share(v.get("g_pg_report_json_empty"), v.get("g_pg_raw_group_by"))
            + "; importing SQLAlchemy, SQLModel and psycopg alone: "
            + _share(v.get("g_pg_imports"), v.get("g_pg_raw_group_by")),
        ),
        Target(
            "whole HTML report < 60 s",
            v["h_report_html"],
            60.0,
            "s",
            "CLI wall",
        ),
    ]


def _pytest(v: Values) -> list[Target]:
    return [
        Target(
            "pytest --registry <= 1.2 x replay",
            _ratio(v["i_pytest_registry"], v["c_cold_replay"]),
            1.2,
            "x",
            "(i) / (c): child processes, copies of the same empty registry; pytest without the "
            "other installed plugins (the row below has them)",
        ),
        Target(
            "plugin installed, unused < 20 ms",
            v["plugin_unused"],
            20.0,
            "ms",
            "median paired difference of CPU time, every installed plugin loaded",
        ),
        Target(
            "plugin installed, unused < 20 ms (isolated)",
            v["plugin_unused_isolated"],
            20.0,
            "ms",
            "median paired difference of CPU time, autoload off: our plugin alone, bare pytest",
        ),
    ]


def _memory(v: Values) -> Target:
    peaks = sorted(
        (int(key.rsplit("_m", 1)[1]), value)
        for key, value in v.items()
        if key.startswith("j_peak_rss_m") and value is not None
    )
    (low, low_mb), (high, high_mb) = peaks[0], peaks[-1]
    return Target(
        f"peak memory of a cold replay, M={high} <= 1.2 x M={low}",
        high_mb / low_mb,
        1.2,
        "x",
        f"{high_mb:.0f} MB / {low_mb:.0f} MB",
    )


def _results(v: Values) -> float:
    executemany, per_row = v["f_executemany"], v["f_per_row_us"]
    assert executemany is not None and per_row
    return executemany / per_row * 1e6


def _share(part: float | None, whole: float | None) -> str:
    """``part`` in seconds and as a share of ``whole``, for a target's detail."""
    if part is None or not whole:
        return "-"
    return f"{part:.3f} s, {part / whole:.2f} x (g)"


def _ratio(top: float | None, bottom: float | None) -> float | None:
    return None if top is None or not bottom else top / bottom
