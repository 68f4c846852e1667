"""A plan always says how long: stages no earlier run measured are calibrated on this machine in seconds (a few
steps on random clips, cached per machine), and a sweep of many hours, or of a time this machine cannot price,
starts only with --yes."""

import json

import pandas as pd
import pytest

from salt_budget.commands.sweep import LONG_RUN_H, refuse_long_run
from salt_budget.experiment import load_experiment
from salt_budget.sweep.planning.calibration import CALIBRATION_FILE, calibrate_plan
from salt_budget.sweep.planning.plan import build_plan
from salt_budget.sweep.planning.options import PlanError, SweepOptions
from salt_budget.sweep.planning.plan_table import plan_frame
from tests.test_sweep_run import overrides


def _plan(tmp_path):
    options = SweepOptions(total_steps=(24,), teacher_steps=(4,), teacher_sizes=("nano",), student_size="nano",
                           probe_points=2, name="timed")
    return build_plan(load_experiment(None, overrides(tmp_path / "runs", tmp_path / "cache")), options)


def test_unmeasured_stages_are_calibrated_once_per_machine(tmp_path):
    plan = _plan(tmp_path)
    assert plan_frame(plan)["predicted_s"].isna().all()  # nothing measured these shapes
    lines = calibrate_plan(plan)
    assert [line.split(":")[0] for line in lines] == ["calibrated the teacher (nano) on this machine",
                                                      "calibrated the student (nano) on this machine"]
    seconds = plan_frame(plan)["predicted_s"]
    assert seconds.notna().all() and (seconds > 0).all()
    assert calibrate_plan(plan) == []  # cached: the next plan here prices at once
    assert not plan.sweep_dir.parent.exists()  # in the data cache, not the runs folder
    # A rate calibrated on another machine says nothing about this one.
    path = plan.experiment.data.resolved_cache_dir() / CALIBRATION_FILE
    records = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps({**r, "machine": "elsewhere"}) + "\n" for r in records))
    assert plan_frame(plan)["predicted_s"].isna().all()


def test_a_long_or_unpriced_sweep_needs_yes(tmp_path):
    plan = _plan(tmp_path)
    frame = plan_frame(plan)
    with pytest.raises(PlanError, match="cannot be predicted on this machine.*experiments/cluster"):
        refuse_long_run(plan, frame, 1)
    with pytest.raises(PlanError, match=r"predicted to train for 4\.0 h on this machine.*--yes"):
        refuse_long_run(plan, frame.assign(predicted_s=4 * 3600 / len(frame)), 1)
    refuse_long_run(plan, frame.assign(predicted_s=LONG_RUN_H * 3600 / len(frame) * 0.9), 1)  # within: no question
    assert isinstance(frame, pd.DataFrame)
