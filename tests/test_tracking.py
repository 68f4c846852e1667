"""--tracker tensorboard wandb mlflow, offline, read back from what each tracker wrote: a micro sweep logged to all
three (one tracker run per unit with its allocation's tags, every training row and every probe row), a run trained
in two calls that continues one tracker run, the missing-extra error, a run without trackers that imports none of
their libraries, and `salt-budget train --tracker tensorboard`."""

import json
import math
import pickle
import struct
import subprocess
import sys
import time
import zlib
from collections import defaultdict
from pathlib import Path

import pytest

from salt_budget.cli import main
from salt_budget.experiment import load_experiment
from salt_budget.sweep.planning.options import SweepOptions
from salt_budget.sweep.planning.plan import build_plan
from salt_budget.sweep.results.store import read_results
from salt_budget.sweep.running.tracking import sweep_tracking, unit_tracking
from tests.test_sweep_run import overrides
from tests.test_training import micro_teacher
from trainers.checkpoint import checkpoint_path
from trainers.config import ConfigError
from trainers.tracking.check import check_trackers
from trainers.tracking.sinks import open_sink
from trainers.tracking.spec import TrackingSpec
from trainers.train import train_stage

TRACKERS = ("tensorboard", "wandb", "mlflow")
# Every unit kind once: one budget of 8 steps, a 4-step teacher, its 4-step student, the V-JEPA 2 baseline of 8
# steps; two probe points per run. (A run trained in several calls, as a ladder's trunk is: further below.)
SWEEP = ["sweep", "--total-steps", "8", "--teacher-steps", "4", "--teacher-sizes", "nano", "--student-size",
         "nano", "--baselines", "vjepa2", "--probe-points", "2", "--name", "tracked", "--tracker", *TRACKERS]


@pytest.fixture(scope="module")
def offline():
    """Every tracker writes locally: W&B offline whatever this machine is logged into, MLflow in the run folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_MODE", "offline")
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.delenv("WANDB_PROJECT", raising=False)
        yield


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def tracked_sweep(offline, cache, tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    started = time.perf_counter()
    code = main([*SWEEP, *overrides(runs, cache)])
    print(f"tracked micro sweep wall time: {time.perf_counter() - started:.1f} s")
    assert code == 0
    plan = build_plan(load_experiment(None, overrides(runs, cache)), SweepOptions(
        total_steps=(8,), teacher_steps=(4,), teacher_sizes=("nano",), student_size="nano", baselines=("vjepa2",),
        probe_points=2, name="tracked", trackers=TRACKERS))
    return plan, read_results(plan.sweep_dir)


def units_of(plan):
    return [*plan.teachers.values(), *plan.students.values(), *plan.baselines.values()]


def losses(run_dir: Path) -> dict[int, float]:
    """What the loop logged (metrics.jsonl): the loss per step, a branch's own steps only."""
    path = run_dir / "metrics.jsonl"
    return {row["step"]: row["loss"] for row in map(json.loads, path.read_text().splitlines())} if path.is_file() else {}


def probed(table, unit) -> dict[int, float]:
    """The results table's acc_mean per probed step of a unit, where its probe converged."""
    rows = table[(table.unit_key == unit.key) & (table.status == "ok")]
    return {int(step): float(acc) for step, acc in zip(rows.step, rows.acc_mean) if not math.isnan(acc)}


def steps_of(table, unit) -> set[int]:
    return set(table[(table.unit_key == unit.key) & (table.status == "ok")].step.astype(int))


# -- readers -----------------------------------------------------------------------------------------

