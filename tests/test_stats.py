"""analysis/stats.py on numbers whose answers are worked out by hand: the paired t interval, Welch's unpaired
one, the verdicts (resolved, not resolved, one seed) and the words they print as."""

import math

import numpy as np
import pandas as pd
import pytest

from analysis.stats import (
    NOT_RESOLVED, ONE_SEED, RESOLVED, as_columns, compare, describe, from_columns, noise_words, power, resolvable_gap,
    seeds_to_resolve, tally,
)


def test_a_paired_difference_gets_the_t_interval_worked_by_hand():
    a = pd.Series([0.50, 0.55, 0.60], index=[0, 1, 2])
    b = pd.Series([0.57, 0.48, 0.50], index=[2, 0, 1])  # the same seeds, another order: paired by seed
    d = compare(a, b)
    # Differences 0.02, 0.05, 0.03: mean 1/30, sd sqrt(7/3) / 100, t(0.95, 2 dof) = 2.919986 (a t table's).
    sd = math.sqrt(7 / 3) / 100
    half = 2.919986 * sd / math.sqrt(3)
    assert d.paired and d.n == 3 and d.seeds == (0, 1, 2)
    assert d.mean_diff == pytest.approx(1 / 30) and d.sd == pytest.approx(sd)
    assert (d.low, d.high) == pytest.approx((1 / 30 - half, 1 / 30 + half), abs=1e-7)
    assert d.verdict == RESOLVED
    assert describe(d) == "+3.3 points (90% interval +0.8 to +5.9, paired over seeds 0, 1, 2): resolved"


def test_pairing_removes_the_seed_effect_that_an_unpaired_test_keeps():
    # Seeds differ by a lot, the arms by a steady 1 point: paired, that is resolved; unpaired, it is not.
    seeds = pd.Series([0.30, 0.45, 0.60, 0.38], index=[0, 1, 2, 3])
    paired = compare(seeds + 0.01, seeds)
    assert paired.paired and paired.verdict == RESOLVED and paired.mean_diff == pytest.approx(0.01)
    unpaired = compare((seeds + 0.01).set_axis([4, 5, 6, 7]), seeds)  # other seeds: nothing to pair
    assert not unpaired.paired and unpaired.verdict == NOT_RESOLVED and unpaired.seeds == tuple(range(8))


def test_welch_interval_worked_by_hand():
    a = pd.Series([0.5, 0.6, 0.7], index=[0, 1, 2])
    b = pd.Series([0.4, 0.5], index=[0, 1])  # seed 2 lacks B: the arms hold different seeds
    d = compare(a, b)
    se2 = 0.01 / 3 + 0.005 / 2
    df = se2 ** 2 / ((0.01 / 3) ** 2 / 2 + (0.005 / 2) ** 2 / 1)
    assert df == pytest.approx(2.882, abs=1e-3)
    from scipy.stats import t

    half = t.ppf(0.95, df) * math.sqrt(se2)
    assert not d.paired and d.n == 2 and d.mean_diff == pytest.approx(0.15)
    assert (d.low, d.high) == pytest.approx((0.15 - half, 0.15 + half))
    assert d.verdict == NOT_RESOLVED  # 0.15 +- 0.19
    assert "unpaired (Welch) over seeds 0, 1, 2): not resolved" in describe(d)


def test_one_seed_is_not_tested_against_noise():
    d = compare(pd.Series([0.6], index=[0]), pd.Series([0.4], index=[0]))
    assert d.n == 1 and d.verdict == ONE_SEED and math.isnan(d.low) and math.isnan(d.high)
    assert describe(d) == "+20.0 points (seed 0 alone; one seed: not tested against noise)"
    assert "resolved" not in describe(d) and "nan" not in describe(d)
    # One arm of one seed, unpaired: still one seed.
    assert compare(pd.Series([0.6, 0.7], index=[0, 1]), pd.Series([0.4], index=[2])).verdict == ONE_SEED


def test_a_clear_effect_is_resolved_and_noise_is_not():
    rng = np.random.default_rng(0)
    noise = pd.Series(rng.normal(0.5, 0.02, 5))
    assert compare(noise + 0.05 + rng.normal(0, 0.005, 5), noise).verdict == RESOLVED
    assert compare(noise - 0.05 + rng.normal(0, 0.005, 5), noise).verdict == RESOLVED  # resolved the other way
    unrelated = pd.Series(rng.normal(0.5, 0.02, 5))
    assert compare(unrelated, noise).verdict == NOT_RESOLVED
    # Identical arms: a zero difference with no spread is not resolved.
    assert compare(noise, noise).verdict == NOT_RESOLVED


def test_a_frame_of_two_arms_and_missing_values():
    frame = pd.DataFrame({"a": [0.5, 0.6, np.nan], "b": [0.4, 0.5, 0.45]}, index=[0, 1, 2])
    d = compare(frame)  # seed 2 lacks A: unpaired
    assert not d.paired and d.seeds == (0, 1, 2)
    assert compare(frame.dropna()).paired
    empty = compare(pd.Series(dtype=float), frame["b"])
    assert empty.n == 0 and describe(empty) == "n/a: nothing to compare"


