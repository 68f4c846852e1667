"""One typed config per stage: the V-Pixel teacher, the SALT student and the V-JEPA 2 baseline (the probe's
is trainers/probe/config.py).

Defaults are the tiny CPU experiment; experiments/*.yaml set paper scale. Paper values
(docs/paper.md section 6) are named where the tiny default departs from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from trainers.masks import MaskConfig


@dataclass
class EncoderConfig:
    preset: str = "tiny"  # nano | micro | tiny | small | vit_base | vit_large | vit_huge | vit_giant | vit_gigantic
    patch_size: int | None = None  # None: the preset's
    tubelet_size: int | None = None


@dataclass
class HeadConfig:
    """The predictor (student) or pixel decoder (teacher): paper 12 blocks of width 384, 16 heads."""

    width: int = 64
    depth: int = 2
    heads: int = 2
    # "rope": positions only through RoPE, as in the encoder (V-JEPA 2's predictor). "sincos": also add a fixed
    # 3D sin-cos code of each token's grid position to its input, as VideoMAE's decoder does. With RoPE alone
    # every mask token starts identical, and a small head at a small grid takes hundreds of steps to tell them
    # apart (the tiny teacher's pixel loss sat at 0.99 for 600 steps; docs/calibration.md).
    position: Literal["rope", "sincos"] = "rope"


@dataclass
class OptimConfig:
    steps: int = 1000
    batch_size: int = 16  # paper: 3072
    # lr: linear warm-up start_lr -> lr, then cosine to final_lr (paper), or warm-up, constant and
    # a linear cool-down over the last cooldown_steps ("wsd": step-count independent until the cool-down;
    # cooldown_steps 0 keeps the lr constant to the end). wsd keeps weight_decay constant.
    schedule: Literal["cosine", "wsd"] = "cosine"
    lr: float = 6.25e-4
    start_lr: float = 2e-4
    final_lr: float = 1e-6
    warmup_steps: int = 100  # paper: 10k of the stage's steps
    cooldown_steps: int = 0
    weight_decay: float = 0.04
    final_weight_decay: float = 0.4  # cosine 0.04 -> 0.4 (paper); equal values give a constant
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    grad_clip: float = 0.02  # paper value; 0 disables

    def validate(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"steps and batch_size must be >= 1 (got {self.steps}, {self.batch_size})")
        if not 0 <= self.warmup_steps <= self.steps:
            raise ValueError(f"warmup_steps must lie in [0, steps={self.steps}] (got {self.warmup_steps})")
        if self.schedule == "wsd" and not 0 <= self.cooldown_steps <= self.steps - self.warmup_steps:
            raise ValueError(
                f"schedule 'wsd' needs 0 <= cooldown_steps <= steps - warmup_steps (got {self.cooldown_steps})"
            )
        if min(self.lr, self.start_lr, self.final_lr) < 0 or self.grad_clip < 0:
            raise ValueError("learning rates and grad_clip must be >= 0")


@dataclass
class RunConfig:
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: Literal["bf16", "fp32"] = "bf16"  # bf16 autocast applies on CUDA only
    compile: bool = False
    activation_checkpointing: bool = False  # the trained encoder recomputes block activations in backward
    # Gradient accumulation: clips per forward/backward pass. A process's share of optim.batch_size (all of
    # it without data parallelism) is loaded and run in micro-batches of this size, which must divide it,
    # each on the device only in its turn, so a paper-size batch fits a GPU. null: one pass. A step sees the
    # same clips as without it (where the train split is a whole number of batches; otherwise an epoch's last
    # micro-batches also take clips a whole batch would drop); the masks are drawn and cut per micro-batch
    # (or per masks.cut_batch clips, as each data-parallel rank does in V-JEPA). Given the same masks, the
    # gradient is that of one pass over the whole batch (tests/test_training.py).
    micro_batch: int | None = None
    log_every: int = 10
    checkpoint_every: int = 300
    checkpoint_steps: list[int] = field(default_factory=list)  # kept forever (e.g. a teacher's ladder)
    keep_last: int = 2  # periodic checkpoints kept besides checkpoint_steps
    # torch.use_deterministic_algorithms for this run's process: GPU kernels that have a deterministic variant
    # use it, and one that has none raises instead of running. On a CPU the tiny runs are already repeatable
    # on one machine without it (docs/reproducibility.md); no setting makes two CPU kinds agree.
    deterministic: bool = False

    def validate(self) -> None:
        if self.log_every < 1 or self.checkpoint_every < 1 or self.keep_last < 1:
            raise ValueError("log_every, checkpoint_every and keep_last must be >= 1")
        if self.micro_batch is not None and self.micro_batch < 1:
            raise ValueError(f"micro_batch must be >= 1, or null for one pass (got {self.micro_batch})")

    def split_batch(self, batch: int) -> tuple[int, int]:
        """(clips per pass, passes) of a process's batch; a ValueError when micro_batch does not divide it."""
        size = batch if self.micro_batch is None else min(self.micro_batch, batch)
        if batch % size:
            divisor = max(d for d in range(1, size + 1) if batch % d == 0)
            raise ValueError(f"run.micro_batch {size} does not divide the batch of {batch} clips: choose a "
                             f"divisor, e.g. {divisor}")
        return size, batch // size


