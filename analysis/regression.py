"""Straight-line fits y ~ x with R^2, Spearman's rank correlation and leave-one-out error.

Every statistic is NaN when the data cannot define it, and the fit carries a note saying why,
so a summary can say so instead of printing a number that means nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

import numpy as np
import pandas as pd

# Two points always lie on a line (R^2 = 1, Spearman +-1): it takes three to test a relationship.
MIN_POINTS = 3


@dataclass(frozen=True)
class LineFit:
    n: int
    slope: float
    intercept: float
    r2: float
    spearman: float
    loo_mae: float  # mean absolute error of each point predicted by the line through the others
    note: str  # empty when every statistic is defined

    def as_row(self) -> dict[str, float | int | str]:
        return asdict(self)


def _known(x: Iterable[float], y: Iterable[float]) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = ~(np.isnan(x) | np.isnan(y))
    return x[keep], y[keep]


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    dx = x - x.mean()
    slope = float((dx * (y - y.mean())).sum() / (dx * dx).sum())
    return slope, float(y.mean() - slope * x.mean())


def r_squared(x: Iterable[float], y: Iterable[float]) -> float:
    """Share of y's variance the least-squares line explains (the squared Pearson correlation)."""
    x, y = _known(x, y)
    if len(x) < MIN_POINTS or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    slope, intercept = _line(x, y)
    residual = y - (slope * x + intercept)
    return float(1 - (residual * residual).sum() / ((y - y.mean()) ** 2).sum())


def spearman(x: Iterable[float], y: Iterable[float]) -> float:
    """Pearson correlation of the ranks, tied values sharing their mean rank."""
    x, y = _known(x, y)
    if len(x) < MIN_POINTS:
        return float("nan")
    rx = pd.Series(x).rank(method="average").to_numpy() - (len(x) + 1) / 2
    ry = pd.Series(y).rank(method="average").to_numpy() - (len(y) + 1) / 2
    scale = np.sqrt((rx * rx).sum() * (ry * ry).sum())
    return float((rx * ry).sum() / scale) if scale > 0 else float("nan")


def loo_mae(x: Iterable[float], y: Iterable[float]) -> float:
    """Mean absolute leave-one-out prediction error: how well the line would pick an unseen checkpoint."""
    x, y = _known(x, y)
    if len(x) < MIN_POINTS:
        return float("nan")
    errors = []
    for i in range(len(x)):
        others = np.arange(len(x)) != i
        if np.ptp(x[others]) == 0:
            return float("nan")  # the others all sit at one x: no line through them
        slope, intercept = _line(x[others], y[others])
        errors.append(abs(slope * x[i] + intercept - y[i]))
    return float(np.mean(errors))


def fit_line(x: Iterable[float], y: Iterable[float]) -> LineFit:
    x, y = _known(x, y)
    n = len(x)
    nan = float("nan")
    if n < MIN_POINTS:
        return LineFit(n, nan, nan, nan, nan, nan, f"undefined: {n} point{'s' * (n != 1)}, a fit needs {MIN_POINTS}")
    if np.ptp(x) == 0:
        return LineFit(n, nan, nan, nan, nan, nan, "undefined: every x is the same")
    slope, intercept = _line(x, y)
    note = "R^2 and Spearman undefined: every y is the same" if np.ptp(y) == 0 else ""
    loo = loo_mae(x, y)
    if np.isnan(loo) and not note:
        note = "leave-one-out undefined: dropping one point leaves a single x"
    return LineFit(n, slope, intercept, r_squared(x, y), spearman(x, y), loo, note)


def grouped_fits(frame: pd.DataFrame, x: str, y: str, by: str, pooled: str = "pooled") -> pd.DataFrame:
    """One fit per value of `by`, in the order the groups first appear, and one over all rows (`by` = `pooled`)."""
    rows = [{by: key, **fit_line(group[x], group[y]).as_row()} for key, group in frame.groupby(by, sort=False)]
    rows.append({by: pooled, **fit_line(frame[x], frame[y]).as_row()})
    return pd.DataFrame(rows)
