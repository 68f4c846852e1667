"""experiments/cluster/: the SLURM batch script runs against stand-in `scontrol`, `srun`, `ray`, `python` and
`salt-budget` commands that log what they are asked to do, and the KubeRay manifest is parsed and checked
against itself and the CLI. No SLURM, Kubernetes or Ray cluster is needed; both take about a second."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from salt_budget.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
SBATCH = REPO / "experiments" / "cluster" / "slurm_sweep.sbatch"
RAYJOB = REPO / "experiments" / "cluster" / "rayjob_sweep.yaml"
EXPERIMENT = "experiments/paper_vitl_240k.yaml"
IMAGE_REPO = "/opt/salt-budget/"  # where the manifest's comment says the image holds this repository

# Each stub appends one line to $STUB_LOG per call. `srun` drops its options and runs the rest, as on a node;
# `ray start --block` lasts until `ray stop` (capped, so that a broken script cannot leave it behind); the
# `python` stand-in for the wait on the nodes returns once a worker has started, as the real one does once they
# joined, which makes "workers before the sweep" a fact of the log rather than of timing.
STUBS = {
    "scontrol": r"""
echo "scontrol $*" >> "$STUB_LOG"
if [[ $1 == show ]]; then printf '%s\n' $STUB_NODES; fi
""",
    "srun": r"""
echo "srun $*" >> "$STUB_LOG"
while [[ $# -gt 0 && $1 == -* ]]; do shift; done
exec "$@"
""",
    # Several addresses, an IPv6 one first, as `hostname --ip-address` gives on some nodes.
    "hostname": r"""
echo "fe80::1 10.1.2.3 192.168.7.7"
""",
    "ray": r"""
echo "ray $*" >> "$STUB_LOG"
case $1 in
  start)
    if [[ " $* " == *" --head "* ]]; then touch "$STUB_STATE/head"; else touch "$STUB_STATE/joined"; fi
    if [[ " $* " == *" --block "* ]]; then
      for _ in $(seq 1000); do [[ -e $STUB_STATE/stopped ]] && exit 0; sleep 0.02; done
    fi ;;
  status) [[ -e $STUB_STATE/head ]] ;;
  stop) touch "$STUB_STATE/stopped" ;;
esac
""",
    "python": r"""
cat > /dev/null
if (( $3 > 1 )); then
  for _ in $(seq 750); do [[ -e $STUB_STATE/joined ]] && break; sleep 0.02; done
fi
echo "python $*" >> "$STUB_LOG"
""",
    "salt-budget": r"""
echo "salt-budget $*" >> "$STUB_LOG"
printf '%s\0' "$@" > "$STUB_STATE/sweep_argv"
case ${STUB_SWEEP:-ok} in
  ok) exit 0 ;;
  fail) exit 3 ;;
  wait)
    trap 'echo "salt-budget got TERM" >> "$STUB_LOG"; exit 143' TERM
    touch "$STUB_STATE/sweep_running"
    for _ in $(seq 1000); do sleep 0.02; done ;;
