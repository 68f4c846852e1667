from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import pytest

from trainers.config import ConfigError, config_hash, from_dict, to_dict
from trainers.config_files import load_config, merge, parse_overrides, save_config


@dataclass
class DataCfg:
    root: str = "/data"
    frames: int = 16
    frame_step: int = 4
    tasks: list[str] = field(default_factory=lambda: ["k400"])
    crop: tuple[int, int] = (224, 224)
    scales: tuple[float, ...] = (0.3, 1.0)

    def validate(self) -> None:
        if self.frames <= 0:
            raise ValueError(f"frames must be positive, got {self.frames}")


@dataclass
class TrainCfg:
    lr: float = 1e-4
    epochs: int = 10
    amp: bool = True
    optimizer: Literal["adamw", "sgd"] = "adamw"
    warmup: Optional[int] = None
    clip: float | None = 1.0
    loss_weights: dict[str, float] = field(default_factory=lambda: {"jepa": 1.0})
    extra: Any = None


@dataclass
class ExperimentCfg:
    name: str = "exp"
    seed: int = 0
    data: DataCfg = field(default_factory=DataCfg)
    train: TrainCfg = field(default_factory=TrainCfg)

    def validate(self) -> None:
        if self.train.epochs * self.data.frames > 10_000:
            raise ValueError("budget too large: epochs * frames > 10000")


@dataclass
class Required:
    path: str
    n: int = 1


# ---------------------------------------------------------------- from_dict


def test_defaults_and_nested_construction() -> None:
    assert from_dict(ExperimentCfg, {}) == ExperimentCfg()
    cfg = from_dict(
        ExperimentCfg,
        {"name": "run1", "data": {"frames": 8, "tasks": ["a", "b"], "crop": [112, 128]}, "train": {"lr": 3e-4}},
    )
    assert cfg.name == "run1"
    assert cfg.data.frames == 8 and cfg.data.frame_step == 4  # untouched sibling keeps its default
    assert cfg.data.tasks == ["a", "b"]
    assert cfg.data.crop == (112, 128) and isinstance(cfg.data.crop, tuple)
    assert cfg.train.lr == 3e-4 and cfg.train.epochs == 10


@dataclass
class StageCfg:
    """Two sections of one class with different defaults, as the stages' optim sections."""

    short: TrainCfg = field(default_factory=lambda: TrainCfg(lr=1e-3, epochs=2))
    long: TrainCfg = field(default_factory=TrainCfg)


def test_a_partial_section_keeps_its_parents_defaults() -> None:
    cfg = from_dict(StageCfg, {"short": {"amp": False}, "long": {"amp": False}})
    assert (cfg.short.lr, cfg.short.epochs, cfg.short.amp) == (1e-3, 2, False)  # not TrainCfg's own 1e-4 and 10
    assert (cfg.long.lr, cfg.long.epochs) == (1e-4, 10)
    # A given dict replaces the default one; it does not merge into it.
    assert from_dict(StageCfg, {"short": {"loss_weights": {"a": 2}}}).short.loss_weights == {"a": 2.0}


def test_optional_literal_dict_any() -> None:
    cfg = from_dict(
        ExperimentCfg,
        {"train": {"warmup": 5, "clip": None, "optimizer": "sgd", "loss_weights": {"a": 2}, "extra": {"x": [1]}}},
    )
    assert cfg.train.warmup == 5 and cfg.train.clip is None and cfg.train.optimizer == "sgd"
    assert cfg.train.loss_weights == {"a": 2.0} and isinstance(cfg.train.loss_weights["a"], float)
    assert cfg.train.extra == {"x": [1]}
    assert from_dict(ExperimentCfg, {"train": {"warmup": None}}).train.warmup is None


def test_int_accepted_for_float_and_stored_as_float() -> None:
    cfg = from_dict(ExperimentCfg, {"train": {"lr": 1, "clip": 2}})
    assert cfg.train.lr == 1.0 and type(cfg.train.lr) is float
    assert type(cfg.train.clip) is float
    assert cfg.data.scales == (0.3, 1.0)
    assert from_dict(DataCfg, {"scales": [1, 2, 3]}).scales == (1.0, 2.0, 3.0)


