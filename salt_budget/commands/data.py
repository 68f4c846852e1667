"""`salt-budget data`: the embedded synthetic set, data checks and the loader's speed."""

from __future__ import annotations

import argparse

from salt_budget.commands.common import add_experiment_args, load, progress


def add_parser(commands) -> None:
    """data synth | prepare | check | bench"""
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
        "prepare", help="make an experiment's data ready: generate the synthetic set into the cache, read every "
        "pre-training and probe-task list"
    )
    add_experiment_args(prepare)
    prepare.set_defaults(handler=_cmd_data_prepare)

    check = data_commands.add_parser("check", help="decode every clip of a split once; list what cannot be used")
    add_experiment_args(check)
    check.add_argument("--split", choices=["train", "val"], default="train")
    check.set_defaults(handler=_cmd_data_check)

    bench = data_commands.add_parser("bench", help="measure the clip loader's throughput (clips/s)")
    add_experiment_args(bench)
    bench.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader worker counts to time")
    bench.add_argument("--batch-size", type=int, default=8)
    bench.add_argument("--batches", type=int, default=16, help="timed batches per setting (after one warm-up batch)")
    bench.add_argument("--split", choices=["train", "val"], default="train")
    bench.add_argument("--json", dest="json_out", default=None, help="also write the results to this JSON file")
    bench.set_defaults(handler=_cmd_data_bench)


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


def _cmd_data_prepare(args: argparse.Namespace) -> int:
    from trainers.data.build import resolve_data
    from trainers.evaluate import prepare_data

    cfg = load(args)
    for split, path in resolve_data(cfg.data).lists.items():
        print(f"{split}: {path}")
    for line in prepare_data(cfg.data, cfg.probe):
        print(line)
    return 0


def _cmd_data_check(args: argparse.Namespace) -> int:
    from trainers.data.build import build_dataset, build_loader, resolve_data

    cfg = load(args)
    resolved = resolve_data(cfg.data)
    dataset = build_dataset(cfg.data, args.split, train=False, resolved=resolved)
    loader = build_loader(cfg.data, dataset, batch_size=16, shuffle=False)
    loader.max_bad_fraction = 1.0  # a check lists everything instead of stopping at the first threshold
    for _ in progress(loader, f"decoding {args.split} clips"):
        pass
    stats = loader.stats
    print(f"{stats.delivered} of {len(dataset)} clips usable; {stats.skipped} skipped {stats.failed or ''}; "
          f"{stats.short} shorter than frames x frame_step (rule: {cfg.data.short_clip})")
    for path, reason in stats.bad_files.items():
        print(f"  {reason}: {path}")
    return 1 if stats.skipped else 0


def _cmd_data_bench(args: argparse.Namespace) -> int:
    import json
    import platform
    import time
    from datetime import datetime, timezone

    import torch

    from trainers.data.build import build_dataset, build_loader, resolve_data
    from trainers.data.readers import installed_readers

    cfg = load(args)
    resolved = resolve_data(cfg.data)
    dataset = build_dataset(cfg.data, args.split, train=args.split == "train", resolved=resolved)
    installed = installed_readers()
    reader = cfg.data.reader if cfg.data.reader != "auto" else f"auto: {(installed or ['none'])[0]}"
    print(f"reader {reader} (installed, fastest first: {', '.join(installed) or 'none'})")
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
            "resolution": cfg.data.resolution, "batch_size": args.batch_size, "reader": reader,
            "results": results,
        }
        with open(args.json_out, "w") as handle:
            json.dump(record, handle, indent=2)
    return 0