def tensorboard_scalars(log_dir: Path) -> dict[str, dict[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    scalars = {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
    for tag, values in scalars.items():  # a step twice would be a run logged twice over
        assert len({step for step, _ in values}) == len(values), (log_dir, tag)
    return {tag: dict(values) for tag, values in scalars.items()}


def wandb_records(path: Path):
    """The records of a W&B transaction log (run-<id>.wandb): a 7-byte header (':W&B', magic, version), then
    LevelDB's log format (32 KiB blocks; each chunk a 7-byte header: CRC, length, type FULL/FIRST/MIDDLE/LAST)
    around protobuf Records. wandb 0.31 ships no reader in Python (its wandb-core writes the file)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    position, pending = 7, b""
    while position + 7 <= len(data):
        room = 32768 - position % 32768
        if room < 7:  # a block's tail too short for a header is padding
            position += room
            continue
        _, length, kind = struct.unpack("<IHB", data[position:position + 7])
        if kind == 0:
            position += room
            continue
        pending += data[position + 7:position + 7 + length]
        position += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def wandb_runs(folder: Path) -> dict[str, dict]:
    """Per W&B run id: its offline run folders, run records, and history as {metric: {step: value}}."""
    runs = defaultdict(lambda: {"folders": [], "run": [], "history": defaultdict(dict)})
    for log in sorted(folder.glob("wandb/offline-run-*/run-*.wandb")):
        for record in wandb_records(log):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                run = runs[record.run.run_id]
                run["folders"].append(log.parent)
                run["run"].append(record.run)
            elif kind == "history":
                items = {item.key or "/".join(item.nested_key): json.loads(item.value_json)
                         for item in record.history.item}
                if "step" in items:
                    for key, value in items.items():
                        if "/" in key and isinstance(value, (int, float)):
                            run["history"][key][items["step"]] = value
    return runs


def mlflow_client(folder: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")


def mlflow_history(client, run_id: str, key: str) -> dict[int, float]:
    history = [(m.step, m.value) for m in client.get_metric_history(run_id, key)]
    assert len({step for step, _ in history}) == len(history), (run_id, key)
    return dict(history)


# -- the micro sweep on all three trackers -------------------------------------------------------------

def test_tensorboard_holds_each_units_training_and_probe_rows(tracked_sweep):
    plan, table = tracked_sweep
    folders = {p.relative_to(plan.sweep_dir / "tensorboard") for p in (plan.sweep_dir / "tensorboard").glob("*/*")}
    assert folders == {Path("teacher/T4-nano_seed0"), *(Path("student") / a for a in plan.students), *(Path("vjepa2") / b for b in plan.baselines),
                       Path("sweep/tracked")}
    for unit in units_of(plan):
        scalars = tensorboard_scalars(unit_tracking(plan, unit).tensorboard_dir)
        assert scalars.get("train/loss", {}) == pytest.approx(losses(unit.run_dir)), unit.key
        if losses(unit.run_dir):
            assert set(scalars["train/lr"]) == set(scalars["train/clips_per_s"]) == set(losses(unit.run_dir))
        assert scalars.get("probe/acc_mean", {}) == pytest.approx(probed(table, unit))
        assert set(scalars["probe/rankme"]) == steps_of(table, unit)
        assert len(losses(unit.run_dir)) == unit.steps > 1


def test_mlflow_holds_one_run_per_unit_with_its_tags_and_metrics(tracked_sweep):
    plan, table = tracked_sweep
    client = mlflow_client(plan.sweep_dir)
    experiment = client.get_experiment_by_name("tracked")
    runs = client.search_runs([experiment.experiment_id])
    keys = [run.data.tags["unit_key"] for run in runs]
    assert sorted(keys) == sorted([u.key for u in units_of(plan)] + [sweep_tracking(plan).run_id])
    by_key = {run.data.tags["unit_key"]: run for run in runs}
    for unit in units_of(plan):
        run = by_key[unit.key]
        assert run.data.tags["kind"] == unit.kind and run.info.status == "FINISHED"
        assert mlflow_history(client, run.info.run_id, "train/loss") == pytest.approx(losses(unit.run_dir))
        assert mlflow_history(client, run.info.run_id, "probe/acc_mean") == pytest.approx(probed(table, unit))
    for student in plan.students.values():
        tags, allocation = by_key[student.key].data.tags, student.allocation
        assert int(tags["teacher_steps"]) == allocation.teacher_steps
        assert float(tags["teacher_share"]) == pytest.approx(allocation.teacher_share)
        assert int(tags["student_steps"]) == allocation.student_steps and tags["budget_kind"] == "steps"
        assert by_key[student.key].data.params["optim.steps"] == str(allocation.student_steps)
    [baseline] = plan.baselines.values()
    assert by_key[baseline.key].data.tags["method"] == "vjepa2"
    sweep = by_key[sweep_tracking(plan).run_id]
    best = table[(table.role == "student") & table.is_final.fillna(False).astype(bool)].acc_mean.max()
    if not math.isnan(best):
        assert sweep.data.metrics["sweep/best_student_acc_mean"] == pytest.approx(best)
    artifacts = {info.path for info in client.list_artifacts(sweep.info.run_id)}
    assert {"results.csv", "summary.txt"} <= artifacts


def test_wandb_offline_runs_hold_one_run_per_unit_with_its_tags_and_metrics(tracked_sweep):
    plan, table = tracked_sweep
    runs = wandb_runs(plan.sweep_dir)
    assert set(runs) == {u.key for u in units_of(plan)} | {sweep_tracking(plan).run_id}
    for unit in units_of(plan):
        run = runs[unit.key]
        assert {(r.run_group, r.job_type, r.project) for r in run["run"]} == {("tracked", unit.kind, "salt-budget")}
        assert run["history"].get("train/loss", {}) == pytest.approx(losses(unit.run_dir))
        assert run["history"].get("probe/acc_mean", {}) == pytest.approx(probed(table, unit))
        # Its training, then each probed checkpoint's row: as many processes' records, one W&B run.
        assert len(run["folders"]) == 1 + len(steps_of(table, unit))
    for student in plan.students.values():
        [tags] = {tuple(r.tags) for r in runs[student.key]["run"]}
        assert f"teacher_steps={student.allocation.teacher_steps}" in tags
        config = {item.key: json.loads(item.value_json) for item in runs[student.key]["run"][0].config.update}
        assert config["tags"]["teacher_share"] == pytest.approx(student.allocation.teacher_share)
        assert config["optim"]["steps"] == student.allocation.student_steps


# -- one run trained in two calls; the missing extra; no tracker; the train command -----------------------

def test_a_run_trained_in_two_calls_continues_one_tracker_run(offline, cache, tmp_path):
    data = load_experiment(None, overrides(tmp_path, cache)).data
    cfg = micro_teacher(steps=5)
    run_dir = tmp_path / "teachers" / "t1"
    spec = TrackingSpec(trackers=TRACKERS, group="resumed", run_id="t1key", name="t1", kind="teacher",
                        folder=tmp_path / "teachers", tags={"seed": 0}, config={"optim": {"steps": 5}})
    assert pickle.loads(pickle.dumps(spec)) == spec  # a Ray task may carry it
    train_stage("teacher", cfg, data, run_dir, seed=0, progress=False, stop_at=4, tracking=spec)
    # A crash after step 4 was logged but before its checkpoint: the run resumes from step 3, and TensorBoard
    # replaces steps 4 on, as metrics.jsonl does.
    checkpoint_path(run_dir / "checkpoints", 4).unlink()
    train_stage("teacher", cfg, data, run_dir, seed=0, progress=False, tracking=spec)
    logged = losses(run_dir)
    assert sorted(logged) == [1, 2, 3, 4, 5]
    assert tensorboard_scalars(spec.tensorboard_dir)["train/loss"] == pytest.approx(logged)
    assert len(list(spec.tensorboard_dir.glob("events.out.tfevents.*"))) == 2
    client = mlflow_client(spec.folder)
    [run] = client.search_runs([client.get_experiment_by_name("resumed").experiment_id])
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")]
    assert sorted(set(steps)) == [1, 2, 3, 4, 5]  # MLflow keeps both step-4 values: it cannot delete one
    runs = wandb_runs(spec.folder)
    assert list(runs) == ["t1key"] and len(runs["t1key"]["folders"]) == 2
    assert set(runs["t1key"]["history"]["train/loss"]) == {1, 2, 3, 4, 5}


def test_a_tracker_whose_library_is_missing_is_refused_with_its_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` now raises ImportError
    with pytest.raises(ConfigError, match=r"--tracker wandb needs the wandb package: pip install 'salt-budget\[wandb\]'"):
        check_trackers(["tensorboard", "wandb"])
    assert main([*SWEEP[:-3], "wandb", "--dry-run"]) == 2
    assert "pip install 'salt-budget[wandb]'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="unknown tracker 'neptune'"):
        check_trackers(["neptune"])


def test_a_run_without_trackers_imports_none_of_their_libraries(cache, tmp_path):
    script = f"""
import sys
from salt_budget.cli import main
import salt_budget.sweep.running.runner, salt_budget.sweep.running.tracking
assert main(["train", "teacher", "--run-dir", {str(tmp_path / 'run')!r}, *{overrides(tmp_path, cache)!r},
             "teacher.encoder.preset=nano", "teacher.optim.steps=3"]) == 0
print(sorted(m for m in ("wandb", "mlflow", "tensorboard", "tensorboardX") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_train_command_logs_to_tensorboard_and_trains_on_when_a_tracker_fails(offline, cache, tmp_path,
                                                                                  monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "nosuchscheme://nowhere")  # MLflow cannot open the run
    run_dir = tmp_path / "teachers" / "mine"
    assert main(["train", "teacher", "--run-dir", str(run_dir), "--tracker", "tensorboard", "mlflow",
                 *overrides(tmp_path, cache), "teacher.encoder.preset=nano", "teacher.optim.steps=3"]) == 0
    assert "[tracking] mlflow: opening the run failed for run mine" in capsys.readouterr().err
    scalars = tensorboard_scalars(tmp_path / "teachers" / "tensorboard" / "teacher" / "mine")
    assert scalars["train/loss"] == pytest.approx(losses(run_dir))
    assert sorted(scalars["train/flops"]) == [1, 2, 3] and scalars["train/flops"][3] > scalars["train/flops"][1] > 0


def png_file(path: Path, width: int = 3, height: int = 2) -> Path:
    """A grey PNG, written by hand (no imaging library needed)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    return path


def test_files_and_text_reach_every_tracker(offline, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    figure, page = png_file(tmp_path / "pareto.png"), tmp_path / "report.html"
    page.write_text("<p>report</p>")
    spec = TrackingSpec(trackers=TRACKERS, group="files", run_id="f1", name="f1", kind="sweep", folder=tmp_path)
    with open_sink(spec) as sink:
        sink.add_text("summary", "best: 0.5")
        sink.add_file(figure)
        sink.add_file(page)
    events = EventAccumulator(str(spec.tensorboard_dir), size_guidance={"images": 0, "tensors": 0})
    events.Reload()
    [image] = events.Images("figures/pareto")
    assert (image.width, image.height, image.encoded_image_string) == (3, 2, figure.read_bytes())
    assert "summary/text_summary" in events.Tags()["tensors"]
    client = mlflow_client(tmp_path)
    [run] = client.search_runs([client.get_experiment_by_name("files").experiment_id])
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"pareto.png", "report.html", "summary.txt"}
    [folder] = tmp_path.glob("wandb/offline-run-*-f1")
    assert list(folder.glob("files/media/images/figures/pareto_*.png")) and list(folder.glob("files/media/html/*"))


def test_a_sweep_end_that_cannot_be_logged_leaves_the_sweep_finished(tracked_sweep, monkeypatch, capsys):
    from salt_budget.sweep.running import tracking

    plan, _ = tracked_sweep
    monkeypatch.setattr(tracking, "_log_sweep_end", lambda plan, code: 1 / 0)
    tracking.log_sweep_end(plan, 0)  # no exception
    assert "the sweep's summary could not be logged to tensorboard, wandb, mlflow: ZeroDivisionError" in \
        capsys.readouterr().err


def test_every_sweep_of_a_study_gets_the_trackers(tmp_path, monkeypatch):
    from salt_budget.study import runner
    from tests.test_study import write_study

    class Started(Exception):
        pass

    def run_study(plan, **kwargs):
        raise Started([sweep_plan.options.trackers for sweep_plan in plan.plans])

    monkeypatch.setattr(runner, "run_study", run_study)
    path = write_study(tmp_path / "s.yaml", tmp_path / "runs", tmp_path / "cache")
    with pytest.raises(Started) as started:
        main(["study", str(path), "--tracker", "tensorboard", "mlflow"])
    assert started.value.args[0] == [("tensorboard", "mlflow")] * 4
