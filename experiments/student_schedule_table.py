"""Two sweeps of one allocation grid side by side: students on wsd ladders against one cosine run per allocation.

    python experiments/student_schedule_table.py runs/schedule-tiny/students-wsd runs/schedule-tiny/students-cosine
    python experiments/student_schedule_table.py runs/schedule-tiny/students-wsd docs/study_tiny/sweep/tables/pareto.csv

Either side may be a sweep's run folder or the pareto.csv its report wrote (final encoders, one row per task).
Only allocations whose teacher has the student's size enter (the allocation grid; a study's teacher-size
ablation shares its folder).

For each budget and teacher share: the final students' task-average accuracy, mean and standard deviation over
seeds, in each sweep, and their difference; then the best share of each budget in each. A difference within
the seed spread is one no larger than the larger of the two standard deviations (with two seeds a rough bound;
one standard error of 500 val clips is about 2 points at 30%).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from analysis.tables import read_run


def final_students(source: Path) -> pd.DataFrame:
    if source.suffix == ".csv":
        table = pd.read_csv(source)
        rows = table[(table["role"] == "student") & (table["task"] == "mean")].rename(columns={"accuracy": "acc_mean"})
    else:
        table = read_run(source)
        rows = table[(table["role"] == "student") & table["is_final"].astype(bool) & (table["status"] == "ok")]
    rows = rows[rows["teacher_size"] == rows["student_size"]]
    return (rows.groupby(["budget", "teacher_steps", "teacher_share"])["acc_mean"]
            .agg(["mean", "std", "count"]).reset_index())


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    wsd_dir, cosine_dir = (Path(arg) for arg in argv)
    wsd, cosine = final_students(wsd_dir), final_students(cosine_dir)
    both = wsd.merge(cosine, on=["budget", "teacher_steps", "teacher_share"], suffixes=("_wsd", "_cosine"))
    both["diff"] = both["mean_wsd"] - both["mean_cosine"]
    both["within"] = both["diff"].abs() <= both[["std_wsd", "std_cosine"]].max(axis=1)
    print(f"final students' task-average accuracy (%), mean ± sd over seeds: {wsd_dir} (wsd ladders) against "
          f"{cosine_dir} (cosine)\n")
    print("| budget | T | share | seeds | wsd | cosine | wsd - cosine | within the seed spread |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for _, row in both.iterrows():
        print(f"| {row.budget:g} | {row.teacher_steps:g} | {row.teacher_share:.3f} | {row.count_wsd:g} | "
              f"{100 * row.mean_wsd:.1f} ± {100 * row.std_wsd:.1f} | {100 * row.mean_cosine:.1f} ± "
              f"{100 * row.std_cosine:.1f} | {100 * row['diff']:+.1f} | {'yes' if row.within else 'no'} |")
    print("\n| budget | best share, wsd | best share, cosine |")
    print("| ---: | ---: | ---: |")
    for budget, rows in both.groupby("budget"):
        best_wsd = rows.loc[rows["mean_wsd"].idxmax()]
        best_cosine = rows.loc[rows["mean_cosine"].idxmax()]
        print(f"| {budget:g} | {best_wsd.teacher_share:.3f} ({100 * best_wsd.mean_wsd:.1f}) | "
              f"{best_cosine.teacher_share:.3f} ({100 * best_cosine.mean_cosine:.1f}) |")
    print(f"\n{int(both['within'].sum())} of {len(both)} allocations within the seed spread; mean difference "
          f"{100 * both['diff'].mean():+.2f} points")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
