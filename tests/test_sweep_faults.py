"""A sweep that meets a fault: a second driver on its folder (refused; a stale one's folder taken over), a
Ctrl-C or SIGTERM (it stops, exits 130 / 143, says what finished and the command that continues it), and a
summary that never calls a partial sweep done. Ray is not started except by the one end-to-end test (slow)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from salt_budget.cli import build_parser, main
from salt_budget.experiment import load_experiment
from salt_budget.sweep.running import runner
from salt_budget.sweep.running.holder import HOLDER_FILE, hold, release
from salt_budget.sweep.planning.plan import build_plan
from salt_budget.sweep.planning.options import PlanError, SweepOptions
from salt_budget.sweep.results.store import append_rows, read_results
from salt_budget.sweep.running.rows import failed_row
from salt_budget.sweep.running.summary import SweepTimes, continue_command, summarize, sweep_progress
from tests.test_sweep_run import overrides

# Budget 24 with teachers of 4, 8, 12 and 16 steps: four allocations of one nano teacher ladder.
FOUR = ["sweep", "--total-steps", "24", "--teacher-steps", "4", "8", "12", "16", "--teacher-sizes", "nano",
        "--student-size", "nano", "--probe-points", "1"]


def four_plan(tmp_path: Path, search: str = "grid", trials: int | None = None, baselines=()):
    experiment = load_experiment(None, overrides(tmp_path / "runs", tmp_path / "cache"))
    # As FOUR asks; a search plans its bounds' allocations (teachers of 4 and 16 steps).
    shares = dict(teacher_steps=(4, 8, 12, 16)) if search == "grid" else dict(share_bounds=(1 / 6, 2 / 3))
    return build_plan(experiment, SweepOptions(total_steps=(24,), teacher_sizes=("nano",), student_size="nano",
                                               name="four", search=search, trials=trials, baselines=baselines,
                                               probe_points=1, **shares))


def final_row(unit, allocation_id: str, step: int) -> dict:
    return {"unit_key": unit.key, "role": "student", "allocation_id": allocation_id, "step": step, "is_final": True,
            "status": "ok", "acc_mean": 0.5, "acc_motion": 0.5, "sweep": "four"}


def finish(plan, *allocation_ids: str) -> None:
    append_rows(plan.sweep_dir, [final_row(plan.students[a], a, plan.students[a].allocation.student_steps)
                                 for a in allocation_ids])


def log_records(plan) -> list[dict]:
    return [json.loads(line) for line in (plan.sweep_dir / "sweep_log.jsonl").read_text().splitlines()]


# -- the folder's holder -------------------------------------------------------------------------------

def _gone_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _write_holder(folder: Path, **info) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    record = {"host": socket.gethostname(), "pid": os.getpid(), "started": "2026-12-01T10:00:00+0000",
              "argv": ["salt-budget", "sweep", "--total-steps", "12"], "token": "theirs", **info}
    path = folder / HOLDER_FILE
    path.write_text(json.dumps(record))
    return path


def test_a_driver_holds_its_folder_and_a_second_one_is_refused_with_host_and_pid(tmp_path):
    mine = hold(tmp_path / "sweep", argv=["salt-budget", "sweep", "--total-steps", "12"])
    record = json.loads((tmp_path / "sweep" / HOLDER_FILE).read_text())
    assert record["host"] == socket.gethostname() and record["pid"] == os.getpid()
    assert record["argv"] == ["salt-budget", "sweep", "--total-steps", "12"] and record["started"]
    with pytest.raises(PlanError) as refused:
        hold(tmp_path / "sweep")
    message = str(refused.value)
    assert f"host {socket.gethostname()}, pid {os.getpid()}" in message and "wait for it or stop it" in message
    assert "if that process is gone" in message
    release(mine)
    assert not (tmp_path / "sweep" / HOLDER_FILE).exists()
    release(hold(tmp_path / "sweep"))  # free again
    assert sorted(os.listdir(tmp_path / "sweep")) == []  # no temporary file left


def test_a_stale_holder_on_this_host_is_taken_over_with_a_warning(tmp_path):
    folder = tmp_path / "sweep"
    _write_holder(folder, pid=_gone_pid())
    warnings = []
    mine = hold(folder, warn=warnings.append)
    assert len(warnings) == 1 and "taking over" in warnings[0] and "gone" in warnings[0]
    assert json.loads((folder / HOLDER_FILE).read_text())["pid"] == os.getpid()
    release(mine)
    # A pid that now belongs to another process (this one, started later than the record says) is stale too.
    if Path(f"/proc/{os.getpid()}/stat").is_file():
        _write_holder(folder, process_start="1")
        warnings.clear()
        release(hold(folder, warn=warnings.append))
        assert len(warnings) == 1
    assert sorted(os.listdir(folder)) == []


def test_a_holder_on_another_host_or_unreadable_is_refused_with_what_to_do(tmp_path):
    folder = tmp_path / "sweep"
    path = _write_holder(folder, host="node-17", pid=4242)
    with pytest.raises(PlanError, match=r"host node-17, pid 4242.*cannot check a process on node-17: if that job is "
                                        r"gone, delete .*driver\.json"):
        hold(folder)
    path.write_text("{not json")
    with pytest.raises(PlanError, match="cannot be read"):
        hold(folder)


def test_release_leaves_a_successors_holder_file(tmp_path):
    mine = hold(tmp_path)
    _write_holder(tmp_path, token="successor")  # taken over while this process seemed gone
    release(mine)
    assert json.loads((tmp_path / HOLDER_FILE).read_text())["token"] == "successor"


def test_a_second_sweep_on_a_running_folder_is_told_it_runs_not_to_resume(tmp_path, capsys):
    plan = four_plan(tmp_path)
    plan.sweep_dir.mkdir(parents=True)
    (plan.sweep_dir / "config.yaml").write_text("name: four\n")
    from salt_budget.sweep.running.tuning import _experiment_dir

    _experiment_dir(plan).mkdir(parents=True)
    (_experiment_dir(plan) / "tuner.pkl").write_bytes(b"")  # a Tune experiment: resumable, were it not running
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _write_holder(plan.sweep_dir, pid=sleeper.pid)
        args = [*FOUR, "--name", "four", *overrides(tmp_path / "runs", tmp_path / "cache")]
        for extra in ([], ["--resume"]):
            assert main([*args, *extra]) == 2
            err = capsys.readouterr().err
            assert f"in use by another sweep driver (host {socket.gethostname()}, pid {sleeper.pid}" in err
            assert "add --resume" not in err
    finally:
        sleeper.kill()
        sleeper.wait()
    assert json.loads((plan.sweep_dir / HOLDER_FILE).read_text())["pid"] == sleeper.pid  # not the refused one's


def test_a_sweep_refused_before_it_starts_leaves_no_folder(tmp_path, capsys):
    args = [*FOUR, "--name", "never", "--resume", *overrides(tmp_path / "runs", tmp_path / "cache")]
    assert main(args) == 2
    assert "holds no sweep to continue" in capsys.readouterr().err
    assert not (tmp_path / "runs" / "never").exists()


# -- progress and the summary --------------------------------------------------------------------------

def test_a_partial_grid_is_never_called_done(tmp_path, capsys, monkeypatch):
    plan = four_plan(tmp_path)
    ids = list(plan.students)
    finish(plan, *ids[:2])
    progress = sweep_progress(plan)
    assert (progress.finished, progress.failed, progress.not_run, progress.complete) == (ids[:2], [], 2, False)
    monkeypatch.setattr(sys, "argv", ["salt-budget", *FOUR, "--name", "four"])
    plan.sweep_dir.joinpath("config.yaml").write_text("name: four\n")
    assert summarize(plan, SweepTimes(), 27.1) == 1  # no signal known: stopped, not done
    out = capsys.readouterr().out
    assert "done" not in out
    assert "[sweep] stopped after 27.1 s: 2 of 4 allocations finished (0 failed, 2 not run)" in out
    assert f"continue with: salt-budget {' '.join(FOUR)} --name four --resume" in out
    assert summarize(plan, SweepTimes(), 27.1, signum=signal.SIGTERM) == 143
    assert "[sweep] interrupted by SIGTERM after 27.1 s: 2 of 4 allocations finished" in capsys.readouterr().out
    records = log_records(plan)
    assert [r["interrupted"] for r in records] == [True, True] and records[1]["signal"] == "SIGTERM"
    assert records[1]["finished"] == ids[:2] and records[1]["not_run"] == 2


def test_a_whole_grid_is_done_and_failed_allocations_count_as_run(tmp_path, capsys):
    plan = four_plan(tmp_path)
    ids = list(plan.students)
    finish(plan, *ids[:3])
    append_rows(plan.sweep_dir, [failed_row(plan.students[ids[3]], "OOM", sweep="four", config_hash="c")])
    assert summarize(plan, SweepTimes(), 5.0) == 1
    out = capsys.readouterr().out
    assert f"[sweep] done in 5.0 s: 3 of 4 allocations finished, FAILED: {ids[3]}" in out
    finish(plan, ids[3])
    assert summarize(plan, SweepTimes(), 5.0) == 0
    assert "done in 5.0 s: 4 of 4 allocations finished;" in capsys.readouterr().out
    assert log_records(plan)[-1]["interrupted"] is False


def test_a_search_is_done_when_every_trial_it_asked_for_ran(tmp_path, capsys):
    plan = four_plan(tmp_path, search="optuna", trials=3)
    ids = list(plan.students)
    finish(plan, ids[0], ids[1])
    # Tune returned two trials of three (one allocation proposed twice): stopped
    assert not sweep_progress(plan, trials=[ids[0], ids[0]]).complete
    assert summarize(plan, SweepTimes(), 1.0, trials=[ids[0], ids[0]], signum=signal.SIGINT) == 130
    assert "2 of 3 search trials finished (0 failed, 1 not run)" in capsys.readouterr().out
    assert summarize(plan, SweepTimes(), 1.0, trials=[ids[0], ids[1], ids[0]]) == 0
    assert "done in 1.0 s: 2 of 2 allocations finished" in capsys.readouterr().out  # distinct allocations


def test_baselines_not_run_leave_the_sweep_stopped(tmp_path, capsys):
    plan = four_plan(tmp_path, baselines=("vjepa2",))
    finish(plan, *plan.students)
    progress = sweep_progress(plan)
    assert progress.not_run == 0 and progress.baselines_not_run == list(plan.baselines) and not progress.complete
    assert summarize(plan, SweepTimes(), 1.0) == 1
    assert "baselines 0 of 1 finished (0 failed, 1 not run)" in capsys.readouterr().out


def test_the_continue_command_adds_resume_once_and_parses(tmp_path):
    plan = four_plan(tmp_path)
    argv = [*FOUR, "--name", "four", "runs_dir=/x y"]
    assert continue_command(plan, argv) == "salt-budget " + " ".join(argv[:-1]) + " 'runs_dir=/x y'"  # not started
    plan.sweep_dir.mkdir(parents=True)
    (plan.sweep_dir / "config.yaml").write_text("name: four\n")
    line = continue_command(plan, argv)
    assert line.endswith("'runs_dir=/x y' --resume")
    import shlex

    args = build_parser().parse_args(shlex.split(line)[1:])
    assert args.resume and list(args.total_steps) == [24] and shlex.split(line)[-2] == "runs_dir=/x y"
    assert continue_command(plan, [*argv, "--resume"]).count("--resume") == 1
    assert continue_command(plan, ["/tmp/job.pkl"]) == "run the same command again with --resume"
    plan.sweep_dir.joinpath("config.yaml").unlink()  # a study's sweep stopped before it started: the study resumes
    assert continue_command(plan, ["study", "s.yaml"]) == "salt-budget study s.yaml --resume"


# -- signals in run_sweep, without Ray --------------------------------------------------------------------

@pytest.fixture
def sweep_without_ray(tmp_path, monkeypatch):
    """run_sweep with Ray and the units' work replaced: the teachers, students and baselines steps are
    callables the test sets (`steps`), each given the plan."""
    import ray

    plan = four_plan(tmp_path, baselines=("vjepa2",))
    steps = {"teachers": lambda plan: None, "students": lambda plan, stop: [], "baselines": lambda plan: None,
             "shutdown": lambda: None}
    monkeypatch.setattr(runner, "start_ray", lambda address, cpus: True)
    monkeypatch.setattr(ray, "shutdown", lambda: steps["shutdown"]())
    monkeypatch.setattr(runner, "check_resume", lambda plan, resume: None)
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0})
    monkeypatch.setattr("trainers.probe.sets.prepare_data", lambda data, probe: [])
    monkeypatch.setattr(runner, "probe_floors", lambda plan, units: None)
    monkeypatch.setattr(runner, "train_teachers", lambda plan, units, times: steps["teachers"](plan))
    monkeypatch.setattr(runner, "train_students", lambda plan, units, times, stop: steps["students"](plan, stop))
    monkeypatch.setattr(runner, "train_baselines", lambda plan, units, times: steps["baselines"](plan))
    monkeypatch.setattr(sys, "argv", ["salt-budget", *FOUR, "--name", "four"])

    def unhandled(signum, frame):
        raise AssertionError("SIGTERM reached the test's handler: run_sweep has none of its own")

    original = signal.signal(signal.SIGTERM, unhandled)  # a SIGTERM run_sweep misses fails the test, not pytest
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        yield plan, steps
        assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before  # handlers restored
    finally:
        signal.signal(signal.SIGTERM, original)
    assert not (plan.sweep_dir / HOLDER_FILE).exists()  # the folder released


def test_sigterm_outside_tune_stops_the_sweep_with_143_and_the_resume_line(sweep_without_ray, capsys):
    plan, steps = sweep_without_ray
    ran = []
    steps["teachers"] = lambda plan: os.kill(os.getpid(), signal.SIGTERM) or time.sleep(5)
    steps["students"] = lambda plan, stop: ran.append("students")
    assert runner.run_sweep(plan) == 143
    out = capsys.readouterr().out
    assert "[sweep] interrupted by SIGTERM" in out and "0 of 4 allocations finished (0 failed, 4 not run)" in out
    assert f"continue with: salt-budget {' '.join(FOUR)} --name four --resume" in out
    assert not ran and "done" not in out
    assert log_records(plan)[-1]["interrupted"] is True


def _tune_like_fit(signum: int, plan, stop, finished: int):
    """What Tuner.fit does: its SIGINT handler replaces the one in place and, when it fires, stops the trials,
    puts the replaced handler back and returns; without a signal it stays installed. At each step it calls the
    sweep's callback (TuneStop.at_step), which wraps that handler at the first."""
    replaced = signal.getsignal(signal.SIGINT)
    stopped = []

    def tune_handler(sig, frame):
        stopped.append(sig)
        signal.signal(signal.SIGINT, replaced)

    signal.signal(signal.SIGINT, tune_handler)
    stop.at_step()  # the first step
    finish(plan, *list(plan.students)[:finished])
    if signum:
        os.kill(os.getpid(), signum)
        time.sleep(0.1)
        assert stopped == ([signal.SIGINT] if signum == signal.SIGINT else [])  # SIGTERM: not through Tune's
        stop.at_step()  # the next step: a SIGTERM stops the fit here
        assert signum == signal.SIGINT
    return []


