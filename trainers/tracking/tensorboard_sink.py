"""TensorBoard: one log directory per unit, <folder>/tensorboard/<kind>/<name>. Each process that trains or probes
the unit adds an event file there; TensorBoard reads a directory's files as one run."""

from __future__ import annotations

import struct
from pathlib import Path

import yaml

from trainers.tracking.spec import TrackingSpec


def _png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's header: an image summary carries the encoded file, so nothing decodes it."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    return struct.unpack(">II", data[16:24])


class TensorBoardSink:
    def __init__(self, spec: TrackingSpec, start_step: int | None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        log_dir = spec.tensorboard_dir
        fresh = not any(log_dir.glob("events.out.tfevents.*"))
        # purge_step: a resumed run drops what the unit logged past its checkpoint before a crash, as metrics.jsonl
        # is truncated, so that no step shows twice.
        self.writer = SummaryWriter(str(log_dir), purge_step=None if start_step is None else start_step + 1)
        if fresh:  # tags and config once per unit, not again by every process that continues it
            self.add_text("tags", yaml.safe_dump(spec.tags, sort_keys=False))
            self.add_text("config", yaml.safe_dump(spec.config, sort_keys=False))

    def log(self, metrics: dict[str, float], step: int) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(name, value, step)
        self.writer.flush()  # a run is watched while it trains

    def add_text(self, name: str, text: str) -> None:
        # Four spaces: TensorBoard renders text as markdown, and YAML or a table of numbers must keep its lines.
        self.writer.add_text(name, "\n".join(f"    {line}" for line in text.splitlines()), 0)

    def add_file(self, path: Path) -> None:
        """A PNG as an image; any other file by its path (TensorBoard shows no HTML or tables)."""
        path = Path(path)
        if path.suffix.lower() != ".png":
            self.writer.add_text(f"files/{path.name}", str(path.resolve()), 0)
            return
        from tensorboard.compat.proto.summary_pb2 import Summary

        data = path.read_bytes()
        width, height = _png_size(data)
        image = Summary.Image(height=height, width=width, colorspace=4, encoded_image_string=data)
        self.writer._get_file_writer().add_summary(Summary(value=[Summary.Value(tag=f"figures/{path.stem}",
                                                                                image=image)]), 0)

    def close(self, failed: bool = False) -> None:
        self.writer.close()
