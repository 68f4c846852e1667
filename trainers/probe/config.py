"""The probe section of an experiment: which lists are read, and how a frozen encoder's features are read
(the main readout and those computed beside it: each kind's knobs, words and columns here, its fit in
trainers/probe/readouts.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from trainers.config import WRITTEN_WHEN_SET


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
PROBE_PROTOCOLS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "fast": ((1e-3,), (0.01,)),
    "full": ((5e-3, 3e-3, 1e-3, 3e-4, 1e-4), (0.01, 0.1, 0.4, 0.8)),
}


@dataclass
class ProbeConfig:
    """Frozen-backbone probe (docs/paper.md section 9) on cached features: the attentive probe by default."""

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
    # position; trainers/probe/attentive_head.py). "none": the paper's probe, which adds nothing.
    position: Literal["sincos", "none"] = "sincos"
    # The probe is V-JEPA 2's AttentiveClassifier (trainers/probe/attentive_head.py). These add the pieces the
    # project's probe had before it matched upstream (results read before 2026-12-06 had all three on): a
    # LayerNorm on the query before cross-attention, an output projection after it, a LayerNorm before the Linear.
    # The paper's training data for the probe (V-JEPA 2's protocol): every epoch the train clips are decoded anew
    # with the training augmentation (the data section's random-resized crop and flip, then random erasing with
    # probability erase_prob) and read by the frozen encoder; false: features cached once from the evaluation
    # crop (fast; the fast protocol). Attentive readouts only, by epochs, one clip per video
    # (trainers/probe/augmented.py; its cost against cached features: benchmarks/probe_augment.md).
    augment: bool = field(default=False, metadata=WRITTEN_WHEN_SET)
    erase_prob: float = field(default=0.25, metadata=WRITTEN_WHEN_SET)
    query_norm: bool = field(default=False, metadata=WRITTEN_WHEN_SET)
    out_proj: bool = field(default=False, metadata=WRITTEN_WHEN_SET)
    head_norm: bool = field(default=False, metadata=WRITTEN_WHEN_SET)
    # The main readout, a kind of trainers/probe/readouts.py's table. "attentive": the paper's probe (above).
    # "ridge": closed-form ridge regression of the token grid pooled by `pooling` (trainers/probe/ridge.py:
    # "flat", the whole grid; "mean", each time step's token mean; "mean_std", its mean and std), lambda chosen
    # by cross-validation on train: exact and seconds on a CPU, for small studies where a depth-1 attentive
    # probe under-reads trained features.
    kind: Literal["attentive", "ridge"] = "attentive"
    pooling: Literal["flat", "mean", "mean_std"] = "flat"
    # Multiples of the feature dimensions (so one grid fits every pooling); the best on the held-out split.
    ridge_lambdas: list[float] = field(default_factory=lambda: [1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0])
    ridge_folds: int = 5  # lambda is chosen by this many-fold cross-validation on train
    # Ridge readouts computed beside the main one on the same cached features (seconds each), so that
    # every encoder is compared on more than one readout: a pooling each, results under "readouts" as
    # ridge_<pooling>. The same as naming ridge_<pooling> in `also`.
    also_ridge: list[Literal["flat", "mean", "mean_std"]] = field(default_factory=list)
    # Any readouts computed beside the main one, by name: a kind of the table (attentive) or a kind and its
    # variant (ridge_mean); results under "readouts" by that name. Each reads this section's knobs.
    also: list[str] = field(default_factory=list, metadata=WRITTEN_WHEN_SET)
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
        for name in self.also:
            parse_readout(name)
        if not 0 <= self.erase_prob <= 1:
            raise ValueError(f"erase_prob must lie in [0, 1] (got {self.erase_prob})")
        if self.augment and self.steps is not None:
            raise ValueError("probe.augment trains by epochs, as V-JEPA 2's probe does: set probe.steps=null")
        clips = [self.clips, *(task.clips for task in self.tasks.values() if task.clips is not None)]
        if self.augment and max(clips) > 1:
            raise ValueError(f"probe.augment reads one clip per video (got clips {max(clips)}): set the probe's clips "
                             f"to 1, or probe.augment=false to read several clips from cached features")

    def readout(self) -> dict[str, str]:
        """How an accuracy was read, as results-table columns: the kind, pooling and protocol, and `readout`, the
        words a report prints beside every accuracy (a ridge readout is not the attentive probe)."""
        main = READOUT_KINDS[self.kind]
        label = main.describe(self)
        if (self.clips, self.views) != (1, 1):
            label += f"; {self.clips} clips x {self.views} views"
        if self.single_frame:
            label += "; single frame"
        return {"readout": label, "probe_kind": self.kind, "probe_pooling": "", "probe_protocol": "",
                **main.columns(self)}

    def head_grid(self) -> list[tuple[float, float]]:
        """The (lr, weight decay) heads trained per task: the protocol's, or lrs x weight_decays where given."""
        lrs, decays = PROBE_PROTOCOLS[self.protocol]
        return [(lr, wd) for lr in (self.lrs or lrs) for wd in (self.weight_decays or decays)]


