"""`salt-budget data`: the embedded synthetic set, data checks and the loader's speed."""

from __future__ import annotations

import argparse

from salt_budget.commands.common import add_experiment_args, load, progress
from trainers.data.clip_list import ClipListError


def add_parser(commands) -> None:
    """data synth | prepare | check | bench"""
    from trainers.data.config import SyntheticConfig

    data = commands.add_parser("data", help="video data: the embedded synthetic set, checks, loader speed")
    data_commands = data.add_subparsers(dest="data_command", required=True)

    synth = data_commands.add_parser(
        "synth", help="write the embedded synthetic data set (H.264 MP4 + train/val lists)",
        description="Write the synthetic data set: MP4 clips, train.csv and val.csv "
        "(path, appearance label, motion label) and meta.json with the class names.",
    )
    synth.add_argument("--out", required=True, help="output folder (new or empty)")
    defaults = SyntheticConfig()
    synth.add_argument("--train", type=int, help=f"training clips (default: {defaults.train})")
    synth.add_argument("--val", type=int, help=f"validation clips (default: {defaults.val})")
    synth.add_argument("--frames", type=int, help=f"frames per clip (default: {defaults.frames})")
    synth.add_argument("--size", type=int, help=f"frame side in pixels, even (default: {defaults.size})")
    synth.add_argument("--seed", type=int, help=f"generator seed (default: {defaults.seed})")
    # --workers was this flag's first name; elsewhere it counts DataLoader workers, as data.workers does.
    synth.add_argument("--processes", "--workers", dest="processes", type=int, default=None,
                       help="generating processes (default: all cores)")
    synth.add_argument(
        "overrides", nargs="*", metavar="key.path=value",
        help="further SyntheticConfig fields, e.g. scene.noise_std=8 crf=23",
    )
    synth.set_defaults(handler=_cmd_data_synth)

    prepare = data_commands.add_parser(
        "prepare", help="make an experiment's data ready: generate the embedded set, read every list",
        description="Generate the embedded synthetic set into the cache if the experiment uses it, then read every "
        "clip list the experiment names (data.pretrain or the train list, and the train and val lists of each "
        "probe task), check each line's format and labels against the class counts, and stat a sample of each "
        "list's clips. A wrong path or label fails in seconds, with the list's file:line.",
    )
    add_experiment_args(prepare)
    prepare.set_defaults(handler=_cmd_data_prepare)

    check = data_commands.add_parser(
        "check", help="decode every clip of every list once; list the ones that cannot be used",
        description="Decode every clip of every list the experiment reads (pre-training lists and each probe task's "
        "train and val lists) once, as evaluation reads it, and report per list the clips that cannot be used "
        "(missing, unreadable, too short). Exit status 1 when any clip is unusable.",
    )
    add_experiment_args(check)
    check.add_argument("--only", default=None, metavar="WORDS",
                       help="check only the lists whose role contains WORDS, e.g. 'pre-training' or 'k400' "
                            "(default: every list)")
    check.set_defaults(handler=_cmd_data_check)

    bench = data_commands.add_parser(
        "bench", help="measure the clip loader's throughput (clips/s)",
        description="Time the loader that feeds training (the pre-training mixture with its weights and training "
        "augmentation) or a probe split, at each DataLoader worker count, after one warm-up batch.",
    )
    add_experiment_args(bench)
    bench.add_argument("--workers", type=int, nargs="+", default=[0, 2],
                       help="DataLoader worker counts to time (data.workers is one of them) (default: 0 2)")
    bench.add_argument("--batch-size", type=int, default=8, help="clips per batch (default: 8)")
    bench.add_argument("--batches", type=int, default=16,
                       help="timed batches per setting, after one warm-up batch (default: 16)")
    bench.add_argument("--split", choices=["pretrain", "train", "val"], default="pretrain",
                       help="pretrain: the pre-training loader (mixture, training augmentation); train / val: the "
                            "first probe set's list (the data section's, or the first of probe.tasks), as evaluation "
                            "reads it (default: pretrain)")
    bench.add_argument("--json", dest="json_out", default=None, metavar="FILE",
                       help="also write the results to this JSON file (default: none)")
    bench.set_defaults(handler=_cmd_data_bench)


