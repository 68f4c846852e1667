"""The two stages, the shared loop (resume, checkpoints, failures) and the probe, on a micro setup."""

import errno
import json
import math
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from trainers.checkpoint import CheckpointError, list_checkpoints, load_checkpoint
from trainers.config import ConfigError, from_dict
from trainers.data.config import DataConfig, SyntheticConfig
from trainers.probe.checkpoints import probe_checkpoint, probe_random_init
from trainers.probe.encoder import rankme
from trainers.step_metrics import PendingScalars, TrainingDiverged
from trainers.masks import MaskConfig
from trainers.schedules import learning_rate, weight_decay
from trainers.stage_config import (
    EncoderConfig, HeadConfig, OptimConfig, RunConfig, StudentConfig, TeacherConfig,
)
from trainers.probe.config import ProbeConfig
from trainers.stages import StudentStage, TeacherStage, pixel_targets
from trainers.train import train_student, train_teacher


@pytest.fixture(scope="module")
def micro_data(tmp_path_factory):
    """4 frames of 32 px, patch 8: a (2, 4, 4) token grid, a few ms per step."""
    cache = tmp_path_factory.mktemp("cache")
    return DataConfig(cache_dir=str(cache), synthetic=SyntheticConfig(train=24, val=12, frames=8, size=32),
                      frames=4, frame_step=2, resolution=32, workers=0)


def micro_optim(steps=6, **kw):
    return OptimConfig(steps=steps, batch_size=4, warmup_steps=2, grad_clip=1.0, **kw)


def micro_teacher(steps=6, preset="nano", **run):
    masks = from_dict(MaskConfig, {"blocks": [{"num_blocks": 2, "spatial_scale": [0.15, 0.15]},
                                              {"num_blocks": 1, "spatial_scale": [0.5, 0.5]}]})
    return TeacherConfig(encoder=EncoderConfig(preset=preset), decoder=HeadConfig(width=32, depth=1, heads=1),
                         masks=masks, optim=micro_optim(steps), run=RunConfig(log_every=1, checkpoint_every=3, **run))


def micro_student(teacher_checkpoint, steps=6, preset="nano"):
    base = micro_teacher(steps, preset)
    return StudentConfig(teacher_checkpoint=str(teacher_checkpoint), encoder=base.encoder,
                         predictor=HeadConfig(width=32, depth=1, heads=1), masks=base.masks, optim=base.optim,
                         run=base.run)


def losses(run_dir: Path) -> list[tuple[int, float]]:
    return [(row["step"], row["loss"]) for row in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())]


