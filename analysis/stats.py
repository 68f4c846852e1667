"""Is a difference between two arms larger than the seed-to-seed noise?

Every comparison the report draws (the best share against the runner-up, a student against its teacher,
SALT against a baseline, one ablation variant against another) is a mean difference A - B over seeds with
a Student-t 90% interval. Where both arms were trained on the same seeds the difference is taken seed by
seed (a seed shares its data order and initialisation across arms, so pairing removes that part of the
noise); otherwise the arms are compared unpaired, with Welch's interval. A single seed measures no noise:
its verdict says so and it has no interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from scipy import optimize
from scipy import stats as scipy_stats

from analysis.markdown import NA, missing, pct

LEVEL = 0.90
RESOLVED = "resolved"
NOT_RESOLVED = "not resolved"
ONE_SEED = "one seed: not tested against noise"
NOTHING = "nothing to compare"
TESTED = (RESOLVED, NOT_RESOLVED)
# A comparison's columns in a findings table (each behind a prefix where a table holds several comparisons).
COLUMNS = ("diff", "low", "high", "n", "paired", "verdict", "seeds", "sd")


@dataclass(frozen=True)
class Difference:
    mean_diff: float  # mean over seeds of A - B (fractions, like the accuracies)
    sd: float  # of one seed's A - B: of the per-seed differences (paired), sqrt(sd_A^2 + sd_B^2) (unpaired)
    n: int  # seeds: differences (paired), the smaller arm (unpaired)
    paired: bool
    low: float  # the 90% interval of the mean difference; NaN below two seeds
    high: float
    seeds: tuple  # the seed ids used
    verdict: str


NO_DIFFERENCE = Difference(math.nan, math.nan, 0, False, math.nan, math.nan, (), NOTHING)


def by_seed(values: pd.Series) -> pd.Series:
    """One value per seed (several rows of one seed are averaged), missing values dropped."""
    values = pd.Series(values, dtype=float).dropna()
    return values.groupby(level=0).mean()


def _seed_id(seed: object) -> object:
    """Seeds as the tables write them (0, not 0.0)."""
    try:
        return int(seed) if float(seed).is_integer() else seed  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return seed


def _verdict(n: int, low: float, high: float) -> str:
    if n < 2:
        return ONE_SEED
    return RESOLVED if low > 0 or high < 0 else NOT_RESOLVED


def _difference(mean: float, sd: float, n: int, paired: bool, half: float, seeds: list) -> Difference:
    low, high = (mean - half, mean + half) if n >= 2 else (math.nan, math.nan)
    return Difference(float(mean), float(sd), int(n), paired, float(low), float(high),
                      tuple(_seed_id(s) for s in sorted(seeds)), _verdict(n, low, high))


def _t(df: float) -> float:
    return float(scipy_stats.t.ppf((1 + LEVEL) / 2, df))


def _paired(a: pd.Series, b: pd.Series) -> Difference:
    diff = a - b.reindex(a.index)
    n = len(diff)
    sd = float(diff.std(ddof=1)) if n > 1 else math.nan
    half = _t(n - 1) * sd / math.sqrt(n) if n > 1 else math.nan
    return _difference(diff.mean(), sd, n, True, half, list(diff.index))


def _welch(a: pd.Series, b: pd.Series) -> Difference:
    n = min(len(a), len(b))
    var_a, var_b = (float(a.var(ddof=1)), float(b.var(ddof=1))) if n > 1 else (math.nan, math.nan)
    se2 = var_a / len(a) + var_b / len(b)
    if n < 2:
        half = math.nan
    elif se2 == 0:  # no spread in either arm: the interval is the point
        half = 0.0
    else:  # Welch-Satterthwaite degrees of freedom
        df = se2 ** 2 / ((var_a / len(a)) ** 2 / (len(a) - 1) + (var_b / len(b)) ** 2 / (len(b) - 1))
        half = _t(df) * math.sqrt(se2)
    return _difference(a.mean() - b.mean(), math.sqrt(var_a + var_b), n, False, half,
                       sorted(set(a.index) | set(b.index)))


def compare(a: pd.Series | pd.DataFrame, b: pd.Series | None = None) -> Difference:
    """A - B over seeds: two Series indexed by seed, or a DataFrame indexed by seed whose first two columns
    are A and B (a missing value: that arm lacks the seed). Paired where both arms hold the same seeds."""
    if b is None:
        a, b = a.iloc[:, 0], a.iloc[:, 1]
    a, b = by_seed(a), by_seed(b)
    if a.empty or b.empty:
        return NO_DIFFERENCE
    return _paired(a, b) if set(a.index) == set(b.index) else _welch(a, b)


# -- power: how many seeds a gap needs --------------------------------------------------------------------

POWER = 0.80
MOST_SEEDS = 10_000


def power(sd: float, gap: float, n: int) -> float:
    """The chance that n seeds' 90% interval excludes zero when the true mean difference is `gap` and one seed's
    difference has standard deviation `sd` (the paired t-test's exact power, from the noncentral t)."""
    if n < 2 or not sd > 0:
        return math.nan
    df, shift = n - 1, abs(gap) * math.sqrt(n) / sd
    critical = _t(df)
    value = float(scipy_stats.nct.sf(critical, df, shift) + scipy_stats.nct.cdf(-critical, df, shift))
    return 1.0 if math.isnan(value) else value  # scipy's noncentral t gives NaN far out, where the power is 1


def seeds_to_resolve(sd: float, gap: float, chance: float = POWER) -> int | None:
    """The fewest seeds that resolve a true difference `gap` with probability `chance`; None where sd or gap is
    not a positive number, or more than MOST_SEEDS would be needed."""
    if not (sd > 0 and abs(gap) > 0) or math.isnan(sd) or math.isnan(gap):
        return None
    low, high = 2, 2
    while power(sd, gap, high) < chance:  # doubling, then bisection: power grows with n
        low, high = high, 2 * high
        if high > MOST_SEEDS:
            return None
    while low < high:
        middle = (low + high) // 2
        low, high = (middle + 1, high) if power(sd, gap, middle) < chance else (low, middle)
    return high


def resolvable_gap(sd: float, n: int, chance: float = POWER) -> float:
    """The smallest true difference n seeds resolve with probability `chance` (NaN below two seeds)."""
    if n < 2 or not sd > 0:
        return math.nan
    return float(optimize.brentq(lambda gap: power(sd, gap, n) - chance, 1e-9 * sd, 1000 * sd))


# -- a comparison as table columns, and back --------------------------------------------------------------


def as_columns(d: Difference, prefix: str = "") -> dict[str, object]:
    values = (d.mean_diff, d.low, d.high, d.n, d.paired, d.verdict, " ".join(str(s) for s in d.seeds), d.sd)
    return {prefix + name: value for name, value in zip(COLUMNS, values, strict=True)}


def column_names(prefix: str = "") -> list[str]:
    return [prefix + name for name in COLUMNS]


def from_columns(row, prefix: str = "") -> Difference:
    """The Difference a table row holds (as_columns wrote it; a CSV read back gives the same)."""
    seeds = row[prefix + "seeds"]
    seeds = () if missing(seeds) else tuple(_seed_id(s) for s in str(seeds).split())
    n = 0 if missing(row[prefix + "n"]) else int(row[prefix + "n"])
    sd = row.get(prefix + "sd", math.nan) if hasattr(row, "get") else math.nan  # tables written before it had none
    return Difference(float(row[prefix + "diff"]), float(sd), n, bool(row[prefix + "paired"]),
                      float(row[prefix + "low"]), float(row[prefix + "high"]), seeds, str(row[prefix + "verdict"]))


# -- words --------------------------------------------------------------------------------------------------


def signed_points(value: object) -> str:
    """A difference of fractions in percentage points, with its sign (0.021 -> +2.1)."""
    text = pct(value)
    return text if text == NA or text.startswith("-") else "+" + text


def _basis(d: Difference) -> str:
    seeds = ", ".join(str(s) for s in d.seeds)
    if d.n < 2:
        return f"seed {seeds} alone" if len(d.seeds) == 1 else f"unpaired over seeds {seeds}, an arm with one seed"
    how = "paired" if d.paired else "unpaired (Welch)"
    return (f"{LEVEL:.0%} interval {signed_points(d.low)} to {signed_points(d.high)}, {how} over "
            f"seeds {seeds}")


def noise_words(d: Difference) -> str:
    """What the seeds say about a difference, without the difference: "90% interval ... over seeds 0, 1:
    not resolved", or "seed 0 alone; one seed: not tested against noise"."""
    if d.n == 0:
        return d.verdict
    return f"{_basis(d)}{'; ' if d.n < 2 else ': '}{d.verdict}"


def describe(d: Difference) -> str:
    """"+2.1 points (90% interval +0.4 to +3.8, paired over seeds 0, 1, 2): resolved"."""
    if d.n == 0:
        return f"{NA}: {d.verdict}"
    if d.n < 2:
        return f"{signed_points(d.mean_diff)} points ({noise_words(d)})"
    return f"{signed_points(d.mean_diff)} points ({_basis(d)}): {d.verdict}"


def tally(table: pd.DataFrame, prefix: str = "", above: str = "above", below: str = "below") -> str:
    """How many of a table's comparisons are resolved (each way), not resolved, or on one seed."""
    verdicts, diffs = table[prefix + "verdict"], table[prefix + "diff"]
    counts = [((verdicts == RESOLVED) & (diffs > 0), f"resolved {above}"),
              ((verdicts == RESOLVED) & (diffs < 0), f"resolved {below}"),
              (verdicts == NOT_RESOLVED, NOT_RESOLVED),
              (verdicts == ONE_SEED, "on one seed (not tested against noise)")]
    parts = [f"{int(mask.sum())} {words}" for mask, words in counts if mask.any()]
    return ", ".join(parts) if parts else NOTHING
