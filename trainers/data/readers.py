"""Video decoding behind one small interface: decord first, PyAV where decord cannot.

decord seeks and decodes only the requested frames, which is what makes it fast on long
videos; PyAV stands in when decord is not installed or refuses a file that FFmpeg itself can
read. Both return RGB uint8 arrays of shape (T, H, W, 3).
"""

from __future__ import annotations

import os
from typing import Literal, Protocol, Sequence

import numpy as np

ReaderBackend = Literal["auto", "decord", "pyav"]


class UnreadableVideo(Exception):
    """A clip that cannot be decoded. `reason` is one of: missing, unreadable, truncated."""

    def __init__(self, path: str, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {path}" + (f" ({detail})" if detail else ""))
        self.path = path
        self.reason = reason


class VideoReader(Protocol):
    def __len__(self) -> int: ...

    def get_frames(self, indices: Sequence[int]) -> np.ndarray: ...


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:160] if text else type(error).__name__


class DecordReader:
    def __init__(self, path: str, num_threads: int = 1):
        import decord

        # FFmpeg's own complaints about a broken file would flood the log; UnreadableVideo reports it once.
        decord.logging.set_level(decord.logging.QUIET)
        self.path = path
        # Decoding threads are set by the caller: one per DataLoader worker keeps cores from oversubscribing.
        self._reader = decord.VideoReader(path, num_threads=num_threads, ctx=decord.cpu(0))

    def __len__(self) -> int:
        return len(self._reader)

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        try:
            return self._reader.get_batch(list(indices)).asnumpy()
        except Exception as error:  # decord raises DECORDError or RuntimeError mid-stream
            raise UnreadableVideo(self.path, "truncated", _short(error)) from error


class PyAVReader:
    """Decodes the stream up to the last requested frame; fine for the short clips it stands in for."""

    def __init__(self, path: str, num_threads: int = 1):
        import av

        self.path = path
        self._container = av.open(path)
        if not self._container.streams.video:
            self._container.close()
            raise UnreadableVideo(path, "unreadable", "no video stream")
        stream = self._container.streams.video[0]
        stream.thread_count = num_threads
        self._frames = int(stream.frames or 0)
        self._decoded: list[np.ndarray] = []
        self._stream_frames = self._container.decode(video=0)
        if self._frames <= 0:  # containers without a frame count: decode to find out
            self._decode_until(None)
            self._frames = len(self._decoded)

    def _decode_until(self, last: int | None) -> None:
        if last is not None and last < len(self._decoded):
            return
        try:
            for frame in self._stream_frames:
                self._decoded.append(frame.to_ndarray(format="rgb24"))
                if last is not None and len(self._decoded) > last:
                    return
        except Exception as error:
            raise UnreadableVideo(self.path, "truncated", _short(error)) from error

    def __len__(self) -> int:
        return self._frames

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        indices = list(indices)
        self._decode_until(max(indices))
        if max(indices) >= len(self._decoded):
            raise UnreadableVideo(
                self.path, "truncated", f"{len(self._decoded)} frames decodable, index {max(indices)} requested"
            )
        return np.stack([self._decoded[i] for i in indices])


def decord_available() -> bool:
    try:
        import decord  # noqa: F401
    except ImportError:
        return False
    return True


def open_video(path: str, backend: ReaderBackend = "auto", num_threads: int = 1) -> VideoReader:
    """Open a clip, or raise UnreadableVideo saying why it cannot be used."""
    if not os.path.isfile(path):
        raise UnreadableVideo(path, "missing")
    if backend == "decord" or (backend == "auto" and decord_available()):
        try:
            return DecordReader(path, num_threads)
        except Exception as error:
            if backend == "decord":
                raise UnreadableVideo(path, "unreadable", _short(error)) from error
            first_error = error
    else:
        first_error = None
    try:
        return PyAVReader(path, num_threads)
    except UnreadableVideo:
        raise
    except Exception as error:
        detail = _short(first_error or error)
        raise UnreadableVideo(path, "unreadable", detail) from error