@pytest.fixture(scope="module")
def teacher_run(micro_data, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("teacher")
    final = train_teacher(micro_teacher(), micro_data, run_dir, seed=0, progress=False)
    return run_dir, final


def test_schedules_follow_the_paper_forms():
    cosine = OptimConfig(steps=100, warmup_steps=10, lr=1.0, start_lr=0.1, final_lr=0.0, weight_decay=0.04,
                         final_weight_decay=0.4)
    assert learning_rate(0, cosine) == pytest.approx(0.1) and learning_rate(10, cosine) == pytest.approx(1.0)
    assert learning_rate(55, cosine) == pytest.approx(0.5) and learning_rate(100, cosine) == pytest.approx(0.0)
    assert weight_decay(0, cosine) == pytest.approx(0.04) and weight_decay(100, cosine) == pytest.approx(0.4)
    short = OptimConfig(steps=50, warmup_steps=10, schedule="wsd", cooldown_steps=10, lr=1.0, final_lr=0.0)
    long = replace(short, steps=200)
    # Until its cool-down a wsd run does not depend on its length: one trunk serves every branch.
    assert [learning_rate(s, short) for s in range(40)] == [learning_rate(s, long) for s in range(40)]
    assert learning_rate(45, short) == pytest.approx(0.5) and learning_rate(50, short) == pytest.approx(0.0)
    assert weight_decay(0, short) == weight_decay(49, short)


def test_pixel_targets_are_normalised_per_token_and_channel():
    clips = torch.randn(2, 3, 4, 16, 16) * 5 + 3
    targets = pixel_targets(clips, 2, 8).view(2, 8, 3, 2 * 8 * 8)
    assert torch.allclose(targets.mean(-1), torch.zeros(2, 8, 3), atol=1e-5)
    assert torch.allclose(targets.std(-1, unbiased=True), torch.ones(2, 8, 3), atol=1e-4)
    raw = pixel_targets(clips, 2, 8, per_token=False).view(2, 8, 3, 2, 8, 8)
    # token 1 of the (2, 2, 2) grid is t=0, row 0, column 1: frames 0-1, rows 0-7, columns 8-15
    torch.testing.assert_close(raw[0, 1, 2], clips[0, 2, 0:2, 0:8, 8:16])


def test_teacher_run_writes_checkpoints_metrics_and_config(teacher_run):
    run_dir, final = teacher_run
    assert final == run_dir / "checkpoints" / "step_00000006.pt" and final.is_file()
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2, 3, 4, 5, 6]
    assert all(0 < row["context_ratio"] < 1 and 0 < row["target_ratio"] < 1 for row in rows)
    flops = [row["flops"] for row in rows]
    assert all(b > a > 0 for a, b in zip(flops, flops[1:]))
    assert (run_dir / "config.yaml").is_file()
    payload = load_checkpoint(final)
    assert payload["kind"] == "teacher" and payload["step"] == 6 and payload["loop"]["step"] == 6


def test_resume_continues_exactly_as_an_uninterrupted_run(micro_data, tmp_path, teacher_run, monkeypatch):
    reference, _ = teacher_run
    calls = {"n": 0}
    original = TeacherStage.loss

    def crash_at_step_five(self, clips, masks):
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("simulated crash")
        return original(self, clips, masks)

    monkeypatch.setattr(TeacherStage, "loss", crash_at_step_five)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_teacher(micro_teacher(), micro_data, tmp_path, seed=0, progress=False)
    monkeypatch.setattr(TeacherStage, "loss", original)
    assert [step for step, _ in list_checkpoints(tmp_path / "checkpoints")] == [3]
    train_teacher(micro_teacher(), micro_data, tmp_path, seed=0, progress=False)
    assert losses(tmp_path) == losses(reference)  # same steps, bit-identical losses, no duplicates


def test_a_deterministic_run_is_recorded_and_on_the_cpu_equals_the_default(micro_data, tmp_path, teacher_run):
    # run.deterministic switches this process to torch's deterministic kernels; the CPU kernels the tiny runs use
    # already are, so the losses stay those of the default run (docs/reproducibility.md measures it at scale).
    reference, _ = teacher_run
    try:
        train_teacher(micro_teacher(deterministic=True), micro_data, tmp_path, seed=0, progress=False)
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)  # process-wide: the other tests run with the default
    assert losses(tmp_path) == losses(reference)
    [record] = [json.loads(line) for line in (tmp_path / "provenance.jsonl").read_text().splitlines()]
    assert record["deterministic"] is True and record["threads"] == torch.get_num_threads()


def test_student_gradient_never_reaches_the_frozen_teacher(micro_data, teacher_run):
    _, teacher_ckpt = teacher_run
    torch.manual_seed(0)
    stage = StudentStage(micro_student(teacher_ckpt), micro_data)
    before = {k: v.clone() for k, v in stage.teacher.state_dict().items()}
    from trainers.masks import MaskGenerator
    import numpy as np

    masks, _ = MaskGenerator(stage.masks, stage.grid)(2, np.random.default_rng(0))
    clips = torch.randn(2, 3, 4, 32, 32)
    stage.loss(clips, masks).backward()
    assert all(p.grad is None for p in stage.teacher.parameters())
    assert all(p.grad is not None for p in stage.trainable.parameters())
    assert not any(p.requires_grad for p in stage.teacher.parameters())
    # and training the student leaves the teacher's weights as they were
    optimizer = torch.optim.AdamW(stage.trainable.parameters(), lr=1e-2)
    optimizer.step()
    assert all(torch.equal(before[k], v) for k, v in stage.teacher.state_dict().items())


