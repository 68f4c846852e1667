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


@pytest.mark.parametrize("micro_batch", ["null", 2])
def test_the_reference_steps_over_the_loops_own_batches(tmp_path, micro_batch):
    """The reported FLOPs are the mean over the reference's timed batches; the loop logs each step's FLOPs from
    its own batches, so the two agree exactly only if the reference saw the loop's batches in the loop's order
    (in micro-batches too: their masks are drawn per micro-batch)."""
    import copy

    from trainers.train import train_teacher

    experiment = load_experiment(None, micro(tmp_path, "teacher.run.log_every=1",
                                             f"teacher.run.micro_batch={micro_batch}"))
    result = bench_stage("teacher", experiment, warmup=2, windows=1, per_window=2)
    cfg = copy.deepcopy(experiment.teacher)
    cfg.optim.steps, cfg.optim.warmup_steps = 4, 2
    train_teacher(cfg, experiment.data, tmp_path / "loop", seed=0, progress=False)
    flops = [json.loads(line)["flops"] for line in (tmp_path / "loop" / "metrics.jsonl").read_text().splitlines()]
    assert result.flops_per_step == pytest.approx((flops[3] - flops[1]) / 2, rel=1e-12)
    assert flops[2] - flops[1] != flops[3] - flops[2]  # multi-block masks differ per batch: the order matters


def test_a_record_does_not_make_the_next_run_dirty(tmp_path):
    import subprocess

    from trainers.provenance import code_commit

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "bench.jsonl").write_text("{}\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "start")
    commit = code_commit(tmp_path)
    assert commit and not commit.endswith("-dirty")
    (tmp_path / "benchmarks" / "bench.jsonl").write_text("{}\n{}\n")  # what --record does
    assert code_commit(tmp_path / "benchmarks") == commit
    (tmp_path / "code.py").write_text("x = 2\n")
    assert code_commit(tmp_path / "benchmarks") == f"{commit}-dirty"
    assert code_commit(tmp_path.parent / "not-a-checkout-") == ""


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


# -- the probe stage ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("lrs", "head_steps"), [("[1e-3]", 2 * 2 * 3), ("[1e-3, 1e-4]", 2 * 3 * 2 * 3)])
def test_the_probe_stage_times_extraction_and_the_head(tmp_path, lrs, head_steps):
    from tests.test_flops import counted_flops
    from trainers.probe.bench import bench_probe
    from trainers.encoders import build_encoder, encoder_description

    experiment = load_experiment(None, micro(tmp_path, "probe.extract_batch_size=4", f"probe.lrs={lrs}"))
    result = bench_probe(experiment, warmup=2, batches=3)
    assert result.stage == "probe" and result.probe == "attentive" and result.batches_timed == 3
    assert (result.train_clips, result.val_clips) == (24, 12)
    encoder = build_encoder(encoder_description(experiment.student.encoder, experiment.data))
    assert result.extract_flops_per_clip == counted_flops(encoder, torch.randn(1, 3, 4, 32, 32))
    assert result.extract_tflops == pytest.approx(result.extract_flops_per_clip * 4 / result.extract_step_s / 1e12)
    assert 0 <= result.extract_data_wait_share < 1 and result.extract_clips_per_s > 0
    assert result.head_flops_per_step > 0 and result.head_step_s > 0
    assert result.head_tflops == pytest.approx(result.head_flops_per_step / result.head_step_s / 1e12)
    # Both splits at the measured rate, then every head's steps: 2 tasks x 2 epochs x ceil(24 / 8) steps with one
    # lr; with two, 3 fits per task (one per lr, then the chosen one's refit) on ceil(22 / 8) = 3 steps an epoch.
    extraction = (24 + 12) / result.extract_clips_per_s
    assert result.full_probe_s == pytest.approx(extraction + head_steps * result.head_step_s)


def test_a_head_steps_flops_are_counted_once_per_clip():
    from trainers.probe.bench import head_step_flops
    from trainers.probe.attentive_head import AttentiveProbe

    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    probe = AttentiveProbe(16, 5, depth=1, heads=2, grid=None)
    one = head_step_flops(probe, torch.randn(2, 8, 16), torch.tensor([0, 1]))
    two = head_step_flops(probe, torch.randn(4, 8, 16), torch.tensor([0, 1, 2, 3]))
    assert two == 2 * one and all(p.grad is None for p in probe.parameters())
    # Attention is counted: on a CPU, SDPA picks a flash kernel that FlopCounterMode counts as 0.
    features = torch.randn(2, 8, 16)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        torch.nn.functional.cross_entropy(probe(features), torch.tensor([0, 1])).backward()
    assert one == counter.get_total_flops() and counter.get_flop_counts()["Global"].get(torch.ops.aten.bmm, 0) > 0


def test_the_probe_stage_with_the_ridge_readout(tmp_path):
    from trainers.probe.bench import bench_probe

    experiment = load_experiment(None, micro(tmp_path, "probe.extract_batch_size=4", "probe.kind=ridge"))
    result = bench_probe(experiment, warmup=1, batches=4)
    assert result.probe == "ridge" and result.head_step_s is None and result.head_fit_s > 0
    assert result.full_probe_s > (24 + 12) / result.extract_clips_per_s


def test_the_probe_stage_says_when_the_split_is_too_small(tmp_path):
    from trainers.probe.bench import bench_probe
    from trainers.config import ConfigError

    with pytest.raises(ConfigError, match="the train split has 24 clips; 2 \\+ 8 batches of 4 need 40"):
        bench_probe(load_experiment(None, micro(tmp_path, "probe.extract_batch_size=4")), warmup=2, batches=8)


def test_the_cli_benches_the_probe(tmp_path, capsys):
    record = tmp_path / "bench.jsonl"
    args = ["bench", *micro(tmp_path), "--stage", "probe", "--batch", "4", "--warmup", "2", "--windows", "1",
            "--window", "2", "--record", str(record)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "extraction: batch 4" in out and "head: batch 8" in out and "one probe of a checkpoint" in out
    line = json.loads(record.read_text().splitlines()[0])
    assert line["stage"] == "probe" and line["batches_timed"] == 2 and "date" in line
