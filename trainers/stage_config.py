"""One typed config per stage: the V-Pixel teacher, the SALT student, the V-JEPA 2 baseline and the
attentive probe.

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
    # micro-batches also take clips a whole batch would drop); the masks are drawn and cut per micro-batch,
    # as each data-parallel rank does in V-JEPA. Given the same masks, the gradient is that of one pass over
    # the whole batch (tests/test_training.py).
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
        self.run.split_batch(self.optim.batch_size)


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
        self.run.split_batch(self.optim.batch_size)


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
    # the warm-up is 5% of it, as the paper's 12k of 240k.
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(
        steps=1500, schedule="wsd", lr=5.25e-4, start_lr=1e-4, final_lr=1e-6, warmup_steps=75, cooldown_steps=0,
        weight_decay=0.04, final_weight_decay=0.04, betas=(0.9, 0.999), grad_clip=0.0))
    run: RunConfig = field(default_factory=RunConfig)

    def validate(self) -> None:
        if not all(0 <= m <= 1 for m in self.momentum):
            raise ValueError(f"momentum values must lie in [0, 1] (got {list(self.momentum)})")
        self.run.split_batch(self.optim.batch_size)


@dataclass
class ProbeTaskConfig:
    """One evaluation task probed on its own clip lists (a path and the task's label per line), whatever the
    encoder was pre-trained on: K400, SSv2, ..."""

    train_list: str
    val_list: str
    num_classes: int | None = None  # null: the train list's largest label + 1
    clips: int | None = None  # null: probe.clips
    views: int | None = None  # null: probe.views

    def validate(self) -> None:
        if self.num_classes is not None and self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2 (got {self.num_classes})")
        if any(n is not None and n < 1 for n in (self.clips, self.views)):
            raise ValueError(f"clips and views must be >= 1 (got {self.clips}, {self.views})")


# The paper's probe protocols by name (docs/paper.md section 9): the (lr, weight decay) heads trained per task.
POOLING_WORDS = {"flat": "flat token grid", "mean": "per-time-step token means",
                 "mean_std": "per-time-step token means and stds"}
PROBE_PROTOCOLS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "fast": ((1e-3,), (0.01,)),
    "full": ((5e-3, 3e-3, 1e-3, 3e-4, 1e-4), (0.01, 0.1, 0.4, 0.8)),
}


@dataclass
class ProbeConfig:
    """Frozen-backbone attentive probe (docs/paper.md section 9) on cached features."""

    # "fast": one head, lr 1e-3, weight decay 0.01. "full": 20 heads over lr x weight decay, the head chosen on
    # a split held out from train (holdout_fraction), never on val. lrs / weight_decays, where given, replace
    # the protocol's grid.
    protocol: Literal["fast", "full"] = "fast"
    # Evaluation tasks, each on its own lists; empty: the tasks of the data section on its train/val lists
    # (the embedded set's appearance and motion).
    tasks: dict[str, ProbeTaskConfig] = field(default_factory=dict)
    # Multi-clip, multi-view reading (V-JEPA's K400 evaluation is 8 clips x 3 views): `clips` clips evenly spaced
    # over each video, their tokens side by side (the probe attends over all of them), read in `views`
    # spatial crops along the long side, whose predictions are averaged. Training treats each view as a
    # sample. 1 x 1: the fast protocol's single centre clip. A task's own clips / views take precedence.
    clips: int = 1
    views: int = 1

    depth: int = 1  # paper: 4 (3 self-attention blocks + the cross-attention block); 1 keeps CPU probes fast
    heads: int | None = None
    epochs: int = 20  # the paper's fast protocol: a fixed number of passes, cosine lr (when `steps` is null)
    # Train by steps until the train accuracy stops rising, at most `steps` (constant lr): a head is read only
    # once it fits its own train split. Every `check_every` steps the accuracy on (up to 1,000) fit clips is
    # measured; training stops after `patience` checks without a gain of `min_gain` over the best one.
    steps: int | None = None
    check_every: int = 100
    patience: int = 3
    min_gain: float = 0.01
    batch_size: int = 64  # paper: 256
    # One head per (lr, weight decay) pair; with several, the best on a split held out from train is reported.
    lrs: list[float] | None = None  # null: the protocol's
    weight_decays: list[float] | None = None  # null: the protocol's
    holdout_fraction: float = 0.1
    extract_batch_size: int = 32
    single_frame: bool = False  # feed the centre frame repeated: what a model can tell without motion
    # "sincos": add a fixed (t, h, w) code to the features (RoPE encoders' tokens carry no absolute
    # position; trainers/models/probe.py). "none": the paper's probe, which adds nothing.
    position: Literal["sincos", "none"] = "sincos"
    # "attentive": the paper's probe (above). "ridge": closed-form ridge regression of the token grid pooled
    # by `pooling` (trainers/ridge_probe.py: "flat", the whole grid; "mean", each time step's token mean;
    # "mean_std", its mean and std), lambda chosen by cross-validation on train: exact and seconds on a
    # CPU, for small studies where a depth-1 attentive probe under-reads trained features.
    kind: Literal["attentive", "ridge"] = "attentive"
    pooling: Literal["flat", "mean", "mean_std"] = "flat"
    # Multiples of the feature dimensions (so one grid fits every pooling); the best on the held-out split.
    ridge_lambdas: list[float] = field(default_factory=lambda: [1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0])
    ridge_folds: int = 5  # lambda is chosen by this many-fold cross-validation on train
    # Ridge readouts computed beside the main one on the same cached features (seconds each), so that
    # every encoder is compared on more than one readout: a pooling each, results under "readouts".
    also_ridge: list[Literal["flat", "mean", "mean_std"]] = field(default_factory=list)
    device: str = "auto"

    def validate(self) -> None:
        if self.depth < 1 or self.epochs < 1 or self.batch_size < 1:
            raise ValueError("depth, epochs and batch_size must be >= 1")
        if self.steps is not None and (self.steps < 1 or self.check_every < 1 or self.patience < 1):
            raise ValueError(f"steps, check_every and patience must be >= 1 (got {self.steps}, {self.check_every}, "
                             f"{self.patience}); set probe.steps=null for the fixed-epoch protocol")
        if self.lrs == [] or self.weight_decays == []:
            raise ValueError("lrs and weight_decays need at least one value each, or null for the protocol's")
        if self.clips < 1 or self.views < 1:
            raise ValueError(f"clips and views must be >= 1 (got {self.clips}, {self.views})")
        if not self.ridge_lambdas or min(self.ridge_lambdas) <= 0:
            raise ValueError(f"ridge_lambdas needs at least one value, all > 0 (got {self.ridge_lambdas})")
        if self.ridge_folds < 2:
            raise ValueError(f"ridge_folds must be >= 2 (got {self.ridge_folds})")
        if not 0 < self.holdout_fraction < 1:
            raise ValueError(f"holdout_fraction must lie in (0, 1) (got {self.holdout_fraction})")

    def readout(self) -> dict[str, str]:
        """How an accuracy was read, as results-table columns: the kind, pooling and protocol, and `readout`, the
        words a report prints beside every accuracy (a ridge readout is not the attentive probe)."""
        if self.kind == "ridge":
            label = (f"ridge regression on the {POOLING_WORDS[self.pooling]}, lambda by {self.ridge_folds}-fold "
                     f"cross-validation on train")
        else:
            heads = self.head_grid()
            rule = (f"one head, lr {heads[0][0]:g}, weight decay {heads[0][1]:g}" if len(heads) == 1 else
                    f"{len(heads)} lr x weight-decay heads, the best on a held-out split of train")
            length = f"{self.epochs} epochs" if self.steps is None else f"up to {self.steps} steps"
            label = f"attentive probe of depth {self.depth} ({self.protocol} protocol: {rule}; {length})"
        if (self.clips, self.views) != (1, 1):
            label += f"; {self.clips} clips x {self.views} views"
        if self.single_frame:
            label += "; single frame"
        return {"readout": label, "probe_kind": self.kind,
                "probe_pooling": self.pooling if self.kind == "ridge" else "",
                "probe_protocol": self.protocol if self.kind == "attentive" else ""}

    def head_grid(self) -> list[tuple[float, float]]:
        """The (lr, weight decay) heads trained per task: the protocol's, or lrs x weight_decays where given."""
        lrs, decays = PROBE_PROTOCOLS[self.protocol]
        return [(lr, wd) for lr in (self.lrs or lrs) for wd in (self.weight_decays or decays)]