def test_a_compiled_student_step_traces_the_frozen_teacher_and_equals_the_eager_one(micro_data, teacher_run):
    """torch.compile (AOT autograd, as run.compile=true) through the frozen teacher's forward: an inference_mode
    target failed to trace ("Cannot set version_counter for inference tensor"); aot_eager skips inductor's C++
    build, not the tracing that failed."""
    import numpy as np

    from trainers.masks import MaskGenerator

    _, teacher_ckpt = teacher_run
    torch.manual_seed(0)
    stage = StudentStage(micro_student(teacher_ckpt), micro_data)
    masks, _ = MaskGenerator(stage.masks, stage.grid)(2, np.random.default_rng(0))
    clips = torch.randn(2, 3, 4, 32, 32)
    eager = stage.loss(clips, masks)
    compiled = torch.compile(stage.loss, backend="aot_eager")(clips, masks)
    torch.testing.assert_close(compiled, eager)
    compiled.backward()
    assert all(p.grad is None for p in stage.teacher.parameters())
    assert all(p.grad is not None for p in stage.trainable.parameters())


def test_a_small_teacher_teaches_a_larger_student(micro_data, teacher_run, tmp_path):
    _, teacher_ckpt = teacher_run  # nano: width 64
    final = train_student(micro_student(teacher_ckpt, steps=3, preset="micro"), micro_data, tmp_path, progress=False)
    payload = load_checkpoint(final)
    assert payload["kind"] == "student" and payload["encoder"]["spec"]["width"] == 96
    assert payload["head_state"]["embed.weight"].shape[1] == 96  # student width in ...
    assert payload["head_state"]["proj.weight"].shape[0] == 64  # ... teacher width out
    assert payload["teacher"]["encoder"]["spec"]["width"] == 64
    assert all(math.isfinite(loss) for _, loss in losses(tmp_path))


def test_teacher_grid_that_cannot_serve_the_student_is_refused(micro_data, teacher_run):
    _, teacher_ckpt = teacher_run
    cfg = micro_student(teacher_ckpt)
    cfg.encoder = EncoderConfig(preset="nano", patch_size=4)
    with pytest.raises(ConfigError, match="token grid"):
        StudentStage(cfg, micro_data)
    cfg.teacher_checkpoint = None
    with pytest.raises(ConfigError, match="teacher_checkpoint is not set"):
        StudentStage(cfg, micro_data)


def test_nan_loss_stops_with_the_step_and_the_last_good_checkpoint(micro_data, tmp_path, monkeypatch):
    original = TeacherStage.loss
    calls = {"n": 0}

    def nan_at_step_four(self, clips, masks):
        calls["n"] += 1
        loss = original(self, clips, masks)
        return loss * float("nan") if calls["n"] == 4 else loss

    monkeypatch.setattr(TeacherStage, "loss", nan_at_step_four)
    with pytest.raises(TrainingDiverged, match=r"nan at step 4.*step_00000003\.pt"):
        train_teacher(micro_teacher(), micro_data, tmp_path, seed=0, progress=False)
    assert [step for step, _ in list_checkpoints(tmp_path / "checkpoints")] == [3]


