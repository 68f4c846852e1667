"""The two Python halves of experiments/gpu_check.sh.

    python experiments/gpu_check_report.py env WORK          # WORK/env.json: versions, device, packages
    python experiments/gpu_check_report.py report WORK       # WORK/report.md from what the steps left in WORK

WORK is the check's work folder: meta.tsv (the script's settings, `key<TAB>value`), steps.tsv (one line a
step: name, exit status, seconds, limit, note, command), logs/<step>.log, records/ (bench JSON lines and data
bench JSON), runs/ (the sweep), sweep_report/. `report` judges each step by its exit status and by what it
wrote (a bench step that exits 0 without its JSON line did not run), writes report.md and exits 1 if a step
failed or did not run, 3 if every step ran but a goal was missed (the GPU check only), else 0.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import re
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOALS = {"student": 0.45, "teacher": 0.35}  # MFU against the card's dense bf16 peak (the targets)
PACKAGES = ("torch", "numpy", "yaml", "av", "torchcodec", "decord", "ray", "optuna", "pandas", "pyarrow", "scipy",
            "tqdm", "plotly", "markdown")
NVDEC_FALLBACK = "CUDA decoding unavailable"


# -- env ----------------------------------------------------------------------------------------------

def _version(module: str) -> str | None:
    from importlib import metadata

    name = {"yaml": "pyyaml", "av": "av"}.get(module, module)
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def collect_env(work: Path, mode: str) -> int:
    import importlib.util
    import shutil
    import subprocess

    sys.path.insert(0, str(ROOT))
    import torch

    env: dict = {"python": platform.python_version(), "host": platform.node(), "cpus": os.cpu_count(),
                 "torch": torch.__version__, "cuda": torch.version.cuda or "",
                 "cuda_available": torch.cuda.is_available()}
    try:
        from trainers.provenance import code_commit, cpu_model

        env["commit"], env["cpu"] = code_commit(ROOT) or "(not a git checkout)", cpu_model()
    except Exception as error:  # noqa: BLE001  the report says why instead of stopping
        env["commit"], env["cpu"] = f"unknown ({error})", platform.processor()
    env["packages"] = {name: _version(name) for name in PACKAGES}
    env["missing"] = [name for name in PACKAGES if importlib.util.find_spec(name) is None]
    try:
        from trainers.data.readers import torchcodec_problem

        env["torchcodec_problem"] = torchcodec_problem()
    except Exception as error:  # noqa: BLE001
        env["torchcodec_problem"] = str(error)
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        env.update(device_name=torch.cuda.get_device_name(0), capability=f"{props.major}.{props.minor}",
                   memory_gib=round(props.total_memory / 2**30, 1), cudnn=str(torch.backends.cudnn.version()))
        try:  # the table the benches divide by
            from trainers.bench import peak_tflops

            env["peak_bf16_tflops"] = peak_tflops(env["device_name"])
        except Exception as error:  # noqa: BLE001  a missing package: the steps will say which
            env["peak_bf16_tflops"], env["trainers_problem"] = None, f"{type(error).__name__}: {error}"
        if shutil.which("nvidia-smi"):
            query = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                   capture_output=True, text=True, timeout=20)
            env["driver"] = query.stdout.strip().splitlines()[0] if query.returncode == 0 and query.stdout else ""
    (work / "env.json").write_text(json.dumps(env, indent=2))
    print(json.dumps(env, indent=2))
    if mode == "gpu" and not env["cuda_available"]:
        print("gpu-check: torch sees no CUDA device; on a machine without a GPU run experiments/gpu_check.sh "
              "--dry-run", file=sys.stderr)
        return 1
    return 0


# -- report -------------------------------------------------------------------------------------------

@dataclass
class Step:
    name: str
    rc: str = ""
    seconds: float = 0.0
    limit: str = ""
    note: str = ""
    command: str = ""
    ran: bool = False  # a line in steps.tsv
    status: str = "not run"  # ok | FAILED | TIMED OUT | NOT RUN | not selected
    why: str = ""
    data: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


REPORT_ORDER = [
    "env", "data_prepare",
    "bench_teacher_eager", "bench_teacher_compiled", "bench_student_eager", "bench_student_compiled",
    "bench_vjepa2_eager", "bench_vjepa2_compiled", "bench_probe_eager",
    "data_cpu", "data_nvdec", "sweep", "sweep_report",
]


def read_tsv(path: Path) -> list[list[str]]:
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return [row for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE) if row]


_NOISE = re.compile(r"^\s*$|it/s\]|s/it\]|%\|| in \d+ s$|^\s+File |^\s{4}")
_ERROR = re.compile(r"(^[\w.]*(Error|Exception|Failed|Interrupt)\b.*)|(\berror:)|(^Killed)|(CUDA out of memory)")


def log_lines(path: Path) -> list[str]:
    if not path.is_file():
        return []
    text = path.read_text(errors="replace").replace("\r", "\n")
    return [line.rstrip() for line in text.splitlines()]


def error_line(lines: list[str]) -> str:
    """The line that says why a step failed: the last exception or `error:` line, else the last line."""
    hits = [line for line in lines if _ERROR.search(line.strip()) and "Traceback" not in line]
    useful = [line for line in lines if not _NOISE.search(line)]
    line = (hits or useful or [""])[-1].strip()
    return line if len(line) <= 300 else line[:297] + "..."


def tail(lines: list[str], count: int = 20) -> list[str]:
    return [line for line in lines if not _NOISE.search(line) or line.startswith("    ")][-count:]


def load_steps(work: Path) -> dict[str, Step]:
    steps = {name: Step(name) for name in REPORT_ORDER}
    for row in read_tsv(work / "steps.tsv"):
        row += [""] * (6 - len(row))
        name, rc, seconds, limit, note, command = row[:6]
        step = steps.setdefault(name, Step(name))
        step.rc, step.limit, step.note, step.command, step.ran = rc, limit, note, command, True
        step.seconds = float(seconds or 0)
    return steps


def _json_lines(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def judge(step: Step, work: Path, meta: dict, gpu: bool) -> None:
    """Set step.status and step.why from the exit status and what the step wrote."""
    if not step.ran:
        step.status = "not selected" if meta.get("only") else "NOT RUN"
        step.why = "not in --only" if meta.get("only") else "the script stopped before this step"
        return
    if step.rc == "skip":
        step.status, step.why = ("not selected", step.note) if step.note.startswith("not in --only") else \
            ("NOT RUN", step.note)
        return
    lines = log_lines(work / "logs" / f"{step.name}.log")
    if step.rc in ("124", "137"):
        step.status, step.why = "TIMED OUT", f"stopped at its {step.limit} s limit; last line: {error_line(lines)}"
        return
    if step.rc != "0":
        step.status, step.why = "FAILED", f"exit {step.rc}: {error_line(lines)}"
        return
    problem = _check_output(step, work, meta, gpu, lines)
    step.status, step.why = ("FAILED", problem) if problem else ("ok", step.why)


def _check_output(step: Step, work: Path, meta: dict, gpu: bool, lines: list[str]) -> str | None:
    name = step.name
    if name == "env":
        path = work / "env.json"
        if not path.is_file():
            return "exit 0 but no env.json"
        step.data = json.loads(path.read_text())
        return None
    if name.startswith("bench_"):
        records = _json_lines(work / "records" / f"{name}.jsonl")
        if not records:
            return "exit 0 but no JSON line from --record: the bench did not run"
        step.data = records[-1]
        if name != "bench_probe_eager" and step.data.get("compile") != name.endswith("_compiled"):
            return f"compile={step.data.get('compile')} in the record, not what the step asked for"
        if gpu and not str(step.data.get("device", "")).startswith("cuda"):
            return f"ran on {step.data.get('device')}, not on the GPU"
        if gpu and step.data.get("precision") != "bfloat16":
            return f"ran in {step.data.get('precision')}, not bf16"
        return None
    if name.startswith("data_") and name != "data_prepare":
        path = work / "records" / f"{name}.json"
        if not path.is_file():
            return "exit 0 but no --json file: the loader bench did not run"
        step.data = json.loads(path.read_text())
        if not step.data.get("results"):
            return "the loader bench timed no setting"
        fallback = [line for line in lines if NVDEC_FALLBACK in line]
        step.data["decoded_on"] = "cpu"
        if name == "data_nvdec":
            if fallback:
                reason = fallback[0].split(NVDEC_FALLBACK, 1)[1].split("; decoding on the CPU")[0].strip(" ;")
                if gpu:
                    return f"NVDEC was not used: torchcodec fell back to the CPU {reason}"
                step.data["decoded_on"] = "cpu (fallback)"
                step.why = f"fell back to CPU decoding, as it must without a GPU {reason}"
            else:
                step.data["decoded_on"] = "cuda (NVDEC)"
        return None
    if name == "sweep":
        path = work / "runs" / meta.get("sweep_name", "gpu-check") / "results.csv"
        if not path.is_file():
            return f"exit 0 but no {path.name}"
        import pandas as pd

        table = pd.read_csv(path)
        budgets = sorted(int(b) for b in table["budget"].dropna().unique())
        students = table[table["role"] == "student"]
        bad = table[table["status"] != "ok"]
        machines = sorted(set(table["train_machine"].dropna().astype(str)))
        step.data = {"rows": len(table), "ok_rows": int((table["status"] == "ok").sum()), "budgets": budgets,
                     "allocations": int(students["allocation_id"].nunique()), "train_machines": machines,
                     "machines": sorted(set(table["machine"].dropna().astype(str)))}
        wanted = sorted(int(b) for b in meta.get("sweep_budgets", "").split())
        if len(bad):
            return f"{len(bad)} row(s) not ok: {'; '.join(bad['reason'].dropna().astype(str).unique()[:3])}"
        if wanted and budgets != wanted:
            return f"budgets {budgets} in the table, {wanted} asked for"
        if gpu:
            card = meta.get("card", "")
            off = [m for m in machines if card and card not in m]
            if not machines or off:
                return f"trained on {', '.join(machines) or 'no recorded machine'}, not on {card}"
        return None
    if name == "sweep_report":
        if not (work / "sweep_report" / "summary.md").is_file():
            return "exit 0 but no summary.md"
        return None
    return None


def pct(value) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def num(value, fmt: str = ".1f") -> str:
    return "n/a" if value is None else format(value, fmt)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


def read_env(work: Path) -> dict:
    """env.json; without it (env not among --only) the card's name as a bench recorded it."""
    path = work / "env.json"
    env = json.loads(path.read_text()) if path.is_file() else {}
    if not env.get("device_name"):
        for record in sorted((work / "records").glob("bench_*.jsonl")):
            rows = _json_lines(record)
            if rows and str(rows[-1].get("device", "")).startswith("cuda"):
                env["device_name"] = rows[-1].get("device_name", "")
                env.setdefault("peak_bf16_tflops", rows[-1].get("peak_tflops"))
                break
    return env