esac
""",
}

# The script's own settings; one left in the developer's environment would change what it does.
SCRIPT_VARIABLES = {"SWEEP_NAME", "RUNS_DIR", "SALT_BUDGET_CACHE", "VENV", "WORKERS_PER_TRIAL", "GPUS_PER_WORKER",
                    "CPUS_PER_WORKER", "RAY_PORT", "RAY_WAIT_S", "POLL_S", "STOP_S", "REQUEUE", "HEAD_IP"}


class Job:
    """One run of the batch script on a pretend allocation in tmp_path."""

    def __init__(self, tmp_path: Path, nodes: int = 3, sweep: str = "ok", **env: str):
        self.bin, self.state, self.runs = tmp_path / "bin", tmp_path / "state", tmp_path / "runs"
        self.log, self.out = tmp_path / "log", tmp_path / "out"
        for folder in (self.bin, self.state, self.runs):
            folder.mkdir(exist_ok=True)
        for name, body in STUBS.items():
            stub = self.bin / name
            stub.write_text("#!/usr/bin/env bash\n" + body)
            stub.chmod(0o755)
        self.env = {key: value for key, value in os.environ.items()
                    if not key.startswith("SLURM_") and key not in SCRIPT_VARIABLES}
        self.env.update(
            PATH=f"{self.bin}{os.pathsep}{os.environ['PATH']}", STUB_LOG=str(self.log), STUB_STATE=str(self.state),
            STUB_NODES=" ".join(f"n{i}" for i in range(1, nodes + 1)), STUB_SWEEP=sweep,
            SLURM_JOB_NODELIST=f"n[1-{nodes}]", SLURM_JOB_ID="42", SLURM_CPUS_PER_TASK="96",
            SLURM_GPUS_PER_NODE="h100:8", RUNS_DIR=str(self.runs), POLL_S="0.05", **env,
        )

    def start(self, *args: str) -> subprocess.Popen:
        # cwd: the repository, as where sbatch is called, so that the experiment's relative path resolves. Output
        # to a file, not a pipe: a stub the script failed to stop would hold a pipe open, and the test with it.
        with open(self.out, "w") as out:
            return subprocess.Popen(["bash", str(SBATCH), *args], cwd=REPO, env=self.env, start_new_session=True,
                                    stdout=out, stderr=subprocess.STDOUT)

    def run(self, *args: str) -> int:
        process = self.start(*args)
        try:
            process.wait(timeout=60)
        finally:
            _end(process)
        return process.returncode

    @property
    def output(self) -> str:
        return self.out.read_text()

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines()

    def sweep_argv(self) -> list[str]:
        return (self.state / "sweep_argv").read_text().split("\0")[:-1]


def _end(process: subprocess.Popen) -> None:
    """A failing test must not leave the script or its stubs running: end its process group, which we started."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # the group is empty: everything ended on its own
    process.wait()


def _index(lines: list[str], start: str, *parts: str) -> int:
    """The first log line that starts with `start` and contains every part."""
    for i, line in enumerate(lines):
        if line.startswith(start) and all(part in line.split() for part in parts):
            return i
    raise AssertionError(f"no line {start!r} with {parts} in:\n" + "\n".join(lines))


def _parse_sweep(argv: list[str]):
    """`salt-budget ARGV` parsed as salt_budget.cli.main parses it: a key=value after an option is left over by
    argparse and taken as an override; anything else left over is an option the CLI does not know."""
    args, extra = build_parser().parse_known_args(argv)
    late = [item for item in extra if "=" in item and not item.startswith("-")]
    assert [item for item in extra if item not in late] == [], f"the CLI does not know {extra}"
    args.overrides = [*getattr(args, "late_overrides", []), *args.overrides, *late]
    return args


def test_sbatch_script_is_valid_bash():
    subprocess.run(["bash", "-n", str(SBATCH)], check=True)


def test_sbatch_script_passes_shellcheck():
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck is not installed")
    subprocess.run(["shellcheck", "-x", str(SBATCH)], check=True)


def test_sbatch_starts_head_then_workers_then_sweep_and_stops_ray(tmp_path):
    job = Job(tmp_path, nodes=3)
    assert job.run() == 0, job.output
    lines = job.lines()

    ip = _index(lines, "srun", "--nodelist=n1", "hostname")
    head = _index(lines, "ray start", "--head", "--node-ip-address=10.1.2.3", "--port=6379", "--num-cpus=96",
                  "--num-gpus=8", "--block")
    assert _index(lines, "srun", "--nodelist=n1", "--gpus-per-node=8", "ray") < head
    ready = max(i for i, line in enumerate(lines) if line == "ray status --address 10.1.2.3:6379")
    # One step for the other nodes, never the head's node, pointed at the address the head was given.
    workers = _index(lines, "srun", "--nodes=2", "--ntasks=2", "--exclude=n1", "ray")
    joined = _index(lines, "ray start", "--address=10.1.2.3:6379", "--block")
    wait_nodes = _index(lines, "python", "10.1.2.3:6379", "3")
    sweep = _index(lines, "salt-budget sweep")
    stop_step = _index(lines, "srun", "--overlap", "--nodes=3", "--ntasks=3", "ray")
    stop = _index(lines, "ray stop")
    assert ip < head < ready < workers < joined < wait_nodes < sweep < stop_step < stop
    assert not any(line.startswith("scontrol requeue") for line in lines)

    argv = job.sweep_argv()
    assert argv[:2] == ["sweep", EXPERIMENT]
    args = _parse_sweep(argv)
    assert args.experiment == EXPERIMENT  # the positional form; `--experiment FILE` is its alias
    assert args.address == "10.1.2.3:6379"
    assert args.total_steps == (240000,) and args.name == "paper_vitl_240k" and not args.resume
    # 96 CPUs over 8 GPUs: 12 a worker, the paper's 8 workers of one GPU each.
    assert (args.workers_per_trial, args.gpus_per_worker, args.cpus_per_worker) == (8, 1.0, 12.0)
    assert f"runs_dir={job.runs}" in args.overrides


