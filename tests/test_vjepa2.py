"""The V-JEPA 2 baseline stage on the micro setup of test_training.py: the EMA update against a
hand-written reference, the EMA copy outside the optimiser, a run end to end with exact resume."""

import json
import math

import numpy as np
import pytest
import torch
from test_training import losses, micro_teacher

from salt_budget.cli import main
from trainers.checkpoint import list_checkpoints, load_checkpoint
from trainers.data.config import DataConfig, SyntheticConfig
from trainers.encoders import encoder_from_checkpoint
from trainers.flops import param_count
from trainers.loop import param_groups
from trainers.masks import MaskGenerator
from trainers.stage_config import HeadConfig, OptimConfig, VJEPA2Config
from trainers.train import train_vjepa2
from trainers.vjepa2 import VJEPA2Stage, ema_momentum

# The e2e run moves its EMA fast enough to see in 6 steps; the default's 0.99925 would barely move it.
RAMP = (0.9, 1.0)


@pytest.fixture(scope="module")
def micro_data(tmp_path_factory):
    """test_training.py's: 4 frames of 32 px, patch 8, a (2, 4, 4) token grid."""
    return DataConfig(cache_dir=str(tmp_path_factory.mktemp("cache")),
                      synthetic=SyntheticConfig(train=24, val=12, frames=8, size=32), frames=4, frame_step=2,
                      resolution=32, workers=0)


def micro_vjepa2(steps=6, momentum=RAMP):
    base = micro_teacher(steps)
    optim = OptimConfig(steps=steps, batch_size=4, schedule="wsd", lr=5.25e-4, start_lr=1e-4, warmup_steps=2,
                        betas=(0.9, 0.999), grad_clip=0.0)
    return VJEPA2Config(encoder=base.encoder, predictor=HeadConfig(width=32, depth=1, heads=1), momentum=momentum,
                        masks=base.masks, optim=optim, run=base.run)


def micro_batch(stage):
    masks, _ = MaskGenerator(stage.masks, stage.grid)(2, np.random.default_rng(0))
    return torch.randn(2, 3, 4, 32, 32), masks


def test_momentum_is_constant_or_a_linear_ramp_from_the_first_update():
    assert ema_momentum(1, (0.99925, 0.99925), 100) == ema_momentum(100, (0.99925, 0.99925), 100) == 0.99925
    assert ema_momentum(1, (0.998, 1.0), 100) == 0.998  # V-JEPA's scheduler: the first update uses the start
    assert ema_momentum(51, (0.998, 1.0), 100) == pytest.approx(0.999)


def test_ema_update_matches_a_hand_written_reference(micro_data):
    torch.manual_seed(0)
    stage = VJEPA2Stage(micro_vjepa2(steps=10), micro_data)
    online = dict(stage.encoder.named_parameters())
    assert all(torch.equal(p, online[name]) for name, p in stage.ema.named_parameters())  # starts as a copy
    for step in (1, 2):
        with torch.no_grad():  # stands in for an optimiser step
            for p in stage.encoder.parameters():
                p.add_(torch.randn_like(p))
        before = {name: p.clone() for name, p in stage.ema.named_parameters()}
        m = 0.9 + 0.1 * (step - 1) / 10
        logged = stage.after_step(step)
        assert logged["momentum"] == pytest.approx(m)
        for name, p in stage.ema.named_parameters():
            torch.testing.assert_close(p, m * before[name] + (1 - m) * online[name], rtol=1e-6, atol=1e-7)
    buffers = dict(stage.encoder.named_buffers())
    assert all(torch.equal(b, buffers[name]) for name, b in stage.ema.named_buffers())


def test_the_ema_copy_gets_no_gradient_and_is_not_optimised(micro_data):
    torch.manual_seed(0)
    stage = VJEPA2Stage(micro_vjepa2(), micro_data)
    clips, masks = micro_batch(stage)
    stage.loss(clips, masks).backward()
    assert not any(p.requires_grad for p in stage.ema.parameters())
    assert all(p.grad is None for p in stage.ema.parameters())
    assert all(p.grad is not None for p in stage.trainable.parameters())
    optimised = {id(p) for group in param_groups(stage.trainable) for p in group["params"]}
    assert optimised == {id(p) for p in stage.trainable.parameters()}
    assert not optimised & {id(p) for p in stage.ema.parameters()}
    # The target follows the EMA copy only: changing the online encoder leaves it as it was.
    before = stage.ema(clips)
    with torch.no_grad():
        for p in stage.encoder.parameters():
            p.mul_(2)
    torch.testing.assert_close(stage.ema(clips), before)


