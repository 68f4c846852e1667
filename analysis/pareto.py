"""Pareto fronts of accuracy (higher is better) against compute (lower is better)."""

from __future__ import annotations

import numpy as np


def pareto_mask(cost: np.ndarray, value: np.ndarray) -> np.ndarray:
    """True where no other point costs no more and scores no less, and is better in one of the two.

    Identical points do not dominate each other, so ties are all on the front. A point with a NaN
    is never on the front and dominates nothing: its position is unknown.
    """
    cost = np.asarray(cost, dtype=float)
    value = np.asarray(value, dtype=float)
    known = ~(np.isnan(cost) | np.isnan(value))
    c, v = cost[known], value[known]
    # All pairs at once: the sweeps analysed here have hundreds of points, not millions.
    no_worse = (c[None, :] <= c[:, None]) & (v[None, :] >= v[:, None])
    better = (c[None, :] < c[:, None]) | (v[None, :] > v[:, None])
    mask = np.zeros(len(cost), dtype=bool)
    mask[known] = ~(no_worse & better).any(axis=1)
    return mask


def front_steps(cost: np.ndarray, value: np.ndarray, mask: np.ndarray, until: float | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """The front as a step line: the best accuracy reachable with at most x compute.

    Drawn with plotly's line_shape "hv"; `until` carries the last level on to the right edge.
    """
    order = np.argsort(np.asarray(cost, dtype=float)[mask], kind="stable")
    xs = np.asarray(cost, dtype=float)[mask][order]
    ys = np.asarray(value, dtype=float)[mask][order]
    if len(xs) and until is not None and until > xs[-1]:
        xs, ys = np.append(xs, until), np.append(ys, ys[-1])
    return xs, ys
