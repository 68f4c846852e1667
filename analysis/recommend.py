"""The best teacher/student split for a budget nobody swept, from sweeps at smaller budgets.

Each swept budget B gives a best teacher share s*(B) and the accuracy a*(B) it reaches: the optimum of
that budget's allocation curve (analysis/allocation.py: a parabola in ln share through the allocations'
seed-mean accuracies). Across budgets the model is the simplest that the two or three budgets of a
sweep can support and that extrapolates in the scale budgets are spaced on:

    ln s*(B) = p0 + p1 ln B        (a power law: the share may shrink, stay or grow with the budget)
    a*(B)    = q0 + q1 ln B        (accuracy linear in log budget, the first-order term of any smooth
                                    saturating curve over a short range; it does not saturate by itself)

fitted by least squares, and evaluated at the budget N asked for. The interval is a parametric bootstrap
over seeds: each allocation's seed mean is redrawn around itself with the seed-to-seed spread pooled over
every allocation (a few seeds per allocation give too few distinct resamples for a plain bootstrap), the
curves and the trend are refitted, and the 5th and 95th percentiles of the draws are the 90% interval.
Only final checkpoints enter: an intermediate checkpoint of a run is not the run of that length.

N is "too far" when it lies further beyond the largest swept budget than the swept budgets span, in log
budget (N > Bmax^2 / Bmin): the trend has not been seen over a range that long. With two budgets the line
passes through both: nothing checks the trend, and the interval holds only the seed noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.markdown import budget_name
from analysis.recommend_sweeps import cost, next_sweep, sweep_flops
from analysis.results import Results
from analysis.tables import ReportError

LEVEL = 0.90  # the interval's nominal coverage
DRAWS = 400
PAIR = ["teacher_size", "student_size"]


@dataclass(frozen=True)
class Trend:
    """ln s* and a* against ln B: intercepts and slopes."""

    p0: float
    p1: float
    q0: float
    q1: float

    def share(self, budget: float) -> float:
        return float(min(1.0, math.exp(self.p0 + self.p1 * math.log(budget))))

    def accuracy(self, budget: float) -> float:
        return float(self.q0 + self.q1 * math.log(budget))


@dataclass
class Recommendation:
    budget: float
    budget_kind: str  # "steps" or "flops"
    teacher_size: str
    student_size: str
    share: float
    share_interval: tuple[float, float]
    accuracy: float
    accuracy_interval: tuple[float, float]
    optima: pd.DataFrame  # per swept budget: the optimum share and accuracy, and where it lies
    trend: Trend
    too_far: bool
    reach: float  # ln(N / Bmax) / ln(Bmax / Bmin): 0 at the largest budget, 1 at the trust limit
    trusted_up_to: float
    notes: list[str] = field(default_factory=list)
    next_sweep: str = ""
    cost: dict[str, float] = field(default_factory=dict)
    others: pd.DataFrame = field(default_factory=pd.DataFrame)  # the other teacher/student pairs, if swept

    @property
    def teacher_steps(self) -> int | None:
        return round(self.share * self.budget) if self.budget_kind == "steps" else None


def final_students(results: Results, column: str = "acc_mean") -> pd.DataFrame:
    rows = results.ok
    rows = rows[(rows["role"] == "student") & rows["is_final"].astype(bool)]
    keep = ["budget", "budget_kind", *PAIR, "teacher_share", "teacher_steps", "student_steps", "seed",
            "flops_teacher", "flops_student", "flops_total", column]
    rows = rows[[c for c in keep if c in rows]].rename(columns={column: "accuracy"})
    if "budget_kind" not in rows:
        rows["budget_kind"] = "steps"
    return rows.dropna(subset=["accuracy"])


def pooled_seed_sd(students: pd.DataFrame) -> float:
    """The seed-to-seed standard deviation of one allocation's accuracy, pooled over the allocations."""
    groups = students.groupby(["budget", *PAIR, "teacher_share"])["accuracy"]
    dof = (groups.count() - 1).clip(lower=0)
    if dof.sum() == 0:
        return float("nan")
    return float(math.sqrt((groups.var(ddof=1).fillna(0) * dof).sum() / dof.sum()))


def _points(students: pd.DataFrame) -> pd.DataFrame:
    return (students.groupby(["budget", *PAIR, "teacher_share"])["accuracy"]
            .agg(accuracy="mean", seeds="count").reset_index())


