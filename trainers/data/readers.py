"""Video decoding behind one small interface: torchcodec, decord or PyAV.

torchcodec and decord seek and decode only the requested frames, which is what makes them fast
on long videos; PyAV decodes from the start of the stream and stands in when neither is installed
or both refuse a file that FFmpeg itself can read. `auto` tries the installed readers fastest
first (AUTO_ORDER); torchcodec is optional (the `torchcodec` extra, plus FFmpeg's shared
libraries). All return RGB uint8 arrays of shape (T, H, W, 3) on the CPU.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Sequence
from typing import Literal, Protocol

import numpy as np

log = logging.getLogger("salt_budget.data")

ReaderBackend = Literal["auto", "decord", "pyav", "torchcodec"]

# The order in which `auto` tries the installed readers, fastest first, as measured in
# benchmarks/readers.md (benchmarks/reader_speed.py: clips of 16 frames at step 2 from 10 s H.264
# videos, one decoding thread, 2 CPU cores, 2026-12-03): torchcodec 13.6 and 55.3 clips/s at 224 and
# 64 px, decord 12.2 and 43.2, PyAV 5.6 and 11.5. torchcodec and decord return the same frames; a
# reader that refuses a file hands it to the next one.
AUTO_ORDER: tuple[str, ...] = ("torchcodec", "decord", "pyav")

# What to run when an explicitly chosen reader is not installed.
INSTALL_HINT = {
    "decord": "pip install decord",
    "pyav": "pip install av",
    "torchcodec": (
        "pip install 'salt-budget[torchcodec]' (the CPU wheels torchcodec>=0.12,<0.14 match torch 2.13+cpu), "
        "and FFmpeg's shared libraries (versions 4-8): apt-get install -y ffmpeg"
    ),
}


class UnreadableVideo(Exception):
    """A clip that cannot be decoded. `reason` is one of: missing, unreadable, truncated."""

    def __init__(self, path: str, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {path}" + (f" ({detail})" if detail else ""))
        self.path = path
        self.reason = reason


class ReaderNotInstalled(ImportError):
    """An explicitly chosen reader cannot be imported; the message says how to install it."""


class VideoReader(Protocol):
    def __len__(self) -> int: ...

    def get_frames(self, indices: Sequence[int]) -> np.ndarray: ...


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    if not text:
        return type(error).__name__
    # torchcodec prefixes its messages with the C++ function and source line: "Fn, /path/File.cpp:52, message".
    return re.sub(r"^\w+, \S+\.cpp:\d+, ", "", text[0])[:160]


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


# Set once CUDA decoding has failed in this process, so that later clips go straight to the CPU.
_cuda_decoding_failed: str | None = None


class TorchCodecReader:
    """torchcodec's VideoDecoder: seeks to the keyframe before each requested frame, like decord.

    seek_mode "exact" (torchcodec's default) scans the file's packets on opening, so that index i is
    frame i, and the length is the number of frames actually in the file (a truncated file is
    shorter), as decord's index does; "approximate" trusts the container's header instead.

    decode_device "cuda" decodes on the GPU (NVDEC) where torch sees one and this torchcodec build
    supports it, and otherwise on the CPU (logged once). Either way the frames come back as a CPU
    numpy array: the data pipeline crops and resizes on the CPU, and copying 16 decoded frames back
    (about 4 MB at 224 px) costs far less than decoding them. What CUDA decoding buys is CPU time
    taken off the DataLoader workers. CUDA cannot be initialised in DataLoader workers started by
    fork; there the first clip falls back to the CPU, with the reason in the log.
    """

    def __init__(self, path: str, num_threads: int = 1, decode_device: str = "cpu",
                 seek_mode: Literal["exact", "approximate"] = "exact"):
        from torchcodec.decoders import VideoDecoder

        global _cuda_decoding_failed
        self.path = path
        if not os.path.isfile(path):
            raise UnreadableVideo(path, "missing")
        options = {"dimension_order": "NHWC", "num_ffmpeg_threads": num_threads, "seek_mode": seek_mode}
        self.device = "cpu"
        if str(decode_device).startswith("cuda") and _cuda_decoding_failed is None:
            import torch

            if torch.cuda.is_available():
                try:
                    self._decoder = VideoDecoder(path, device=decode_device, **options)
                    self.device = str(decode_device)
                except Exception as error:  # noqa: BLE001  a CPU-only torchcodec wheel, no NVDEC, or CUDA in a forked worker
                    _cuda_decoding_failed = _short(error)
            else:
                _cuda_decoding_failed = "torch.cuda.is_available() is False"
            if self.device == "cpu":
                log.warning("torchcodec: CUDA decoding unavailable (%s); decoding on the CPU", _cuda_decoding_failed)
        if self.device == "cpu":
            try:
                self._decoder = VideoDecoder(path, device="cpu", **options)
            except Exception as error:  # RuntimeError from FFmpeg, ValueError without a video stream
                raise UnreadableVideo(path, "unreadable", _short(error)) from error
        self._frames = len(self._decoder)

    def __len__(self) -> int:
        return self._frames

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        indices = [int(i) for i in indices]
        try:
            frames = self._decoder.get_frames_at(indices).data  # (T, H, W, 3) uint8, in the order asked
        except Exception as error:  # RuntimeError mid-stream, IndexError past the frames the file holds
            raise UnreadableVideo(self.path, "truncated", _short(error)) from error
        return np.ascontiguousarray(frames.cpu().numpy())


def decord_available() -> bool:
    try:
        import decord  # noqa: F401
    except ImportError:
        return False
    return True


def pyav_available() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


@functools.cache
def torchcodec_problem() -> str | None:
    """Why torchcodec cannot decode here (None: it can). Cached: a failed import retries every FFmpeg
    version's library each time, too slow to repeat per clip."""
    try:
        import torchcodec.decoders  # noqa: F401  loads FFmpeg's shared libraries
    except ImportError as error:
        return f"not installed ({_short(error)})"
    except Exception as error:  # noqa: BLE001  RuntimeError/OSError: no FFmpeg 4-8 libraries, or a wheel for another torch
        return f"installed but cannot load FFmpeg or its own libraries ({_short(error)})"
    return None


def torchcodec_available() -> bool:
    return torchcodec_problem() is None


def reader_available(backend: str) -> bool:
    if backend == "decord":
        return decord_available()
    if backend == "pyav":
        return pyav_available()
    if backend == "torchcodec":
        return torchcodec_available()
    raise ValueError(f"unknown video reader {backend!r}; expected one of auto, {', '.join(INSTALL_HINT)}")


def installed_readers() -> list[str]:
    """The readers `auto` would try, in its order."""
    return [backend for backend in AUTO_ORDER if reader_available(backend)]


def _require(backend: str) -> None:
    if reader_available(backend):
        return
    why = (torchcodec_problem() if backend == "torchcodec" else None) or "not installed"
    raise ReaderNotInstalled(f"data.reader={backend}: {backend} is {why}; install it with: {INSTALL_HINT[backend]}")


def _construct(backend: str, path: str, num_threads: int, decode_device: str) -> VideoReader:
    if backend == "decord":
        return DecordReader(path, num_threads)
    if backend == "pyav":
        return PyAVReader(path, num_threads)
    return TorchCodecReader(path, num_threads, decode_device)


def open_video(path: str, backend: ReaderBackend = "auto", num_threads: int = 1,
               decode_device: str = "cpu") -> VideoReader:
    """Open a clip, or raise UnreadableVideo saying why it cannot be used.

    `decode_device` applies to torchcodec only ("cuda": GPU decoding where available, see
    TorchCodecReader). An explicit backend that is not installed raises ReaderNotInstalled."""
    if backend == "auto":
        order = installed_readers()
        if not order:
            raise ReaderNotInstalled(
                "no video reader is installed; install one of: " + "; ".join(INSTALL_HINT[b] for b in AUTO_ORDER)
            )
    else:
        _require(backend)
        order = [backend]
    if not os.path.isfile(path):
        raise UnreadableVideo(path, "missing")
    first_error: BaseException | None = None
    for name in order:
        try:
            return _construct(name, path, num_threads, decode_device)
        except Exception as error:  # noqa: BLE001  this reader refuses the file: the next one may take it
            first_error = first_error or error
            last_error = error
    if isinstance(last_error, UnreadableVideo):
        raise last_error
    raise UnreadableVideo(path, "unreadable", _short(first_error)) from last_error
