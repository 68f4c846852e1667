"""`salt-budget bench`: a stage's step (or the probe) timed through the training loop."""

from __future__ import annotations

import argparse
from pathlib import Path

from salt_budget.commands.common import add_experiment_args, load
from salt_budget.commands.train import StageChoices


def add_parser(commands) -> None:
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
    add_experiment_args(bench)
    bench.add_argument("--stage", choices=StageChoices("probe"), default="student",
                       help="a training stage (a registered stage kind), or probe: feature extraction by the frozen student encoder and the "
                       "probe head's fit, with an estimate of probing one checkpoint")
    bench.add_argument("--model", default=None, metavar="PRESET", help="encoder preset of the stage (e.g. vit_large)")
    bench.add_argument("--batch-size", "--batch", dest="batch", type=int, default=None,
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

    cfg = load(args)
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
    from trainers.probe.bench import bench_probe

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

    stage = cfg.stage_config(args.stage)
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