def optima_of_draws(shares: np.ndarray, accuracy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The allocation curve's optimum for each row of `accuracy` (draws x shares), as fit_share_curve finds it
    for one (a parabola in ln share, its maximum over the swept range), vectorised for the bootstrap; with
    fewer than three shares, the best share trained. Returns (share, accuracy, where) with where 0 inside,
    1 at an edge, 2 the best trained."""
    u = np.log(np.asarray(shares, dtype=float))
    accuracy = np.atleast_2d(accuracy)
    rows = np.arange(len(accuracy))
    if len(np.unique(u)) < 3:
        best = accuracy.argmax(axis=1)
        return np.exp(u[best]), accuracy[rows, best], np.full(len(accuracy), 2)
    c, b, a = np.polyfit(u, accuracy.T, 2)
    low, high = u.min(), u.max()
    with np.errstate(divide="ignore", invalid="ignore"):
        vertex = np.where(c < 0, -b / (2 * c), np.nan)
    inside = (vertex > low) & (vertex < high)
    candidates = np.stack([np.full_like(a, low), np.full_like(a, high), np.where(inside, vertex, low)], axis=1)
    values = a[:, None] + b[:, None] * candidates + c[:, None] * candidates ** 2
    values[:, 2] = np.where(inside, values[:, 2], -np.inf)
    best = values.argmax(axis=1)
    return np.exp(candidates[rows, best]), values[rows, best], np.where(best == 2, 0, 1)


def budget_optima(points: pd.DataFrame) -> pd.DataFrame:
    """Per budget (of one teacher/student pair): the fitted optimum share, its accuracy and where it lies."""
    rows = []
    for budget, curve in points.groupby("budget", sort=True):
        share, accuracy, where = optima_of_draws(curve["teacher_share"].to_numpy(), curve["accuracy"].to_numpy())
        where = ("inside", "edge", "trained")[int(where[0])]
        edge = ""
        if where == "edge":
            edge = "smallest" if np.isclose(share[0], curve["teacher_share"].min()) else "largest"
        rows.append({"budget": float(budget), "optimum_share": float(share[0]),
                     "optimum_accuracy": float(accuracy[0]), "where": where, "edge": edge,
                     "shares": int(curve["teacher_share"].nunique()), "seeds": int(curve["seeds"].min())})
    return pd.DataFrame(rows)


def _trend_of(log_budgets: np.ndarray, log_shares: np.ndarray, accuracies: np.ndarray) -> tuple[np.ndarray, ...]:
    """Least-squares lines through (ln B, ln s*) and (ln B, a*) for each row (draws x budgets)."""
    p1, p0 = np.polyfit(log_budgets, log_shares.T, 1)
    q1, q0 = np.polyfit(log_budgets, accuracies.T, 1)
    return p0, p1, q0, q1


def fit_trend(optima: pd.DataFrame) -> Trend:
    p0, p1, q0, q1 = _trend_of(np.log(optima["budget"].to_numpy(float)),
                               np.log(optima[["optimum_share"]].to_numpy(float).T),
                               optima[["optimum_accuracy"]].to_numpy(float).T)
    return Trend(float(p0[0]), float(p1[0]), float(q0[0]), float(q1[0]))


def bootstrap(points: pd.DataFrame, sd: float, budget: float, draws: int = DRAWS,
              seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict[float, float]]:
    """Predicted share and accuracy at `budget` over `draws` redraws of the seed means, and the variance of
    ln s* at each swept budget (which says where more seeds would help)."""
    rng = np.random.default_rng(seed)
    budgets = sorted(points["budget"].unique())
    log_shares, accuracies = [], []
    for swept in budgets:
        curve = points[points["budget"] == swept]
        noise = rng.normal(0, 1, (draws, len(curve))) * (sd / np.sqrt(curve["seeds"].to_numpy(float)))
        share, accuracy, _ = optima_of_draws(curve["teacher_share"].to_numpy(), curve["accuracy"].to_numpy() + noise)
        log_shares.append(np.log(share))
        accuracies.append(accuracy)
    log_shares, accuracies = np.array(log_shares).T, np.array(accuracies).T  # draws x budgets
    p0, p1, q0, q1 = _trend_of(np.log(np.array(budgets, dtype=float)), log_shares, accuracies)
    shares = np.minimum(1.0, np.exp(p0 + p1 * math.log(budget)))
    return shares, q0 + q1 * math.log(budget), dict(zip(budgets, log_shares.var(axis=0)))


def recommend(results: Results, budget: float, kind: str = "steps", column: str = "acc_mean",
              draws: int = DRAWS, seed: int = 0, use_budgets: list[float] | None = None) -> Recommendation:
    """The recommendation at `budget`, from the final students of `results` (optionally only `use_budgets`)."""
    students = final_students(results, column)
    kinds = set(students["budget_kind"].dropna())
    if kinds and kinds != {kind}:
        raise ReportError(f"the sweeps' budgets are in {', '.join(sorted(kinds))}, not {kind}: ask with "
                          f"--total-{'flops' if 'flops' in kinds else 'steps'}")
    if use_budgets is not None:
        students = students[students["budget"].isin(use_budgets)]
    if not budget > 0:
        raise ReportError(f"the budget to advise on must be > 0 (got {budget:g})")
    by_pair = []
    for pair, rows in students.groupby(PAIR, sort=True):
        if rows["budget"].nunique() >= 2:
            by_pair.append((pair, rows))
    if not by_pair:
        swept = sorted(students["budget"].unique())
        raise ReportError(f"a recommendation needs final students at two budgets or more of one teacher and "
                          f"student size; these sweeps have {len(swept)} ({', '.join(f'{b:g}' for b in swept)}): "
                          f"sweep another budget (salt-budget sweep --total-steps ... with the same --name)")
    made = [_recommend_pair(pair, rows, results, budget, kind, draws, seed) for pair, rows in by_pair]
    made.sort(key=lambda r: -r.accuracy)
    best = made[0]
    if len(made) > 1:
        best.others = pd.DataFrame([{"teacher_size": r.teacher_size, "student_size": r.student_size,
                                     "share": r.share, "accuracy": r.accuracy} for r in made[1:]])
        best.notes.append(f"teacher/student sizes compared: {len(made)} pairs; {best.teacher_size} -> "
                          f"{best.student_size} is predicted best")
    return best


def _recommend_pair(pair: tuple, students: pd.DataFrame, results: Results, budget: float, kind: str,
                    draws: int, seed: int) -> Recommendation:
    points = _points(students)
    optima = budget_optima(points)
    trend = fit_trend(optima)
    swept = optima["budget"].to_numpy(float)
    low, high = float(swept.min()), float(swept.max())
    reach = math.log(budget / high) / math.log(high / low) if budget > high else 0.0
    notes = []
    sd = pooled_seed_sd(students)
    level_low, level_high = 100 * (1 - LEVEL) / 2, 100 * (1 + LEVEL) / 2
    if math.isnan(sd):
        share_interval = accuracy_interval = (float("nan"), float("nan"))
        variances = {b: float("nan") for b in swept}
    else:
        shares, accuracies, variances = bootstrap(points, sd, budget, draws, seed)
        share_interval = tuple(float(v) for v in np.percentile(shares, [level_low, level_high]))
        accuracy_interval = tuple(float(v) for v in np.percentile(accuracies, [level_low, level_high]))
    if len(swept) == 2:
        notes.append("two budgets: the trend passes through both, nothing checks it" +
                     ("" if math.isnan(sd) else "; the interval holds the seed noise only"))
    for _, row in optima[optima["where"] == "edge"].iterrows():
        notes.append(f"at {budget_name(row['budget'], kind)} the best share is the {row['edge']} one swept: the "
                     f"optimum may lie beyond it, so the trend there is a bound; sweep {row['edge'].replace('est', 'er')} "
                     f"shares")
    if (optima["shares"] < 3).any():
        notes.append("a budget with fewer than three shares: its best trained share stands in for the optimum")
    if budget < low:
        notes.append(f"{budget_name(budget, kind)} lies below the smallest budget swept: a backward extrapolation")
    recommendation = Recommendation(
        budget=budget, budget_kind=kind, teacher_size=str(pair[0]), student_size=str(pair[1]),
        share=trend.share(budget), share_interval=share_interval, accuracy=trend.accuracy(budget),
        accuracy_interval=accuracy_interval, optima=optima, trend=trend, too_far=reach > 1, reach=reach,
        trusted_up_to=high * high / low, notes=notes,
        next_sweep=next_sweep(variances, budget, kind, sweep_flops(results)),
    )
    recommendation.cost = cost(students, results, recommendation.share, budget, kind)
    return recommendation


def swept_kind(students: pd.DataFrame) -> str:
    """Whether the sweeps' budgets are in steps or in FLOPs; one kind, or ReportError."""
    kinds = sorted(set(students["budget_kind"].dropna()))
    if len(kinds) != 1:
        raise ReportError("the sweeps mix budgets in steps and in FLOPs: fit one kind at a time" if kinds else
                          "no finished student to fit")
    return kinds[0]


def check_largest(results: Results, column: str = "acc_mean", draws: int = DRAWS,
                  seed: int = 0) -> tuple[Recommendation, dict[str, float]]:
    """Fit on every budget but the largest, predict the largest, and measure: what the recommendation
    would have said there against the best share and accuracy the sweeps found."""
    students = final_students(results, column)
    kind = swept_kind(students)
    budgets = sorted(students["budget"].unique())
    if len(budgets) < 3:
        raise ReportError(f"a check needs three budgets or more (two to fit, one to predict); these sweeps have "
                          f"{len(budgets)}")
    largest = float(budgets[-1])
    predicted = recommend(results, largest, kind, column, draws, seed, use_budgets=budgets[:-1])
    at = _points(students[(students["budget"] == largest) & (students["teacher_size"] == predicted.teacher_size)
                          & (students["student_size"] == predicted.student_size)])
    measured = budget_optima(at).iloc[0]
    best = at.loc[at["accuracy"].idxmax()]
    return predicted, {"budget": largest, "fitted_optimum_share": float(measured["optimum_share"]),
                       "fitted_optimum_accuracy": float(measured["optimum_accuracy"]),
                       "best_trained_share": float(best["teacher_share"]), "best_trained_accuracy": float(best["accuracy"])}


def next_budget(results: Results, column: str = "acc_mean") -> tuple[Recommendation | None, str]:
    """The recommendation for the next budget up, twice the largest swept (the report's), or None and why not."""
    students = final_students(results, column)
    try:
        return recommend(results, 2 * float(students["budget"].max()), swept_kind(students), column), ""
    except ReportError as error:
        return None, f"no recommendation: {error}"