def _cmd_data_synth(args: argparse.Namespace) -> int:
    from trainers.config import from_dict, to_dict
    from trainers.config_files import merge, parse_overrides
    from trainers.data.config import SyntheticConfig
    from trainers.data.synthetic import generate_synthetic

    flags = {key: getattr(args, key) for key in ("train", "val", "frames", "size", "seed")}
    data = merge(to_dict(SyntheticConfig()), {k: v for k, v in flags.items() if v is not None})
    cfg = from_dict(SyntheticConfig, merge(data, parse_overrides(args.overrides)), source="salt-budget data synth")
    summary = generate_synthetic(cfg, args.out, workers=args.processes)
    print(
        f"wrote {summary.clips} clips ({cfg.train} train, {cfg.val} val; {cfg.frames} frames of "
        f"{cfg.size}x{cfg.size}) to {summary.out} in {summary.seconds:.1f} s = {summary.clips_per_second:.1f} clips/s"
    )
    print(f"lists: {summary.out / 'train.csv'}, {summary.out / 'val.csv'}; classes in {summary.out / 'meta.json'}")
    return 0


def _cmd_data_prepare(args: argparse.Namespace) -> int:
    from trainers.data_lists import check_clips_exist, clip_sets, describe

    cfg = load(args)
    sets = clip_sets(cfg.data, cfg.probe)
    for line in [*describe(sets), *check_clips_exist(sets)]:
        print(line)
    return 0


def _cmd_data_check(args: argparse.Namespace) -> int:
    from trainers.data.build import build_loader
    from trainers.data_lists import clip_sets

    cfg = load(args)
    sets = [s for s in clip_sets(cfg.data, cfg.probe) if args.only is None or args.only in s.role]
    if not sets:
        raise ClipListError(f"--only {args.only!r} matches no list; the lists: "
                            f"{'; '.join(s.role for s in clip_sets(cfg.data, cfg.probe))}")
    unusable, decoded = 0, {}
    for clip_set in sets:
        if clip_set.path in decoded:  # pre-training on the train list: one decode tells for both roles
            print(f"{clip_set.role} ({clip_set.path}): the same list as {decoded[clip_set.path]}, checked above")
            continue
        decoded[clip_set.path] = clip_set.role
        dataset = clip_set.dataset()
        loader = build_loader(cfg.data, dataset, batch_size=16, shuffle=False)
        loader.max_bad_fraction = 1.0  # a check lists everything instead of stopping at the first threshold
        for _ in progress(loader, f"decoding {clip_set.role}"):
            pass
        stats = loader.stats
        unusable += stats.skipped
        print(f"{clip_set.role} ({clip_set.path}): {stats.delivered} of {len(dataset)} clips usable"
              + (f"; {stats.skipped} unusable" if stats.skipped else "")
              + f"; {stats.short} shorter than frames x frame_step (rule: {cfg.data.short_clip})")
        lines = {entry.path: entry.line for entry in clip_set.entries or []}
        for path, reason in stats.bad_files.items():
            print(f"  {clip_set.path}:{lines.get(path, '?')}: {reason}: {path}")
    print(f"{unusable} unusable clip(s) in {len(sets)} list(s)" if unusable else f"every clip of {len(sets)} list(s) usable")
    return 1 if unusable else 0


def _cmd_data_bench(args: argparse.Namespace) -> int:
    import json
    import platform
    import time
    from datetime import datetime, timezone

    import torch

    from trainers.data.build import build_loader, build_pretrain_dataset
    from trainers.data.readers import installed_readers
    from trainers.data_lists import clip_sets

    cfg = load(args)
    sets = clip_sets(cfg.data, cfg.probe)  # every list read first: a broken one fails here, as in every data command
    weights = None
    if args.split == "pretrain":
        dataset, weights = build_pretrain_dataset(cfg.data)
    else:  # the first probe set's list of that split (the data section's, or the first of probe.tasks)
        dataset = next(s for s in sets if s.role.startswith("probe") and s.role.endswith(f", {args.split}")).dataset()
    installed = installed_readers()
    reader = cfg.data.reader if cfg.data.reader != "auto" else f"auto: {(installed or ['none'])[0]}"
    print(f"reader {reader} (installed, fastest first: {', '.join(installed) or 'none'})")
    needed = (args.batches + 1) * args.batch_size
    if len(dataset) < needed:
        dataset.entries = (dataset.entries * (needed // len(dataset) + 1))[:needed]
    results = []
    for workers in args.workers:
        loader = build_loader(cfg.data, dataset, batch_size=args.batch_size, shuffle=True, workers=workers,
                              weights=None if weights is None else _repeat(weights, len(dataset)))
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
              f"({cfg.data.frames} frames x {cfg.data.resolution}px, "
              f"{'training augmentation' if args.split == 'pretrain' else 'evaluation crop'})")
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


def _repeat(weights, size: int):
    """Draw probabilities for a dataset whose entries were repeated to `size` (a list shorter than the timed
    batches), renormalised: each repeat keeps its list's share."""
    import numpy as np

    repeated = np.resize(weights, size)
    return repeated / repeated.sum()