def test_sbatch_passes_its_arguments_to_the_sweep(tmp_path):
    job = Job(tmp_path, nodes=1)
    assert job.run(EXPERIMENT, "120000", "--teacher-steps", "20000", "40000", "seed=3") == 0, job.output
    args = _parse_sweep(job.sweep_argv())
    assert args.experiment == EXPERIMENT and args.total_steps == (120000,) and args.teacher_steps == (20000, 40000)
    assert sorted(args.overrides) == [f"runs_dir={job.runs}", "seed=3"]


def test_sbatch_on_one_node_starts_no_workers(tmp_path):
    job = Job(tmp_path, nodes=1)
    assert job.run() == 0, job.output
    lines = job.lines()
    assert sum(line.startswith("ray start") for line in lines) == 1
    _index(lines, "srun", "--overlap", "--nodes=1", "ray")


@pytest.mark.parametrize("config_yaml, resumed", [(True, True), (False, False)])
def test_sbatch_resumes_only_a_sweep_that_exists(tmp_path, config_yaml, resumed):
    # A requeued job must continue its sweep, and a first one must not: --resume without a config.yaml is
    # refused. A folder with something else in it (Ray's files) is not yet a sweep.
    job = Job(tmp_path, nodes=2, SWEEP_NAME="mine")
    (job.runs / "mine" / "ray").mkdir(parents=True)
    if config_yaml:
        (job.runs / "mine" / "config.yaml").write_text("name: mine\n")
    assert job.run() == 0, job.output
    argv = job.sweep_argv()
    assert ("--resume" in argv) == resumed
    assert argv[argv.index("--name") + 1] == "mine"


def test_sbatch_exits_with_the_sweeps_status_after_stopping_ray(tmp_path):
    job = Job(tmp_path, nodes=2, sweep="fail")
    assert job.run() == 3, job.output
    lines = job.lines()
    assert _index(lines, "salt-budget sweep") < _index(lines, "ray stop")
    assert not any(line.startswith("scontrol requeue") for line in lines)


@pytest.mark.parametrize("signal_name, requeue_setting, requeued", [
    ("SIGTERM", "1", False),  # scancel or preemption: stop; a requeue would undo a cancel
    ("SIGUSR1", "1", True),   # the time limit is near: stop and come back
    ("SIGUSR1", "0", False),
])
def test_sbatch_forwards_a_stop_to_the_sweep(tmp_path, signal_name, requeue_setting, requeued):
    job = Job(tmp_path, nodes=2, sweep="wait", REQUEUE=requeue_setting)
    process = job.start()
    try:
        deadline = time.monotonic() + 15
        while not (job.state / "sweep_running").exists():
            assert process.poll() is None and time.monotonic() < deadline, job.output
            time.sleep(0.02)
        # SLURM signals the batch shell only (--signal=B:...): the sweep hears of it from the script or not at all.
        process.send_signal(getattr(signal, signal_name))
        process.wait(timeout=20)
    finally:
        _end(process)
    assert process.returncode == 143, job.output
    lines = job.lines()
    assert lines.index("salt-budget got TERM") < _index(lines, "ray stop")
    requeues = [i for i, line in enumerate(lines) if line == "scontrol requeue 42"]
    assert bool(requeues) == requeued
    if requeued:  # last: a requeue ends the job, and Ray must be down before that
        assert requeues == [len(lines) - 1] and _index(lines, "ray stop") < requeues[0]


