"""The sweep running: the results table (atomic appends, dedup, failed rows), a 3-allocation micro
sweep with the V-JEPA 2 baseline on Ray end to end, a rerun that trains nothing, a killed sweep
resumed to the same table, and trials that fail for good."""

import hashlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from salt_budget.cli import main
from salt_budget.experiment import load_experiment
from trainers.vjepa2 import vjepa2_flops_per_clip
from salt_budget.sweep.planning.plan import build_plan
from salt_budget.sweep.planning.options import PlanError, SweepOptions
from salt_budget.sweep.results.store import FAILED_STEP, append_rows, read_results
from salt_budget.sweep.running.runner import prepare_sweep_dir
from salt_budget.sweep.running.trial import TeacherMissing, train_and_probe
from trainers.checkpoint import load_checkpoint
from trainers.config import to_dict

# The micro setup of tests/test_training.py (nano encoders, 4 frames of 32 px: a (2, 4, 4) token grid,
# masks that fit it, batch 4) and a 2-epoch probe, as experiment overrides.
BLOCKS = "[{num_blocks: 2, spatial_scale: [0.15, 0.15]}, {num_blocks: 1, spatial_scale: [0.5, 0.5]}]"
MICRO = [
    "data.synthetic.train=24", "data.synthetic.val=12", "data.synthetic.frames=8", "data.synthetic.size=32",
    "data.frames=4", "data.resolution=32", "data.workers=0",
    "teacher.decoder={width: 32, depth: 1, heads: 1}", "student.predictor={width: 32, depth: 1, heads: 1}",
    "vjepa2.predictor={width: 32, depth: 1, heads: 1}",
    *(f"{stage}.masks.blocks={BLOCKS}" for stage in ("teacher", "student", "vjepa2")),
    *(f"{stage}.optim.{key}" for stage in ("teacher", "student")
      for key in ("batch_size=4", "warmup_steps=2", "grad_clip=1.0")),
    "vjepa2.optim.batch_size=4", "vjepa2.optim.warmup_steps=2",
    *(f"{stage}.run.log_every=1" for stage in ("teacher", "student", "vjepa2")),
    "student.run.checkpoint_every=3", "vjepa2.run.checkpoint_every=3",
    "probe.epochs=2", "probe.batch_size=8",
]
# Budgets 12 and 24 with teachers of 4 and 8 steps: one teacher trunk of 8 steps, the 4-step teacher a branch
# cooling down 1 step. The students of each teacher form a ladder: T4's students of 20 and 8 steps (a trunk of
# 20, a branch from step 6 cooling down 2 steps), T8's of 16 and 4 (a trunk of 16, a branch from step 3). The
# baseline (constant lr, constant EMA momentum) trains 24 steps once; its 12-step run is the trunk's step 12.
SWEEP = ["sweep", "--total-steps", "12", "24", "--teacher-steps", "4", "8", "--teacher-sizes", "nano",
         "--student-size", "nano", "--baselines", "vjepa2", "--name", "micro"]
# Two teachers, four students and two baseline runs probed at four checkpoints, and the random-init floor.
ROWS = 2 + 4 * 4 + 2 * 4 + 1


def overrides(runs: Path, cache: Path, *extra: str) -> list[str]:
    return [*MICRO, f"runs_dir={runs}", f"data.cache_dir={cache}", *extra]


def fingerprint(sweep_dir: Path) -> dict[str, str]:
    """Checksums of what training and probing write: a rerun that does nothing leaves them as they were."""
    files = [p for kind in ("teachers", "trials", "baselines") for p in (sweep_dir / kind).rglob("*")
             if p.parent.name in ("checkpoints", "probes") or p.name == "metrics.jsonl"]
    return {str(p.relative_to(sweep_dir)): hashlib.md5(p.read_bytes()).hexdigest() for p in files}


def row(unit, step, status="ok", acc=0.5, **extra):
    return {"unit_key": unit, "step": step, "role": "student", "status": status, "acc_motion": acc, **extra}


# -- the results table -------------------------------------------------------------------------------

def test_appends_replace_rows_of_the_same_unit_and_checkpoint(tmp_path):
    append_rows(tmp_path, [row("a", 5), row("a", 10)])
    table = append_rows(tmp_path, [row("a", 10, acc=0.7), row("b", 5)])  # a resumed unit re-appends step 10
    assert sorted(zip(table.unit_key, table.step)) == [("a", 5), ("a", 10), ("b", 5)]
    assert table.set_index(["unit_key", "step"]).loc[("a", 10), "acc_motion"] == 0.7
    assert read_results(tmp_path).equals(table)
    assert len(pd.read_csv(tmp_path / "results.csv")) == 3
    # Each unit's rows in a file of its own (the table's source); results.parquet and .csv compiled from them.
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "results.csv", "results.parquet", "rows", "rows/a.parquet", "rows/b.parquet"]
    assert pd.read_parquet(tmp_path / "rows" / "a.parquet").step.tolist() == [5, 10]