def loaded_batch(run: RunConfig, masks: MaskConfig, batch: int) -> tuple[int, int, int]:
    """(clips loaded and masked together, clips per pass, passes per step) of a process's `batch`: the loader
    reads masks.cut_batch clips at a time where set (V-JEPA's per-GPU cut), each run in passes; a ValueError
    when the sizes do not nest."""
    micro, passes = run.split_batch(batch)
    group = masks.cut_batch or micro
    if group % micro or batch % group:
        raise ValueError(f"masks.cut_batch {group} must be a multiple of the pass of {micro} clips (run.micro_batch) "
                         f"and divide a process's batch of {batch} clips")
    return group, micro, passes


@dataclass
class TeacherConfig:
    """Stage 1, V-Pixel: masked pixel reconstruction with multi-block masks."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    decoder: HeadConfig = field(default_factory=HeadConfig)
    # "token": each target token's pixels normalised per channel (VideoMAE, the paper). "none": the
    # clip's pixels as they are; on flat synthetic scenes per-token normalisation turns uniform
    # patches into unit-variance noise, which then dominates the loss.
    pixel_norm: Literal["token", "none"] = "token"
    masks: MaskConfig = field(default_factory=MaskConfig)
    # The tiny default gives the teacher a quarter of the student's steps (paper best: 40k of 240k).
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(steps=300, warmup_steps=30))
    run: RunConfig = field(default_factory=RunConfig)

    def validate(self) -> None:
        loaded_batch(self.run, self.masks, self.optim.batch_size)


@dataclass
class StudentConfig:
    """Stage 2, SALT: predict the frozen teacher's latents of the masked tokens."""

    teacher_checkpoint: str | None = None
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    predictor: HeadConfig = field(default_factory=HeadConfig)
    masks: MaskConfig = field(default_factory=MaskConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(steps=1200, warmup_steps=100))
    run: RunConfig = field(default_factory=RunConfig)

    def validate(self) -> None:
        loaded_batch(self.run, self.masks, self.optim.batch_size)


@dataclass
class VJEPA2Config:
    """The V-JEPA 2 baseline (docs/paper.md section 10): the student's encoder, predictor, masks and L1 loss,
    against layer_norm of an EMA copy of its own encoder instead of a frozen teacher."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    predictor: HeadConfig = field(default_factory=HeadConfig)
    # EMA momentum (start, final), linear over the run's steps with the first update at start, as V-JEPA's
    # momentum scheduler; equal values keep it constant (V-JEPA 2: 0.99925). V-JEPA 1 ramped 0.998 -> 1.0
    # over 1.25x its steps, so it ended at 0.9996: give (0.998, 0.9996) for that.
    momentum: tuple[float, float] = (0.99925, 0.99925)
    masks: MaskConfig = field(default_factory=MaskConfig)
    # AdamW (0.9, 0.999); lr warm-up 1e-4 -> 5.25e-4, then constant ("wsd" without a cool-down; set
    # cooldown_steps for the optional linear one to final_lr); weight decay constant 0.04; no gradient
    # clipping (V-JEPA 2's code has none). 1,500 steps is the tiny default's teacher + student total;
    # the warm-up is 5% of it, as V-JEPA 2's code's 12k of 240k.
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(
        steps=1500, schedule="wsd", lr=5.25e-4, start_lr=1e-4, final_lr=1e-6, warmup_steps=75, cooldown_steps=0,
        weight_decay=0.04, final_weight_decay=0.04, betas=(0.9, 0.999), grad_clip=0.0))
    run: RunConfig = field(default_factory=RunConfig)

    def validate(self) -> None:
        if not all(0 <= m <= 1 for m in self.momentum):
            raise ValueError(f"momentum values must lie in [0, 1] (got {list(self.momentum)})")
        loaded_batch(self.run, self.masks, self.optim.batch_size)
