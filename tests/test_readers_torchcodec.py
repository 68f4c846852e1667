"""torchcodec as a video reader beside decord and PyAV, and how `auto` ranks the installed readers.

Tests that decode with torchcodec skip where it is not installed or cannot load FFmpeg's shared
libraries (pip install 'salt-budget[torchcodec]'; apt-get install -y ffmpeg); the ranking and
error tests run everywhere.
"""

from typing import get_args, get_type_hints

import numpy as np
import pytest

from trainers.data import readers
from trainers.data.config import DataConfig
from trainers.data.readers import (
    AUTO_ORDER,
    DecordReader,
    PyAVReader,
    ReaderBackend,
    ReaderNotInstalled,
    TorchCodecReader,
    UnreadableVideo,
    open_video,
)
from trainers.data.sampling import frame_indices
from trainers.data.synthetic import encode_h264, write_mp4

FRAMES = 40
READER_CLASS = {"decord": DecordReader, "pyav": PyAVReader, "torchcodec": TorchCodecReader}


def needs_torchcodec() -> None:
    # pytest.importorskip("torchcodec") is not enough: with torchcodec installed but no FFmpeg
    # libraries, importing it raises RuntimeError, not ImportError.
    problem = readers.torchcodec_problem()
    if problem is not None:
        pytest.skip(f"torchcodec {problem}: pip install 'salt-budget[torchcodec]'; apt-get install -y ffmpeg")


def moving_frames(frames: int = FRAMES, height: int = 48, width: int = 64) -> np.ndarray:
    """A gradient and a square that move, so that every frame differs from its neighbours."""
    yy, xx = np.mgrid[0:height, 0:width]
    out = np.empty((frames, height, width, 3), np.uint8)
    for t in range(frames):
        out[t, ..., 0] = (xx * 4 + t * 6) % 256
        out[t, ..., 1] = (yy * 5 + t * 3) % 256
        out[t, ..., 2] = 60
        out[t, 10:22, (2 + t) % 40:(14 + t) % 40 or None] = 255
    return out