def test_a_failed_unit_has_one_row_until_it_succeeds(tmp_path):
    append_rows(tmp_path, [row("a", FAILED_STEP, status="failed", reason="OOM")])
    table = append_rows(tmp_path, [row("a", FAILED_STEP, status="failed", reason="OOM again")])
    assert len(table) == 1 and table.reason.iloc[0] == "OOM again"
    table = append_rows(tmp_path, [row("a", 5)])
    assert table.status.tolist() == ["ok"] and table.step.tolist() == [5]


def _append_many(folder: str, worker: int) -> None:
    for i in range(10):
        append_rows(Path(folder), [row(f"w{worker}", i)])


def in_processes(target, folder: Path, count: int) -> list[int]:
    """`target(str(folder), worker)` in `count` forked processes at once; their exit codes."""
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=target, args=(str(folder), w)) for w in range(count)]
    for process in workers:
        process.start()
    for process in workers:
        process.join()
    return [process.exitcode for process in workers]


def test_concurrent_appends_lose_nothing(tmp_path):
    in_processes(_append_many, tmp_path, 3)
    assert len(read_results(tmp_path)) == 30


def _append_until(folder: str, stop) -> None:
    i = 0
    while not stop.is_set():
        append_rows(Path(folder), [row(f"u{i}", 0, reason="x" * (i % 50))])  # each version a different layout
        i += 1


def test_a_read_while_another_process_appends_sees_a_whole_table(tmp_path):
    # pd.read_parquet(path) opens the file twice; a rename between the two used to fail the reader
    # ("Deserializing page header failed": a CI run lost a trial to it).
    append_rows(tmp_path, [row("first", 0)])
    context = multiprocessing.get_context("fork")
    stop = context.Event()
    writer = context.Process(target=_append_until, args=(str(tmp_path), stop))
    writer.start()
    sizes = []
    try:
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            sizes.append(len(read_results(tmp_path)))
    finally:
        stop.set()
        writer.join()
    assert len(set(sizes)) > 5, "the writer did not get to append while the test read"
    assert sizes == sorted(sizes)


def test_a_trial_whose_teacher_failed_says_so(tmp_path):
    experiment = load_experiment(None, overrides(tmp_path / "runs", tmp_path / "cache"))
    plan = build_plan(experiment, SweepOptions(total_steps=(24,), teacher_steps=(4,), teacher_sizes=("nano",),
                                               student_size="nano"))
    with pytest.raises(TeacherMissing, match="has no final checkpoint: its training failed"):
        train_and_probe(next(iter(plan.students.values())), plan, report=print)


def test_a_sweep_folder_older_than_a_config_section_is_continued(tmp_path):
    plan = build_plan(load_experiment(None, overrides(tmp_path / "runs", tmp_path / "cache")),
                      SweepOptions(total_steps=(24,), teacher_steps=(4,), teacher_sizes=("nano",), student_size="nano"))
    saved = to_dict(plan.experiment)
    del saved["vjepa2"]  # written before the baseline existed
    plan.sweep_dir.mkdir(parents=True)
    (plan.sweep_dir / "config.yaml").write_text(yaml.safe_dump(saved))
    prepare_sweep_dir(plan)
    assert yaml.safe_load((plan.sweep_dir / "config.yaml").read_text()) == to_dict(plan.experiment)
    (plan.sweep_dir / "config.yaml").write_text(yaml.safe_dump({**saved, "seed": 1}))
    with pytest.raises(PlanError, match="differs in seed"):
        prepare_sweep_dir(plan)


# -- Ray: the sweep end to end ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def micro_sweep(tmp_path_factory, cache):
    runs = tmp_path_factory.mktemp("runs")
    started = time.perf_counter()
    code = main([*SWEEP, *overrides(runs, cache)])
    wall = time.perf_counter() - started
    print(f"micro sweep (3 allocations and a baseline) wall time: {wall:.1f} s")
    return code, runs / "micro", wall