@pytest.mark.parametrize("signum, code, finished", [(signal.SIGINT, 130, 2), (signal.SIGTERM, 143, 2),
                                                    (signal.SIGINT, 130, 4)])  # 4: as the last trial finished
def test_a_signal_caught_by_tune_stops_the_sweep_before_the_baselines(sweep_without_ray, capsys, signum, code,
                                                                      finished):
    plan, steps = sweep_without_ray
    ran = []
    steps["students"] = lambda plan, stop: _tune_like_fit(signum, plan, stop, finished)
    steps["baselines"] = lambda plan: ran.append("baselines")
    assert runner.run_sweep(plan) == code
    out = capsys.readouterr().out
    assert f"interrupted by {signal.Signals(signum).name}" in out and f"{finished} of 4 allocations finished" in out
    assert "--resume" in out and not ran


def test_a_ctrl_c_after_the_students_is_not_swallowed_by_tunes_handler(sweep_without_ray, capsys):
    plan, steps = sweep_without_ray
    steps["students"] = lambda plan, stop: _tune_like_fit(0, plan, stop, finished=4)  # its handler stays installed
    steps["baselines"] = lambda plan: os.kill(os.getpid(), signal.SIGINT) or time.sleep(5)
    assert runner.run_sweep(plan) == 130
    assert "interrupted by SIGINT" in capsys.readouterr().out


