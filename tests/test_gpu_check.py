"""experiments/gpu_check.sh: its dry run (every step at nano size on the CPU) writes the report with every
section and a number from every step, and a step that fails, hangs or finds no GPU makes the script exit
non-zero and say which step."""

import os
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "experiments" / "gpu_check.sh"
SECTIONS = ["## Goals", "## (a) Step MFU", "## (b) Data loader", "## (c) Micro sweep", "## Steps"]

def run_check(tmp_path: Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess, str]:
    """Run the script into tmp_path; its result and the report's text ('' if none was written)."""
    out = tmp_path / "out"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GPU_CHECK_")}
    clean.update(PYTHON=sys.executable, PATH=f"{Path(sys.executable).parent}{os.pathsep}{clean.get('PATH', '')}", **env)
    result = subprocess.run(["bash", str(SCRIPT), *args, "--out", str(out), "--work", str(tmp_path / "work")],
                            cwd=ROOT, env=clean, capture_output=True, text=True, timeout=900)
    reports = sorted(out.glob("gpu_*.md")) if out.is_dir() else []
    return result, reports[0].read_text() if reports else ""


def step_rows(report: str) -> dict[str, list[str]]:
    """The Steps table: step -> [status, seconds, limit, note]."""
    section = report.split("## Steps", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("|").split(" | ") for line in section.splitlines() if line.startswith("| ")]
    return {row[0].strip(): [cell.strip() for cell in row[1:]] for row in rows[1:]}


def table_row(report: str, start: str) -> list[str]:
    line = next(line for line in report.splitlines() if line.startswith(start))
    return [cell.strip() for cell in line.strip("|").split(" | ")]


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("gpu_check")
    result, report = run_check(tmp_path, "--dry-run")
    print(result.stdout[-3000:], result.stderr[-3000:])
    return result, report, tmp_path


def test_the_dry_run_writes_the_report_with_every_section(dry_run):
    result, report, tmp_path = dry_run
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    assert (tmp_path / "out" / f"gpu_dry-run_{date}.md").is_file(), result.stdout + result.stderr
    for section in SECTIONS:
        assert section in report, section
    assert "- Command: `experiments/gpu_check.sh --dry-run" in report
    assert f"Torch {torch.__version__}" in report


def test_every_step_of_the_dry_run_ran_and_gave_numbers(dry_run):
    _, report, _ = dry_run
    steps = step_rows(report)
    assert len(steps) == 13
    for name, (status, seconds, limit, note) in steps.items():
        assert status == "ok", f"{name}: {status}: {note}"
        assert int(limit) > 0, name
    measured = r"\| [\d.]+ ms[^|]* \| [\d.]+ \| [\d.e+-]+ \| n/a \| [\d.]+% \|"
    for stage, mode in [(stage, mode) for stage in ("teacher", "student", "vjepa2") for mode in ("eager", "compiled")]:
        assert re.search(rf"^\| {stage} \| {mode} \| ok {measured}", report, re.M), (stage, mode)
    assert re.search(rf"^\| probe \(extraction, nano\) \| eager \| ok {measured}", report, re.M)
    assert re.search(r"^\| probe \(attentive head, depth 4\) \| eager \| ok \| [\d.]+ ms / batch \d+ ", report, re.M)
    cpu, nvdec = table_row(report, "| torchcodec | cpu |"), table_row(report, "| torchcodec | cuda |")
    assert cpu[2] == "cpu" and float(cpu[4]) > 0
    assert nvdec[2] == "cpu (fallback)" and float(nvdec[4]) > 0  # no GPU: torchcodec falls back, and says so
    assert "fell back to CPU decoding, as it must without a GPU" in steps["data_nvdec"][3]
    assert re.search(r"- 2 allocations over budgets \[8, 12\]; (\d+) of \1 result rows ok", report)
    assert "- report: ok" in report


def test_the_exit_status_and_the_output_name_the_failed_steps(dry_run):
    result, report, _ = dry_run
    failed = {name for name, row in step_rows(report).items() if row[0] != "ok"}
    assert result.returncode == (1 if failed else 0), result.stderr
    for name in failed:
        assert f"gpu-check: FAILED {name}:" in result.stderr
        assert f"### {name}: FAILED" in report


