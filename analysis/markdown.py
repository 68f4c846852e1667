"""Formatting numbers and tables for summary.md; a missing number prints as "n/a", never "nan"."""

from __future__ import annotations

import math
from typing import Sequence

NA = "n/a"


def missing(value: object) -> bool:
    try:
        return value is None or math.isnan(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def pct(value: object, digits: int = 1) -> str:
    """A fraction as a percentage (0.234 -> 23.4)."""
    return NA if missing(value) else f"{float(value) * 100:.{digits}f}"  # type: ignore[arg-type]


def num(value: object, spec: str = ".3f") -> str:
    return NA if missing(value) else format(float(value), spec)  # type: ignore[arg-type]


def share(value: object) -> str:
    return NA if missing(value) else f"{float(value):.3g}"  # type: ignore[arg-type]


def steps(value: object) -> str:
    """Step counts as the paper writes them: 40000 -> 40k."""
    if missing(value):
        return NA
    count = int(value)  # type: ignore[call-overload]
    return f"{count // 1000}k" if count >= 1000 and count % 1000 == 0 else str(count)


FLOPS_BUDGET_MIN = 1e9  # no sweep trains a billion steps, and no allocation costs under a billion FLOPs


def _is_flops(value: float, kind: str | None) -> bool:
    """A budget's kind as the results table's budget_kind says it; told apart by size where it is not given."""
    return kind == "flops" if kind in ("steps", "flops") else value >= FLOPS_BUDGET_MIN


def budget_name(value: object, kind: str | None = None) -> str:
    """A budget as the tables print it: steps (24, 240k) or FLOPs (1.49e+21 FLOPs)."""
    if missing(value):
        return NA
    number = float(value)  # type: ignore[arg-type]
    return f"{number:.3g} FLOPs" if _is_flops(number, kind) else steps(number)


def budget_id(value: object, kind: str | None = None) -> str:
    """The budget's part of an allocation id: N240000 or F1.49e21."""
    number = float(value)  # type: ignore[arg-type]
    return f"F{number:.3g}".replace("e+", "e") if _is_flops(number, kind) else f"N{int(number)}"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
