"""Clips/s of the video readers (decord, PyAV, torchcodec) through the project's clip reading path.

    python benchmarks/reader_speed.py [--sizes 224 64] [--videos 6] [--clips 30] [--repeats 5]

One clip is what VideoClipDataset.load does before cropping: open_video(path, reader, 1), then
frame_indices(len(reader), 16, 2, random_start=True) and get_frames(indices), i.e. 16 frames two
apart from a random start. Every reader reads the same clips (one seeded rng per repeat), with
one decoding thread (the pipeline's data.decode_threads default: one per DataLoader worker), in
one process. The readers take turns clip by clip, so that load from elsewhere on the machine hits
them alike; the table gives the medians over repeats of clips/s (wall time) and of CPU time per
clip (all threads of the process).

The videos are generated here, K400-like: 10 s at 30 fps (300 frames), 16:9 with the given short
side, H.264 (libx264 veryfast, crf 23, yuv420p) with x264's default GOP (keyframe interval 250,
scene-cut detection on), as a plain ffmpeg re-encode of a trimmed clip gives. The picture is a
textured background panning under moving shapes with a little noise, so that the bit rate is that
of camera footage rather than of a flat test pattern. They are cached in --work-dir.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from trainers.data.readers import (
    AUTO_ORDER,
    TorchCodecReader,
    open_video,
    reader_available,
)
from trainers.data.sampling import frame_indices
from trainers.data.synthetic import encode_h264


def width_of(size: int) -> int:
    """16:9 with short side `size`, rounded to even (H.264 4:2:0)."""
    return round(size * 16 / 9 / 2) * 2


def render(size: int, seconds: float, fps: int, seed: int) -> np.ndarray:
    """(T, H, W, 3) uint8: short side `size`, 16:9."""
    height, width = size, width_of(size)
    rng = np.random.default_rng(seed)
    frames = round(seconds * fps)
    big = rng.random((height * 2, width * 2, 3)).astype(np.float32)
    # Smooth texture: noise box-blurred at three scales.
    texture = np.zeros_like(big)
    for k in (2, 5, 11):
        kernel = np.ones(k, np.float32) / k
        blurred = np.apply_along_axis(lambda row, kern=kernel: np.convolve(row, kern, "same"), 0, big)
        blurred = np.apply_along_axis(lambda col, kern=kernel: np.convolve(col, kern, "same"), 1, blurred)
        texture += blurred
    texture = (texture - texture.min()) / (np.ptp(texture) + 1e-6) * 200 + 20
    yy, xx = np.mgrid[0:height, 0:width]
    out = np.empty((frames, height, width, 3), np.uint8)
    shapes = rng.random((4, 5))  # x, y, vx, vy, colour seed
    for t in range(frames):
        dy = int(height / 2 * (1 + np.sin(2 * np.pi * t / (fps * 7))))
        dx = int(t * width / (seconds * fps))
        frame = texture[dy:dy + height, dx:dx + width].copy()
        for x, y, vx, vy, colour in shapes:
            cx = (x + (vx - 0.5) * t / fps * 0.3) % 1 * width
            cy = (y + (vy - 0.5) * t / fps * 0.3) % 1 * height
            mask = (xx - cx) ** 2 + (yy - cy) ** 2 < (height / 6) ** 2
            frame[mask] = np.array([255 * colour, 255 * (1 - colour), 128], np.float32)
        frame += rng.normal(0, 3, frame.shape).astype(np.float32)
        out[t] = np.clip(frame, 0, 255).astype(np.uint8)
    return out


def write_h264(path: Path, frames: np.ndarray, fps: int) -> None:
    encode_h264(path, frames, fps, {"crf": "23", "preset": "veryfast"})


def make_videos(work_dir: Path, size: int, count: int, seconds: float, fps: int) -> list[Path]:
    folder = work_dir / f"{size}px_{seconds:g}s_{fps}fps"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = folder / f"clip{index:02d}.mp4"
        if not path.exists():
            partial = path.with_suffix(".part.mp4")
            write_h264(partial, render(size, seconds, fps, seed=1000 * size + index), fps)
            partial.rename(path)
        paths.append(path)
    return paths


def read_clip(reader_name: str, path: Path, frames: int, frame_step: int, rng: np.random.Generator) -> np.ndarray:
    if reader_name == "torchcodec (approximate)":
        reader = TorchCodecReader(str(path), 1, seek_mode="approximate")
    else:
        reader = open_video(str(path), reader_name, 1)
    indices, _ = frame_indices(len(reader), frames, frame_step, random_start=True, rng=rng)
    return reader.get_frames(indices)


def measure(readers: list[str], paths: list[Path], clips: int, frames: int, frame_step: int,
            repeat: int) -> dict[str, tuple[float, float]]:
    """reader -> (clips/s of wall time, CPU ms per clip) over `clips` clips. The readers take turns
    clip by clip (in a rotating order), and read the same frames: clip i's start comes from its own
    seed, so load from outside this process hits every reader alike."""
    wall = dict.fromkeys(readers, 0.0)
    cpu = dict.fromkeys(readers, 0.0)
    for index in range(clips):
        turn = readers[index % len(readers):] + readers[:index % len(readers)]
        for name in turn:
            rng = np.random.default_rng([repeat, index])
            start, start_cpu = time.perf_counter(), time.process_time()
            clip = read_clip(name, paths[index % len(paths)], frames, frame_step, rng)
            wall[name] += time.perf_counter() - start
            cpu[name] += time.process_time() - start_cpu
            assert clip.shape[0] == frames and clip.dtype == np.uint8
    return {name: (clips / wall[name], 1000 * cpu[name] / clips) for name in readers}


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 64], help="short side of the videos, px")
    parser.add_argument("--videos", type=int, default=6, help="videos per size")
    parser.add_argument("--clips", type=int, default=30, help="clips read per reader per repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--frame-step", type=int, default=2)
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/salt-budget-reader-speed"))
    parser.add_argument("--readers", nargs="+", default=None,
                        help="default: every installed reader, plus torchcodec with seek_mode=approximate")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)  # torchcodec hands back torch tensors; keep torch's own threads out of it
    readers = args.readers or [name for name in ("decord", "pyav", "torchcodec") if reader_available(name)]
    if args.readers is None and "torchcodec" in readers:
        readers.append("torchcodec (approximate)")
    print(f"readers: {', '.join(readers)}; auto order: {', '.join(AUTO_ORDER)}", file=sys.stderr)

    results: dict[tuple[str, int], list[float]] = {}
    for size in args.sizes:
        start = time.perf_counter()
        paths = make_videos(args.work_dir, size, args.videos, args.seconds, args.fps)
        print(f"{size} px: {len(paths)} videos ready in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        # Same frames from every reader (and a warm-up: file cache, libraries loaded).
        reference = None
        for name in readers:
            clip = read_clip(name, paths[0], args.frames, args.frame_step, np.random.default_rng(7))
            if reference is None:
                reference = clip
            elif not np.array_equal(clip, reference):
                diff = np.abs(clip.astype(int) - reference).max()
                print(f"  warning: {name} frames differ from {readers[0]}'s (max |diff| {diff})", file=sys.stderr)
        for repeat in range(args.repeats):
            for name, (rate, cpu_ms) in measure(readers, paths, args.clips, args.frames, args.frame_step,
                                                repeat).items():
                results.setdefault((name, size), []).append((rate, cpu_ms))
                print(f"  {size} px repeat {repeat}: {name} {rate:.1f} clips/s, {cpu_ms:.1f} CPU ms/clip",
                      file=sys.stderr)

    print(f"{platform.machine()}, {torch.get_num_threads()} torch thread, Python {platform.python_version()}, "
          f"torch {torch.__version__}, decord {package_version('decord')}, PyAV {package_version('av')}, "
          f"torchcodec {package_version('torchcodec')}")
    print(f"{args.videos} videos per size, {args.seconds:g} s at {args.fps} fps; {args.clips} clips of "
          f"{args.frames} frames at step {args.frame_step} per repeat; median of {args.repeats} repeats\n")
    print("| reader | resolution | clips/s (median) | CPU ms/clip (median) | clips/s of each repeat |")
    print("| --- | --- | ---: | ---: | --- |")
    for size in args.sizes:
        for name in readers:
            rates = [rate for rate, _ in results[(name, size)]]
            cpu_ms = statistics.median(ms for _, ms in results[(name, size)])
            print(f"| {name} | {width_of(size)}x{size} | {statistics.median(rates):.1f} | {cpu_ms:.1f} | "
                  f"{', '.join(f'{r:.1f}' for r in rates)} |")

if __name__ == "__main__":
    main()