def test_missing_required_key() -> None:
    assert from_dict(Required, {"path": "x"}) == Required("x")
    with pytest.raises(ConfigError, match=r"'path' is required"):
        from_dict(Required, {"n": 2}, source="r.yaml")


def test_unknown_top_level_key_suggests() -> None:
    with pytest.raises(ConfigError) as info:
        from_dict(ExperimentCfg, {"sed": 1}, source="experiment.yaml")
    msg = str(info.value)
    assert msg.startswith("experiment.yaml: unknown key 'sed'")
    assert "did you mean 'seed'?" in msg
    assert "name, seed, data, train" in msg


def test_unknown_nested_key_gives_dotted_path_and_suggestion() -> None:
    with pytest.raises(ConfigError) as info:
        from_dict(ExperimentCfg, {"data": {"frame_stpe": 2}}, source="experiment.yaml")
    msg = str(info.value)
    assert "experiment.yaml: unknown key 'data.frame_stpe'" in msg
    assert "did you mean 'data.frame_step'?" in msg
    assert "Valid keys under 'data': root, frames, frame_step" in msg


def test_unknown_key_without_close_match_lists_valid_keys() -> None:
    with pytest.raises(ConfigError) as info:
        from_dict(ExperimentCfg, {"train": {"zzzzzz": 1}})
    assert "did you mean" not in str(info.value)
    assert "Valid keys under 'train': lr, epochs" in str(info.value)


