"""The `salt-budget` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from fractions import Fraction
from pathlib import Path
from typing import Callable, Sequence

from salt_budget import __version__


def _add_experiment_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "experiment", nargs="?", default=None,
        help="experiment YAML file (default: the embedded tiny experiment on synthetic data)",
    )
    parser.add_argument("overrides", nargs="*", metavar="key.path=value", help="dotted config overrides")


def _split_experiment(args: argparse.Namespace) -> tuple[str | None, list[str]]:
    """argparse cannot tell an optional positional from the first override: a '=' decides."""
    experiment, overrides = args.experiment, list(args.overrides)
    if experiment is not None and "=" in experiment:
        overrides.insert(0, experiment)
        experiment = None
    return experiment, overrides


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="salt-budget",
        description="Plan, train and analyse SALT teacher/student compute allocations.",
    )
    parser.add_argument("--version", action="version", version=f"salt-budget {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="video data: the embedded synthetic set, checks, loader speed")
    data_commands = data.add_subparsers(dest="data_command", required=True)

    synth = data_commands.add_parser(
        "synth", help="write the embedded synthetic data set (H.264 MP4 + train/val lists)",
        description="Write the synthetic data set: MP4 clips, train.csv and val.csv "
        "(path, appearance label, motion label) and meta.json with the class names.",
    )
    synth.add_argument("--out", required=True, help="output folder (new or empty)")
    synth.add_argument("--train", type=int, help="training clips")
    synth.add_argument("--val", type=int, help="validation clips")
    synth.add_argument("--frames", type=int, help="frames per clip")
    synth.add_argument("--size", type=int, help="frame side in pixels (even)")
    synth.add_argument("--seed", type=int, help="generator seed")
    synth.add_argument("--workers", type=int, default=None, help="generating processes (default: all cores)")
    synth.add_argument(
        "overrides", nargs="*", metavar="key.path=value",
        help="further SyntheticConfig fields, e.g. scene.noise_std=8 crf=23",
    )
    synth.set_defaults(handler=_cmd_data_synth)

    prepare = data_commands.add_parser(
        "prepare", help="make an experiment's data ready (generate the synthetic set into the cache)"
    )
    _add_experiment_args(prepare)
    prepare.set_defaults(handler=_cmd_data_prepare)

    check = data_commands.add_parser("check", help="decode every clip of a split once; list what cannot be used")
    _add_experiment_args(check)
    check.add_argument("--split", choices=["train", "val"], default="train")
    check.set_defaults(handler=_cmd_data_check)

    bench = data_commands.add_parser("bench", help="measure the clip loader's throughput (clips/s)")
    _add_experiment_args(bench)
    bench.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader worker counts to time")
    bench.add_argument("--batch-size", type=int, default=8)
    bench.add_argument("--batches", type=int, default=16, help="timed batches per setting (after one warm-up batch)")
    bench.add_argument("--split", choices=["train", "val"], default="train")
    bench.add_argument("--json", dest="json_out", default=None, help="also write the results to this JSON file")
    bench.set_defaults(handler=_cmd_data_bench)

    train = commands.add_parser(
        "train", help="train one stage: the V-Pixel teacher, the SALT student or the V-JEPA 2 baseline (EMA target)")
    train.add_argument("stage", choices=["teacher", "student", "vjepa2"])
    _add_experiment_args(train)
    train.add_argument("--run-dir", default=None,
                       help="run directory (default: <runs_dir>/<name>/teachers|students|baselines/<config hash>); "
                            "an existing one is continued from its last checkpoint")
    train.add_argument("--teacher", default=None, help="frozen teacher checkpoint (student stage)")
    train.add_argument("--init-from", default=None,
                       help="start from another run's checkpoint (weights, optimiser, step): a cool-down branch")
    train.add_argument("--probe", action="store_true", help="probe the final checkpoint when training ends")
    train.set_defaults(handler=_cmd_train)

    probe = commands.add_parser(
        "probe", help="attentive probe of a frozen encoder on every task (checkpoint, or 'random' for random init)"
    )
    probe.add_argument("checkpoint", help="checkpoint file, or 'random' for a randomly initialised encoder")
    _add_experiment_args(probe)
    probe.add_argument("--encoder", choices=["teacher", "student", "vjepa2"], default="student",
                       help="with 'random': which stage's encoder config to build (default student)")
    probe.add_argument("--single-frame", action="store_true",
                       help="feed the centre frame repeated: what the encoder can tell without motion")
    probe.add_argument("--out", default=None, help="result JSON (default: <run>/probes/<checkpoint>.json)")
    probe.set_defaults(handler=_cmd_probe)
    _add_sweep_parser(commands)
    _add_report_parser(commands)
    _add_study_parser(commands)
    _add_bench_parser(commands)
    return parser


def _flops(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of FLOPs (e.g. 1.2e21)") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text}: a FLOPs budget must be > 0")
    return value


def _fraction(text: str) -> Fraction:
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"{text!r} is not a fraction (write 1/12 or 0.25)") from None


class _ValuesThenOverrides(argparse.Action):
    """A several-values option that hands on the key=value overrides argparse would read as its values
    (`--teacher-steps 4 8 data.frames=8`), so that overrides may come anywhere on the line."""

    def __init__(self, *args, convert: Callable = str, **kwargs):
        super().__init__(*args, **kwargs)
        self.convert = convert

    def __call__(self, parser, namespace, values, option_string=None):
        items = [value for value in values if "=" not in value]
        if not items:
            parser.error(f"argument {option_string}: expected at least one value")
        try:
            setattr(namespace, self.dest, tuple(self.convert(item) for item in items))
        except (ValueError, argparse.ArgumentTypeError) as error:
            parser.error(f"argument {option_string}: {error}")
        namespace.late_overrides = [*getattr(namespace, "late_overrides", []), *(v for v in values if "=" in v)]


def _add_ray_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", default=None, help="Ray cluster to join ('auto': the running one); default local")
    parser.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs per trial and teacher task (default 1)")
    parser.add_argument("--gpus-per-trial", type=float, default=None,
                        help="GPUs per trial, a fraction shares one (default 1 where the cluster has GPUs, else 0)")
    parser.add_argument("--max-failures", type=int, default=1,
                        help="retries of a failed trial, teacher or baseline task, each from its last checkpoint "
                             "(default 1)")
    parser.add_argument("--workers-per-trial", type=int, default=1, metavar="W",
                        help="train every trial, teacher ladder and baseline on W data-parallel Ray Train workers "
                             "(default 1: one process per unit)")
    parser.add_argument("--cpus-per-worker", type=float, default=1.0, help="CPUs per Ray Train worker (default 1)")
    parser.add_argument("--gpus-per-worker", type=float, default=None,
                        help="GPUs per Ray Train worker (default 1 where the cluster has GPUs, else 0)")


def _resources(args: argparse.Namespace):
    from salt_budget.sweep.runner import Resources

    return Resources(cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial,
                     max_failures=args.max_failures, workers_per_trial=args.workers_per_trial,
                     cpus_per_worker=args.cpus_per_worker, gpus_per_worker=args.gpus_per_worker)


def _add_sweep_parser(commands) -> None:
    sweep = commands.add_parser(
        "sweep", help="train every teacher/student split of a step budget (T + S = N) on Ray Tune",
        description="Plan every allocation T + S = N, train each distinct teacher once (a checkpoint ladder with "
        "the wsd schedule), then one Ray Tune trial per allocation (student, probes at several checkpoints); "
        "rows go to runs/<name>/results.parquet; --baselines adds baseline runs trained for each whole budget. "
        "Default teacher shares: 1/12, 1/6, 1/3, 1/2.",
    )
    several = dict(nargs="+", action=_ValuesThenOverrides)
    budgets = sweep.add_mutually_exclusive_group(required=True)
    budgets.add_argument("--total-steps", convert=int, default=(), metavar="N", **several,
                         help="step budget(s) T + S; several share their teachers")
    budgets.add_argument("--total-flops", convert=_flops, default=(), metavar="F", **several,
                         help="FLOPs budget(s), e.g. 1.2e21: each teacher share of F becomes T steps of that teacher "
                              "and the rest S student steps, so teachers of different sizes get equal compute")
    sweep.add_argument("--experiment", default=None, help="experiment YAML (default: the embedded tiny experiment)")
    sweep.add_argument("--teacher-sizes", default=(), metavar="PRESET", **several,
                       help="teacher encoder presets (default: the experiment's teacher.encoder.preset)")
    shares = sweep.add_mutually_exclusive_group()
    shares.add_argument("--teacher-steps", convert=int, default=(), metavar="T", **several, help="teacher step counts")
    shares.add_argument("--teacher-fractions", convert=_fraction, default=(), metavar="F", **several,
                        help="teacher shares of each budget, in (0, 1) (default 1/12 1/6 1/3 1/2)")
    sweep.add_argument("--student-size", default=None, metavar="PRESET",
                       help="student encoder preset (default: the experiment's student.encoder.preset)")
    sweep.add_argument("--seeds", convert=int, default=(), metavar="SEED", **several,
                       help="seeds (default: the experiment's seed)")
    sweep.add_argument("--search", choices=["grid", "optuna"], default="grid",
                       help="grid: every allocation; optuna: Ray Tune's OptunaSearch (TPE) over teacher share and size")
    sweep.add_argument("--trials", type=int, default=None, help="allocations the optuna search may train")
    sweep.add_argument("--teacher-schedule", choices=["wsd", "cosine"], default="wsd",
                       help="wsd: one constant-lr trunk + a cool-down branch per teacher (each step trained once); "
                            "cosine: the paper's schedule, one run per teacher")
    sweep.add_argument("--cooldown-fraction", type=float, default=0.2,
                       help="wsd: each teacher's cool-down as a share of its steps (default 0.2)")
    sweep.add_argument("--probe-points", type=int, default=4,
                       help="student checkpoints probed, evenly spaced, the final one included (default 4)")
    sweep.add_argument("--baselines", default=(), metavar="METHOD", **several,
                       help="also train each baseline for every budget N and seed, N steps, probed at as many "
                            "checkpoints as a student: vjepa2 (the V-JEPA 2 recipe, EMA target)")
    sweep.add_argument("--name", default=None, help="run folder runs/<name> (default: the experiment's name)")
    sweep.add_argument("--dry-run", action="store_true",
                       help="print the plan with predicted FLOPs and time; train nothing")
    sweep.add_argument("--resume", action="store_true", help="continue this sweep after a crash or a stop")
    _add_ray_args(sweep)
    sweep.add_argument("overrides", nargs="*", metavar="key.path=value", help="dotted experiment overrides")
    sweep.set_defaults(handler=_cmd_sweep)


def _cmd_data_synth(args: argparse.Namespace) -> int:
    from trainers.config import from_dict, merge, parse_overrides, to_dict
    from trainers.data.config import SyntheticConfig
    from trainers.data.synthetic import generate_synthetic

    flags = {key: getattr(args, key) for key in ("train", "val", "frames", "size", "seed")}
    data = merge(to_dict(SyntheticConfig()), {k: v for k, v in flags.items() if v is not None})
    cfg = from_dict(SyntheticConfig, merge(data, parse_overrides(args.overrides)), source="salt-budget data synth")
    summary = generate_synthetic(cfg, args.out, workers=args.workers)
    print(
        f"wrote {summary.clips} clips ({cfg.train} train, {cfg.val} val; {cfg.frames} frames of "
        f"{cfg.size}x{cfg.size}) to {summary.out} in {summary.seconds:.1f} s = {summary.clips_per_second:.1f} clips/s"
    )
    print(f"lists: {summary.out / 'train.csv'}, {summary.out / 'val.csv'}; classes in {summary.out / 'meta.json'}")
    return 0


def _load(args: argparse.Namespace):
    from salt_budget.experiment import load_experiment

    experiment, overrides = _split_experiment(args)
    return load_experiment(experiment, overrides)


def _cmd_data_prepare(args: argparse.Namespace) -> int:
    from trainers.data.build import resolve_data

    cfg = _load(args)
    resolved = resolve_data(cfg.data)
    for split, path in resolved.lists.items():
        print(f"{split}: {path}")
    for task in resolved.tasks:
        print(f"task {task.name}: {task.num_classes} classes")
    return 0


def _cmd_data_check(args: argparse.Namespace) -> int:
    from trainers.data.build import build_dataset, build_loader, resolve_data

    cfg = _load(args)
    resolved = resolve_data(cfg.data)
    dataset = build_dataset(cfg.data, args.split, train=False, resolved=resolved)
    loader = build_loader(cfg.data, dataset, batch_size=16, shuffle=False)
    loader.max_bad_fraction = 1.0  # a check lists everything instead of stopping at the first threshold
    for _ in _progress(loader, f"decoding {args.split} clips"):
        pass
    stats = loader.stats
    print(f"{stats.delivered} of {len(dataset)} clips usable; {stats.skipped} skipped {stats.failed or ''}; "
          f"{stats.short} shorter than frames x frame_step (rule: {cfg.data.short_clip})")
    for path, reason in stats.bad_files.items():
        print(f"  {reason}: {path}")
    return 1 if stats.skipped else 0


def _progress(iterable, desc: str):
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, unit="batch", file=sys.stderr)


def _cmd_data_bench(args: argparse.Namespace) -> int:
    import json
    import platform
    import time
    from datetime import datetime, timezone

    import torch

    from trainers.data.build import build_dataset, build_loader, resolve_data

    cfg = _load(args)
    resolved = resolve_data(cfg.data)
    dataset = build_dataset(cfg.data, args.split, train=args.split == "train", resolved=resolved)
    needed = (args.batches + 1) * args.batch_size
    if len(dataset) < needed:
        dataset.entries = (dataset.entries * (needed // len(dataset) + 1))[:needed]
    results = []
    for workers in args.workers:
        loader = build_loader(cfg.data, dataset, batch_size=args.batch_size, shuffle=True, workers=workers)
        batches = iter(loader)
        next(batches)  # warm-up: worker start and first decode are not throughput
        start = time.perf_counter()
        clips = 0
        for _ in range(args.batches):
            clips += len(next(batches)["video"])
        seconds = time.perf_counter() - start
        del batches
        results.append({"workers": workers, "clips": clips, "seconds": round(seconds, 3),
                        "clips_per_s": round(clips / seconds, 2)})
        print(f"workers={workers}: {clips} clips in {seconds:.2f} s = {clips / seconds:.1f} clips/s "
              f"({cfg.data.frames} frames x {cfg.data.resolution}px, {args.split} augmentation)")
    if args.json_out:
        record = {
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "host": platform.node(), "cpus": __import__("os").cpu_count(),
            "torch": torch.__version__, "frames": cfg.data.frames, "frame_step": cfg.data.frame_step,
            "resolution": cfg.data.resolution, "batch_size": args.batch_size, "results": results,
        }
        with open(args.json_out, "w") as handle:
            json.dump(record, handle, indent=2)
    return 0


_STAGE_FOLDERS = {"teacher": "teachers", "student": "students", "vjepa2": "baselines"}


def _stage_run_dir(cfg, stage: str, stage_cfg) -> Path:
    from trainers.config import config_hash

    key = config_hash({"seed": cfg.seed, "data": cfg.data, stage: stage_cfg})
    return Path(cfg.runs_dir) / cfg.name / _STAGE_FOLDERS[stage] / key


def _cmd_train(args: argparse.Namespace) -> int:
    from trainers.distributed import is_main_process
    from trainers.train import train_student, train_teacher, train_vjepa2

    cfg = _load(args)
    if args.stage == "student" and args.teacher:
        cfg.student.teacher_checkpoint = str(Path(args.teacher).resolve())
    stage_cfg = getattr(cfg, args.stage)
    run_dir = Path(args.run_dir) if args.run_dir else _stage_run_dir(cfg, args.stage, stage_cfg)
    trainer = {"teacher": train_teacher, "student": train_student, "vjepa2": train_vjepa2}[args.stage]
    main_process = is_main_process()  # under torchrun, one process reports and probes
    if main_process:
        print(f"[{args.stage}] run directory {run_dir}", file=sys.stderr, flush=True)
    final = trainer(stage_cfg, cfg.data, run_dir, seed=cfg.seed, init_from=args.init_from)
    if not main_process:
        return 0
    print(f"final checkpoint: {final}")
    if args.probe:
        from trainers.evaluate import probe_checkpoint

        result, out = probe_checkpoint(final, cfg.data, cfg.probe, seed=cfg.seed)
        _print_probe(result, out)
    return 0


def _print_probe(result: dict, out: Path) -> None:
    for name, task in result["tasks"].items():
        verdict = "" if task.get("converged", True) else "; not converged: the head never fitted its train split"
        print(f"{name}: {task['accuracy']:.1%} (chance {task['chance']:.1%}, train {task['train_accuracy']:.1%}{verdict})")
    print(f"RankMe {result['rankme']:.1f}; written to {out}")


def _cmd_probe(args: argparse.Namespace) -> int:
    from trainers.evaluate import probe_checkpoint, probe_random_init

    experiment, overrides = _split_experiment(args)
    base = None
    if args.checkpoint != "random" and experiment is None:
        from trainers.checkpoint import load_checkpoint

        # Without an experiment file the checkpoint's own data config is the default view.
        base = {"data": load_checkpoint(args.checkpoint)["config"]["data"]}
    from salt_budget.experiment import load_experiment

    cfg = load_experiment(experiment, overrides, base=base)
    if args.single_frame:
        cfg.probe.single_frame = True
    if args.checkpoint == "random":
        from trainers.encoders import encoder_description

        description = encoder_description(getattr(cfg, args.encoder).encoder, cfg.data)
        out_dir = Path(args.out) if args.out else Path(cfg.runs_dir) / cfg.name
        result, out = probe_random_init(description, cfg.data, cfg.probe, out_dir, seed=cfg.seed)
    else:
        result, out = probe_checkpoint(args.checkpoint, cfg.data, cfg.probe, seed=cfg.seed,
                                       out=Path(args.out) if args.out else None)
    _print_probe(result, out)
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from salt_budget.experiment import load_experiment
    from salt_budget.sweep.plan import SweepOptions, build_plan
    from salt_budget.sweep.plan_table import format_plan, plan_frame

    options = SweepOptions(
        total_steps=args.total_steps, total_flops=args.total_flops, name=args.name, teacher_sizes=args.teacher_sizes,
        teacher_steps=args.teacher_steps, teacher_fractions=args.teacher_fractions,
        student_size=args.student_size, seeds=args.seeds, search=args.search, trials=args.trials,
        teacher_schedule=args.teacher_schedule, cooldown_fraction=args.cooldown_fraction,
        probe_points=args.probe_points, baselines=args.baselines,
    )
    overrides = [*getattr(args, "late_overrides", []), *args.overrides]
    plan = build_plan(load_experiment(args.experiment, overrides), options)
    print(format_plan(plan, plan_frame(plan, args.workers_per_trial)), flush=True)
    if args.dry_run:
        print("dry run: nothing trained, nothing written")
        return 0
    from salt_budget.sweep.runner import run_sweep

    return run_sweep(plan, resume=args.resume, address=args.address, resources=_resources(args))


def _add_study_parser(commands) -> None:
    study = commands.add_parser(
        "study", help="the paper's ablations (allocation, teacher size, teacher masks, loss-accuracy) as sweeps",
        description="Run every ablation of a study file (experiments/study_tiny.yaml) as sweeps in runs/<study>/: a "
        "random-init encoder probed per seed, then each ablation's variants in order, then the study report "
        "(runs/<study>/report: study.md, study.html, and the sweep report of the shared sweep). Overrides whose "
        "first key is a study field (name, seeds, ablations...) change the study; the rest (data..., teacher..., "
        "probe...) change the experiment of every sweep.",
    )
    study.add_argument("study_file", help="study YAML, e.g. experiments/study_tiny.yaml")
    study.add_argument("overrides", nargs="*", metavar="key.path=value", help="dotted study or experiment overrides")
    study.add_argument("--dry-run", action="store_true", help="print every sweep's plan, FLOPs and time; train nothing")
    study.add_argument("--resume", action="store_true", help="continue this study after a crash or a stop")
    _add_ray_args(study)
    study.set_defaults(handler=_cmd_study)


def _cmd_study(args: argparse.Namespace) -> int:
    import dataclasses

    from salt_budget.study.config import StudyConfig, load_study, study_sweeps
    from salt_budget.study.runner import plan_study, run_study
    from salt_budget.sweep.plan_table import format_plan, plan_frame

    fields = {f.name for f in dataclasses.fields(StudyConfig)}
    mine = [o for o in args.overrides if o.split("=", 1)[0].split(".", 1)[0] in fields]
    experiment_overrides = [o for o in args.overrides if o not in mine]
    study = load_study(args.study_file, mine)
    study.overrides = [*study.overrides, *experiment_overrides]
    plan = plan_study(study, study_sweeps(study, Path(args.study_file)))
    flops = {}  # by (folder, allocation): an allocation two ablations share is trained, and counted, once
    for sweep, sweep_plan in zip(plan.sweeps, plan.plans):
        frame = plan_frame(sweep_plan, args.workers_per_trial)
        flops.update({(sweep.folder, a): float(f) for a, f in zip(frame["allocation_id"], frame["flops_total"])})
        print(f"== ablation {sweep.ablation}, variant {sweep.variant}"
              + (f" ({' '.join(sweep.overrides)})" if sweep.overrides else ""))
        print(format_plan(sweep_plan, frame), flush=True)
    print(f"study '{study.name}' -> {plan.study_dir}: {len(plan.plans)} sweeps, {len(flops)} distinct "
          f"allocations; FLOPs summed over them {sum(flops.values()):.3g} (a teacher shared by allocations counted "
          f"in each)")
    if args.dry_run:
        print("dry run: nothing trained, nothing written")
        return 0
    from analysis.study_report import write_study_report

    code = run_study(plan, resume=args.resume, address=args.address, resources=_resources(args))
    written = write_study_report(plan.study_dir)
    print(f"study report written to {written.out}:")
    for path in written.files:
        print(f"  {path.relative_to(written.out)}")
    for note in written.notes:
        print(note)
    return code


def _add_bench_parser(commands) -> None:
    bench = commands.add_parser(
        "bench", help="trainer speed: step time, clips/s, TFLOP/s, MFU, memory, data wait, loop against reference",
        description="Time one stage's steps through the real training loop (on the experiment's data, so the data "
        "wait is real) and through a bare reference step on the same modules and batches; print step time, "
        "clips/s, the FLOPs model's TFLOP/s, MFU against the device's bf16 peak and against its matmul rate "
        "measured in the same run, and peak memory. --stage probe times feature extraction by the frozen encoder "
        "(through the probe's own code, data waits included) and the probe head's fit, and estimates one probe "
        "of a checkpoint. --record appends the result to benchmarks/bench.jsonl. The data loader alone: "
        "salt-budget data bench.",
    )
    _add_experiment_args(bench)
    bench.add_argument("--stage", choices=["teacher", "student", "vjepa2", "probe"], default="student",
                       help="a training stage, or probe: feature extraction by the frozen student encoder and the "
                       "probe head's fit, with an estimate of probing one checkpoint")
    bench.add_argument("--model", default=None, metavar="PRESET", help="encoder preset of the stage (e.g. vit_large)")
    bench.add_argument("--batch", type=int, default=None,
                       help="batch size (default: the experiment's; for probe, probe.extract_batch_size)")
    bench.add_argument("--warmup", type=int, default=4, help="untimed steps (probe: batches) first (compilation, "
                       "allocator)")
    bench.add_argument("--windows", type=int, default=3, help="timed windows (the median is reported)")
    bench.add_argument("--window", type=int, default=4, help="steps per timed window (probe: windows x window "
                       "batches are timed)")
    bench.add_argument("--repeats", type=int, default=1,
                       help="loop runs, each followed by a reference run (more repeats average out machine drift)")
    bench.add_argument("--record", default=None, nargs="?", const="benchmarks/bench.jsonl", metavar="JSONL",
                       help="append the result as one JSON line (default file: benchmarks/bench.jsonl)")
    bench.set_defaults(handler=_cmd_bench)


def _cmd_bench(args: argparse.Namespace) -> int:
    import json
    from datetime import datetime, timezone

    from trainers.config import ConfigError

    cfg = _load(args)
    if args.warmup < 1 or args.windows < 1 or args.window < 1 or args.repeats < 1 or args.warmup % args.window:
        raise ConfigError(f"--warmup {args.warmup} must be a positive multiple of --window {args.window}, and "
                          f"--windows and --repeats at least 1")
    if args.stage == "probe":
        result = _bench_probe(args, cfg)
    else:
        result = _bench_training_stage(args, cfg)
    if args.record:
        record = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), **result.as_dict()}
        path = Path(args.record)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        print(f"appended to {path}")
    return 0


def _mfu_peak_text(mfu_peak: float | None) -> str:
    return "n/a (no data-sheet peak for this device)" if mfu_peak is None else f"{mfu_peak:.1%}"


def _bench_probe(args: argparse.Namespace, cfg):
    from trainers.bench_probe import bench_probe

    if args.batch:
        cfg.probe.extract_batch_size = args.batch
    result = bench_probe(cfg, encoder_preset=args.model, warmup=args.warmup, batches=args.windows * args.window)
    mfu_peak = _mfu_peak_text(result.mfu_peak)
    print(f"probe of a {result.encoder} encoder ({result.probe} head), {result.frames} x {result.resolution} px, "
          f"{result.device_name} ({result.precision}):")
    print(f"  extraction: batch {result.batch_size} in {result.extract_step_s * 1e3:.1f} ms (data waits taken out); "
          f"{result.extract_clips_per_s:.1f} clips/s; waiting for data {result.extract_data_wait_share:.0%}")
    print(f"  {result.extract_flops_per_clip:.3g} FLOPs per clip = {result.extract_tflops:.3g} TFLOP/s; matmul rate "
          f"measured here {result.matmul_tflops:.3g} TFLOP/s -> MFU {result.mfu_matmul:.1%}; against the bf16 peak "
          f"{mfu_peak}")
    if result.head_step_s is not None:
        print(f"  head: batch {result.head_batch_size} in {result.head_step_s * 1e3:.2f} ms per step, "
              f"{result.head_flops_per_step:.3g} FLOPs = {result.head_tflops:.3g} TFLOP/s (fp32)")
    else:
        print(f"  head: the ridge readout's fit took {result.head_fit_s:.2f} s on the timed clips")
    print(f"  one probe of a checkpoint ({result.train_clips} train + {result.val_clips} val clips, every task): "
          f"about {result.full_probe_s:.0f} s")
    print(f"  peak memory {result.peak_memory_bytes / 2**30:.2f} GiB")
    return result


def _bench_training_stage(args: argparse.Namespace, cfg):
    from trainers.bench import bench_stage

    stage = getattr(cfg, args.stage)
    if args.model:
        stage.encoder.preset = args.model
    if args.batch:
        stage.optim.batch_size = args.batch
    result = bench_stage(args.stage, cfg, warmup=args.warmup, windows=args.windows, per_window=args.window,
                         repeats=args.repeats)
    mfu_peak = _mfu_peak_text(result.mfu_peak)
    print(f"{result.stage} {result.encoder}, batch {result.batch_size}, {result.frames} x {result.resolution} px, "
          f"{result.device_name} ({result.precision}{', compiled' if result.compile else ''}):")
    print(f"  step {result.loop_step_s * 1e3:.1f} ms (loop, data waits taken out) against {result.reference_step_s * 1e3:.1f} ms "
          f"(bare reference step): ratio {result.loop_over_reference:.3f}")
    print(f"  {result.clips_per_s:.1f} clips/s; waiting for data {result.loop_data_wait_share:.0%} of the loop's time")
    print(f"  {result.flops_per_step:.3g} FLOPs per step = {result.achieved_tflops:.3g} TFLOP/s; matmul rate measured "
          f"here {result.matmul_tflops:.3g} TFLOP/s -> MFU {result.mfu_matmul:.1%}; against the bf16 peak {mfu_peak}")
    print(f"  peak memory {result.peak_memory_bytes / 2**30:.2f} GiB")
    return result


def _add_report_parser(commands) -> None:
    report = commands.add_parser(
        "report", help="the report of one or more sweeps: Pareto fronts, allocation curves, regressions, findings",
        description="Read runs/<name>/results.parquet of each RUN_DIR (several budgets are one report) and write "
        "report.html (self-contained), summary.md, the table behind every figure as CSV and, where kaleido and a "
        "Chromium are installed, the figures as PNG.",
    )
    report.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="sweep run folder(s), e.g. runs/<name>")
    report.add_argument("--out", default=None, help="report folder (default: <first RUN_DIR>/report)")
    report.add_argument("--task", default=None, help="analyse one task only (a task name, or 'mean' for the average)")
    report.add_argument("--format", default="html,png,md", help="comma-separated outputs: html, png, md (default all)")
    report.set_defaults(handler=_cmd_report)


def _cmd_report(args: argparse.Namespace) -> int:
    from analysis.report import parse_formats, write_report
    from analysis.study import is_study
    from analysis.study_report import write_study_report

    if len(args.run_dirs) == 1 and is_study(Path(args.run_dirs[0])):
        written = write_study_report(Path(args.run_dirs[0]), out=Path(args.out) if args.out else None,
                                     task=args.task, formats=parse_formats(args.format))
    else:
        written = write_report([Path(d) for d in args.run_dirs], out=Path(args.out) if args.out else None,
                               task=args.task, formats=parse_formats(args.format))
    print(f"report written to {written.out}:")
    for path in written.files:
        print(f"  {path.relative_to(written.out)}")
    for note in written.notes:
        print(note)
    return 0


# Errors a user can fix; they print as one line, not a traceback.
def _user_errors() -> tuple[type[BaseException], ...]:
    from trainers.config import ConfigError
    from trainers.data.clip_list import ClipListError
    from trainers.data.dataset import DataError

    from trainers.checkpoint import CheckpointError
    from trainers.loop import TrainingDiverged

    from analysis.tables import ReportError

    return (ConfigError, ClipListError, DataError, CheckpointError, TrainingDiverged, FileExistsError,
            FileNotFoundError, ReportError)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # An override after an option (`probe CK exp.yaml --encoder teacher data.frames=8`) is left over by
    # argparse, which ends a positional list at the first option.
    late = [item for item in extra if "=" in item and not item.startswith("-")]
    unknown = [item for item in extra if item not in late]
    if unknown or (late and not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(unknown or late)}")
    if late:
        args.overrides = [*args.overrides, *late]
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except _user_errors() as error:
        print(f"salt-budget: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("salt-budget: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