def test_losses_are_read_back_only_at_logs_and_checkpoints(micro_data, tmp_path, monkeypatch):
    reads = []
    original = PendingScalars.read

    def counted(self, kind, last_good):
        reads.append(list(self.steps))
        return original(self, kind, last_good)

    monkeypatch.setattr(PendingScalars, "read", counted)
    cfg = micro_teacher(steps=8)
    cfg.run = replace(cfg.run, log_every=4, checkpoint_every=3)
    train_teacher(cfg, micro_data, tmp_path, seed=0, progress=False)
    assert reads == [[1, 2, 3], [4], [5, 6], [7, 8]]  # checkpoints at 3 and 6, logs at 4 and 8
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [4, 8] and all(math.isfinite(row["loss"]) for row in rows)


@pytest.mark.parametrize("kind", ["teacher", "student"])
def test_micro_batches_give_the_gradient_of_one_pass_over_the_batch(micro_data, teacher_run, kind):
    import numpy as np

    from trainers.train_step import backward_in_parts
    from trainers.masks import MaskGenerator, MaskSet

    torch.manual_seed(0)
    stage = TeacherStage(micro_teacher(), micro_data) if kind == "teacher" else StudentStage(
        micro_student(teacher_run[1]), micro_data)
    masks, _ = MaskGenerator(stage.masks, stage.grid)(4, np.random.default_rng(0))
    video = torch.randint(0, 256, (4, 3, 4, 32, 32), dtype=torch.uint8)

    def rows(mask, chosen):
        return MaskSet(*(None if t is None else t[chosen] for t in (mask.context, mask.target, mask.context_valid,
                                                                     mask.target_valid)))

    grads = {}
    for parts in (1, 2, 4):
        size = 4 // parts
        batches = [{"video": video[i : i + size], "masks": [rows(m, slice(i, i + size)) for m in masks]}
                   for i in range(0, 4, size)]
        stage.trainable.zero_grad(set_to_none=True)
        loss = backward_in_parts(stage.loss, batches, micro_data, torch.device("cpu"), autocast=False)
        grads[parts] = (float(loss), [p.grad.clone() for p in stage.trainable.parameters()])
    for parts in (2, 4):
        assert grads[parts][0] == pytest.approx(grads[1][0], rel=1e-5)
        assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-7) for a, b in zip(grads[parts][1], grads[1][1]))