def test_the_sweep_trains_each_teacher_once_and_one_student_per_allocation(micro_sweep):
    code, sweep_dir, _ = micro_sweep
    assert code == 0
    table = read_results(sweep_dir)
    assert len(table) == ROWS and not table.duplicated(["unit_key", "step"]).any()
    assert (table.status == "ok").all()
    # Every row says how and where it was read: the readout and the code, libraries and machine of its probe.
    assert (table.readout == "attentive probe of depth 1 (fast protocol: one head, lr 0.001, weight decay 0.01; "
                             "2 epochs; cached evaluation-crop features)").all()
    assert (table.probe_kind == "attentive").all() and (table.probe_protocol == "fast").all()
    for column in ("machine", "cpu_capability", "torch_version", "ray_version", "threads", "git_dirty"):
        assert table[column].notna().all(), column
    assert (table.threads == 1).all()  # a unit's process holds --cpus-per-trial 1
    trained = table[table.role != "random_init"]
    assert trained.train_machine.notna().all() and (trained.train_machine == trained.machine).all()
    [floor] = table[table.role == "random_init"].itertuples()
    assert (floor.student_size, floor.seed, floor.step, floor.flops_total) == ("nano", 0, 0, 0.0)
    teachers, students = table[table.role == "teacher"], table[table.role == "student"]
    assert sorted(teachers.teacher_steps) == [4, 8]
    assert students.groupby("allocation_id").step.apply(list).to_dict() == {
        "N12_T4-nano_S8-nano_seed0": [2, 4, 6, 8], "N12_T8-nano_S4-nano_seed0": [1, 2, 3, 4],
        "N24_T4-nano_S20-nano_seed0": [5, 10, 15, 20], "N24_T8-nano_S16-nano_seed0": [4, 8, 12, 16]}
    for column in ("train_acc_appearance", "train_acc_motion", "rankme", "loss_final", "loss_smoothed",
                   "context_ratio", "train_wall_s", "flops_total"):
        assert trained[column].notna().all(), column
    # A head that never fitted its train split (2 epochs on 24 clips often do not) has no accuracy, only its
    # train accuracy; a converged one has both.
    for task in ("appearance", "motion"):
        converged = table[f"converged_{task}"].astype(bool)
        assert table.loc[converged, f"acc_{task}"].between(0, 1).all()
        assert table.loc[~converged, f"acc_{task}"].isna().all()
    assert (students.teacher_steps + students.student_steps == students.budget).all()
    assert (table.flops_total == table.flops_teacher + table.flops_student).all()
    # The teacher ladder: one 8-step trunk and a 1-step cool-down branch; 9 teacher steps, not 4 + 8.
    logged = {path.parent.name: len(path.read_text().splitlines())
              for path in (sweep_dir / "teachers").glob("*/metrics.jsonl")}
    assert sorted(logged.values()) == [1, 8]
    # The student ladders: trunks of 20 and 16 steps, branches that train only their cool-downs (2 and 1 steps),
    # 39 student steps instead of 48; a branch's checkpoints before its branch point are its trunk's.
    trials = {path.name.split("-nano_seed0")[0]: path for path in (sweep_dir / "trials").iterdir()}
    assert len(trials) == 4
    logged = {name: [json.loads(line)["step"] for line in (path / "metrics.jsonl").read_text().splitlines()]
              for name, path in trials.items()}
    assert logged["N24_T4-nano_S20"] == list(range(1, 21)) and logged["N12_T4-nano_S8"] == [7, 8]
    assert logged["N24_T8-nano_S16"] == list(range(1, 17)) and logged["N12_T8-nano_S4"] == [4]
    branch = students[students.allocation_id == "N12_T4-nano_S8-nano_seed0"].set_index("step")
    assert all(str(trials["N24_T4-nano_S20"]) in branch.checkpoint[step] for step in (2, 4, 6))
    assert str(trials["N12_T4-nano_S8"]) in branch.checkpoint[8]
    assert branch.flops_student[8] == pytest.approx(branch.flops_student[4] * 2, rel=0.1)
    # Predicted FLOPs (plan.csv, before training) against the loop's measured count.
    plan = pd.read_csv(sweep_dir / "plan.csv").set_index("allocation_id")
    final = students[students.is_final].set_index("allocation_id")
    assert final.flops_total.to_numpy() == pytest.approx(plan.loc[final.index, "flops_total"].to_numpy(), rel=0.05)
    assert (sweep_dir / "config.yaml").is_file() and (sweep_dir / "results.csv").is_file()


