"""A study's sweeps side by side, on a micro study (tests/test_sweep_run.py's MICRO settings): two variant sweeps
that train at the same time and read the same accuracies as one after another. (Baselines in a study and a study
run in parts: tests/test_study.py's micro study.)"""

import json
from pathlib import Path

import yaml

from salt_budget.cli import main
from salt_budget.study.config import SHARED_SWEEP
from salt_budget.sweep.results.store import read_results
from salt_budget.sweep.results.processes import read_processes
from tests.test_sweep_run import MICRO

MASKS = {"total_steps": [12], "teacher_steps": [4],
         "variants": {"multiblock": [], "causal": ["teacher.masks.kind=causal"]}}


def write_study(path: Path, runs: Path, cache: Path, ablations: dict) -> Path:
    path.write_text(yaml.safe_dump({
        "name": "micro", "seeds": [0], "probe_points": 2, "random_init_probe": False,
        "student_schedule": "cosine",  # one run per student: a unit of one ablation never extends another's
        "overrides": [*MICRO, f"runs_dir={runs}", f"data.cache_dir={cache}", "teacher.encoder.preset=nano",
                      "student.encoder.preset=nano", "vjepa2.encoder.preset=nano", "probe.kind=ridge"],
        "ablations": ablations}, sort_keys=False))
    return path


def log_lines(study_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (study_dir / "study_log.jsonl").read_text().splitlines()]


def accuracies(study_dir: Path) -> dict[tuple[str, str, int], float]:
    """Every ok row's task-average accuracy, by folder, unit and step."""
    out = {}
    for folder in (SHARED_SWEEP, "causal"):
        table = read_results(study_dir / folder)
        table = table[table["status"] == "ok"]
        out.update({(folder, k, int(s)): float(a) for k, s, a in zip(table["unit_key"], table["step"], table["acc_mean"])})
    return out


def unit_dirs(study_dir: Path) -> list[Path]:
    return [d for kind in ("teachers", "trials", "baselines") for d in study_dir.glob(f"*/{kind}/*") if d.is_dir()]


def training_interval(study_dir: Path, folder: str) -> tuple[float, float]:
    """From the first unit process's start (processes.jsonl) to the last checkpoint written in the sweep."""
    dirs = [d for d in unit_dirs(study_dir) if d.parent.parent.name == folder]
    starts = [p["at"] for d in dirs for p in read_processes(d)]
    ends = [c.stat().st_mtime for d in dirs for c in (d / "checkpoints").glob("*")]
    return min(starts), max(ends)


def test_variant_sweeps_run_side_by_side_with_the_accuracies_of_one_after_another(tmp_path, capsys):
    cache = tmp_path / "cache"
    side = write_study(tmp_path / "side.yaml", tmp_path / "side", cache, {"teacher_masks": MASKS})
    assert main(["study", str(side), "--cpus", "2"]) == 0
    study_dir = tmp_path / "side" / "micro"
    a, b = training_interval(study_dir, SHARED_SWEEP), training_interval(study_dir, "causal")
    assert a[0] < b[1] and b[0] < a[1], f"the two sweeps trained one after another: {a}, {b}"
    out = capsys.readouterr().out
    assert "running side by side: 1/2 teacher_masks/multiblock (1 of 2 cores" in out
    sweeps = [line for line in log_lines(study_dir) if "folder" in line]
    assert sorted(s["folder"] for s in sweeps) == ["causal", SHARED_SWEEP] and all(s["cpus"] == 1 for s in sweeps)
    assert "teacher_masks/causal: N12_T4-nano_S8-nano_seed0: done, student acc" in out  # its outcome, from its log

    one = write_study(tmp_path / "one.yaml", tmp_path / "one", cache, {"teacher_masks": MASKS})
    assert main(["study", str(one), "--one-at-a-time"]) == 0
    sequential = tmp_path / "one" / "micro"
    first, second = training_interval(sequential, SHARED_SWEEP), training_interval(sequential, "causal")
    assert first[1] <= second[0]
    found = accuracies(study_dir)
    assert len(found) >= 6 and found == accuracies(sequential)  # 2 teachers and 2 student checkpoints, each probed