def test_a_failing_step_makes_the_script_exit_non_zero_and_the_others_still_run(tmp_path):
    result, report = run_check(tmp_path, "--dry-run", "--only", "bench_teacher_eager,data_cpu",
                               GPU_CHECK_MODEL="no_such_preset")
    assert result.returncode == 1
    assert "gpu-check: FAILED bench_teacher_eager: FAILED: exit" in result.stderr
    steps = step_rows(report)
    assert steps["bench_teacher_eager"][0] == "FAILED" and "no_such_preset" in steps["bench_teacher_eager"][3]
    assert steps["data_cpu"][0] == "ok"  # it runs after the failed step
    assert steps["sweep"][0] == "not selected" and "**FAIL**: 1 of 2 steps failed" in report
    assert "### bench_teacher_eager: FAILED" in report and "--model no_such_preset" in report


def test_a_step_past_its_time_limit_is_stopped_and_reported(tmp_path):
    result, report = run_check(tmp_path, "--dry-run", "--only", "bench_teacher_eager", GPU_CHECK_TIMEOUT_EAGER="1")
    assert result.returncode == 1
    assert "TIMED OUT after 1 s" in result.stdout
    status, seconds, limit, note = step_rows(report)["bench_teacher_eager"]
    assert status == "TIMED OUT" and limit == "1" and int(seconds) < 10 and "1 s limit" in note


def test_a_spent_budget_leaves_steps_not_run_and_fails(tmp_path):
    result, report = run_check(tmp_path, "--dry-run", "--only", "env", "--budget", "5")
    assert result.returncode == 1
    status, _, _, note = step_rows(report)["env"]
    assert status == "NOT RUN" and "budget" in note


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the GPU check on a machine without a GPU")
def test_the_gpu_check_without_a_gpu_stops_after_the_env_step(tmp_path):
    result, report = run_check(tmp_path, "--only", "env,data_prepare")
    assert result.returncode == 1
    steps = step_rows(report)
    assert steps["env"][0] == "FAILED" and "no CUDA device" in steps["env"][3]
    assert steps["data_prepare"][0] == "NOT RUN" and "env step failed" in steps["data_prepare"][3]


def test_unknown_steps_and_arguments_are_usage_errors(tmp_path):
    result, _ = run_check(tmp_path, "--dry-run", "--only", "bench_nothing")
    assert result.returncode == 2 and "no step 'bench_nothing'" in result.stderr
    result, _ = run_check(tmp_path, "--frobnicate")
    assert result.returncode == 2 and "unknown argument: --frobnicate" in result.stderr


def _bench_record(stage: str, compiled: bool, mfu: float) -> dict:
    return {"stage": stage, "encoder": "vit_large", "batch_size": 16, "frames": 16, "resolution": 224,
            "device": "cuda:0", "device_name": "NVIDIA H100 80GB HBM3", "precision": "bfloat16", "compile": compiled,
            "loop_step_s": 0.1, "loop_data_wait_share": 0.01, "clips_per_s": 150.0, "achieved_tflops": mfu * 989.4,
            "mfu_peak": mfu, "mfu_matmul": mfu * 1.2, "peak_memory_bytes": 40 * 2**30}


