"""`salt-budget train` (one stage) and `salt-budget probe` (a frozen encoder, or random init)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from salt_budget.commands.common import add_experiment_args, add_tracker_args, load, split_experiment


class StageChoices:
    """The registered stage kinds (trainers/registry.py) as argparse choices, read only when argparse checks a
    value or prints help: building the parser imports no torch."""

    def __init__(self, *extra: str) -> None:
        self.extra = extra

    def _kinds(self) -> list[str]:
        from trainers.registry import stage_kinds

        return [*stage_kinds(), *self.extra]

    def __contains__(self, value: object) -> bool:
        return value in self._kinds()

    def __iter__(self):
        return iter(self._kinds())


def add_parser(commands) -> None:
    """train STAGE and probe CHECKPOINT"""
    train = commands.add_parser(
        "train", help="train one stage: the V-Pixel teacher, the SALT student, the V-JEPA 2 baseline (EMA target) "
        "or any stage kind registered (trainers/registry.py)")
    train.add_argument("stage", choices=StageChoices())
    add_experiment_args(train)
    train.add_argument("--run-dir", default=None,
                       help="run directory (default: <runs_dir>/<name>/teachers|students|baselines/<config hash>); "
                            "an existing one is continued from its last checkpoint")
    train.add_argument("--teacher", default=None, help="frozen teacher checkpoint (a stage that needs one: the student)")
    train.add_argument("--init-from", default=None,
                       help="start from another run's checkpoint (weights, optimiser, step): a cool-down branch")
    train.add_argument("--probe", action="store_true", help="probe the final checkpoint when training ends")
    add_tracker_args(train)
    train.set_defaults(handler=_cmd_train)

    probe = commands.add_parser(
        "probe", help="attentive probe of a frozen encoder on every task (checkpoint, or 'random' for random init)"
    )
    probe.add_argument("checkpoint", help="checkpoint file, or 'random' for a randomly initialised encoder")
    add_experiment_args(probe)
    probe.add_argument("--encoder", choices=StageChoices(), default="student",
                       help="with 'random': which stage's encoder config to build (default student)")
    probe.add_argument("--single-frame", action="store_true",
                       help="feed the centre frame repeated: what the encoder can tell without motion")
    # --json, as `data bench` names its result file; --out names a folder elsewhere (report).
    probe.add_argument("--json", "--out", dest="out", default=None, metavar="FILE",
                       help="result JSON (default: <run>/probes/<checkpoint>.json)")
    probe.set_defaults(handler=_cmd_probe)


def _stage_key(cfg, stage: str, stage_cfg) -> str:
    from trainers.config import config_hash

    return config_hash({"seed": cfg.seed, "data": cfg.data, stage: stage_cfg})


def _stage_run_dir(cfg, stage: str, stage_cfg) -> Path:
    from trainers.registry import stage_kind

    return Path(cfg.runs_dir) / cfg.name / stage_kind(stage).run_folder / _stage_key(cfg, stage, stage_cfg)


def _tracking(args: argparse.Namespace, cfg, stage_cfg, run_dir: Path):
    """The run's tracker run: in the experiment's group, by its config hash (a continued run continues it), its
    records beside the run folder (<runs>/<name>/<stage folder>/tensorboard, wandb, mlflow.db)."""
    if not args.trackers:
        return None
    from trainers.config import to_dict
    from trainers.tracking.spec import TrackingSpec

    return TrackingSpec(trackers=tuple(dict.fromkeys(args.trackers)), group=cfg.name,
                        run_id=_stage_key(cfg, args.stage, stage_cfg), name=run_dir.name, kind=args.stage,
                        folder=run_dir.resolve().parent,
                        tags={"stage": args.stage, "size": stage_cfg.encoder.preset, "steps": stage_cfg.optim.steps,
                              "seed": cfg.seed},
                        config=to_dict(stage_cfg))


def _cmd_train(args: argparse.Namespace) -> int:
    from trainers.distributed import is_main_process
    from trainers.registry import stage_kind
    from trainers.tracking.check import check_trackers
    from trainers.train import train_stage

    check_trackers(args.trackers)
    cfg = load(args)
    stage_cfg = cfg.stage_config(args.stage)
    if stage_kind(args.stage).needs_teacher and args.teacher:
        stage_cfg.teacher_checkpoint = str(Path(args.teacher).resolve())
    run_dir = Path(args.run_dir) if args.run_dir else _stage_run_dir(cfg, args.stage, stage_cfg)
    main_process = is_main_process()  # under torchrun, one process reports and probes
    if main_process:
        print(f"[{args.stage}] run directory {run_dir}", file=sys.stderr, flush=True)
    tracking = _tracking(args, cfg, stage_cfg, run_dir)
    final = train_stage(args.stage, stage_cfg, cfg.data, run_dir, seed=cfg.seed, init_from=args.init_from,
                        tracking=tracking)
    if not main_process:
        return 0
    print(f"final checkpoint: {final}")
    if args.probe:
        from analysis.probe_columns import probe_columns
        from trainers.probe.checkpoints import probe_checkpoint
        from trainers.tracking.sinks import open_sink

        from salt_budget.sweep.running.tracking import probe_metrics

        result, out = probe_checkpoint(final, cfg.data, cfg.probe, seed=cfg.seed)
        _print_probe(result, out)
        with open_sink(tracking) as sink:
            sink.log(probe_metrics(probe_columns(result)), stage_cfg.optim.steps)
    return 0


def _print_probe(result: dict, out: Path) -> None:
    for name, task in result["tasks"].items():
        verdict = "" if task.get("converged", True) else "; not converged: the head never fitted its train split"
        print(f"{name}: {task['accuracy']:.1%} (chance {task['chance']:.1%}, train {task['train_accuracy']:.1%}{verdict})")
    print(f"RankMe {result['rankme']:.1f}; written to {out}")


def _cmd_probe(args: argparse.Namespace) -> int:
    from trainers.probe.checkpoints import probe_checkpoint, probe_random_init

    experiment, overrides = split_experiment(args)
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

        description = encoder_description(cfg.stage_config(args.encoder).encoder, cfg.data)
        out_dir = Path(args.out) if args.out else Path(cfg.runs_dir) / cfg.name
        result, out = probe_random_init(description, cfg.data, cfg.probe, out_dir, seed=cfg.seed)
    else:
        result, out = probe_checkpoint(args.checkpoint, cfg.data, cfg.probe, seed=cfg.seed,
                                       out=Path(args.out) if args.out else None)
    _print_probe(result, out)
    return 0
