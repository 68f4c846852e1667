"""Scale-out: units on two Ray Train workers (gloo) train as one process in micro-batches; a worker killed
mid-unit resumes to the table of an uninterrupted sweep; both on a two-node Ray cluster (ray.cluster_utils)
joined with --address, each unit's two workers on the two nodes; a bad --address or a --resume without a
sweep stops at once."""

import os
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from analysis.schema import rows_file_name
from analysis.tables import read_parquet_snapshot
from salt_budget.cli import main
from salt_budget.sweep.results.store import read_results
from salt_budget.sweep.results.processes import read_processes
from tests.test_sweep_run import overrides
from trainers.checkpoint import load_checkpoint

# One allocation (T 4 + S 20 = 24): a 4-step teacher and a 20-step student checkpointed every 3 steps. Micro-
# batches of 1 clip: one process takes its batch of 4 in four passes, each of two workers its 2 in two.
ONE = ["sweep", "--total-steps", "24", "--teacher-steps", "4", "--teacher-sizes", "nano", "--student-size", "nano",
       "--probe-points", "2"]
HALVES = ["teacher.run.micro_batch=1", "student.run.micro_batch=1"]


def _metrics(run_dir: Path) -> list[dict]:
    import json

    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _kill_rank_one_after_first_checkpoint(trials: Path, killed: list) -> None:
    """SIGKILL the student's rank-1 worker once its first checkpoint is written (a unit killed mid-run)."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        for run_dir in trials.glob("*"):
            ranks = [p for p in read_processes(run_dir) if p["rank"] == 1]
            if ranks and (run_dir / "checkpoints" / "step_00000003.pt").is_file():
                os.kill(ranks[0]["pid"], signal.SIGKILL)
                killed.append((ranks[0]["pid"], sorted(p.name for p in (run_dir / "checkpoints").iterdir())))
                return
        time.sleep(0.02)


def _sweep_without_ray(runs: Path, cache: Path) -> None:
    """The uninterrupted one-process sweep "single", its units called as plain functions (what its Ray tasks and
    trials would call), which spares the suite a Ray start."""
    from salt_budget.experiment import load_experiment
    from salt_budget.sweep.planning.plan import build_plan
    from salt_budget.sweep.planning.options import SweepOptions
    from salt_budget.sweep.running.floor import floor_units, probe_floor
    from salt_budget.sweep.running.runner import prepare_sweep_dir
    from salt_budget.sweep.planning.teacher_ladders import ladders
    from salt_budget.sweep.running.teachers import train_ladder
    from salt_budget.sweep.running.trial import train_and_probe
    from trainers.data.build import resolve_data

    options = SweepOptions(total_steps=(24,), teacher_steps=(4,), teacher_sizes=("nano",), student_size="nano",
                           probe_points=2, name="single")
    plan = build_plan(load_experiment(None, overrides(runs, cache, *HALVES)), options)
    prepare_sweep_dir(plan)
    resolve_data(plan.experiment.data)
    for ladder in ladders(plan):
        train_ladder(ladder, plan)
    for unit in floor_units(plan):
        probe_floor(unit, plan)
    for student in plan.students.values():
        train_and_probe(student, plan, lambda metrics: None)


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    """The allocation in one process per unit, and on a two-node Ray cluster (ray.cluster_utils, 1 CPU
    per node) joined with --address, on two Ray Train workers per unit, one on each node, with the student's rank 1
    killed after its first checkpoint (Ray Train restarts the group, which continues from that checkpoint)."""
    from ray.cluster_utils import Cluster

    cache, runs = tmp_path_factory.mktemp("cache"), tmp_path_factory.mktemp("runs")
    _sweep_without_ray(runs, cache)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.2")  # Ray Train's poll: 2 s of every fit's end by default
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
        try:
            cluster.add_node(num_cpus=1)
            cluster.wait_for_nodes()
            nodes = {node.node_id for node in cluster.list_all_nodes()}
            killed: list = []
            killer = threading.Thread(target=_kill_rank_one_after_first_checkpoint,
                                      args=(runs / "workers" / "trials", killed), daemon=True)
            killer.start()
            started = time.perf_counter()
            code = main([*ONE, "--name", "workers", "--workers-per-trial", "2", "--address", cluster.address,
                         *overrides(runs, cache, *HALVES)])
            print(f"two-worker sweep on two nodes with a killed worker: {time.perf_counter() - started:.1f} s")
            killer.join(timeout=1)
        finally:
            cluster.shutdown()
    return code, runs / "single", runs / "workers", killed, nodes


def test_two_ray_train_workers_train_the_teacher_of_one_process_in_micro_batches(sweeps):
    code, single, workers, _, _ = sweeps
    assert code == 0
    [one] = list((single / "teachers").iterdir())
    [two] = list((workers / "teachers").iterdir())
    assert one.name == two.name  # the same unit: worker count is not part of what a unit is
    assert [p["rank"] for p in read_processes(one)] == [0]
    assert sorted(p["rank"] for p in read_processes(two)) == [0, 1] and {p["world"] for p in read_processes(two)} == {2}
    ours, theirs = _metrics(two), _metrics(one)
    assert [row["step"] for row in ours] == [1, 2, 3, 4]  # rank 0 alone wrote them
    assert [row["loss"] for row in ours] == pytest.approx([row["loss"] for row in theirs], rel=1e-5)
    assert [row["flops"] for row in ours] == pytest.approx([row["flops"] for row in theirs], rel=1e-12)
    ranked = load_checkpoint(two / "checkpoints" / "step_00000004.pt")["encoder_state"]
    alone = load_checkpoint(one / "checkpoints" / "step_00000004.pt")["encoder_state"]
    assert all(torch.allclose(ranked[key], alone[key], atol=1e-5) for key in alone)


# Two workers sum their gradients in another order than one: equal to a tolerance, not to the last bit.
COMPARED = ["loss_final", "loss_smoothed", "flops_teacher", "flops_student", "acc_appearance", "acc_motion", "rankme",
            "target_std"]


def test_a_worker_killed_mid_unit_resumes_to_the_table_of_an_uninterrupted_sweep(sweeps):
    code, single, workers, killed, _ = sweeps
    assert code == 0
    [(pid, checkpoints)] = killed
    assert "step_00000020.pt" not in checkpoints  # it was killed before the student finished
    [student] = list((workers / "trials").iterdir())
    processes = read_processes(student)
    assert pid in [p["pid"] for p in processes]
    assert sorted(p["rank"] for p in processes) == [0, 0, 1, 1]  # a second worker group finished the unit
    steps = [row["step"] for row in _metrics(student)]
    assert steps == list(range(1, 21))  # the resumed run logged each step once
    resumed = read_results(workers).set_index(["unit_key", "step"]).sort_index()
    reference = read_results(single).set_index(["unit_key", "step"]).sort_index()
    assert resumed.index.equals(reference.index) and (resumed.status == "ok").all()
    pd.testing.assert_frame_equal(resumed[COMPARED], reference[COMPARED], rtol=1e-4)


def test_a_two_node_cluster_joined_by_address_runs_every_unit_on_both_nodes(sweeps, capsys):
    _, _, workers, _, nodes = sweeps
    ran = {}
    for kind in ("teachers", "trials"):
        for run_dir in sorted((workers / kind).iterdir()):
            ran[f"{kind}/{run_dir.name}"] = [(p["rank"], p["node_id"]) for p in read_processes(run_dir)]
    with capsys.disabled():
        print("\nunit -> (rank, node) of each process that trained it:\n" + "\n".join(
            f"  {unit}: {', '.join(f'rank {rank} on {node[:8]}' for rank, node in processes)}"
            for unit, processes in ran.items()))
    assert len(nodes) == 2 and len(ran) == 2  # the teacher and the student
    for processes in ran.values():
        # One worker per node (1 CPU each): every unit was trained on both nodes at once.
        assert {node for _, node in processes} == nodes
    # Units on both nodes wrote their rows with no lock, each to a file of its own; results.parquet holds them all.
    table = read_results(workers)
    assert sorted(p.name for p in (workers / "rows").iterdir()) == sorted(map(rows_file_name, set(table.unit_key)))
    assert len(table) == len(pd.concat([pd.read_parquet(p) for p in (workers / "rows").iterdir()]))
    assert table.equals(read_parquet_snapshot(workers / "results.parquet"))
    assert not (workers / ".results.lock").exists()


def never_joins(monkeypatch) -> list:
    """ray.init replaced by a recorder: a bad address must stop before it (ray.init would retry for minutes)."""
    import ray

    joined: list = []
    monkeypatch.setattr(ray, "init", lambda *args, **kwargs: joined.append(kwargs.get("address")))
    return joined


def test_an_address_where_no_cluster_answers_fails_fast_with_one_line(tmp_path, capsys, monkeypatch):
    # Fast without a clock: the refused TCP connection stops the command before ray.init is ever called.
    joined = never_joins(monkeypatch)
    assert main(["sweep", "--total-steps", "24", "--teacher-steps", "4", "--teacher-sizes", "nano", "--student-size",
                 "nano", "--address", "127.0.0.1:1", *overrides(tmp_path, tmp_path / "cache")]) == 2
    assert joined == []
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "127.0.0.1:1" in err[0] and "ray start --head" in err[0]
    assert not (tmp_path / "tiny").exists()  # nothing written


def test_an_address_that_listens_but_is_no_ray_head_fails_in_seconds(tmp_path, capsys, monkeypatch):
    import socket

    import salt_budget.sweep.running.ray_start as runner

    monkeypatch.setattr(runner, "GCS_TIMEOUT_S", 3)
    # In seconds without a clock: the one wait is the GCS probe's, bounded by GCS_TIMEOUT_S, and ray.init (which
    # would retry forever against a service that is no Ray head) is never called.
    joined, waits = never_joins(monkeypatch), []
    probe = runner.subprocess.run

    def timed_run(*args, **kwargs):
        waits.append(kwargs.get("timeout"))
        return probe(*args, **kwargs)

    monkeypatch.setattr(runner.subprocess, "run", timed_run)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert main(["sweep", "--total-steps", "24", "--teacher-steps", "4", "--teacher-sizes", "nano",
                     "--student-size", "nano", "--address", f"127.0.0.1:{port}",
                     *overrides(tmp_path, tmp_path / "cache")]) == 2
    assert waits == [3] and joined == []
    assert "no Ray head answered within 3 s" in capsys.readouterr().err


def test_resume_without_a_sweep_folder_says_so_and_stops(tmp_path, capsys):
    assert main(["sweep", "--total-steps", "24", "--teacher-steps", "4", "--teacher-sizes", "nano", "--student-size",
                 "nano", "--name", "never-ran", "--resume", *overrides(tmp_path, tmp_path / "cache")]) == 2
    assert "holds no sweep to continue" in capsys.readouterr().err
    assert not (tmp_path / "never-ran").exists()
