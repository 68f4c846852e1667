"""Accuracy against the teacher's share of the budget: the fitted curve, its optimum, and the ranking
of the allocations actually trained.

The curve is a quadratic in ln(share): the shares of a sweep are spaced geometrically (1/12, 1/6,
1/3, 1/2 by default) and the paper's accuracies rise then fall across them, which a parabola in log
share describes with the fewest parameters that can place an interior optimum.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd

from analysis.stats import NO_DIFFERENCE, Difference, as_columns, column_names, compare

FIT_SHARES = 3  # a parabola needs three distinct shares (and with exactly three it passes through them)
CURVE = ["budget", "teacher_size", "student_size"]  # one curve per budget and pair of encoder sizes
POINT = [*CURVE, "teacher_steps", "student_steps", "teacher_share"]


@dataclass(frozen=True)
class ShareFit:
    shares: int  # distinct shares fitted
    a: float  # accuracy = a + b ln(share) + c ln(share)^2
    b: float
    c: float
    optimum_share: float  # the fitted maximum over the tested range of shares
    optimum_accuracy: float
    optimum_where: str  # "inside" the tested range, at its "edge", or "" without a fit
    note: str


def curve_value(a: float, b: float, c: float, share: np.ndarray) -> np.ndarray:
    """The fitted accuracy a + b ln(share) + c ln(share)^2."""
    u = np.log(np.asarray(share, dtype=float))
    return a + b * u + c * u * u


def fit_share_curve(share: np.ndarray, accuracy: np.ndarray) -> ShareFit:
    share, accuracy = np.asarray(share, dtype=float), np.asarray(accuracy, dtype=float)
    keep = ~(np.isnan(share) | np.isnan(accuracy)) & (share > 0)
    share, accuracy = share[keep], accuracy[keep]
    distinct = len(np.unique(share))
    nan = float("nan")
    if distinct < FIT_SHARES:
        return ShareFit(distinct, nan, nan, nan, nan, nan, "",
                        f"no curve: {distinct} distinct share{'s' * (distinct != 1)}, a fit needs {FIT_SHARES}")
    if np.ptp(accuracy) == 0:
        return ShareFit(distinct, nan, nan, nan, nan, nan, "", "no optimum: every share scores the same")
    u = np.log(share)
    c, b, a = np.polyfit(u, accuracy, 2)
    # The maximum over the tested range: the vertex when the parabola opens downward inside it, else an end.
    candidates = [u.min(), u.max()]
    if c < 0 and u.min() < -b / (2 * c) < u.max():
        candidates.append(-b / (2 * c))
    values = curve_value(a, b, c, np.exp(candidates))
    best = int(np.argmax(values))
    where = "inside" if best == 2 else "edge"
    note = "exact through 3 shares: nothing is left over to test the curve" if distinct == FIT_SHARES else ""
    return ShareFit(distinct, float(a), float(b), float(c), float(np.exp(candidates[best])), float(values[best]),
                    where, note)


def allocation_points(students: pd.DataFrame, column: str) -> pd.DataFrame:
    """One point per allocation: final student accuracy on `column`, averaged over seeds."""
    frame = students[[*POINT, "seed", "allocation_id", column]].dropna(subset=[column])
    grouped = frame.groupby(POINT, dropna=False, sort=True)
    points = grouped[column].agg(accuracy="mean", accuracy_sd="std", seeds="count").reset_index()
    points["allocation_ids"] = grouped["allocation_id"].agg(lambda ids: " ".join(sorted(ids))).to_numpy()
    return points


def seed_values(students: pd.DataFrame, column: str) -> pd.DataFrame:
    """The values allocation_points averages: final student accuracy on `column` per allocation and seed,
    what the comparisons between allocations pair by seed."""
    frame = students[[*POINT, "seed", column]].dropna(subset=[column])
    return frame.groupby([*POINT, "seed"], dropna=False, sort=True)[column].mean().rename("accuracy").reset_index()


# The best allocation against the runner-up ("second_") and against the most teacher-heavy ("heaviest_"), over
# seeds (analysis/stats.py).
COMPARISONS = (*column_names("second_"), *column_names("heaviest_"))
RANKING = ("allocations", "best_teacher_size", "best_teacher_steps", "best_share", "best_accuracy", "tied_shares",
           "gap_second", "heaviest_share", "heaviest_accuracy", "gap_heaviest", *COMPARISONS)


def _arm(seeds: pd.DataFrame, point: pd.Series) -> pd.Series:
    """One allocation's accuracy per seed."""
    same = np.ones(len(seeds), dtype=bool)
    for column in POINT:
        value = point[column]
        same &= ((seeds[column] == value) | (seeds[column].isna() & pd.isna(value))).to_numpy(dtype=bool)
    return seeds[same].set_index("seed")["accuracy"]


def _versus(seeds: pd.DataFrame | None, best: pd.Series, other: pd.Series | None) -> Difference:
    if seeds is None or other is None or other.name == best.name:
        return NO_DIFFERENCE
    return compare(_arm(seeds, best), _arm(seeds, other))


def rank_allocations(curve: pd.DataFrame, seeds: pd.DataFrame | None = None) -> dict[str, object]:
    """Best allocation among `curve`'s points, its gap to the runner-up and to the most teacher-heavy one;
    of tied bests, the one with the smaller teacher share is named. With `seeds` (seed_values), each gap is
    also compared with the seed noise, paired by seed; without, those columns say there is nothing to compare."""
    ranked = curve.sort_values(["accuracy", "teacher_share"], ascending=[False, True], kind="stable")
    best = ranked.iloc[0]
    second = ranked.iloc[1] if len(ranked) > 1 else None
    heavy = curve[curve["teacher_share"] == curve["teacher_share"].max()]  # several teacher sizes may share it
    heaviest = heavy.loc[heavy["accuracy"].idxmax()]
    tied = ranked[ranked["accuracy"] == best["accuracy"]]
    return {
        "allocations": len(curve), "best_teacher_size": best["teacher_size"],
        "best_teacher_steps": int(best["teacher_steps"]), "best_share": float(best["teacher_share"]),
        "best_accuracy": float(best["accuracy"]), "tied_shares": " ".join(f"{s:.3g}" for s in tied["teacher_share"]),
        "gap_second": float(best["accuracy"] - second["accuracy"]) if second is not None else float("nan"),
        "heaviest_share": float(heaviest["teacher_share"]), "heaviest_accuracy": float(heaviest["accuracy"]),
        "gap_heaviest": float(best["accuracy"] - heaviest["accuracy"]),
        **as_columns(_versus(seeds, best, second), "second_"),
        **as_columns(_versus(seeds, best, heaviest), "heaviest_"),
    }


def allocation_findings(points: pd.DataFrame, seeds: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per curve (budget, teacher size, student size): ranking of the trained allocations (its gaps set against
    the seed noise where `seeds`, seed_values, is given) and the fit."""
    rows = []
    for key, curve in points.groupby(CURVE, dropna=False, sort=True):
        fit = fit_share_curve(curve["teacher_share"].to_numpy(), curve["accuracy"].to_numpy())
        rows.append({**dict(zip(CURVE, key, strict=True)), **rank_allocations(curve, seeds), **asdict(fit)})
    # Named columns keep the table's header when no student has finished yet.
    return pd.DataFrame(rows, columns=[*CURVE, *RANKING, *(f.name for f in fields(ShareFit))])