def test_tune_returning_with_allocations_not_run_is_an_interrupted_sweep(sweep_without_ray, capsys):
    # Tune returns before every trial is done only when a signal stopped it, though not always through a handler
    # the sweep could wrap (SIGUSR1; an experiment saved by older code): never "done", never on to the baselines.
    plan, steps = sweep_without_ray
    ran = []
    steps["students"] = lambda plan, stop: finish(plan, next(iter(plan.students))) or []
    steps["baselines"] = lambda plan: ran.append("baselines")
    assert runner.run_sweep(plan) == 130
    out = capsys.readouterr().out
    assert "1 of 4 allocations finished (0 failed, 3 not run)" in out
    assert "done in" not in out and not ran


def test_a_whole_sweep_without_ray_is_done(sweep_without_ray, capsys):
    plan, steps = sweep_without_ray
    ran = []
    steps["students"] = lambda plan, stop: finish(plan, *plan.students) or []
    steps["baselines"] = lambda plan: ran.append(append_rows(plan.sweep_dir, [
        {"unit_key": unit.key, "role": "vjepa2", "allocation_id": unit.id, "step": unit.budget, "is_final": True,
         "status": "ok", "acc_mean": 0.5, "collapsed": False} for unit in plan.baselines.values()]))
    assert runner.run_sweep(plan) == 0  # the students done, the sweep goes on to its baselines
    out = capsys.readouterr().out
    assert "done in" in out and "baselines: 1 of 1 finished" in out and ran


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_ray_shuts_down_is_reported_not_raised(sweep_without_ray, capsys, signum, code):
    plan, steps = sweep_without_ray
    steps["students"] = lambda plan, stop: finish(plan, *plan.students) or []
    steps["baselines"] = lambda plan: None
    steps["shutdown"] = lambda: os.kill(os.getpid(), signum) or time.sleep(0.5)
    assert runner.run_sweep(plan) == code
    out = capsys.readouterr().out
    assert f"interrupted by {signal.Signals(signum).name}" in out and "4 of 4 allocations finished" in out


