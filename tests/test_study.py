"""The study: the file and its sweeps (shared folder, variants), the shipped study files' plans, a micro
study on Ray end to end (random-init floor, three ablations, the report, a refused rerun, a resume that
trains nothing), and the study analysis on a made-up study folder."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis.stats import ONE_SEED, RESOLVED
from analysis.study import tables
from analysis.study_data import load_study
from analysis.study_summary import summary
from salt_budget.cli import main
from salt_budget.study.config import SHARED_SWEEP, load_study as load_study_file, study_sweeps
from salt_budget.study.plan import plan_study
from salt_budget.sweep.results.store import append_rows, read_results
from salt_budget.sweep.results.processes import read_processes
from tests.test_sweep_run import MICRO, fingerprint
from trainers.masks import MaskGenerator

ROOT = Path(__file__).resolve().parents[1]


def write_study(path: Path, runs: Path, cache: Path, **changes) -> Path:
    study = {
        "name": "micro-study",
        "overrides": [*MICRO, f"runs_dir={runs}", f"data.cache_dir={cache}", "teacher.encoder.preset=nano",
                      "student.encoder.preset=nano", "vjepa2.encoder.preset=nano", "probe.kind=ridge"],
        "seeds": [0],
        "probe_points": 2,
        "ablations": {
            "allocation": {"total_steps": [12, 16], "teacher_fractions": ["1/4", "1/2"], "baselines": ["vjepa2"]},
            "teacher_size": {"total_steps": [16], "teacher_steps": [4], "teacher_sizes": ["nano", "micro"],
                             "student_size": "nano"},
            "teacher_masks": {"total_steps": [16], "teacher_steps": [4],
                              "variants": {"multiblock": [], "causal": ["teacher.masks.kind=causal"]}},
        },
        **changes,
    }
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def test_variants_without_overrides_share_one_sweep_folder(tmp_path):
    study = load_study_file(write_study(tmp_path / "s.yaml", tmp_path / "runs", tmp_path / "cache"))
    sweeps = study_sweeps(study, tmp_path / "s.yaml")
    assert [(s.ablation, s.variant, s.folder) for s in sweeps] == [
        ("allocation", "default", SHARED_SWEEP), ("teacher_size", "default", SHARED_SWEEP),
        ("teacher_masks", "multiblock", SHARED_SWEEP), ("teacher_masks", "causal", "causal")]
    causal = sweeps[-1].experiment
    assert causal.teacher.masks.kind == "causal" and causal.student.masks.kind == "multiblock"
    plan = plan_study(study, sweeps)
    assert plan.study_dir == (tmp_path / "runs" / "micro-study").resolve()
    assert [p.sweep_dir.name for p in plan.plans] == [SHARED_SWEEP] * 3 + ["causal"]


def test_the_dry_run_counts_a_shared_allocation_once(tmp_path, capsys):
    from salt_budget.sweep.planning.plan_table import plan_frame

    path = write_study(tmp_path / "s.yaml", tmp_path / "runs", tmp_path / "cache")
    assert main(["study", str(path), "--dry-run"]) == 0
    study = load_study_file(path)
    plan = plan_study(study, study_sweeps(study, path))
    distinct = {}
    for sweep, sweep_plan in zip(plan.sweeps, plan.plans):
        frame = plan_frame(sweep_plan)
        distinct.update({(sweep.folder, a): f for a, f in zip(frame["allocation_id"], frame["flops_total"])})
    assert len(distinct) == 6  # 4 of the allocation ablation, the micro teacher's, the causal teacher's
    out = capsys.readouterr().out
    assert f"6 distinct allocations; FLOPs summed over them {sum(distinct.values()):.3g}" in out
    assert not (tmp_path / "runs").exists()


def test_bad_study_files_fail_before_anything_runs(tmp_path):
    runs, cache = tmp_path / "runs", tmp_path / "cache"
    with pytest.raises(Exception, match="ablation"):
        load_study_file(write_study(tmp_path / "a.yaml", runs, cache, ablation={}))  # a typo of 'ablations'
    path = write_study(tmp_path / "b.yaml", runs, cache)
    data = yaml.safe_load(path.read_text())
    data["ablations"]["teacher_masks"]["variants"]["causal"] = ["teacher.masks.knd=causal"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(Exception, match=r"teacher_masks.*causal.*knd"):
        study_sweeps(load_study_file(path), path)
    data["ablations"]["teacher_masks"]["variants"]["causal"] = ["teacher.masks.kind=causal"]
    data["ablations"]["allocation"]["teacher_fractions"] = ["1/0"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(Exception, match="teacher_fractions"):
        study_sweeps(load_study_file(path), path)
    assert main(["study", str(path), "--dry-run"]) == 2
    assert not runs.exists()
    data["ablations"]["allocation"]["teacher_fractions"] = ["1/4"]
    data["ablations"]["allocation"]["baselines"] = ["vjepa3"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(Exception, match=r"allocation.baselines: unknown baseline 'vjepa3'; choose from vjepa2"):
        load_study_file(path)
    data["ablations"]["allocation"]["baselines"] = ["vjepa2"]
    data["ablations"]["allocation"]["budget_seeds"] = {32: [0]}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(Exception, match="ablations.allocation .*budget_seeds names budget 32"):
        plan_study(load_study_file(path), study_sweeps(load_study_file(path), path))


@pytest.mark.parametrize("name", ["study_tiny.yaml", "study_small.yaml", "study_paper.yaml"])
def test_the_shipped_studies_plan_the_paper_ablations(name):
    path = ROOT / "experiments" / name
    study = load_study_file(path)
    plan = plan_study(study, study_sweeps(study, path))
    allocation = [p for s, p in zip(plan.sweeps, plan.plans) if s.ablation == "allocation"][0]
    budgets = sorted({a.budget for a in allocation.allocations})
    paper = budgets[:3]  # Table 16's 120k : 160k : 240k, scaled
    assert paper[0] * 2 == paper[2] and paper[1] * 3 == paper[2] * 2
    # The tiny study adds twice the largest, trained by fewer seeds: recommend --check's two-step extrapolation.
    assert budgets[3:] == ([2 * paper[2]] if name == "study_tiny.yaml" else [])
    shares = {round(a.teacher_share * 12) / 12 for a in allocation.allocations if a.budget == paper[-1]}
    assert {1 / 6, 1 / 3} <= shares and len(shares) >= 3  # the paper's best share (40k of 240k) and its neighbours
    sizes = [s for s in plan.sweeps if s.ablation == "teacher_size"][0]
    assert len(sizes.options.teacher_sizes) >= 3
    kinds = {(s.experiment.teacher.masks.kind, s.experiment.teacher.masks.tube_masks)
             for s in plan.sweeps if s.ablation == "teacher_masks"}
    assert {"multiblock", "causal"} <= {k for k, _ in kinds} and {("tube", 1), ("tube", 2)} <= kinds


def test_the_paper_study_runs_its_ablations_as_the_paper():
    """docs/paper.md section 8: the teacher-size and masking ablations at 160k, 80k teacher + 80k student (their
    default rows Table 16's 160k 80k/80k row, trained once); ViT-G (vit_gigantic) the largest teacher; Table 15's
    causal teacher: 2 masks, the context the first of the 8 time steps (87.5% masked)."""
    path = ROOT / "experiments" / "study_paper.yaml"
    study = load_study_file(path)
    plan = plan_study(study, study_sweeps(study, path))
    ablations = [(s, p) for s, p in zip(plan.sweeps, plan.plans) if s.ablation != "allocation"]
    assert {(a.budget, a.teacher_steps, a.student_steps) for _, p in ablations for a in p.allocations} == {
        (160_000, 80_000, 80_000)}
    sizes = [s for s, _ in ablations if s.ablation == "teacher_size"][0].options.teacher_sizes
    assert sizes[-1] == "vit_gigantic" and "vit_giant" not in sizes
    causal = [s for s, _ in ablations if s.variant == "causal"][0].experiment.teacher.masks
    assert (causal.kind, causal.causal_context, causal.causal_masks) == ("causal", 0.1, 2)
    generator = MaskGenerator(causal, (8, 14, 14))
    assert generator.causal_steps == 1  # round(0.1 x 8): 7 of 8 time steps predicted
    allocation = [p for s, p in zip(plan.sweeps, plan.plans) if s.ablation == "allocation"][0]
    assert any((a.budget, a.teacher_steps) == (160_000, 80_000) for a in allocation.allocations)


def _unit_dirs(study_dir: Path) -> list[Path]:
    return [d for kind in ("teachers", "trials", "baselines") for d in study_dir.glob(f"*/{kind}/*") if d.is_dir()]


def test_a_micro_study_runs_every_ablation_in_parts_and_reports_it(tmp_path, capsys):
    runs, cache = tmp_path / "runs", tmp_path / "cache"
    path = write_study(tmp_path / "study.yaml", runs, cache)
    study_dir = runs / "micro-study"
    # A study in parts: the masking ablation first (its variants side by side), then the rest with --resume.
    assert main(["study", str(path), "--ablations", "teacher_maks"]) == 2
    assert "choose from allocation, teacher_size, teacher_masks" in capsys.readouterr().err
    assert main(["study", str(path), "--ablations", "teacher_masks"]) == 0
    assert "random-init nano (seed 0)" in capsys.readouterr().out
    part = fingerprint(study_dir / SHARED_SWEEP) | fingerprint(study_dir / "causal")
    trained = {d: read_processes(d) for d in _unit_dirs(study_dir)}
    assert trained and all(trained.values())
    assert not list((study_dir / SHARED_SWEEP / "trials").glob("N12_*"))  # the allocation ablation's: not yet
    assert json.loads((study_dir / "study_log.jsonl").read_text().splitlines()[-1])["part"] == "micro-study"
    assert main(["study", str(path)]) == 2  # the folder holds the study: continuing it says so
    assert "add --resume" in capsys.readouterr().err
    assert main(["study", str(path), "--resume"]) == 0
    out = capsys.readouterr().out
    assert "all 4 sweeps done" in out
    whole = fingerprint(study_dir / SHARED_SWEEP) | fingerprint(study_dir / "causal")
    assert {k: v for k, v in whole.items() if k in part} == part  # the first part's checkpoints and probes kept
    # No unit of the first part was started again by the second.
    assert {d: read_processes(d) for d in trained} == trained and len(_unit_dirs(study_dir)) > len(trained)
    manifest = json.loads((study_dir / "study.json").read_text())
    assert [s["folder"] for s in manifest["sweeps"]] == [SHARED_SWEEP] * 3 + ["causal"]
    # The allocation N16 T4 of the teacher-size and masking ablations is the allocation ablation's: trained once.
    trials = sorted(p.name.rsplit("-", 1)[0] for p in (study_dir / SHARED_SWEEP / "trials").iterdir())
    assert trials == sorted(["N12_T3-nano_S9-nano_seed0", "N12_T6-nano_S6-nano_seed0", "N16_T4-nano_S12-nano_seed0",
                             "N16_T8-nano_S8-nano_seed0", "N16_T4-micro_S12-nano_seed0"])
    # The baseline of each budget: study.json lists its units, whose rows are V-JEPA 2's.
    baselines = manifest["sweeps"][0]["baselines"]
    table = read_results(study_dir / SHARED_SWEEP)
    rows = table[table["unit_key"].isin(baselines) & (table["status"] == "ok")]
    assert len(baselines) == 2 and set(rows["role"]) == {"vjepa2"} and set(rows["budget"]) == {12, 16}
    probe = json.loads(next((study_dir / "causal" / "teachers").glob("*/probes/*.json")).read_text())
    assert probe["probe"] == "ridge" and set(probe["tasks"]["motion"]) >= {"lambda", "accuracy"}
    causal_teacher = next((study_dir / "causal" / "teachers").glob("*/config.yaml"))
    assert yaml.safe_load(causal_teacher.read_text())["teacher"]["masks"]["kind"] == "causal"
    log = [json.loads(line) for line in (study_dir / "study_log.jsonl").read_text().splitlines()]
    assert log[-1]["study"] == "micro-study" and log[-1]["exit_codes"] == [0, 0, 0, 0] and log[-1]["wall_s"] > 0

    report = study_dir / "report"
    text = (report / "study.md").read_text()
    for heading in ("## Allocation", "## Teacher size", "## Teacher masking", "## Student loss against",
                    "## Against the paper", "random-init encoder"):
        assert heading in text
    assert (report / "study.html").stat().st_size > 100_000  # plotly.js inlined
    assert (report / "sweep" / "report.html").is_file()
    masks = pd.read_csv(report / "tables" / "study_teacher_masks.csv")
    assert masks["variant"].tolist() == ["multiblock", "causal"]
    allocation = pd.read_csv(report / "tables" / "study_allocation.csv")
    assert sorted(zip(allocation.budget, allocation.teacher_steps)) == [(12, 3), (12, 6), (16, 4), (16, 8)]

    before = fingerprint(study_dir / SHARED_SWEEP)
    assert main(["study", str(path), "--resume"]) == 0  # a finished study resumed trains nothing
    assert fingerprint(study_dir / SHARED_SWEEP) == before
    assert main(["report", str(study_dir), "--format", "md"]) == 0
    assert "study.md" in capsys.readouterr().out


# -- the study analysis on a made-up folder ---------------------------------------------------------------


def _rows(allocation_id, budget, t, seed, student_acc, teacher_acc, teacher_key):
    common = {"schema_version": 1, "sweep": "main", "config_hash": "h", "budget": budget, "teacher_size": "tiny",
              "teacher_steps": t, "teacher_share": t / budget, "student_size": "tiny", "student_steps": budget - t,
              "seed": seed, "teacher_key": teacher_key, "status": "ok", "reason": None, "is_final": True,
              "flops_teacher": 1.0, "flops_student": 1.0, "flops_total": 2.0, "rankme": 1.0,
              "chance_motion": 0.1}
    teacher = {**common, "unit_key": teacher_key, "role": "teacher", "allocation_id": None, "step": t,
               "acc_motion": teacher_acc, "acc_mean": teacher_acc, "loss_final": 1.0, "loss_smoothed": 1.0,
               "readout_ridge_mean_std_motion": 0.2, "readout_ridge_mean_std_mean": 0.2}
    # A second readout that ranks the students the other way round (1 - accuracy).
    students = [{**common, "unit_key": allocation_id, "role": "student", "allocation_id": allocation_id, "step": step,
                 "is_final": step == budget - t, "acc_motion": acc, "acc_mean": acc, "loss_final": loss,
                 "loss_smoothed": loss, "readout_ridge_mean_std_motion": 1 - acc, "readout_ridge_mean_std_mean": 1 - acc}
                for step, acc, loss in ((1, student_acc - 0.1, 0.9), (budget - t, student_acc, 0.5))]
    return [teacher, *students]


def test_the_study_analysis_reads_seeds_shares_and_verdicts(tmp_path):
    rows, ids = [], []
    accuracy = {(100, 10): 0.50, (100, 50): 0.40}
    for seed in (0, 1):
        for (budget, t), acc in accuracy.items():
            allocation = f"N{budget}_T{t}_seed{seed}"
            ids.append(allocation)
            rows += _rows(allocation, budget, t, seed, acc + 0.02 * seed, 0.45, f"teacher{t}-{seed}")
    append_rows(tmp_path / "main", rows)
    (tmp_path / "study.json").write_text(json.dumps({"name": "made-up", "seeds": [0, 1], "sweeps": [
        {"ablation": "allocation", "variant": "default", "folder": "main", "overrides": [], "allocations": ids,
         "students": ids}]}))
    probes = tmp_path / "random_init" / "seed0" / "probes"
    probes.mkdir(parents=True)
    (probes / "random_init-tiny-seed0.json").write_text(json.dumps({
        "tasks": {"motion": {"accuracy": 0.3}}, "readouts": {"ridge_mean_std": {"motion": {"accuracy": 0.55}}}}))

    study = load_study(tmp_path)
    found = tables(study)
    allocation = found["study_allocation"]
    assert allocation["seeds"].tolist() == [2, 2]
    assert np.allclose(allocation["student_motion"], [0.51, 0.41])
    assert np.allclose(allocation["student_motion_sd"], [np.std([0.50, 0.52], ddof=1)] * 2)
    best = found["study_best_share"].iloc[0]
    assert best["best_teacher_steps"] == 10 and best["gap_to_runner_up"] == pytest.approx(0.10)
    # Seed by seed the best share leads by 10 points both times: paired, the lead is resolved.
    assert best["paired"] and best["n"] == 2 and best["diff"] == pytest.approx(0.10) and best["verdict"] == RESOLVED
    text = summary(study, found)
    assert "10.0 points above the runner-up (90% interval +10.0 to +10.0, paired over seeds 0, 1: resolved)" in text
    assert "the best share against the runner-up over seeds, in 1 budget: 1 resolved (best ahead)" in text
    assert "Students beat their teacher (task average) in 2 of 4" in text
    assert "Students above the random-init encoder's task average (30.0): 4 of 4" in text
    assert "| chance | 10.0 | 10.0 |" in text
    # Training against the floor: the best student of budget 100 (T = 10: 51 +- 1.4) clears 30 by 5 points and
    # 2 sd; of the teachers, only T = 50 has at least 1/6 of the largest budget, and it reads 45 > 30.
    learning = found["study_learning"]
    assert learning["what"].tolist() == ["best student", "teacher"] and learning["holds"].all()
    assert learning["teacher_steps"].tolist() == [10, 50] and learning["margin"].iloc[0] == pytest.approx(0.21)
    assert "the best student of 1 of 1 budgets clears the floor by 5 points and 2 seed sd; 1 of 1 teacher" in text
    readouts = found["study_readouts"].set_index("readout")
    assert readouts.loc["main", "random_init"] == pytest.approx(0.3)
    assert readouts.loc["ridge_mean_std", "random_init"] == pytest.approx(0.55)
    assert readouts.loc["ridge_mean_std", "students_above_floor"] == 2  # 1 - 0.40 and 1 - 0.42 > 0.55
    assert readouts.loc["ridge_mean_std", "spearman_with_main"] < 0 < readouts.loc["main", "spearman_with_main"] == 1
    assert "## Readouts" in text


def _made_up_study(folder: Path, seeds: tuple[int, ...], causal_drop: float) -> None:
    """An allocation ablation (two shares of budget 100) and a masking ablation whose causal teacher's student
    reads `causal_drop` below the default's, plus a random-init floor."""
    rows, ids, causal_rows, causal_ids = [], [], [], []
    for seed in seeds:
        for t, acc in ((10, 0.50), (50, 0.40)):
            ids.append(f"N100_T{t}_seed{seed}")
            rows += _rows(ids[-1], 100, t, seed, acc + 0.02 * seed, 0.45, f"teacher{t}-{seed}")
        causal_ids.append(f"causal-N100_T10_seed{seed}")
        causal_rows += _rows(causal_ids[-1], 100, 10, seed, 0.50 + 0.02 * seed - causal_drop, 0.35, f"causal-{seed}")
    append_rows(folder / "main", rows)
    append_rows(folder / "causal", causal_rows)
    default = [i for i in ids if "T10" in i]
    (folder / "study.json").write_text(json.dumps({"name": "made-up", "seeds": list(seeds), "sweeps": [
        {"ablation": "allocation", "variant": "default", "folder": "main", "overrides": [], "allocations": ids,
         "students": ids},
        {"ablation": "teacher_masks", "variant": "multiblock", "folder": "main", "overrides": [],
         "allocations": default, "students": default},
        {"ablation": "teacher_masks", "variant": "causal", "folder": "causal", "overrides": [],
         "allocations": causal_ids, "students": causal_ids}]}))


def test_the_study_sets_its_ablations_against_the_seed_noise(tmp_path):
    _made_up_study(tmp_path, (0, 1, 2), causal_drop=0.05)
    study = load_study(tmp_path)
    found = tables(study)
    masks = found["study_teacher_masks"].set_index("variant")
    # The causal teacher's students read 5 points below multiblock's on every seed: resolved, paired by seed.
    assert masks.loc["causal", "vs_first_diff"] == pytest.approx(-0.05)
    assert masks.loc["causal", "vs_first_verdict"] == RESOLVED and masks.loc["causal", "vs_first_paired"]
    assert masks.loc["causal", "teacher_vs_first_diff"] == pytest.approx(-0.10)
    text = summary(study, found)
    assert "against multiblock, over seeds: causal -5.0 points (90% interval -5.0 to -5.0, paired over seeds 0, 1, " \
           "2): resolved" in text
    # Students against teachers: T10 (+5 to +9) and causal (+10 to +14) resolved; T50 (-5, -3, -1) is not.
    assert "over seeds, per allocation (3): 2 resolved (student higher), 1 not resolved" in text


def test_a_one_seed_study_draws_no_conclusion_from_noise(tmp_path):
    _made_up_study(tmp_path, (0,), causal_drop=0.05)
    study = load_study(tmp_path)
    found = tables(study)
    assert found["study_best_share"]["verdict"].tolist() == [ONE_SEED]
    text = summary(study, found)
    assert "10.0 points above the runner-up (seed 0 alone; one seed: not tested against noise)" in text
    assert "causal -5.0 points (seed 0 alone; one seed: not tested against noise)" in text
    assert "resolved" not in text and "nan" not in text.lower()


def test_an_archived_study_reports_the_same_with_no_run_folder(tmp_path, capsys):
    study_dir, shipped = tmp_path / "study", tmp_path / "docs" / "data"
    _made_up_study(study_dir, (0, 1, 2), causal_drop=0.05)
    probes = study_dir / "random_init" / "seed0" / "probes"
    probes.mkdir(parents=True)
    (probes / "random_init-tiny-seed0.json").write_text(json.dumps({"tasks": {"motion": {"accuracy": 0.3}}}))
    (study_dir / "main" / "trials").mkdir()  # what a study also holds and the report does not read
    assert main(["report", str(study_dir), "--format", "md", "--archive", str(shipped)]) == 0
    assert "rebuilds it" in capsys.readouterr().out
    assert sorted(p.relative_to(shipped).as_posix() for p in shipped.rglob("*") if p.is_file()) == [
        "causal/results.csv", "causal/results.parquet", "main/results.csv", "main/results.parquet",
        "random_init/seed0/probes/random_init-tiny-seed0.json", "study.json"]
    assert main(["report", str(shipped), "--format", "md"]) == 0
    tables_of = lambda out: {p.name: p.read_text() for p in sorted((out / "tables").glob("*.csv"))}  # noqa: E731
    original, rebuilt = study_dir / "report", shipped / "report"
    assert tables_of(original) == tables_of(rebuilt) and len(tables_of(original)) > 5
    assert "30.0" in (rebuilt / "study.md").read_text()  # the floor came along
    assert (original / "study.md").read_text() == (rebuilt / "study.md").read_text()
    assert main(["report", str(study_dir / "main"), "--archive", str(tmp_path / "x")]) == 2
    assert "is not a study folder" in capsys.readouterr().err