def test_a_step_in_micro_batches_sees_the_clips_of_the_whole_batch(micro_data, tmp_path, monkeypatch):
    seen = []
    original = TeacherStage.loss

    def recorded(self, clips, masks):
        seen.append(clips.clone())
        return original(self, clips, masks)

    monkeypatch.setattr(TeacherStage, "loss", recorded)
    train_teacher(micro_teacher(steps=7), micro_data, tmp_path / "whole", seed=0, progress=False)
    whole, seen[:] = list(seen), []
    train_teacher(micro_teacher(steps=7, micro_batch=2), micro_data, tmp_path / "parts", seed=0, progress=False)
    assert [len(c) for c in whole] == [4] * 7 and [len(c) for c in seen] == [2] * 14
    # 7 steps of 4 pass the 24 clips' epoch boundary: the stream continues in both the same way
    assert all(torch.equal(w, torch.cat(seen[2 * i : 2 * i + 2])) for i, w in enumerate(whole))
    rows = [json.loads(line) for line in (tmp_path / "parts" / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == list(range(1, 8)) and all(math.isfinite(row["loss"]) for row in rows)


def test_a_run_in_micro_batches_resumes_as_if_uninterrupted(micro_data, tmp_path, monkeypatch):
    train_teacher(micro_teacher(micro_batch=2), micro_data, tmp_path / "whole", seed=0, progress=False)
    calls = {"n": 0}
    original = TeacherStage.loss

    def crash_in_step_five(self, clips, masks):
        calls["n"] += 1
        if calls["n"] == 10:  # the second micro-batch of step 5
            raise RuntimeError("simulated crash")
        return original(self, clips, masks)

    monkeypatch.setattr(TeacherStage, "loss", crash_in_step_five)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_teacher(micro_teacher(micro_batch=2), micro_data, tmp_path / "resumed", seed=0, progress=False)
    monkeypatch.setattr(TeacherStage, "loss", original)
    train_teacher(micro_teacher(micro_batch=2), micro_data, tmp_path / "resumed", seed=0, progress=False)
    assert losses(tmp_path / "resumed") == losses(tmp_path / "whole")


def test_masks_cut_over_cut_batch_clips_whatever_the_passes(micro_data, tmp_path, monkeypatch):
    """masks.cut_batch 4 in passes of 2: each pass's mask rows are as long as the 4-clip group's (V-JEPA's
    per-GPU cut), so the run trains as one pass over 4 does, not as masks drawn and cut per 2 clips."""
    lengths = []
    original = TeacherStage.loss

    def recorded(self, clips, masks):
        lengths.append((len(clips), masks[0].context.size(1)))
        return original(self, clips, masks)

    monkeypatch.setattr(TeacherStage, "loss", recorded)
    grouped = micro_teacher(micro_batch=2)
    grouped.masks.cut_batch = 4
    train_teacher(grouped, micro_data, tmp_path / "grouped", seed=0, progress=False)
    assert [n for n, _ in lengths] == [2] * 12
    assert all(lengths[i][1] == lengths[i + 1][1] for i in range(0, 12, 2))  # the two passes of a step: one cut
    train_teacher(micro_teacher(), micro_data, tmp_path / "whole", seed=0, progress=False)
    train_teacher(micro_teacher(micro_batch=2), micro_data, tmp_path / "per-pass", seed=0, progress=False)
    loss_values = lambda name: [loss for _, loss in losses(tmp_path / name)]
    assert loss_values("grouped") == pytest.approx(loss_values("whole"), rel=1e-4)
    assert loss_values("per-pass") != pytest.approx(loss_values("whole"), rel=1e-4)


def test_cut_batch_must_nest_the_passes_in_the_batch(micro_data, tmp_path):
    from salt_budget.experiment import load_experiment

    with pytest.raises(ConfigError, match="masks.cut_batch 3 must be a multiple of the pass of 2 clips"):
        load_experiment(None, ["student.run.micro_batch=2", "student.masks.cut_batch=3"])
    with pytest.raises(ConfigError, match="masks.cut_batch 32 must be a multiple .* divide a process's batch of 16"):
        load_experiment(None, ["student.masks.cut_batch=32"])
    with pytest.raises(ConfigError, match="cut_batch must be >= 1"):
        load_experiment(None, ["teacher.masks.cut_batch=0"])


def test_micro_batches_must_divide_the_batch(micro_data, tmp_path):
    from salt_budget.experiment import load_experiment

    with pytest.raises(ConfigError, match="run.micro_batch 3 does not divide the batch of 4 clips.*e.g. 2"):
        train_teacher(micro_teacher(micro_batch=3), micro_data, tmp_path, seed=0, progress=False)
    with pytest.raises(ConfigError, match="student.*run.micro_batch 5 does not divide the batch of 16 clips.*e.g. 4"):
        load_experiment(None, ["student.run.micro_batch=5"])
    with pytest.raises(ConfigError, match="micro_batch must be >= 1"):
        load_experiment(None, ["student.run.micro_batch=0"])


def test_pending_scalars_name_the_first_step_that_is_not_finite():
    pending = PendingScalars()
    for step, loss in [(5, 1.0), (6, float("inf")), (7, float("nan"))]:
        pending.add(step, {"loss": torch.tensor(loss), "grad_norm": torch.tensor(2.0)})
    with pytest.raises(TrainingDiverged, match="inf at step 6; stopped .no checkpoint"):
        pending.read("teacher", None)
    pending.add(8, {"loss": torch.tensor(0.5), "grad_norm": torch.tensor(2.0)})
    pending.add(9, {"loss": torch.tensor(0.25), "grad_norm": torch.tensor(1.0)})
    assert pending.read("teacher", None) == {"loss": 0.75, "grad_norm": 3.0} and pending.read("teacher", None) == {}


def test_unwritable_run_dir_and_foreign_checkpoints_are_clear_errors(micro_data, tmp_path, teacher_run):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="not writable"):
        train_teacher(micro_teacher(), micro_data, blocker / "run", progress=False)
    _, teacher_ckpt = teacher_run
    with pytest.raises(CheckpointError, match="do not fit"):  # a nano checkpoint into a micro run
        train_teacher(micro_teacher(preset="micro"), micro_data, tmp_path / "other", init_from=teacher_ckpt,
                      progress=False)
    not_a_checkpoint = tmp_path / "x.pt"
    torch.save({"weights": torch.zeros(2)}, not_a_checkpoint)
    with pytest.raises(CheckpointError, match="not a salt-budget checkpoint"):
        load_checkpoint(not_a_checkpoint)


def _full_disk_after(calls_before_full: int, monkeypatch, error=None):
    """torch.save that writes part of the file and then finds the disk full, from the given call on."""
    original, calls = torch.save, {"n": 0}

    def save(obj, f, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] <= calls_before_full:
            return original(obj, f, *args, **kwargs)
        f.write(b"PK\x03\x04 half a checkpoint")
        raise error or OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", save)


@pytest.mark.parametrize("error", [None, RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos "
                                                      "704 vs 598")])
