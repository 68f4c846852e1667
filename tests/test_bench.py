"""`salt-budget bench`: a stage timed through the loop and the bare reference on the micro setup, the FLOPs it
reports against the stage's own model, the data-sheet peaks, and the record it appends."""

import json

import pytest
import torch

from salt_budget.cli import main
from salt_budget.experiment import load_experiment
from tests.test_sweep_run import MICRO
from trainers.bench import bench_stage, matmul_tflops, peak_tflops


def micro(tmp_path, *extra):
    return [*MICRO, f"data.cache_dir={tmp_path / 'cache'}", "teacher.encoder.preset=nano", "student.encoder.preset=nano",
            "vjepa2.encoder.preset=nano", *extra]


@pytest.mark.parametrize("stage", ["teacher", "student", "vjepa2"])
def test_a_stage_is_timed_through_the_loop_and_the_reference(tmp_path, stage):
    result = bench_stage(stage, load_experiment(None, micro(tmp_path)), warmup=2, windows=2, per_window=2)
    assert result.stage == stage and result.encoder == "nano" and result.steps_timed == 4
    assert result.loop_step_s > 0 and result.reference_step_s > 0
    assert result.loop_over_reference == pytest.approx(result.loop_step_s / result.reference_step_s)
    assert result.achieved_tflops == pytest.approx(result.flops_per_step / result.loop_step_s / 1e12)
    assert 0 <= result.loop_data_wait_share < 1 and result.peak_memory_bytes > 0
    assert result.peak_tflops is None and result.mfu_peak is None  # a CPU has no data-sheet bf16 peak
    assert result.versions["torch"] == torch.__version__


def test_the_reference_steps_over_the_loops_own_batches(tmp_path):
    """The reported FLOPs are the mean over the reference's timed batches; the loop logs each step's FLOPs from
    its own batches, so the two agree exactly only if the reference saw the loop's batches in the loop's order."""
    import copy

    from trainers.train import train_teacher

    experiment = load_experiment(None, micro(tmp_path, "teacher.run.log_every=1"))
    result = bench_stage("teacher", experiment, warmup=2, windows=1, per_window=2)
    cfg = copy.deepcopy(experiment.teacher)
    cfg.optim.steps, cfg.optim.warmup_steps = 4, 2
    train_teacher(cfg, experiment.data, tmp_path / "loop", seed=0, progress=False)
    flops = [json.loads(line)["flops"] for line in (tmp_path / "loop" / "metrics.jsonl").read_text().splitlines()]
    assert result.flops_per_step == pytest.approx((flops[3] - flops[1]) / 2, rel=1e-12)
    assert flops[2] - flops[1] != flops[3] - flops[2]  # multi-block masks differ per batch: the order matters


def test_peaks_and_matmul_rate():
    assert peak_tflops("NVIDIA H100 80GB HBM3") == 989.4 and peak_tflops("NVIDIA H200") == 989.4
    assert peak_tflops("AMD EPYC 7B13 (2 threads)") is None
    assert 0 < matmul_tflops(torch.device("cpu"), torch.float32, 128, seconds=0.05) < 100


def test_the_cli_prints_and_records(tmp_path, capsys):
    record = tmp_path / "bench.jsonl"
    args = ["bench", *micro(tmp_path), "--stage", "teacher", "--warmup", "2", "--windows", "1", "--window", "2",
            "--record", str(record)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "bare reference step" in out and "MFU" in out and f"appended to {record}" in out
    line = json.loads(record.read_text().splitlines()[0])
    assert line["stage"] == "teacher" and "date" in line and line["versions"]["commit"] is not None
    assert main([*args[:-2], "--warmup", "3"]) == 2  # not a multiple of the window


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_the_gpu_path_runs_in_bf16_and_reports_mfu(tmp_path):
    experiment = load_experiment(None, micro(tmp_path, "student.run.device=cuda"))
    result = bench_stage("student", experiment, warmup=2, windows=1, per_window=2)
    assert result.device.startswith("cuda") and result.precision == "bfloat16"
    assert result.peak_memory_bytes > 0 and result.matmul_tflops > 1
    assert result.mfu_peak is None or 0 < result.mfu_peak < 1