def build_report(work: Path) -> tuple[str, int, list[str]]:
    meta = dict(row[:2] for row in read_tsv(work / "meta.tsv") if len(row) >= 2)
    gpu = meta.get("mode") == "gpu"
    steps = load_steps(work)
    env = read_env(work)
    meta["card"] = env.get("device_name", "")
    for step in steps.values():
        judge(step, work, meta, gpu)
    bench = {name: s for name, s in steps.items() if name.startswith("bench_")}
    peak = env.get("peak_bf16_tflops")

    # goals
    goals: list[tuple[str, str, str]] = []  # (goal, measured, PASS | FAIL | n/a ...)
    judged = gpu  # the dry run measures a CPU: no bf16 peak, nothing to judge
    for stage, target in GOALS.items():
        rows = [(mode, bench[f"bench_{stage}_{mode}"]) for mode in ("eager", "compiled")]
        values = [(s.data.get("mfu_peak"), mode) for mode, s in rows if s.ok and s.data.get("mfu_peak") is not None]
        label = f"{stage} step MFU >= {target:.0%} of the bf16 peak"
        if not judged:
            measured = "; ".join(f"{mode}: {pct(s.data.get('mfu_matmul'))} of the matmul rate"
                                 for mode, s in rows if s.ok)
            goals.append((label, measured or "not measured", "n/a (dry run: a CPU has no bf16 peak)"))
        elif not values:
            goals.append((label, "not measured (its steps failed)", "FAIL"))
        else:
            best, mode = max(values)
            goals.append((label, f"{pct(best)} ({mode}; " + ", ".join(f"{m} {pct(v)}" for v, m in values) + ")",
                          "PASS" if best >= target else "FAIL"))
    # the rate the loader must give: the student's step, its data waits taken out
    student = next((bench[n] for n in ("bench_student_compiled", "bench_student_eager") if bench[n].ok), None)
    need = (student.data["batch_size"] / student.data["loop_step_s"]) if student else None
    need_from = (f"the student's {'compiled' if student.data.get('compile') else 'eager'} step" if student else "")
    for name in ("data_cpu", "data_nvdec"):
        step = steps[name]
        best = max((r["clips_per_s"] for r in step.data.get("results", [])), default=None) if step.ok else None
        label = f"loader ({'CPU decoding' if name == 'data_cpu' else 'NVDEC decoding'}) keeps up with " + \
            (f"{need_from}: >= {need:.1f} clips/s" if need else "the student step")
        if need is None or best is None:
            result = "n/a (not measured)" if best is None else "n/a (no student step measured)"
        else:
            result = ("PASS" if best >= need else "FAIL") if judged else "n/a (dry run)"
        goals.append((label, f"{num(best)} clips/s" if best is not None else "not measured", result))
    sweep = steps["sweep"]
    goals.append(("micro sweep (two budgets) runs end to end" + (" on the GPU" if gpu else ""),
                  (f"{sweep.data['allocations']} allocations, {sweep.data['ok_rows']} of {sweep.data['rows']} rows ok, "
                   f"budgets {sweep.data['budgets']}, trained on {', '.join(sweep.data['train_machines'])}")
                  if sweep.ok else f"{sweep.status.lower()}", "PASS" if sweep.ok else "FAIL"))

    selected = [s for s in steps.values() if s.status != "not selected"]
    failed = [s for s in selected if not s.ok]
    missed = [g for g in goals if g[2] == "FAIL"]
    code = 1 if failed else (3 if gpu and missed else 0)

    title_card = env.get("device_name") or (f"{env.get('cpu', 'CPU')} (dry run)" if not gpu else "unknown card")
    out: list[str] = []
    w = out.append
    w(f"# GPU check: {title_card}, {meta.get('date', '')}")
    w("")
    verdict = "every step ran" if not failed else f"{len(failed)} of {len(selected)} steps failed or did not run: " + \
        ", ".join(f"{s.name} ({s.status})" for s in failed)
    if gpu:
        verdict += "; goals: " + ("all met" if not missed else f"{len(missed)} missed")
    w(f"**{'PASS' if code == 0 else 'FAIL'}**: {verdict} (exit status {code}).")
    w("")
    if not gpu:
        w("Dry run: every step at nano size on the CPU (compile through the aot_eager backend), to check the "
          "script and the report; none of its numbers is a GPU measurement.")
        w("")
    w(f"- Command: `{meta.get('command', '')}`")
    w(f"- Mode: {meta.get('mode', '?')}; model {meta.get('model', '?')}, batch {meta.get('batch', '?')}, "
      f"{meta.get('frames', '?')} frames x {meta.get('resolution', '?')} px, precision bf16 "
      f"(autocast on CUDA; a CPU runs fp32); budget {meta.get('budget', '?')} s, took "
      f"{meta.get('elapsed', '?')} s")
    w(f"- Torch {env.get('torch', '?')}, CUDA {env.get('cuda') or 'none'}"
      + (f", cuDNN {env.get('cudnn')}, driver {env.get('driver', '?')}" if env.get("cuda_available") else "")
      + f", Python {env.get('python', '?')}")
    if env.get("device_name"):
        w(f"- Device: {env['device_name']} (compute capability {env.get('capability')}, {env.get('memory_gib')} GiB); "
          f"bf16 dense peak used for MFU: {num(peak, '.1f')} TFLOP/s")
    w(f"- CPU: {env.get('cpu', '?')}, {env.get('cpus', '?')} cores; host {env.get('host', '?')}; commit "
      f"{env.get('commit', '?')}")
    packages = env.get("packages", {})
    if packages:
        w("- Packages: " + ", ".join(f"{k} {v}" for k, v in packages.items() if v)
          + (f"; missing: {', '.join(env['missing'])}" if env.get("missing") else ""))
    if env.get("trainers_problem"):
        w(f"- The project's code does not import here: {env['trainers_problem']}")
    if env.get("torchcodec_problem"):
        w(f"- torchcodec cannot decode here: {env['torchcodec_problem']}")
    if meta.get("compile_backend"):
        w(f"- torch.compile backend: {meta['compile_backend']}")
    w("")
    w("## Goals")
    w("")
    w("| goal | measured | result |")
    w("|---|---|---|")
    for goal in goals:
        w("| " + " | ".join(goal) + " |")
    w("")

    w(f"## (a) Step MFU: {meta.get('model', '?')}, {meta.get('frames', '?')} frames x {meta.get('resolution', '?')} px")
    w("")
    w(f"`salt-budget bench --stage STAGE --model {meta.get('model', '?')} --batch {meta.get('batch', '?')}`, "
      f"`STAGE.run.compile=false|true`; eager: --warmup {meta.get('warmup', '?')}, compiled: --warmup "
      f"{meta.get('compile_warmup', '?')}; --windows {meta.get('windows', '?')} --window {meta.get('window', '?')}. "
      "Step: the training loop's median step with its data waits taken out. MFU: the FLOPs model's rate against "
      "the card's dense bf16 peak, and against the matmul rate measured in the same run (bf16 on CUDA, fp32 on a "
      "CPU).")
    w("")
    w("| stage | mode | status | step | clips/s | TFLOP/s | MFU (bf16 peak) | MFU (matmul here) | data wait | "
      "peak memory | goal | result |")
    w("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for stage in ("teacher", "student", "vjepa2"):
        for mode in ("eager", "compiled"):
            s = bench[f"bench_{stage}_{mode}"]
            d = s.data if s.ok else {}
            target = GOALS.get(stage)
            goal = f">= {target:.0%}" if target else "none set"
            if not s.ok:
                result = s.status
            elif not target:
                result = "recorded"
            elif not judged or d.get("mfu_peak") is None:
                result = "n/a (dry run)" if not judged else "n/a (no peak for this card)"
            else:
                result = "PASS" if d["mfu_peak"] >= target else "FAIL"
            w(f"| {stage} | {mode} | {s.status} | "
              + (f"{d['loop_step_s'] * 1e3:.1f} ms | {d['clips_per_s']:.1f} | {d['achieved_tflops']:.3g} | "
                 f"{pct(d.get('mfu_peak'))} | {pct(d.get('mfu_matmul'))} | {pct(d.get('loop_data_wait_share'))} | "
                 f"{d['peak_memory_bytes'] / 2**30:.2f} GiB" if d else " | ".join(["—"] * 7))
              + f" | {goal} | {result} |")
    probe = bench["bench_probe_eager"]
    d = probe.data if probe.ok else {}
    w(f"| probe (extraction, {meta.get('model', '?')}) | eager | {probe.status} | "
      + (f"{d['extract_step_s'] * 1e3:.1f} ms / batch {d['batch_size']} | {d['extract_clips_per_s']:.1f} | "
         f"{d['extract_tflops']:.3g} | {pct(d.get('mfu_peak'))} | {pct(d.get('mfu_matmul'))} | "
         f"{pct(d.get('extract_data_wait_share'))} | {d['peak_memory_bytes'] / 2**30:.2f} GiB" if d
         else " | ".join(["—"] * 7)) + f" | none set | {'recorded' if probe.ok else probe.status} |")
    head_mfu = (d["head_tflops"] / peak) if d.get("head_tflops") and peak else None
    w(f"| probe (attentive head, depth {meta.get('probe_depth', '?')}) | eager | {probe.status} | "
      + (f"{d['head_step_s'] * 1e3:.2f} ms / batch {d['head_batch_size']} | — | {num(d.get('head_tflops'), '.3g')} | "
         f"{pct(head_mfu)} (fp32 head) | — | — | —" if d.get("head_step_s") else " | ".join(["—"] * 7))
      + f" | none set | {'recorded' if probe.ok else probe.status} |")
    w("| probe | compiled | not measured | — | — | — | — | — | — | — | none set | "
      "`salt-budget bench --stage probe` has no compile switch |")
    if d:
        w("")
        w(f"Probe: {d['probe']} head of depth {meta.get('probe_depth', '?')} on the frozen {d['encoder']} encoder's "
          f"tokens; one probe of a checkpoint on this set estimated at {d['full_probe_s']:.0f} s.")
    w("")

    w("## (b) Data loader: torchcodec decoding, CPU and NVDEC")
    w("")
    w(f"`salt-budget data bench --batch-size {meta.get('data_batch', '?')} --batches {meta.get('data_batches', '?')}`, "
      f"`data.reader={meta.get('reader', '?')}`, synthetic H.264 clips of {meta.get('clip_size', '?')} px, "
      f"{meta.get('frames', '?')} frames at step {meta.get('frame_step', '?')}, cropped and resized to "
      f"{meta.get('resolution', '?')} px. NVDEC runs in the training process (workers 0): CUDA cannot start in "
      "forked DataLoader workers.")
    w("")
    w("| decoding | asked | decoded on | workers | clips/s | status | goal | result |")
    w("|---|---|---|---|---|---|---|---|")
    for name, asked in (("data_cpu", "cpu"), ("data_nvdec", "cuda")):
        s = steps[name]
        goal = next(g for g in goals if g[0].startswith(f"loader ({'CPU' if name == 'data_cpu' else 'NVDEC'}"))
        goal_text = f">= {need:.1f} clips/s" if need else "n/a"
        if s.ok:
            for r in s.data["results"]:
                w(f"| {s.data.get('reader', '?')} | {asked} | {s.data.get('decoded_on')} | {r['workers']} | "
                  f"{r['clips_per_s']:.1f} | ok | {goal_text} | {goal[2]} |")
        else:
            w(f"| torchcodec | {asked} | — | — | — | {s.status} | {goal_text} | {s.status} |")
    w("")

    w("## (c) Micro sweep end to end")
    w("")
    w(f"`salt-budget sweep --total-steps {meta.get('sweep_budgets', '?')} --teacher-steps "
      f"{meta.get('sweep_teacher_steps', '?')} --teacher-sizes {meta.get('sweep_preset', '?')} --student-size "
      f"{meta.get('sweep_preset', '?')} --probe-points 1`, then `salt-budget report --format md`.")
    w("")
    if sweep.ok:
        w(f"- {sweep.data['allocations']} allocations over budgets {sweep.data['budgets']}; "
          f"{sweep.data['ok_rows']} of {sweep.data['rows']} result rows ok; trained on "
          f"{', '.join(sweep.data['train_machines'])}; probed on {', '.join(sweep.data['machines'])}; "
          f"{sweep.seconds:.0f} s")
    else:
        w(f"- sweep: {sweep.status}: {sweep.why}")
    rep = steps["sweep_report"]
    w(f"- report: {rep.status}" + (f": {rep.why}" if rep.why else f" ({rep.seconds:.0f} s)"))
    w("")

    w("## Steps")
    w("")
    w("| step | status | seconds | limit (s) | note |")
    w("|---|---|---|---|---|")
    for s in steps.values():
        note = (s.why or s.note).replace("|", "\\|")
        w(f"| {s.name} | {s.status} | {s.seconds:.0f} | {s.limit or '—'} | {note} |")
    w("")
    if failed:
        w("## Failures")
        for s in failed:
            w("")
            w(f"### {s.name}: {s.status}")
            w("")
            w(s.why)
            if s.command:
                w("")
                w(f"Command: `{s.command.strip()}`")
            lines = tail(log_lines(work / "logs" / f"{s.name}.log"))
            if lines:
                w("")
                w("```")
                out.extend(lines)
                w("```")
    summary = [f"{s.name}: {s.status}: {s.why}" for s in failed]
    return "\n".join(out) + "\n", code, summary


def write_report(work: Path) -> int:
    text, code, summary = build_report(work)
    meta = dict(row[:2] for row in read_tsv(work / "meta.tsv") if len(row) >= 2)
    env = read_env(work)
    if meta.get("mode") == "gpu":
        card = slug(env.get("device_name") or "unknown-card")
    else:
        card = "dry-run"
    out_dir = Path(meta.get("out", "benchmarks"))
    out_dir.mkdir(parents=True, exist_ok=True)
    date = meta.get("date") or datetime.now(timezone.utc).strftime("%Y-%m-%d")
    path = out_dir / f"gpu_{card}_{date}.md"
    path.write_text(text)
    (work / "report.md").write_text(text)
    print(f"gpu-check: report written to {path}")
    for line in summary:
        print(f"gpu-check: FAILED {line}", file=sys.stderr)
    if code == 3:
        print("gpu-check: every step ran, but a goal was missed (see the report's Goals)", file=sys.stderr)
    return code


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("env", "report"):
        print(__doc__, file=sys.stderr)
        return 2
    work = Path(argv[1])
    if argv[0] == "env":
        meta = dict(row[:2] for row in read_tsv(work / "meta.tsv") if len(row) >= 2)
        return collect_env(work, meta.get("mode", "gpu"))
    return write_report(work)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