def test_the_report_of_a_gpu_run_judges_each_goal_and_is_named_after_the_card(tmp_path):
    """The GPU branch of the report, on the files a GPU run leaves (made up here: no GPU in CI)."""
    import json

    import pandas as pd

    work, out = tmp_path / "work", tmp_path / "out"
    (work / "records").mkdir(parents=True)
    (work / "logs").mkdir()
    (work / "meta.tsv").write_text(f"mode\tgpu\ncommand\texperiments/gpu_check.sh\ndate\t2026-12-06\nout\t{out}\n"
                                   "only\t\nsweep_name\tgpu-check\nsweep_budgets\t8 12\n")
    card = "NVIDIA H100 80GB HBM3"
    (work / "env.json").write_text(json.dumps({"torch": "2.11.0+cu130", "cuda": "13.0", "cuda_available": True,
                                               "device_name": card, "peak_bf16_tflops": 989.4}))
    mfu = {("teacher", False): 0.25, ("teacher", True): 0.33, ("student", False): 0.30, ("student", True): 0.47,
           ("vjepa2", False): 0.3, ("vjepa2", True): 0.4}
    lines = []
    for (stage, compiled), value in mfu.items():
        name = f"bench_{stage}_{'compiled' if compiled else 'eager'}"
        (work / "records" / f"{name}.jsonl").write_text(json.dumps(_bench_record(stage, compiled, value)) + "\n")
        lines.append(f"{name}\t0\t60\t150\t\tcmd")
    probe = {"stage": "probe", "encoder": "vit_large", "probe": "attentive", "batch_size": 32, "device": "cuda:0",
             "precision": "bfloat16", "extract_step_s": 0.05, "extract_clips_per_s": 500.0, "extract_tflops": 300.0,
             "extract_data_wait_share": 0.1, "mfu_peak": 0.3, "mfu_matmul": 0.38, "peak_memory_bytes": 2**33,
             "head_step_s": 0.02, "head_batch_size": 64, "head_tflops": 40.0, "full_probe_s": 900.0}
    (work / "records" / "bench_probe_eager.jsonl").write_text(json.dumps(probe) + "\n")
    for name, rate in (("data_cpu", 200.0), ("data_nvdec", 90.0)):
        (work / "records" / f"{name}.json").write_text(json.dumps(
            {"reader": "torchcodec", "results": [{"workers": 0, "clips": 128, "seconds": 1.0, "clips_per_s": rate}]}))
    (work / "logs" / "data_nvdec.log").write_text("workers=0: 128 clips\n")
    sweep = work / "runs" / "gpu-check"
    sweep.mkdir(parents=True)
    pd.DataFrame({"role": ["random_init", "teacher", "student", "student"], "budget": [None, None, 8, 12],
                  "status": ["ok"] * 4, "allocation_id": [None, None, "N8", "N12"], "reason": [None] * 4,
                  "machine": [card] * 4, "train_machine": [None, card, card, card]}).to_csv(sweep / "results.csv")
    (work / "sweep_report").mkdir()
    (work / "sweep_report" / "summary.md").write_text("# summary\n")
    lines += ["env\t0\t3\t60\t\tenv", "data_prepare\t0\t9\t90\t\tprep", "bench_probe_eager\t0\t30\t90\t\tp",
              "data_cpu\t0\t10\t75\t\td", "data_nvdec\t0\t5\t75\t\td", "sweep\t0\t70\t150\t\ts",
              "sweep_report\t0\t6\t45\t\tr"]
    (work / "steps.tsv").write_text("\n".join(lines) + "\n")
    result = subprocess.run([sys.executable, str(ROOT / "experiments" / "gpu_check_report.py"), "report", str(work)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 3, result.stdout + result.stderr  # every step ran; the teacher's goal was missed
    report = (out / "gpu_nvidia-h100-80gb-hbm3_2026-12-06.md").read_text()
    assert table_row(report, "| student step MFU >= 45%")[2] == "PASS"
    assert table_row(report, "| teacher step MFU >= 35%")[2] == "FAIL"
    assert table_row(report, "| student | compiled |")[-1] == "PASS"
    assert table_row(report, "| teacher | compiled |")[-1] == "FAIL"
    # The loader against the student's compiled step: 16 clips in 0.1 s = 160 clips/s.
    assert table_row(report, "| loader (CPU decoding)")[2] == "PASS"
    assert table_row(report, "| loader (NVDEC decoding)")[2] == "FAIL"
    assert table_row(report, "| torchcodec | cuda |")[2] == "cuda (NVDEC)"
    assert table_row(report, "| micro sweep")[2] == "PASS"
    # NVDEC that fell back to the CPU fails its step on the GPU.
    (work / "logs" / "data_nvdec.log").write_text(
        "WARNING trainers.data.readers: torchcodec: CUDA decoding unavailable (no NVDEC); decoding on the CPU\n")
    result = subprocess.run([sys.executable, str(ROOT / "experiments" / "gpu_check_report.py"), "report", str(work)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "FAILED data_nvdec" in result.stderr and "(no NVDEC)" in result.stderr