def write_gop_clip(path, frames: np.ndarray, keyframe_every: int, faststart: bool = False) -> None:
    """H.264 with a keyframe every `keyframe_every` frames, so that reading a frame means seeking."""
    options = {"movflags": "+faststart"} if faststart else {}
    encode_h264(path, frames, 25, {"crf": "18", "preset": "veryfast", "threads": "1",
                                   "x264-params": f"keyint={keyframe_every}:min-keyint={keyframe_every}:scenecut=0"},
                {"fflags": "+bitexact", **options})


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("torchcodec")
    gop = folder / "gop.mp4"
    write_gop_clip(gop, moving_frames(), keyframe_every=8)
    plain = folder / "plain.mp4"  # the synthetic set's own writer
    write_mp4(plain, moving_frames(16, 32, 32), fps=8)
    faststart = folder / "faststart.mp4"
    write_gop_clip(faststart, moving_frames(), keyframe_every=8, faststart=True)
    data = faststart.read_bytes()
    truncated = folder / "truncated.mp4"  # index intact at the front, the last 40% of the frames cut off
    truncated.write_bytes(data[: len(data) * 6 // 10])
    garbage = folder / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    return {"gop": str(gop), "plain": str(plain), "truncated": str(truncated), "garbage": str(garbage),
            "missing": str(folder / "missing.mp4")}


@pytest.mark.parametrize("name", ["gop", "plain"])
def test_torchcodec_frames_equal_decord_and_pyav(clips, name):
    needs_torchcodec()
    path = clips[name]
    length = len(PyAVReader(path))
    start, _ = frame_indices(length, 8, 2, random_start=True, rng=np.random.default_rng(1))
    padded, short = frame_indices(length, 16, 4, random_start=False)  # past the end: the last frame repeats
    assert short
    for indices in ([0, 3, 7, 15, 15, 2], list(start), list(padded), list(range(length))):
        reader = open_video(path, "torchcodec")
        assert isinstance(reader, TorchCodecReader) and len(reader) == length == len(DecordReader(path))
        frames = reader.get_frames(indices)
        assert frames.shape == (len(indices), *PyAVReader(path).get_frames([0]).shape[1:])
        assert frames.dtype == np.uint8 and frames.flags["C_CONTIGUOUS"]
        assert np.array_equal(frames, DecordReader(path).get_frames(indices))
        assert np.array_equal(frames, PyAVReader(path).get_frames(indices))
    # The moving content makes a wrong seek visible: neighbouring frames differ.
    assert not np.array_equal(frames[8], frames[9])


def test_torchcodec_approximate_seek_mode_reads_the_same_frames(clips):
    needs_torchcodec()
    indices = [30, 1, 17, 9]
    exact = TorchCodecReader(clips["gop"]).get_frames(indices)
    assert np.array_equal(TorchCodecReader(clips["gop"], seek_mode="approximate").get_frames(indices), exact)


def test_torchcodec_missing_file(clips):
    needs_torchcodec()
    for opening in (lambda p: open_video(p, "torchcodec"), TorchCodecReader):
        with pytest.raises(UnreadableVideo) as caught:
            opening(clips["missing"])
        assert caught.value.reason == "missing" and caught.value.path == clips["missing"]


def test_torchcodec_garbage_is_unreadable_with_ffmpegs_reason(clips):
    needs_torchcodec()
    with pytest.raises(UnreadableVideo) as caught:
        open_video(clips["garbage"], "torchcodec")
    assert caught.value.reason == "unreadable"
    assert "Invalid data" in str(caught.value) and ".cpp:" not in str(caught.value)


def test_torchcodec_truncated_file(clips):
    needs_torchcodec()
    # The packet scan (seek_mode "exact") counts the frames that are really there...
    reader = open_video(clips["truncated"], "torchcodec")
    assert 0 < len(reader) < FRAMES
    assert reader.get_frames([0, 1]).shape[0] == 2
    # ...and the last one, cut in the middle, does not decode.
    with pytest.raises(UnreadableVideo) as caught:
        reader.get_frames(range(len(reader)))
    assert caught.value.reason == "truncated"
    with pytest.raises(UnreadableVideo) as caught:
        open_video(clips["truncated"], "torchcodec").get_frames([FRAMES - 1])
    assert caught.value.reason == "truncated"


def test_cuda_request_decodes_on_cpu_without_a_gpu(clips, monkeypatch):
    needs_torchcodec()
    import torch

    monkeypatch.setattr(readers, "_cuda_decoding_failed", None)
    reader = TorchCodecReader(clips["gop"], decode_device="cuda")
    frames = reader.get_frames([0, 20, 39])
    assert isinstance(frames, np.ndarray) and frames.dtype == np.uint8 and frames.shape == (3, 48, 64, 3)
    cpu = TorchCodecReader(clips["gop"]).get_frames([0, 20, 39])
    if reader.device == "cpu":
        assert np.array_equal(frames, cpu)
    else:  # NVDEC converts colours its own way: close, not equal
        assert torch.cuda.is_available()
        assert np.abs(frames.astype(int) - cpu).mean() < 3


def test_reader_names_agree_with_the_config():
    backends = set(get_args(ReaderBackend)) - {"auto"}
    assert set(AUTO_ORDER) == backends == set(READER_CLASS) == set(readers.INSTALL_HINT)
    assert set(get_args(get_type_hints(DataConfig)["reader"])) == backends | {"auto"}


def test_auto_picks_the_first_installed_reader_of_the_ranking(clips, monkeypatch):
    installed = readers.installed_readers()
    assert installed == [name for name in AUTO_ORDER if readers.reader_available(name)]
    assert isinstance(open_video(clips["plain"]), READER_CLASS[installed[0]])
    # Without the first one, the next; and the ranking is what decides.
    monkeypatch.setattr(readers, f"{installed[0]}_available", lambda: False)
    if len(installed) > 1:
        assert isinstance(open_video(clips["plain"]), READER_CLASS[installed[1]])
    monkeypatch.undo()
    monkeypatch.setattr(readers, "AUTO_ORDER", ("pyav", *[name for name in AUTO_ORDER if name != "pyav"]))
    assert isinstance(open_video(clips["plain"]), PyAVReader)


def test_auto_hands_a_refused_file_to_the_next_reader(clips, monkeypatch):
    class Refuses:
        def __init__(self, path, *args, **kwargs):
            raise RuntimeError("cannot open this one")

    monkeypatch.setattr(readers, "torchcodec_available", lambda: True)
    monkeypatch.setattr(readers, "AUTO_ORDER", ("torchcodec", "decord", "pyav"))
    monkeypatch.setattr(readers, "TorchCodecReader", Refuses)
    assert isinstance(open_video(clips["plain"]), DecordReader)
    monkeypatch.setattr(readers, "DecordReader", Refuses)
    assert isinstance(open_video(clips["plain"]), PyAVReader)
    # All refuse: unreadable, with the first reader's reason.
    monkeypatch.setattr(readers, "PyAVReader", Refuses)
    with pytest.raises(UnreadableVideo) as caught:
        open_video(clips["plain"])
    assert caught.value.reason == "unreadable" and "cannot open this one" in str(caught.value)
    # A missing file is missing, whichever reader would have opened it.
    with pytest.raises(UnreadableVideo) as caught:
        open_video(clips["missing"])
    assert caught.value.reason == "missing"


def test_explicit_reader_that_is_not_installed_says_how_to_install_it(clips, monkeypatch):
    monkeypatch.setattr(readers, "torchcodec_available", lambda: False)
    with pytest.raises(ReaderNotInstalled, match=r"pip install 'salt-budget\[torchcodec\]'.*apt-get install -y ffmpeg"):
        open_video(clips["plain"], "torchcodec")
    monkeypatch.setattr(readers, "decord_available", lambda: False)
    with pytest.raises(ReaderNotInstalled, match="pip install decord"):
        open_video(clips["missing"], "decord")  # a configuration error comes before the missing file
    # `auto` quietly goes on to what is installed.
    assert isinstance(open_video(clips["plain"]), PyAVReader)
    monkeypatch.setattr(readers, "pyav_available", lambda: False)
    with pytest.raises(ReaderNotInstalled, match="no video reader is installed"):
        open_video(clips["plain"])


def test_data_decode_device_reaches_the_reader(clips, monkeypatch):
    from trainers.data import dataset
    from trainers.data.build import clip_spec
    from trainers.data.clip_list import ClipEntry

    opened = []

    def recording_open_video(path, backend, threads, decode_device):
        opened.append((backend, decode_device))
        return open_video(path, "pyav", threads)

    monkeypatch.setattr(dataset, "open_video", recording_open_video)
    spec = clip_spec(DataConfig(reader="torchcodec", decode_device="cuda", frames=4, resolution=16), train=False)
    item = dataset.VideoClipDataset([ClipEntry(clips["plain"], (), 1)], [], spec).load(0, np.random.default_rng(0))
    assert opened == [("torchcodec", "cuda")] and tuple(item["video"].shape) == (3, 4, 16, 16)
    with pytest.raises(ValueError, match="decode_device must be 'cpu' or 'cuda'"):
        DataConfig(decode_device="gpu").validate()