def test_the_sweeps_tune_callback_wraps_tunes_handler_at_the_first_step(tmp_path):
    from salt_budget.sweep.running import tuning

    callback = tuning._callback(four_plan(tmp_path))
    before, fired = signal.getsignal(signal.SIGINT), []
    signal.signal(signal.SIGINT, lambda sig, frame: fired.append(sig) or signal.signal(signal.SIGINT, before))
    tuning._current_stop = stop = tuning.TuneStop()
    try:
        callback.on_step_begin(iteration=0, trials=[])
        callback.on_step_begin(iteration=1, trials=[])  # wraps once
        os.kill(os.getpid(), signal.SIGINT)
        deadline = time.monotonic() + 5
        while not fired and time.monotonic() < deadline:
            time.sleep(0.01)
        assert stop.caught and fired == [signal.SIGINT]
        stop.terminate = True  # a SIGTERM came: the next step stops the fit
        with pytest.raises(runner.SweepInterrupted):
            callback.on_step_begin(iteration=2, trials=[])
    finally:
        tuning._current_stop = None
        signal.signal(signal.SIGINT, before)


# -- end to end, on Ray ------------------------------------------------------------------------------------

def test_a_sweep_stopped_by_sigterm_says_how_to_continue_and_resumes(tmp_path):
    runs, cache = tmp_path / "runs", tmp_path / "cache"
    args = ["sweep", "--total-steps", "12", "--teacher-steps", "4", "8", "--teacher-sizes", "nano", "--student-size",
            "nano", "--probe-points", "1", "--name", "stopped", *overrides(runs, cache)]
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "salt_budget.cli", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        trials = runs / "stopped" / "trials"
        while not (trials.is_dir() and any(trials.iterdir())):  # the first trial started
            assert process.poll() is None and time.monotonic() < deadline, process.stdout.read()
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 143, out
    assert "interrupted by SIGTERM" in out and "of 2 allocations finished" in out
    assert "Tuner.restore(" not in out and "done in" not in out
    [line] = [line for line in out.splitlines() if "continue with: " in line]
    command = line.split("continue with: ", 1)[1]
    assert command.startswith("salt-budget sweep ") and command.endswith(" --resume")
    assert not (runs / "stopped" / HOLDER_FILE).exists()
    import shlex

    resumed = subprocess.run([sys.executable, "-m", "salt_budget.cli", *shlex.split(command)[1:]],
                             capture_output=True, text=True, timeout=300, check=False)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming the Tune experiment" in resumed.stdout  # Tune's state, as saved before the stop, restored
    assert "done in" in resumed.stdout and "2 of 2 allocations finished" in resumed.stdout
    log = [json.loads(line) for line in (runs / "stopped" / "sweep_log.jsonl").read_text().splitlines()]
    assert [record["interrupted"] for record in log] == [True, False]
    assert (read_results(runs / "stopped").query("role == 'student'").is_final.fillna(False)).sum() == 2
    print(f"stopped and resumed sweep: {time.perf_counter() - started:.1f} s")


