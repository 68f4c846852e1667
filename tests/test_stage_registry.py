"""Adding a stage kind is one registry entry and its stage (docs/adding_a_stage.md): a toy baseline registered
here trains through `salt-budget train`, is probed, and runs beside SALT in a one-allocation sweep."""

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from salt_budget.cli import main
from salt_budget.experiment import ExperimentConfig, load_experiment
from salt_budget.sweep.results.store import read_results
from tests.test_sweep_run import BLOCKS, MICRO, overrides
from trainers.checkpoint import load_checkpoint, load_state
from trainers.config import ConfigError, to_dict
from trainers.data.config import DataConfig
from trainers.encoders import build_encoder, encoder_description
from trainers.flops import TRAIN_FACTOR, param_count, vit_param_count
from trainers.masks import MaskConfig, MaskSet
from trainers.registry import PLUGINS_VARIABLE, StageKind, register, stage_kind, stage_kinds, unregister
from trainers.stage_config import EncoderConfig, OptimConfig, RunConfig
from trainers.stage_costs import checkpoint_bytes, config_spec, stage_mask_tokens
from trainers.stages import check_kind, pixel_targets, token_counts


# -- the toy stage: an encoder whose linear head reconstructs each context token's own pixels -----------------

@dataclass
class ToyConfig:
    encoder: EncoderConfig = field(default_factory=lambda: EncoderConfig(preset="nano"))
    masks: MaskConfig = field(default_factory=MaskConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(steps=4, warmup_steps=1))
    run: RunConfig = field(default_factory=RunConfig)


def _head_params(width: int, pixels: int) -> int:
    return width * pixels + pixels


class ToyStage:
    kind = "toy"

    def __init__(self, cfg: ToyConfig, data: DataConfig):
        self.description = encoder_description(cfg.encoder, data)
        self.encoder = build_encoder(self.description)
        spec = self.encoder.spec
        self.head = nn.Linear(spec.width, 3 * spec.tubelet_size * spec.patch_size**2)
        self.trainable = nn.ModuleDict({"encoder": self.encoder, "head": self.head})
        self.grid = self.encoder.grid
        self.masks = cfg.masks

    def to(self, device: torch.device, frozen_dtype: torch.dtype | None = None) -> None:
        self.trainable.to(device)

    def loss(self, clips: torch.Tensor, masks: list[MaskSet]) -> torch.Tensor:
        spec = self.encoder.spec
        pixels = pixel_targets(clips, spec.tubelet_size, spec.patch_size)
        losses = []
        for mask in masks:
            tokens = self.encoder(clips, mask.context, mask.context_valid)
            target = torch.gather(pixels, 1, mask.context.unsqueeze(-1).expand(-1, -1, pixels.size(-1)))
            losses.append((self.head(tokens).float() - target).pow(2).mean())
        return torch.stack(losses).mean()

    def flops_per_clip(self, masks: list[MaskSet]) -> float:
        return TRAIN_FACTOR * (param_count(self.encoder) + param_count(self.head)) * token_counts(masks)[0]

    def after_step(self, step: int) -> dict[str, float]:
        return {}

    def checkpoint_state(self) -> dict[str, Any]:
        return {"encoder": self.description, "encoder_state": self.encoder.state_dict(),
                "head_state": self.head.state_dict()}

    def load_state(self, payload: dict[str, Any], path: Path | str) -> None:
        check_kind(payload, self.kind, path)
        load_state(self.encoder, payload["encoder_state"], "encoder", path)
        load_state(self.head, payload["head_state"], "head", path)


def _toy_params(cfg: ToyConfig) -> int:
    spec = config_spec(cfg.encoder)
    return vit_param_count(spec) + _head_params(spec.width, 3 * spec.tubelet_size * spec.patch_size**2)


def toy_flops_per_clip(cfg: ToyConfig, data: DataConfig, teacher: None = None) -> float:
    _, _, context, _ = stage_mask_tokens(cfg, data)
    return TRAIN_FACTOR * _toy_params(cfg) * context


def toy_checkpoint_bytes(cfg: ToyConfig, teacher: None = None) -> float:
    return checkpoint_bytes(_toy_params(cfg))


TOY = StageKind("toy", ToyConfig, ToyStage, "toy baseline", flops_per_clip=toy_flops_per_clip,
                checkpoint_bytes=toy_checkpoint_bytes, baseline=True)

TOY_MICRO = [f"toy.masks.blocks={BLOCKS}", "toy.optim.batch_size=4", "toy.optim.warmup_steps=2",
             "toy.run.log_every=1", "toy.run.checkpoint_every=3"]