# -- Readout kinds: what each says of this section (its fit is trainers/probe/readouts.py's, by the same name) ---

POOLINGS: tuple[str, ...] = ("flat", "mean", "mean_std")
POOLING_WORDS = {"flat": "flat token grid", "mean": "per-time-step token means",
                 "mean_std": "per-time-step token means and stds"}


@dataclass(frozen=True)
class ReadoutKind:
    knobs: tuple[str, ...]  # the ProbeConfig fields it reads
    describe: Callable[[ProbeConfig], str]  # as the main readout: the words a report prints beside every accuracy
    columns: Callable[[ProbeConfig], dict[str, str]]  # as the main readout: its own results-table columns
    variants: tuple[str, ...] = ()  # named "<kind>_<variant>" in probe.also
    variant_knob: str | None = None  # the ProbeConfig field that picks the main readout's variant


def _describe_attentive(cfg: ProbeConfig) -> str:
    heads = cfg.head_grid()
    rule = (f"one head, lr {heads[0][0]:g}, weight decay {heads[0][1]:g}" if len(heads) == 1 else
            f"{len(heads)} lr x weight-decay heads, the best on a held-out split of train")
    length = f"{cfg.epochs} epochs" if cfg.steps is None else f"up to {cfg.steps} steps"
    data = "train clips augmented anew each epoch" if cfg.augment else "cached evaluation-crop features"
    extras = [name for name, on in (("query norm", cfg.query_norm), ("output projection", cfg.out_proj),
                                    ("pre-head norm", cfg.head_norm)) if on]
    shape = f" with {', '.join(extras)}" if extras else ""
    return f"attentive probe of depth {cfg.depth}{shape} ({cfg.protocol} protocol: {rule}; {length}; {data})"


def _describe_ridge(cfg: ProbeConfig) -> str:
    return (f"ridge regression on the {POOLING_WORDS[cfg.pooling]}, lambda by {cfg.ridge_folds}-fold "
            f"cross-validation on train")


READOUT_KINDS: dict[str, ReadoutKind] = {
    "attentive": ReadoutKind(
        knobs=("protocol", "depth", "heads", "epochs", "steps", "check_every", "patience", "min_gain", "batch_size",
               "lrs", "weight_decays", "holdout_fraction", "position", "augment", "erase_prob", "query_norm",
               "out_proj", "head_norm"),
        describe=_describe_attentive,
        columns=lambda cfg: {"probe_protocol": cfg.protocol},
    ),
    "ridge": ReadoutKind(
        knobs=("pooling", "ridge_lambdas", "ridge_folds"),
        describe=_describe_ridge,
        columns=lambda cfg: {"probe_pooling": cfg.pooling},
        variants=POOLINGS,
        variant_knob="pooling",
    ),
}


def readout_names() -> list[str]:
    """Every name probe.also accepts."""
    return [f"{kind}_{variant}" if variant else kind
            for kind, readout in READOUT_KINDS.items() for variant in (readout.variants or ("",))]


def parse_readout(name: str) -> tuple[str, str | None]:
    """(kind, variant) of a readout's name; a ValueError naming the valid ones."""
    for kind, readout in READOUT_KINDS.items():
        if name == kind and not readout.variants:
            return kind, None
        if readout.variants and name.startswith(f"{kind}_") and name[len(kind) + 1:] in readout.variants:
            return kind, name[len(kind) + 1:]
    raise ValueError(f"unknown readout {name!r} in probe.also: choose among {', '.join(readout_names())}")