# -- a study of sweeps ---------------------------------------------------------------------------------------

def _study(tmp_path):
    from salt_budget.study.config import load_study as load_study_file, study_sweeps
    from salt_budget.study.plan import plan_study
    from tests.test_study import write_study

    path = write_study(tmp_path / "study.yaml", tmp_path / "runs", tmp_path / "cache", random_init_probe=False)
    study = load_study_file(path)
    return plan_study(study, study_sweeps(study, path))


def test_a_study_whose_sweep_is_interrupted_stops_and_is_not_done(tmp_path, capsys, monkeypatch):
    from salt_budget.study import runner as study_runner

    plan = _study(tmp_path)
    codes = iter([0, 143])
    monkeypatch.setattr(study_runner, "run_job", lambda job: next(codes))
    monkeypatch.setattr(sys, "argv", ["salt-budget", "study", str(tmp_path / "study.yaml")])
    with pytest.raises(runner.SweepInterrupted) as stopped:
        study_runner.run_study(plan, side_by_side=False)
    assert stopped.value.signum == signal.SIGTERM
    out = capsys.readouterr().out
    assert f"interrupted: 1 of 4 sweeps ran to their end; finished units are kept; continue with: salt-budget study " \
           f"{tmp_path / 'study.yaml'} --resume" in out
    assert "allocation/default: done in" in out and "teacher_size/default: done" not in out
    assert "sweeps done" not in out


def test_a_study_whose_side_by_side_sweep_was_stopped_is_not_called_done(tmp_path, capsys, monkeypatch):
    from salt_budget.study import runner as study_runner

    plan = _study(tmp_path)
    exits = iter([0, 143, 0, 0])

    def start(plan, index, job):
        log = tmp_path / f"{index}.log"
        log.write_text("[sweep] interrupted by SIGTERM after 3.0 s: 0 of 2 allocations finished\n")
        code = next(exits)
        process = subprocess.Popen([sys.executable, "-c", f"import sys; sys.exit({code})"])
        return study_runner._Running(index, process, log, time.time(), 1)

    started = []

    def startable(pending, running, folders, needs, cores):
        chosen = [] if started else list(pending)
        started.append(chosen)
        return chosen

    monkeypatch.setattr(study_runner, "_start_process", start)
    monkeypatch.setattr(study_runner, "startable", startable)
    assert study_runner.run_study(plan, cores=4) == 1
    out = capsys.readouterr().out
    assert "interrupted (SIGTERM)" in out and "study stopped short: 3 of 4 sweeps ran to their end" in out
    assert "sweeps done" not in out
    assert "interrupted by SIGTERM after 3.0 s" in out  # the sweep's own line, from its log