@pytest.fixture
def toy(monkeypatch):
    """The toy kind registered here and, for the processes a sweep starts (Ray's workers import trainers afresh),
    named where every process looks: $SALT_BUDGET_STAGES, with this file importable there."""
    register(TOY)
    here = Path(__file__).resolve().parent
    monkeypatch.setenv(PLUGINS_VARIABLE, f"{__name__}:TOY")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(here), str(here.parent),
                                                                   os.environ.get("PYTHONPATH")])))
    yield TOY
    unregister(TOY.kind)


# -- the registry and the experiment's sections --------------------------------------------------------------

def test_the_built_in_kinds_stay_when_a_kind_is_registered_first(toy):
    assert {"teacher", "student", "vjepa2", "toy"} <= set(stage_kinds())
    assert stage_kind("toy") is TOY and stage_kind("vjepa2").baseline and stage_kind("student").needs_teacher
    with pytest.raises(ConfigError, match="registered already"):
        register(StageKind("toy", ToyConfig, ToyStage, "another toy", flops_per_clip=toy_flops_per_clip,
                           checkpoint_bytes=toy_checkpoint_bytes))
    with pytest.raises(KeyError, match="no stage kind 'nothing'"):
        stage_kind("nothing")


def test_a_registered_kind_has_an_experiment_section_read_like_the_built_ins(toy, tmp_path):
    experiment = tmp_path / "toy.yaml"
    experiment.write_text("toy:\n  optim:\n    steps: 7\n")
    cfg = load_experiment(experiment, ["toy.encoder.preset=micro"])
    assert isinstance(cfg, ExperimentConfig)
    assert cfg.stage_config("toy") == ToyConfig(encoder=EncoderConfig(preset="micro"),
                                                optim=OptimConfig(steps=7, warmup_steps=1))
    assert list(to_dict(cfg))[-1] == "toy"  # after the built-in sections: theirs are saved as before
    assert load_experiment(None) == load_experiment(None)  # one class per registry: loads compare equal
    with pytest.raises(ConfigError, match="unknown key 'toy.optim.stepz'"):
        load_experiment(None, ["toy.optim.stepz=3"])
    unregister("toy")
    assert list(to_dict(load_experiment(None))) == list(to_dict(ExperimentConfig()))
    with pytest.raises(ConfigError, match="unknown key 'toy'"):
        load_experiment(experiment)


# -- the toy through `salt-budget train` and a one-allocation sweep ------------------------------------------

def test_a_registered_kind_trains_through_the_cli_and_its_checkpoint_is_probed(toy, tmp_path, capsys):
    run_dir = tmp_path / "toy-run"
    args = ["train", "toy", *MICRO, *TOY_MICRO, "toy.optim.steps=4", f"data.cache_dir={tmp_path / 'cache'}",
            "--run-dir", str(run_dir), "--probe"]
    assert main(args) == 0
    final = run_dir / "checkpoints" / "step_00000004.pt"
    payload = load_checkpoint(final)
    assert payload["kind"] == "toy" and payload["step"] == 4 and {"encoder_state", "head_state"} <= set(payload)
    probe = json.loads((run_dir / "probes" / "step_00000004.json").read_text())
    assert probe["kind"] == "toy" and probe["checkpoint"] == str(final.resolve())
    assert "RankMe" in capsys.readouterr().out
    # Without --run-dir the run goes to the baselines' folder, as a baseline's does.
    cfg = load_experiment(None, [*MICRO, *TOY_MICRO, f"runs_dir={tmp_path / 'runs'}"])
    assert cfg.stage_config("toy").optim.batch_size == 4 and TOY.run_folder == "baselines"


def test_a_registered_baseline_runs_beside_salt_in_a_one_allocation_sweep(toy, tmp_path):
    runs, cache = tmp_path / "runs", tmp_path / "cache"
    sweep = ["sweep", "--total-steps", "12", "--teacher-steps", "4", "--teacher-sizes", "nano", "--student-size",
             "nano", "--baselines", "toy", "--name", "toy"]
    assert main([*sweep, *overrides(runs, cache, *TOY_MICRO)]) == 0
    table = read_results(runs / "toy")
    assert (table.status == "ok").all()
    assert sorted(set(table.role)) == ["random_init", "student", "teacher", "toy"]
    rows = table[table.role == "toy"]
    assert rows.step.tolist() == [3, 6, 9, 12] and rows.is_final.tolist() == [False] * 3 + [True]
    assert (rows.allocation_id == "N12_toy-nano_seed0").all() and (rows.student_steps == 12).all()
    cfg = load_experiment(None, overrides(runs, cache, *TOY_MICRO))  # its FLOPs are what its stage predicts
    assert rows.flops_total.iloc[-1] == pytest.approx(toy_flops_per_clip(cfg.toy, cfg.data) * 4 * 12, rel=0.05)