def test_columns_round_trip_through_a_csv(tmp_path):
    rows = [as_columns(compare(pd.Series([0.5, 0.6, 0.7]), pd.Series([0.4, 0.45, 0.7])), "second_"),
            as_columns(compare(pd.Series([0.5], index=[3]), pd.Series([0.4], index=[3])), "second_")]
    pd.DataFrame(rows).to_csv(tmp_path / "t.csv", index=False)
    back = pd.read_csv(tmp_path / "t.csv")
    for i, row in enumerate(rows):
        assert describe(from_columns(back.iloc[i], "second_")) == describe(from_columns(row, "second_"))
    assert noise_words(from_columns(back.iloc[1], "second_")) == "seed 3 alone; one seed: not tested against noise"
    assert tally(back, "second_") == "1 not resolved, 1 on one seed (not tested against noise)"


# -- the report's words -------------------------------------------------------------------------------------


def _summary(frame: pd.DataFrame) -> tuple[str, object]:
    from analysis.findings import compute
    from analysis.results import from_frame, size_order
    from analysis.summary import write_summary

    results = from_frame(frame)
    findings = compute(results, results.metrics())
    return write_summary(results, findings, results.metrics(), size_order(results.rows)), findings


def _seeded(offsets: dict[int, float], noise: float = 0.0) -> pd.DataFrame:
    """The fixture's students and baseline runs again on more seeds: seed s moves every run by offsets[s] (a
    seed effect shared by the arms), plus independent noise per run and seed."""
    from fixtures.results_table import results_frame

    frame = results_frame(baselines=True)
    rng = np.random.default_rng(1)
    students = frame[frame["role"].isin(["student", "vjepa2"]) & (frame["status"] == "ok")]
    copies = []
    for seed, offset in offsets.items():
        shift = offset + rng.normal(0, noise, len(students)) if noise else offset
        copies.append(students.assign(
            seed=seed, unit_key=students["unit_key"] + f"-again{seed}",
            allocation_id=students["allocation_id"].str.replace("seed0", f"seed{seed}"),
            **{c: students[c] + shift for c in ("acc_appearance", "acc_motion", "acc_mean")}))
    return pd.concat([frame, *copies], ignore_index=True)


def test_a_one_seed_summary_says_so_and_resolves_nothing():
    from fixtures.results_table import results_frame

    summary, findings = _summary(results_frame(baselines=True))
    assert "one seed: not tested against noise" in summary
    assert "One seed per allocation: no best share is tested against the runner-up" in summary
    assert "one seed per allocation: no student is tested against its teacher" in summary
    assert "resolved" not in summary and "nan" not in summary.lower()
    for table, prefix in ((findings.allocation, "second_"), (findings.versus_teacher, ""), (findings.baselines, "")):
        assert set(table[prefix + "verdict"]) <= {ONE_SEED, "nothing to compare"}


def test_a_steady_gap_over_seeds_is_resolved_and_a_noisy_one_is_not():
    # A seed effect shared by every allocation: paired by seed, the fixture's 1.1-point lead is exact.
    summary, findings = _summary(_seeded({1: 0.03, 2: -0.02}))
    allocation = findings.allocation
    assert (allocation["second_verdict"] == RESOLVED).all() and allocation["second_paired"].all()
    assert (allocation["second_n"] == 3).all() and (allocation["second_seeds"] == "0 1 2").all()
    assert "1.1 points above the runner-up (90% interval +1.1 to +1.1, paired over seeds 0, 1, 2: resolved)" in summary
    # The baseline's three seeds (one row each) share one comparison with SALT's allocation best on average.
    baselines = findings.baselines[(findings.baselines["task"] == "mean") & (findings.baselines["budget"] == 240)]
    assert len(baselines) == 3 and set(baselines["verdict"]) == {RESOLVED} and (baselines["diff"] < 0).all()
    assert ("over seeds, SALT's allocation best on average against it: -1.2 points (90% interval -1.2 to -1.2, "
            "paired over seeds 0, 1, 2): resolved" in summary)
    # Independent noise of 5 points per allocation and seed swamps the 1.1-point lead.
    summary, findings = _summary(_seeded({1: 0.0, 2: 0.0}, noise=0.05))
    mean = findings.allocation[findings.allocation["task"] == "mean"]
    assert (mean["second_verdict"] == NOT_RESOLVED).all()
    assert "The best share against the runner-up over seeds, in 4 curves: 4 not resolved" in summary


def test_power_is_the_share_of_seed_sets_whose_interval_excludes_zero():
    # Simulated studies: n seeds of paired differences N(gap, sd), each read by compare(), as the report reads them.
    rng = np.random.default_rng(0)
    sd, gap, n, studies = 0.02, 0.015, 6, 2000
    resolved = 0
    for _ in range(studies):
        a = pd.Series(rng.normal(gap, sd, n), index=range(n))
        resolved += compare(a, pd.Series(0.0, index=range(n))).verdict == RESOLVED
    assert resolved / studies == pytest.approx(power(sd, gap, n), abs=0.03)
    assert power(sd, 1e-12, n) == pytest.approx(0.10, abs=1e-6)  # no gap: the interval's own 10% error rate


def test_seeds_to_resolve_is_the_fewest_with_the_power_asked_for():
    n = seeds_to_resolve(0.02, 0.01)
    assert n == 27 and power(0.02, 0.01, n) >= 0.8 > power(0.02, 0.01, n - 1)
    assert seeds_to_resolve(0.02, -0.01) == n  # the sign of the gap does not matter
    assert resolvable_gap(0.02, n) <= 0.01 < resolvable_gap(0.02, n - 1)
    assert seeds_to_resolve(0.0, 0.01) is None and seeds_to_resolve(0.02, 0.0) is None
    assert seeds_to_resolve(float("nan"), 0.01) is None and np.isnan(resolvable_gap(0.02, 1))
