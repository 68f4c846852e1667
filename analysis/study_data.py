"""A study folder (salt-budget study) read for its findings: study.json's sweeps, each sweep folder's results,
the random-init floor per seed and study_log.jsonl; and the rows every ablation is read from.

Each ablation is read from the rows of its own student units only (study.json lists their keys), so an
allocation two ablations share counts in both, and a sweep folder's other rows do not leak in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import reference
from analysis.probe_columns import accuracy_columns
from analysis.results import Metric, Results, equals, load_results
from analysis.schema import MEAN_TASK
from analysis.tables import ReportError


@dataclass(frozen=True)
class StudyData:
    name: str
    sweeps: list[dict]  # study.json's: ablation, variant, folder, overrides, allocations, students (unit keys)
    results: dict[str, Results]  # by sweep folder
    random_init: pd.DataFrame  # seed, acc_<task>..., acc_mean
    log: list[dict]  # study_log.jsonl
    paper_scale: float | None = None  # study.json's: paper steps per study step (None: not given)

    @property
    def tasks(self) -> tuple[str, ...]:
        return next(iter(self.results.values())).tasks

    @property
    def metrics(self) -> list[Metric]:
        return [Metric(t) for t in (*self.tasks, MEAN_TASK)]

    def chance(self) -> dict[str, float]:
        chance = {}
        for task in self.tasks:
            values = [r.ok[f"chance_{task}"].astype(float).mean() for r in self.results.values()
                      if f"chance_{task}" in r.ok]
            chance[task] = float(np.nanmean(values)) if values else float("nan")
        chance[MEAN_TASK] = float(np.mean([chance[t] for t in self.tasks]))
        return chance

    def floor_means(self) -> dict[str, float]:
        """The random-init encoders' mean accuracy per metric; empty where the study probed none."""
        if self.random_init.empty:
            return {}
        return {m.name: float(self.random_init[m.column].mean()) for m in self.metrics if m.column in self.random_init}

    def ablation(self, name: str) -> list[dict]:
        return [s for s in self.sweeps if s["ablation"] == name]


def is_study(path: Path) -> bool:
    return (Path(path) / "study.json").is_file()


def _random_init(study_dir: Path) -> pd.DataFrame:
    rows = []
    for path in sorted((study_dir / "random_init").glob("seed*/probes/random_init-*.json")):
        result = json.loads(path.read_text())
        if result.get("single_frame"):
            continue
        rows.append({"seed": int(path.parts[-3].removeprefix("seed")), "encoder": result.get("encoder"),
                     **accuracy_columns(result)})
    return pd.DataFrame(rows)


def load_study(study_dir: Path) -> StudyData:
    study_dir = Path(study_dir)
    if not is_study(study_dir):
        raise ReportError(f"{study_dir} has no study.json: it is not a study folder (salt-budget study writes one)")
    manifest = json.loads((study_dir / "study.json").read_text())
    results = {}
    for folder in dict.fromkeys(s["folder"] for s in manifest["sweeps"]):
        if (study_dir / folder / "results.parquet").is_file():
            results[folder] = load_results([study_dir / folder])
    if not results:
        raise ReportError(f"{study_dir}: no sweep of the study has finished a unit yet; wait for it, or rerun "
                          f"salt-budget study with --resume")
    log_path = study_dir / "study_log.jsonl"
    log = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()] if log_path.is_file() else []
    return StudyData(manifest["name"], manifest["sweeps"], results, _random_init(study_dir), log,
                     manifest.get("paper_scale"))


def _final_pairs(study: StudyData, sweep: dict) -> pd.DataFrame:
    """The sweep's final students with their teacher's final accuracies beside them (teacher_acc_*)."""
    results = study.results.get(sweep["folder"])
    if results is None:
        return pd.DataFrame()
    final = results.final
    students = final[equals(final, "role", "student") & final["unit_key"].isin(sweep["students"])]
    teachers = final[equals(final, "role", "teacher")].drop_duplicates("unit_key", keep="last")
    columns = [m.column for m in study.metrics]
    teacher_acc = teachers.set_index("unit_key")[columns].add_prefix("teacher_")
    pairs = students.join(teacher_acc, on="teacher_key")
    return pairs.assign(ablation=sweep["ablation"], variant=sweep["variant"], folder=sweep["folder"])


def final_pairs(study: StudyData, ablation: str | None = None) -> pd.DataFrame:
    sweeps = study.sweeps if ablation is None else study.ablation(ablation)
    parts = [p for p in (_final_pairs(study, s) for s in sweeps) if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def paper_scale_of(study: StudyData, ablation: str = "allocation") -> float:
    """Paper steps per study step: the study file's paper_scale, else the allocation ablation's largest budget
    (the ablation's own where the study has no allocation ablation) taken for the paper's 240k."""
    if study.paper_scale:
        return float(study.paper_scale)
    for name in ("allocation", ablation):
        pairs = final_pairs(study, name)
        if len(pairs):
            return reference.paper_scale(float(pairs["budget"].max()))
    return float("nan")


def student_checkpoints(study: StudyData, ablation: str = "allocation") -> pd.DataFrame:
    """Every probed checkpoint of the ablation's students (one row each), by budget, teacher, seed and step."""
    parts = []
    for sweep in study.ablation(ablation):
        results = study.results.get(sweep["folder"])
        if results is None:
            continue
        ok = results.ok
        parts.append(ok[equals(ok, "role", "student") & ok["unit_key"].isin(sweep["students"])])
    if not parts:
        return pd.DataFrame()
    checkpoints = pd.concat(parts, ignore_index=True).drop_duplicates(["unit_key", "step"], keep="last")
    return checkpoints.sort_values(["budget", "teacher_steps", "seed", "step"], ignore_index=True)


def final_teachers(study: StudyData, ablation: str = "allocation") -> pd.DataFrame:
    """The final row of every teacher the ablation's students learned from."""
    parts = []
    for sweep in study.ablation(ablation):
        results = study.results.get(sweep["folder"])
        if results is None:
            continue
        final = results.final
        keys = final[final["unit_key"].isin(sweep["students"])]["teacher_key"].unique()
        teachers = final[equals(final, "role", "teacher") & final["unit_key"].isin(keys)]
        parts.append(teachers.drop_duplicates("unit_key", keep="last"))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