def _manifest() -> dict[str, dict]:
    return {document["kind"]: document for document in yaml.safe_load_all(RAYJOB.read_text())}


def _pods(job: dict) -> list[dict]:
    cluster = job["spec"]["rayClusterSpec"]
    return [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]


def _entrypoint(job: dict) -> list[str]:
    return shlex.split(job["spec"]["entrypoint"])


def test_rayjob_is_a_kuberay_job_that_cleans_up():
    job = _manifest()["RayJob"]
    assert job["apiVersion"] == "ray.io/v1"
    assert job["spec"]["submissionMode"] == "K8sJobMode"
    assert job["spec"]["shutdownAfterJobFinishes"] is True
    # KubeRay's rayStartParams is a map of strings: a YAML number there fails `kubectl apply`.
    for group in _pods(job):
        assert all(isinstance(value, str) for value in group["rayStartParams"].values()), group["rayStartParams"]


def test_rayjob_entrypoint_is_one_plain_sweep_command():
    job = _manifest()["RayJob"]
    entrypoint = job["spec"]["entrypoint"]
    # KubeRay pastes the entrypoint into the submitter's bash command line, after `ray job submit ... --`:
    # anything the shell reads as an operator would run in the submitter pod, not on the cluster.
    assert not set("&;|$`'\"<>(){}") & set(entrypoint), entrypoint
    argv = _entrypoint(job)
    assert argv[:2] == ["salt-budget", "sweep"]
    experiment = argv[2]
    assert experiment.startswith(IMAGE_REPO) and (REPO / experiment.removeprefix(IMAGE_REPO)).is_file()
    args = _parse_sweep(argv[1:])
    assert args.experiment == experiment
    assert args.address == "auto"  # the cluster the job runs in
    assert args.total_steps and args.name


def test_rayjob_pods_share_the_run_folder_and_cache():
    manifest = _manifest()
    job = manifest["RayJob"]
    claim = manifest["PersistentVolumeClaim"]
    assert "ReadWriteMany" in claim["spec"]["accessModes"]  # head and workers mount it at once, on any node
    mounts = set()
    for group in _pods(job):
        pod = group["template"]["spec"]
        volume = next(v["name"] for v in pod["volumes"]
                      if v.get("persistentVolumeClaim", {}).get("claimName") == claim["metadata"]["name"])
        ray_container = pod["containers"][0]  # KubeRay runs Ray in the first container
        mounts |= {m["mountPath"] for m in ray_container["volumeMounts"] if m["name"] == volume}
        cache = {e["name"]: e["value"] for e in ray_container["env"]}["SALT_BUDGET_CACHE"]
        assert cache.startswith(next(iter(mounts)) + "/")
    # Units write absolute paths into checkpoints and the plan: one path on every pod.
    assert len(mounts) == 1, mounts
    runs_dir = next(a for a in _entrypoint(job) if a.startswith("runs_dir="))
    assert runs_dir.removeprefix("runs_dir=").startswith(mounts.pop() + "/")


def test_rayjob_workers_can_hold_one_unit():
    # The sweep refuses to start where one unit's W workers do not fit in the cluster.
    job = _manifest()["RayJob"]
    args = _parse_sweep(_entrypoint(job)[1:])
    groups = job["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    gpus = sum(g["replicas"] * int(g["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"])
               for g in groups)
    cpus = sum(g["replicas"] * float(g["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"])
               for g in groups)
    assert gpus >= args.workers_per_trial * args.gpus_per_worker > 0
    assert cpus >= args.workers_per_trial * args.cpus_per_worker
    assert job["spec"]["rayClusterSpec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"  # no unit on the head