def test_flops_count_the_ema_forward_on_every_token(micro_data):
    stage = VJEPA2Stage(micro_vjepa2(), micro_data)
    _, masks = micro_batch(stage)
    kept = [float(i.size(1)) if v is None else float(v.sum(1).float().mean())
            for m in masks for i, v in ((m.context, m.context_valid), (m.target, m.target_valid))]
    context, target = sum(kept[0::2]), sum(kept[1::2])
    n_encoder, n_predictor = param_count(stage.encoder), param_count(stage.predictor)
    assert param_count(stage.ema) == n_encoder and stage.ema.num_tokens == 2 * 4 * 4
    assert stage.flops_per_clip(masks) == pytest.approx(
        6 * n_encoder * context + 6 * n_predictor * (context + target) + 2 * n_encoder * 32)


def test_a_baseline_run_end_to_end_resumes_exactly(micro_data, tmp_path, monkeypatch):
    reference = tmp_path / "reference"
    overrides = ["data.dataset=synthetic", f"data.cache_dir={micro_data.cache_dir}", "data.synthetic.train=24",
                 "data.synthetic.val=12", "data.synthetic.frames=8", "data.synthetic.size=32", "data.frames=4",
                 "data.frame_step=2", "data.resolution=32", "data.workers=0"]
    cfg = micro_vjepa2()
    # The CLI trains the same run as the function: `salt-budget train vjepa2` with the config as overrides.
    for key, value in (("encoder.preset", "nano"), ("predictor", "{width: 32, depth: 1, heads: 1}"),
                       ("momentum", "[0.9, 1.0]"), ("masks.blocks", "[{num_blocks: 2, spatial_scale: [0.15, 0.15]}, "
                                                                    "{num_blocks: 1, spatial_scale: [0.5, 0.5]}]"),
                       ("optim.steps", 6), ("optim.batch_size", 4), ("optim.warmup_steps", 2),
                       ("run.log_every", 1), ("run.checkpoint_every", 3)):
        overrides.append(f"vjepa2.{key}={value}")
    assert main(["train", "vjepa2", *overrides, "--run-dir", str(reference)]) == 0
    final = reference / "checkpoints" / "step_00000006.pt"
    payload = load_checkpoint(final)
    assert payload["kind"] == "vjepa2" and payload["momentum"] == [0.9, 1.0]
    rows = [json.loads(line) for line in (reference / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2, 3, 4, 5, 6]
    assert all(0 < row["target_std"] <= 1 for row in rows)
    assert rows[-1]["momentum"] == pytest.approx(0.9 + 0.1 * 5 / 6)
    assert {row["wd"] for row in rows} == {0.04} and rows[-1]["lr"] == pytest.approx(5.25e-4)  # constant after warm-up
    # Both encoders are kept; the one a checkpoint evaluates (the probe's) is the EMA copy.
    assert any(not torch.equal(payload["encoder_state"][k], payload["online_state"][k]) for k in payload["online_state"])
    encoder, _ = encoder_from_checkpoint(final)
    assert all(torch.equal(v, payload["encoder_state"][k]) for k, v in encoder.state_dict().items())

    calls = {"n": 0}
    original = VJEPA2Stage.loss

    def crash_at_step_five(self, clips, masks):
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("simulated crash")
        return original(self, clips, masks)

    resumed = tmp_path / "resumed"
    monkeypatch.setattr(VJEPA2Stage, "loss", crash_at_step_five)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_vjepa2(cfg, micro_data, resumed, seed=0, progress=False)
    monkeypatch.setattr(VJEPA2Stage, "loss", original)
    assert [step for step, _ in list_checkpoints(resumed / "checkpoints")] == [3]
    train_vjepa2(cfg, micro_data, resumed, seed=0, progress=False)
    assert losses(resumed) == losses(reference)  # same steps, bit-identical losses, no duplicates
    again = load_checkpoint(resumed / "checkpoints" / "step_00000006.pt")
    for part in ("encoder_state", "online_state", "head_state"):
        assert all(torch.equal(v, payload[part][k]) for k, v in again[part].items()), part


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_baseline_run_in_bf16_on_cuda(micro_data, tmp_path):
    cfg = micro_vjepa2(steps=3)
    cfg.run.device = "cuda"
    train_vjepa2(cfg, micro_data, tmp_path, progress=False)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(row["loss"]) and 0 < row["target_std"] <= 1 for row in rows)
