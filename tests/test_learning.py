"""Training learns: a short V-Pixel teacher run on a small, easy variant of the embedded set reads clearly
above the random-init encoder it started from, on the study's default readout (ridge on the whole token
grid). Under a broken loss, a frozen encoder or shuffled targets the same run must not: set
SALT_BUDGET_LEARNING_MUTANT=broken_loss|frozen_encoder|shuffled_target to check that this test then fails
(docs/calibration.md records that it does)."""

import os

import pytest
import torch

from conftest import easy_data, easy_teacher_config
from trainers.probe.checkpoints import probe_checkpoint, probe_random_init
from trainers.checkpoint import load_checkpoint
from trainers.probe.config import ProbeConfig
from trainers import stages
from trainers.train import train_teacher

MUTANT = os.environ.get("SALT_BUDGET_LEARNING_MUTANT", "")
# Task-average gain over random init, halfway between the real run and the best mutant. Measured 2026-12-01
# (docs/calibration.md, "The learning test"): the real run +9.2 points; broken loss +3.0, frozen encoder +0.0,
# shuffled targets +1.0.
MARGIN = 0.06


def _mutate(monkeypatch: pytest.MonkeyPatch) -> None:
    if MUTANT == "broken_loss":  # the loss ignores its targets: nothing to learn from the clips
        original = stages.pixel_targets
        monkeypatch.setattr(stages, "pixel_targets", lambda *a, **k: torch.zeros_like(original(*a, **k)))
    elif MUTANT == "frozen_encoder":  # only the decoder trains
        init = stages.TeacherStage.__init__

        def frozen(self, *args, **kwargs):
            init(self, *args, **kwargs)
            self.encoder.requires_grad_(False)

        monkeypatch.setattr(stages.TeacherStage, "__init__", frozen)
    elif MUTANT == "shuffled_target":  # every clip is asked for another clip's pixels
        original = stages.pixel_targets
        monkeypatch.setattr(stages, "pixel_targets", lambda *a, **k: original(*a, **k).roll(1, dims=0))
    elif MUTANT:
        raise ValueError(f"unknown SALT_BUDGET_LEARNING_MUTANT {MUTANT!r}")


def test_a_short_teacher_run_reads_above_its_random_init(tmp_path, monkeypatch, request):
    # The unmutated run is the session's easy_teacher (tests/conftest.py), which the student learning test
    # freezes too: trained once for both. A mutant trains its own.
    if MUTANT:
        _mutate(monkeypatch)
        data = easy_data(tmp_path / "cache")
        final = train_teacher(easy_teacher_config(), data, tmp_path / "teacher", seed=0, progress=False)
    else:
        data, final = request.getfixturevalue("easy_set"), request.getfixturevalue("easy_teacher")
    probe = ProbeConfig(kind="ridge", pooling="flat", device="cpu")
    trained, _ = probe_checkpoint(final, data, probe, progress=False)
    random, _ = probe_random_init(load_checkpoint(final)["encoder"], data, probe, tmp_path / "random", progress=False)

    def average(result):
        return sum(task["accuracy"] for task in result["tasks"].values()) / len(result["tasks"])

    gain = average(trained) - average(random)
    print(f"trained {average(trained):.3f}, random init {average(random):.3f}, gain {gain:+.3f}",
          {name: (trained["tasks"][name]["accuracy"], random["tasks"][name]["accuracy"]) for name in trained["tasks"]})
    assert gain >= MARGIN, f"the teacher reads {gain:+.1%} against its random init; {MARGIN:.0%} expected"
