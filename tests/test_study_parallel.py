"""The study's baselines, its sweeps side by side and its parts, on micro studies (tests/test_sweep_run.py's
MICRO settings): the V-JEPA 2 baseline's rows listed in study.json, two variant sweeps that train at the same
time and read the same accuracies as one after another, and a study run in two parts that trains nothing twice."""

import json
from pathlib import Path

import pytest
import yaml

from salt_budget.cli import main
from salt_budget.study.config import SHARED_SWEEP
from salt_budget.study.config import load_study as load_study_file
from salt_budget.sweep.results import read_results
from salt_budget.sweep.workers import read_processes
from tests.test_sweep_run import MICRO, fingerprint

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


def test_an_ablation_names_the_vjepa2_baseline_and_study_json_lists_its_rows(tmp_path, capsys):
    runs, cache = tmp_path / "runs", tmp_path / "cache"
    path = write_study(tmp_path / "s.yaml", runs, cache, {"against_vjepa2": {
        "total_steps": [9, 12], "teacher_steps": [3], "baselines": ["vjepa2"]}})
    bad = yaml.safe_load(path.read_text())
    bad["ablations"]["against_vjepa2"]["baselines"] = ["vjepa3"]
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    with pytest.raises(Exception, match=r"against_vjepa2.baselines: unknown baseline 'vjepa3'; choose from vjepa2"):
        load_study_file(tmp_path / "bad.yaml")

    assert main(["study", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "2 baseline run(s)" in out and "N12_vjepa2-nano_seed0" in out
    assert main(["study", str(path)]) == 0
    study_dir = runs / "micro"
    [sweep] = json.loads((study_dir / "study.json").read_text())["sweeps"]
    assert len(sweep["baselines"]) == 2 and len(sweep["students"]) == 2
    table = read_results(study_dir / SHARED_SWEEP)
    baseline_rows = table[table["unit_key"].isin(sweep["baselines"]) & (table["status"] == "ok")]
    assert set(baseline_rows["role"]) == {"vjepa2"} and set(baseline_rows["budget"]) == {9, 12}
    # The budgets of one seed form a ladder: the 9-step run is the 12-step trunk's cool-down branch or checkpoint.
    assert len(list((study_dir / SHARED_SWEEP / "baselines").iterdir())) >= 1


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


def test_a_study_in_parts_trains_nothing_twice(tmp_path, capsys):
    runs, cache = tmp_path / "runs", tmp_path / "cache"
    path = write_study(tmp_path / "s.yaml", runs, cache, {
        "teacher_masks": MASKS,
        "allocation": {"total_steps": [12, 16], "teacher_steps": [4]}})  # its N12 is the multiblock variant's
    assert main(["study", str(path), "--ablations", "teacher_maks"]) == 2
    assert "choose from teacher_masks, allocation" in capsys.readouterr().err
    assert main(["study", str(path), "--ablations", "teacher_masks"]) == 0
    study_dir = runs / "micro"
    assert [s["folder"] for s in json.loads((study_dir / "study.json").read_text())["sweeps"]] == [
        SHARED_SWEEP, "causal", SHARED_SWEEP]  # the whole study, for the report
    part = fingerprint(study_dir / SHARED_SWEEP) | fingerprint(study_dir / "causal")
    assert not list((study_dir / SHARED_SWEEP / "trials").glob("N16_T4*"))
    assert log_lines(study_dir)[-1]["part"] == "micro"

    assert main(["study", str(path)]) == 2  # the folder holds the study: continuing it says so
    assert main(["study", str(path), "--resume"]) == 0
    whole = fingerprint(study_dir / SHARED_SWEEP) | fingerprint(study_dir / "causal")
    assert {k: v for k, v in whole.items() if k in part} == part  # the first part's checkpoints and probes as they were
    assert any("N16_T4" in k for k in whole)  # and the allocation ablation's own allocation trained
    # Every unit was trained by one process, once.
    assert all(len(read_processes(d)) == 1 for d in unit_dirs(study_dir) if read_processes(d))
    assert log_lines(study_dir)[-1]["study"] == "micro" and log_lines(study_dir)[-1]["exit_codes"] == [0, 0, 0]