def test_a_full_disk_keeps_the_previous_checkpoint_and_says_so(tmp_path, monkeypatch, error):
    from trainers import checkpoint

    folder = tmp_path / "checkpoints"
    checkpoint.save_checkpoint(checkpoint.checkpoint_path(folder, 3), {"step": 3, "w": torch.zeros(1000)})
    _full_disk_after(0, monkeypatch, error)
    # torch's own writer says only "unexpected pos": that is a full disk where the file system has little left
    monkeypatch.setattr(checkpoint.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 5e5, 5e5))
    with pytest.raises(CheckpointError) as caught:
        checkpoint.save_checkpoint(checkpoint.checkpoint_path(folder, 6), {"step": 6, "w": torch.zeros(1000)})
    message = str(caught.value)
    assert message.startswith(f"no space left on device writing {folder / 'step_00000006.pt'} (0 MB free")
    assert f"the previous checkpoint {folder / 'step_00000003.pt'} (step 3) is kept to resume from" in message
    assert "--resume" in message
    assert os.listdir(folder) == ["step_00000003.pt"]  # no temporary file left behind
    monkeypatch.undo()
    assert checkpoint.load_checkpoint(folder / "step_00000003.pt")["step"] == 3
    # A write that fails otherwise, with space to spare, is not called a full disk.
    _full_disk_after(0, monkeypatch, RuntimeError("unexpected pos 1 vs 2"))
    with pytest.raises(RuntimeError, match="unexpected pos"):
        checkpoint.save_checkpoint(checkpoint.checkpoint_path(folder, 6), {"step": 6})
    assert os.listdir(folder) == ["step_00000003.pt"]


def test_a_run_stopped_by_a_full_disk_continues_from_its_last_checkpoint(micro_data, tmp_path, monkeypatch):
    # keep_last=1: the periodic checkpoint 3 is deleted once checkpoint 6 is written, never before.
    cfg, run = micro_teacher(steps=9, keep_last=1), tmp_path / "run"
    _full_disk_after(1, monkeypatch)  # step 3 is written, step 6 finds the disk full
    with pytest.raises(CheckpointError, match=r"no space left on device .*step_00000006\.pt.*step_00000003\.pt \(step 3\)"):
        train_teacher(cfg, micro_data, run, seed=0, progress=False)
    assert os.listdir(run / "checkpoints") == ["step_00000003.pt"]
    monkeypatch.undo()
    train_teacher(cfg, micro_data, run, seed=0, progress=False)
    assert [step for step, _ in list_checkpoints(run / "checkpoints")] == [6, 9]
    train_teacher(cfg, micro_data, tmp_path / "reference", seed=0, progress=False)
    assert losses(run) == losses(tmp_path / "reference")