def test_the_baseline_trains_the_whole_budget_with_its_own_rows(micro_sweep, cache):
    _, sweep_dir, _ = micro_sweep
    table = read_results(sweep_dir)
    baseline = table[(table.role == "vjepa2") & (table.budget == 24)]
    assert baseline.step.tolist() == [6, 12, 18, 24] and baseline.is_final.tolist() == [False] * 3 + [True]
    assert (baseline.allocation_id == "N24_vjepa2-nano_seed0").all()
    assert (baseline.student_size == "nano").all() and (baseline.student_steps == 24).all()
    assert baseline[["teacher_key", "teacher_size", "teacher_steps", "teacher_share"]].isna().all().all()
    assert baseline.rankme.notna().all() and baseline.target_std.between(0.1, 1).all()
    assert not baseline.collapsed.any() and table[table.role != "vjepa2"].collapsed.isna().all()
    # Its FLOPs are its own, the EMA forward included, and match the plan's prediction.
    assert (baseline.flops_teacher == 0).all() and (baseline.flops_total == baseline.flops_student).all()
    plan = build_plan(load_experiment(None, overrides(sweep_dir.parent, cache)),
                      SweepOptions(total_steps=(24,), teacher_steps=(4,), teacher_sizes=("nano",), student_size="nano",
                                   baselines=("vjepa2",)))
    [unit] = plan.baselines.values()
    per_clip = vjepa2_flops_per_clip(unit.cfg, plan.experiment.data)
    assert baseline.flops_total.iloc[-1] == pytest.approx(per_clip * 4 * 24, rel=0.05)
    assert unit.key == baseline.unit_key.iloc[0]  # the plan finds the run it trained
    run_dir = sweep_dir / "baselines" / f"{unit.id}-{unit.key[:8]}"
    payload = load_checkpoint(run_dir / "checkpoints" / "step_00000024.pt")
    assert payload["kind"] == "vjepa2" and {"encoder_state", "online_state"} <= set(payload)
    # The 12-step run at constant lr is the 24-step run's first 12 steps: read from its folder, never trained.
    short = table[(table.role == "vjepa2") & (table.budget == 12)].set_index("step")
    assert list(short.index) == [3, 6, 9, 12] and short.is_final.tolist() == [False] * 3 + [True]
    assert all(str(run_dir) in path for path in short.checkpoint)
    [short_dir] = (sweep_dir / "baselines").glob("N12_vjepa2-*")  # its lock only: no checkpoint, no metrics
    assert not list(short_dir.rglob("*.pt")) and not (short_dir / "metrics.jsonl").exists()
    assert short.flops_total[12] == pytest.approx(per_clip * 4 * 12, rel=0.05)
    shared = baseline.set_index("step").loc[[6, 12]]
    assert (short.loc[[6, 12], "acc_motion"].fillna(-1) == shared.acc_motion.fillna(-1)).all()


def test_a_rerun_trains_nothing_and_adds_no_rows(micro_sweep, cache, capsys):
    _, sweep_dir, _ = micro_sweep
    before, table = fingerprint(sweep_dir), read_results(sweep_dir)
    assert main([*SWEEP, *overrides(sweep_dir.parent, cache)]) == 2  # without --resume: refused, not redone
    assert "add --resume" in capsys.readouterr().err
    assert main([*SWEEP, "--resume", *overrides(sweep_dir.parent, cache)]) == 0
    assert fingerprint(sweep_dir) == before
    after = read_results(sweep_dir)
    assert len(after) == ROWS and after[["unit_key", "step"]].equals(table[["unit_key", "step"]])
    assert "0 trained by this run" in capsys.readouterr().out


def test_a_tune_state_saved_by_another_version_is_set_aside_and_nothing_trains_again(micro_sweep, cache, capsys,
                                                                                     monkeypatch):
    from ray import tune

    _, sweep_dir, _ = micro_sweep
    before, rows = fingerprint(sweep_dir), len(read_results(sweep_dir))

    def unreadable(*args, **kwargs):  # what unpickling a state whose classes moved raises
        raise ModuleNotFoundError("No module named 'salt_budget.sweep.plan'")

    monkeypatch.setattr(tune.Tuner, "restore", unreadable)
    assert main([*SWEEP, "--resume", *overrides(sweep_dir.parent, cache)]) == 0
    out = capsys.readouterr().out
    assert "saved by another version of salt-budget" in out and "0 trained by this run" in out
    assert [d.name for d in (sweep_dir / "ray").glob("students-*.unreadable-*")]
    assert fingerprint(sweep_dir) == before and len(read_results(sweep_dir)) == rows


# What may differ between two runs of one sweep on one machine: when and how long (times), where (the run
# folder, which also enters the sweep's config hash). Every other column must be equal, value for value.
VOLATILE = ["written_at", "train_wall_s", "probe_wall_s", "checkpoint", "config_hash"]


