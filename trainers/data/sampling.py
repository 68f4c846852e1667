"""Which frames of a video make one clip."""

from __future__ import annotations

from typing import Literal

import numpy as np

ShortClipRule = Literal["pad", "loop"]


def clip_span(frames: int, frame_step: int) -> int:
    """Frames of the source video that one clip covers."""
    return (frames - 1) * frame_step + 1


def frame_indices(
    num_video_frames: int,
    frames: int,
    frame_step: int,
    *,
    random_start: bool,
    rng: np.random.Generator | None = None,
    short_clip: ShortClipRule = "pad",
) -> tuple[np.ndarray, bool]:
    """Indices of `frames` frames `frame_step` apart, and whether the video was too short.

    Training takes a uniformly random start, evaluation the centre. A video shorter than the
    clip span keeps its stride from frame 0 and then either repeats its last frame ("pad",
    V-JEPA's rule: the motion stops) or starts over from frame 0 ("loop": the motion jumps).
    """
    if num_video_frames <= 0:
        raise ValueError("video has no frames")
    span = clip_span(frames, frame_step)
    if num_video_frames >= span:
        slack = num_video_frames - span
        if random_start:
            if rng is None:
                raise ValueError("random_start needs an rng")
            start = int(rng.integers(0, slack + 1))
        else:
            start = slack // 2
        return start + frame_step * np.arange(frames), False
    positions = frame_step * np.arange(frames)
    if short_clip == "loop":
        return positions % num_video_frames, True
    return np.minimum(positions, (num_video_frames - 1) // frame_step * frame_step), True


def eval_clip_indices(
    num_video_frames: int, frames: int, frame_step: int, clips: int, *, short_clip: ShortClipRule = "pad",
) -> list[tuple[np.ndarray, bool]]:
    """The `clips` evaluation clips of a video (V-JEPA's multi-clip evaluation): starts evenly spaced from
    the first frame to the last possible one, so together they cover the video; one clip is the centre
    one. A video shorter than one clip gives `clips` copies of frame_indices' short clip."""
    if clips == 1 or num_video_frames < clip_span(frames, frame_step):
        return [frame_indices(num_video_frames, frames, frame_step, random_start=False, short_clip=short_clip)] * clips
    slack = num_video_frames - clip_span(frames, frame_step)
    starts = np.rint(np.linspace(0, slack, clips)).astype(int)
    return [(start + frame_step * np.arange(frames), False) for start in starts]
