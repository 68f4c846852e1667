"""Data-parallel training (trainers/distributed.py): two gloo processes on the CPU train as one process
with two micro-batches per step, the sampler's shards, and the refusals."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from trainers.checkpoint import load_checkpoint
from trainers.config import ConfigError
from trainers.data.config import DataConfig, SyntheticConfig
from trainers.data.dataset import ClipSampler
from trainers.train import train_teacher


def micro_data(cache: str) -> DataConfig:
    return DataConfig(cache_dir=cache, synthetic=SyntheticConfig(train=24, val=12, frames=8, size=32),
                      frames=4, frame_step=2, resolution=32, workers=0)


def _train_as_rank(rank: int, world: int, rendezvous: str, run_dir: str, cache: str, steps: int, micro_batch) -> None:
    from tests.test_training import micro_teacher

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    # A group started by the caller is used as it is; a file rendezvous needs no free port.
    torch.distributed.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world)
    train_teacher(micro_teacher(steps=steps, micro_batch=micro_batch), micro_data(cache), Path(run_dir), seed=0,
                  progress=False)
    torch.distributed.destroy_process_group()


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


# Micro-batches within each process (2 passes of 1 clip) are tested through Ray Train (tests/test_scale_out.py).
@pytest.mark.parametrize(("per_process", "alone"), [(None, 2)])
def test_two_processes_train_as_one_in_micro_batches(tmp_path, per_process, alone):
    """Batch 4 over two processes (2 clips each, in one pass) against one process in passes of 2: the same
    clips and masks per step, so the same losses and weights up to the order of sums."""
    from tests.test_training import micro_teacher

    cache = str(tmp_path / "cache")
    single = train_teacher(micro_teacher(steps=7, micro_batch=alone), micro_data(cache), tmp_path / "single", seed=0,
                           progress=False)
    # 7 steps of 4 clips cross the 24-clip epoch: both shard the next epoch the same way.
    mp.spawn(_train_as_rank, args=(2, str(tmp_path / "rendezvous"), str(tmp_path / "ranks"), cache, 7, per_process),
             nprocs=2, join=True)
    ours, theirs = _rows(tmp_path / "ranks"), _rows(tmp_path / "single")
    assert [row["step"] for row in ours] == list(range(1, 8))  # one process wrote the metrics
    assert [row["loss"] for row in ours] == pytest.approx([row["loss"] for row in theirs], rel=1e-5)
    assert [row["flops"] for row in ours] == pytest.approx([row["flops"] for row in theirs], rel=1e-12)
    ranked = load_checkpoint(tmp_path / "ranks" / "checkpoints" / single.name)["encoder_state"]
    alone = load_checkpoint(single)["encoder_state"]
    assert all(torch.allclose(ranked[key], alone[key], atol=1e-5) for key in alone)


def test_shards_take_whole_rounds_of_chunks_in_turn():
    whole = list(ClipSampler(23, shuffle=True, seed=3, epoch=1, start=2))
    shards = [list(ClipSampler(23, shuffle=True, seed=3, epoch=1, start=2, shard=(rank, 2, 3))) for rank in (0, 1)]
    # 21 samples after the start: 3 whole rounds of 2 chunks of 3, the last 3 samples dropped
    assert [len(s) for s in shards] == [9, 9] == [len(ClipSampler(23, shuffle=True, start=2, shard=(r, 2, 3)))
                                                   for r in (0, 1)]
    interleaved = [item for round_ in range(3) for rank in (0, 1) for item in shards[rank][3 * round_ : 3 * round_ + 3]]
    assert interleaved == whole[:18]
    assert not set(shards[0]) & set(shards[1])
    assert np.all(np.diff([len(s) for s in shards]) == 0)


def test_a_batch_that_does_not_split_over_the_processes_is_refused(tmp_path, monkeypatch):
    from tests.test_training import micro_teacher

    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setattr(torch.distributed, "init_process_group", lambda *args, **kwargs: None)
    monkeypatch.setattr(torch.distributed, "barrier", lambda *args, **kwargs: None)
    with pytest.raises(ConfigError, match="optim.batch_size 4 does not split over 3 processes"):
        train_teacher(micro_teacher(), micro_data(str(tmp_path / "cache")), tmp_path / "run", seed=0, progress=False)


def test_torchrun_trains_through_the_cli_and_one_process_reports(tmp_path):
    import subprocess
    import sys

    from tests.test_sweep_run import MICRO

    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "salt_budget.cli", "train", "teacher", "--run-dir", str(run_dir), *MICRO,
               f"data.cache_dir={tmp_path / 'cache'}", "teacher.encoder.preset=nano", "teacher.optim.steps=4"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("final checkpoint:") == 1 and done.stderr.count("run directory") == 1
    rows = _rows(run_dir)
    assert [row["step"] for row in rows] == [1, 2, 3, 4]
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] == ["step_00000004.pt"]