def _burn(stop) -> None:
    os.nice(19)  # it takes every cycle the sweep leaves, and shifts its timing, without doubling the suite's time
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def test_a_killed_sweep_resumed_beside_a_busy_cpu_gives_the_table_of_an_uninterrupted_one(micro_sweep, cache,
                                                                                          tmp_path):
    # The reproducibility contract of docs/reproducibility.md, one machine: the same sweep, run a second time with
    # another process burning a core throughout, killed once and resumed, gives the first run's table exactly.
    _, reference_dir, _ = micro_sweep
    runs = tmp_path / "runs"
    command = [sys.executable, "-m", "salt_budget.cli", *SWEEP, *overrides(runs, cache)]
    stop = multiprocessing.get_context("spawn").Event()
    burner = multiprocessing.get_context("spawn").Process(target=_burn, args=(stop,), daemon=True)
    burner.start()
    try:
        # Its own session, so that killing it takes the Ray processes it started along.
        process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 180
            while not (read_results(runs / "micro").role == "student").any():
                assert process.poll() is None and time.monotonic() < deadline, "the sweep ended before any student row"
                time.sleep(0.2)
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        killed = read_results(runs / "micro")
        assert 0 < len(killed) < ROWS
        time.sleep(1)  # let the orphaned Ray workers notice their raylet is gone
        assert main([*SWEEP, "--resume", *overrides(runs, cache)]) == 0
    finally:
        stop.set()
        burner.join()
    resumed = read_results(runs / "micro").set_index(["unit_key", "step"]).sort_index()
    reference = read_results(reference_dir).set_index(["unit_key", "step"]).sort_index()
    assert resumed.index.equals(reference.index) and not resumed.index.duplicated().any()
    compared = [c for c in reference.columns if c not in VOLATILE]
    assert {"acc_motion", "loss_smoothed", "rankme", "readout", "machine"} <= set(compared)
    pd.testing.assert_frame_equal(resumed[compared], reference[compared], check_exact=True)


def test_a_lost_table_is_rebuilt_on_resume_without_training(micro_sweep, cache, capsys):
    """results.parquet cut in half (a disk that filled) is rebuilt from the units' rows on --resume; with the rows
    gone too (a careless rm), --resume trains nothing and probes again, the trained students included, whose
    finished Tune trials Tune alone would not rerun."""
    import shutil

    _, sweep_dir, _ = micro_sweep
    before, table = fingerprint(sweep_dir), read_results(sweep_dir)
    # The driver probes with its own threads (the teachers' rows, here), a trial with its CPUs: recorded as such; a
    # row probed again records the checkout that probed it (an edit or a commit while the suite ran moves it).
    keep = [c for c in table.columns if c not in [*VOLATILE, "threads", "git_commit", "git_dirty"]]
    data = (sweep_dir / "results.parquet").read_bytes()
    (sweep_dir / "results.parquet").write_bytes(data[: len(data) // 2])
    assert main([*SWEEP, "--resume", *overrides(sweep_dir.parent, cache)]) == 0
    assert pd.read_parquet(sweep_dir / "results.parquet").equals(table)
    for lost in ("results.parquet", "results.csv", "rows"):
        shutil.rmtree(sweep_dir / lost) if lost == "rows" else (sweep_dir / lost).unlink()
    capsys.readouterr()
    assert main([*SWEEP, "--resume", *overrides(sweep_dir.parent, cache)]) == 0
    out = capsys.readouterr().out
    assert "probed again 4 trained student(s) whose rows were lost" in out and "0 trained by this run" in out
    trained = {path: digest for path, digest in fingerprint(sweep_dir).items() if "/probes/" not in path}
    assert trained == {path: digest for path, digest in before.items() if "/probes/" not in path}  # nothing trained
    pd.testing.assert_frame_equal(read_results(sweep_dir)[keep], table[keep])


def test_trials_that_fail_for_good_get_a_failed_row_and_the_sweep_finishes(cache, tmp_path, capsys):
    # More clips per batch than the data set holds: every student trial fails, the teachers do not.
    args = ["sweep", "--total-steps", "24", "--teacher-steps", "4", "--teacher-sizes", "nano", "--student-size",
            "nano", "--probe-points", "1", "--max-failures", "1", "--name", "failing",
            *overrides(tmp_path, cache, "student.optim.batch_size=64")]
    assert main(args) == 1
    table = read_results(tmp_path / "failing")
    failed = table[table.status == "failed"]
    assert (table[table.role == "teacher"].status == "ok").sum() == 1
    assert len(failed) == 1 and (failed.role == "student").all() and (failed.step == FAILED_STEP).all()
    assert failed.reason.str.contains("batch_size 64 exceeds the 24 training clips").all()
    assert "FAILED after 2 attempt(s)" in capsys.readouterr().out
