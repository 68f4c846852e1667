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


RANKING = ("allocations", "best_teacher_size", "best_teacher_steps", "best_share", "best_accuracy", "tied_shares",
           "gap_second", "heaviest_share", "heaviest_accuracy", "gap_heaviest")


def rank_allocations(curve: pd.DataFrame) -> dict[str, object]:
    """Best allocation among `curve`'s points, its gap to the runner-up and to the most teacher-heavy one;
    of tied bests, the one with the smaller teacher share is named."""
    ranked = curve.sort_values(["accuracy", "teacher_share"], ascending=[False, True], kind="stable")
    best = ranked.iloc[0]
    heavy = curve[curve["teacher_share"] == curve["teacher_share"].max()]  # several teacher sizes may share it
    heaviest = heavy.loc[heavy["accuracy"].idxmax()]
    tied = ranked[ranked["accuracy"] == best["accuracy"]]
    return {
        "allocations": len(curve), "best_teacher_size": best["teacher_size"],
        "best_teacher_steps": int(best["teacher_steps"]), "best_share": float(best["teacher_share"]),
        "best_accuracy": float(best["accuracy"]), "tied_shares": " ".join(f"{s:.3g}" for s in tied["teacher_share"]),
        "gap_second": float(best["accuracy"] - ranked.iloc[1]["accuracy"]) if len(ranked) > 1 else float("nan"),
        "heaviest_share": float(heaviest["teacher_share"]), "heaviest_accuracy": float(heaviest["accuracy"]),
        "gap_heaviest": float(best["accuracy"] - heaviest["accuracy"]),
    }


def allocation_findings(points: pd.DataFrame) -> pd.DataFrame:
    """Per curve (budget, teacher size, student size): ranking of the trained allocations and the fit."""
    rows = []
    for key, curve in points.groupby(CURVE, dropna=False, sort=True):
        fit = fit_share_curve(curve["teacher_share"].to_numpy(), curve["accuracy"].to_numpy())
        rows.append({**dict(zip(CURVE, key, strict=True)), **rank_allocations(curve), **asdict(fit)})
    # Named columns keep the table's header when no student has finished yet.
    return pd.DataFrame(rows, columns=[*CURVE, *RANKING, *(f.name for f in fields(ShareFit))])