def test_a_run_dir_with_another_config_is_not_silently_reused(micro_data, teacher_run):
    run_dir, _ = teacher_run
    with pytest.raises(ConfigError, match="different config"):
        train_teacher(micro_teacher(steps=8), micro_data, run_dir, progress=False)


def test_rankme_counts_effective_dimensions():
    torch.manual_seed(0)
    assert rankme(torch.randn(2000, 16)) == pytest.approx(16, rel=0.05)
    assert rankme(torch.randn(2000, 1) @ torch.randn(1, 16)) == pytest.approx(1, abs=0.01)


def test_end_to_end_teacher_student_probe(micro_data, teacher_run, tmp_path):
    _, teacher_ckpt = teacher_run
    student_final = train_student(micro_student(teacher_ckpt, steps=3), micro_data, tmp_path / "student",
                                  progress=False)
    probe_cfg = ProbeConfig(epochs=2, batch_size=8, lrs=[1e-3, 3e-4])
    result, out = probe_checkpoint(student_final, micro_data, probe_cfg, progress=False)
    assert out.is_file() and json.loads(out.read_text())["kind"] == "student"
    assert set(result["tasks"]) == {"appearance", "motion"}
    for task in result["tasks"].values():
        assert 0 <= task["accuracy"] <= 1 and task["num_classes"] == 10 and len(task["heads"]) == 2
    assert result["clips"] == {"train": 24, "val": 12} and result["rankme"] > 1
    features = list((tmp_path / "student" / "features").glob("*.pt"))
    assert len(features) == 2  # extracted once per split ...
    probe_checkpoint(student_final, micro_data, probe_cfg, progress=False)
    assert sorted(features) == sorted((tmp_path / "student" / "features").glob("*.pt"))  # ... and reused
    single, _ = probe_checkpoint(student_final, micro_data, replace(probe_cfg, single_frame=True), progress=False)
    assert single["single_frame"] and len(list((tmp_path / "student" / "features").glob("*.pt"))) == 4
    random_result, random_out = probe_random_init(load_checkpoint(student_final)["encoder"], micro_data, probe_cfg,
                                                  tmp_path / "random", progress=False)
    assert random_result["kind"] == "random_init" and random_out.is_file()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_teacher_and_student_steps_run_in_bf16_on_cuda(micro_data, tmp_path):
    teacher = micro_teacher(steps=3)
    teacher.run.device = "cuda"
    final = train_teacher(teacher, micro_data, tmp_path / "t", progress=False)
    student = micro_student(final, steps=3)
    student.run.device = "cuda"
    train_student(student, micro_data, tmp_path / "s", progress=False)
    assert all(math.isfinite(loss) for _, loss in losses(tmp_path / "s"))


def test_training_and_probing_hand_freed_memory_back(micro_data, tmp_path, monkeypatch):
    # A reused Ray worker trains and probes unit after unit: each must release what it freed (trainers/memory.py).
    from trainers import train
    from trainers.probe import checkpoints as evaluate

    calls = []
    monkeypatch.setattr(train, "release_memory", lambda: calls.append("train"))
    monkeypatch.setattr(evaluate, "release_memory", lambda: calls.append("probe"))
    final = train_teacher(micro_teacher(steps=2), micro_data, tmp_path / "teacher", seed=0, progress=False)
    assert calls == ["train"]
    probe_cfg = ProbeConfig(kind="ridge")
    probe_checkpoint(final, micro_data, probe_cfg, progress=False)
    probe_random_init(load_checkpoint(final)["encoder"], micro_data, probe_cfg, tmp_path / "random", progress=False)
    assert calls == ["train", "probe", "probe"]