@pytest.mark.parametrize(
    ("data", "path", "expected"),
    [
        ({"seed": True}, "'seed'", "int"),  # bool is an int subclass; must still be rejected
        ({"seed": 3.0}, "'seed'", "int"),
        ({"seed": "3"}, "'seed'", "int"),
        ({"train": {"lr": "fast"}}, "'train.lr'", "float"),
        ({"train": {"lr": False}}, "'train.lr'", "float"),
        ({"train": {"amp": 1}}, "'train.amp'", "bool"),
        ({"train": {"amp": "true"}}, "'train.amp'", "bool"),
        ({"name": 5}, "'name'", "str"),
        ({"data": {"tasks": "k400"}}, "'data.tasks'", "list[str]"),
        ({"data": {"tasks": ["a", 3]}}, "'data.tasks[1]'", "str"),
        ({"data": {"scales": [0.5, "x"]}}, "'data.scales[1]'", "float"),
        ({"train": {"warmup": 1.5}}, "'train.warmup'", "int"),
        ({"train": {"loss_weights": {"a": "b"}}}, "'train.loss_weights.a'", "float"),
        ({"train": {"loss_weights": [1]}}, "'train.loss_weights'", "dict[str, float]"),
        ({"data": 3}, "'data'", "DataCfg"),
    ],
)
def test_wrong_types_name_path_and_expected_type(data: dict, path: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        from_dict(ExperimentCfg, data, source="e.yaml")
    msg = str(info.value)
    assert msg.startswith(f"e.yaml: {path} expects {expected}"), msg
    assert "got" in msg


def test_wrong_tuple_length() -> None:
    with pytest.raises(ConfigError) as info:
        from_dict(ExperimentCfg, {"data": {"crop": [224, 224, 3]}})
    msg = str(info.value)
    assert "'data.crop'" in msg and "2 items" in msg and "got 3 items" in msg


def test_literal_outside_choices_lists_them() -> None:
    with pytest.raises(ConfigError) as info:
        from_dict(ExperimentCfg, {"train": {"optimizer": "adam"}}, source="e.yaml")
    msg = str(info.value)
    assert "'train.optimizer'" in msg and "'adamw', 'sgd'" in msg and "'adam'" in msg


def test_validate_errors_carry_path_children_first() -> None:
    with pytest.raises(ConfigError) as info:
        from_dict(ExperimentCfg, {"data": {"frames": 0}, "train": {"epochs": 10**6}}, source="e.yaml")
    # The child's error wins over the parent's (which would also fail here).
    assert str(info.value).startswith("e.yaml: 'data' is invalid: frames must be positive, got 0")
    with pytest.raises(ConfigError, match=r"the top level is invalid: budget too large"):
        from_dict(ExperimentCfg, {"train": {"epochs": 10**6}})


def test_to_dict_is_plain_and_round_trips() -> None:
    cfg = from_dict(ExperimentCfg, {"data": {"crop": [1, 2]}, "train": {"warmup": 3}})
    plain = to_dict(cfg)
    assert plain["data"]["crop"] == [1, 2] and plain["data"]["scales"] == [0.3, 1.0]
    assert list(plain) == ["name", "seed", "data", "train"]
    assert from_dict(ExperimentCfg, plain) == cfg


# ---------------------------------------------------------------- overrides / merge


def test_parse_overrides_values() -> None:
    got = parse_overrides(
        [
            "data.frames=8",
            "train.lr=1e-3",
            "train.clip=2e4",
            "train.extra=-1.5E+2",
            "data.tasks=[a, b]",
            "data.scales=[1e-1, 5e0]",
            "name=foo",
            "train.amp=false",
            "train.warmup=null",
            "a.b.c=x=y",
        ]
    )
    assert got == {
        "data": {"frames": 8, "tasks": ["a", "b"], "scales": [0.1, 5.0]},
        "train": {"lr": 1e-3, "clip": 2e4, "extra": -150.0, "amp": False, "warmup": None},
        "name": "foo",
        "a": {"b": {"c": "x=y"}},
    }
    assert type(got["train"]["lr"]) is float and type(got["train"]["clip"]) is float
    assert parse_overrides(["name='1e-3'"]) == {"name": "1e-3"}  # quoting keeps a string


@pytest.mark.parametrize("item", ["data.frames", "=3", "data..frames=3", ".x=1"])
def test_parse_overrides_malformed(item: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_overrides([item])
    assert repr(item) in str(info.value) and "key.path=value" in str(info.value)


def test_merge_is_deep_and_replaces_lists() -> None:
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 1}
    out = merge(base, {"a": {"y": [3]}, "c": 2})
    assert out == {"a": {"x": 1, "y": [3]}, "b": 1, "c": 2}
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": 1}  # inputs untouched


# ---------------------------------------------------------------- files


def test_load_config_yaml_base_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text("name: from_yaml\ndata:\n  frames: 8\n  tasks: [ssv2]\ntrain:\n  lr: 5e-4\n")
    cfg = load_config(
        ExperimentCfg,
        path,
        ["data.frame_step=2", "train.lr=1e-3", "data.tasks=[a, b]"],
        base={"seed": 7, "data": {"frames": 4, "root": "/base"}},
    )
    assert cfg.name == "from_yaml" and cfg.seed == 7
    assert cfg.data.root == "/base" and cfg.data.frames == 8 and cfg.data.frame_step == 2
    assert cfg.data.tasks == ["a", "b"] and cfg.train.lr == 1e-3
    assert load_config(ExperimentCfg, path).train.lr == 5e-4  # exponent without a dot in the file too


def test_load_config_without_file_and_empty_file(tmp_path: Path) -> None:
    assert load_config(ExperimentCfg, None, ["seed=3"]).seed == 3
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_config(ExperimentCfg, empty) == ExperimentCfg()


def test_load_config_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text("data:\n  frame_stpe: 2\n")
    with pytest.raises(ConfigError) as info:
        load_config(ExperimentCfg, path)
    assert str(info.value).startswith(f"{path}:2: unknown key 'data.frame_stpe'; did you mean 'data.frame_step'?")
    path.write_text("seed: 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(ExperimentCfg, path, ["train.lrr=1"])
    assert "command-line overrides: unknown key 'train.lrr'; did you mean 'train.lr'?" in str(info.value)


def test_load_config_non_mapping_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match=r"list\.yaml: the top level must be a mapping"):
        load_config(ExperimentCfg, path)
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(ExperimentCfg, missing)
    assert str(missing) in str(info.value) and "not found" in str(info.value)
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:2:1: not valid YAML: while parsing a flow sequence"):
        load_config(ExperimentCfg, bad)


def test_save_then_load_round_trip(tmp_path: Path) -> None:
    cfg = from_dict(
        ExperimentCfg,
        {
            "name": "1e-3",  # a string that looks like a number must come back as a string
            "data": {"tasks": ["yes", "null"], "crop": [112, 112], "scales": [1e-5, 2.5]},
            "train": {"lr": 1e-6, "warmup": 3, "clip": None, "optimizer": "sgd", "loss_weights": {"b": 1, "a": 2}},
        },
    )
    path = tmp_path / "sub" / "saved.yaml"
    save_config(cfg, path)
    assert load_config(ExperimentCfg, path) == cfg
    text = path.read_text()
    assert text.index("name:") < text.index("seed:") < text.index("data:") < text.index("train:")
    assert [p.name for p in path.parent.iterdir()] == ["saved.yaml"]  # no temp file left behind
    save_config(from_dict(ExperimentCfg, {"seed": 9}), path)  # overwrite in place
    assert load_config(ExperimentCfg, path).seed == 9


def test_config_hash_stable_and_sensitive() -> None:
    a = ExperimentCfg()
    h = config_hash(a)
    assert len(h) == 12 and h == config_hash(ExperimentCfg()) and len(config_hash(a, 20)) == 20
    assert config_hash(from_dict(ExperimentCfg, {"train": {"lr": 1e-4}})) == h
    assert config_hash(from_dict(ExperimentCfg, {"train": {"lr": 2e-4}})) != h
    assert config_hash(from_dict(ExperimentCfg, {"data": {"tasks": ["k400", "x"]}})) != h
    # Dict insertion order does not matter, values do.
    w1 = from_dict(ExperimentCfg, {"train": {"loss_weights": {"a": 1, "b": 2}}})
    w2 = from_dict(ExperimentCfg, {"train": {"loss_weights": {"b": 2, "a": 1}}})
    assert config_hash(w1) == config_hash(w2)


def test_config_hash_same_in_another_process() -> None:
    # PYTHONHASHSEED differs per process; the hash must not depend on it.
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from test_config import ExperimentCfg; from trainers.config import config_hash;"
        "print(config_hash(ExperimentCfg()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parent)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == config_hash(ExperimentCfg())


def test_every_problem_of_a_file_at_once_with_its_line(tmp_path: Path) -> None:
    """A user fixing a config sees every mistake in one run, each at its file:line, not one per attempt."""
    from salt_budget.experiment import load_experiment

    path = tmp_path / "exp.yaml"
    path.write_text("name: x\ndata:\n  frames: eight\n  resolutoin: 64\nteacher:\n  optim:\n    lr: fast\n")
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    problems = info.value.problems
    assert len(problems) == 3 and str(info.value).startswith("3 problems in the config:")
    assert any(p.startswith(f"{path}:3: 'data.frames' expects int") for p in problems)
    assert any(p.startswith(f"{path}:4: unknown key 'data.resolutoin'; did you mean 'data.resolution'") for p in problems)
    assert any(p.startswith(f"{path}:7: 'teacher.optim.lr' expects float") for p in problems)
    # A value the command line replaced has no line in the file.
    with pytest.raises(ConfigError) as info:
        load_experiment(path, ["data.frames=nine", "data.resolutoin=1", "teacher.optim.lr=0.1"])
    assert str(info.value).startswith("command-line overrides: unknown key 'data.resolutoin'")


def test_validate_problems_are_collected_too(tmp_path: Path) -> None:
    from salt_budget.experiment import load_experiment

    path = tmp_path / "exp.yaml"
    path.write_text("data:\n  frames: 0\n  max_bad_fraction: 2\nprobe:\n  epochs: 0\n")
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    assert len(info.value.problems) == 2, info.value.problems
    assert all(p.startswith(f"{path}:") for p in info.value.problems)
