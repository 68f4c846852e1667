"""The readout kinds (trainers/probe/config.py's READOUT_KINDS, their fits in trainers/probe/readouts.py): every kind
is one entry, probe.also names any of
them beside the main one, and the older probe.also_ridge keeps its meaning and its configs' hashes."""

from __future__ import annotations

import typing

import pytest
import torch

from trainers.config import ConfigError, config_hash, from_dict, to_dict
from trainers.data.clip_list import TaskClasses
from trainers.probe.config import READOUT_KINDS, ProbeConfig, parse_readout, readout_names
from trainers.probe.readouts import FITS, CachedSet, also_readouts, main_readout, read


def test_every_kind_of_the_table_is_a_probe_kind_and_reads_only_probe_knobs():
    assert set(typing.get_args(typing.get_type_hints(ProbeConfig)["kind"])) == set(READOUT_KINDS) == set(FITS)
    fields = set(typing.get_type_hints(ProbeConfig))
    for readout in READOUT_KINDS.values():
        assert set(readout.knobs) <= fields
        assert readout.variant_knob is None or readout.variant_knob in readout.knobs


def test_readout_names_parse_to_a_kind_and_its_variant():
    assert readout_names() == ["attentive", "ridge_flat", "ridge_mean", "ridge_mean_std"]
    assert parse_readout("ridge_mean_std") == ("ridge", "mean_std") and parse_readout("attentive") == ("attentive", None)
    with pytest.raises(ValueError, match="ridge_mean"):
        parse_readout("ridge")
    with pytest.raises(ConfigError, match="unknown readout 'lasso'"):
        from_dict(ProbeConfig, {"also": ["lasso"]})
    assert main_readout(ProbeConfig(kind="ridge", pooling="mean")) == ("ridge", "mean")
    assert main_readout(ProbeConfig()) == ("attentive", None)


def test_also_ridge_is_also_ridge_pooling_and_an_unset_also_keeps_the_hash():
    assert also_readouts(ProbeConfig(also_ridge=["mean", "flat"], also=["attentive", "ridge_mean"])) == [
        "ridge_mean", "ridge_flat", "attentive"]
    plain = ProbeConfig(also_ridge=["mean"])
    assert "also" not in to_dict(plain)  # configs hashed before probe.also existed keep their keys
    assert to_dict(ProbeConfig(also=["attentive"]))["also"] == ["attentive"]
    assert config_hash(from_dict(ProbeConfig, to_dict(plain))) == config_hash(plain)


def test_a_readout_beside_the_main_one_reads_as_the_main_one_does():
    torch.manual_seed(0)
    labels = torch.randint(0, 3, (40, 1))
    features = torch.randn(40, 8, 6) + labels[:, :, None].float()
    cached = CachedSet({"features": features[:30], "labels": labels[:30], "views": 1},
                       {"features": features[30:], "labels": labels[30:], "views": 1},
                       [TaskClasses("task", 3)], (2, 2, 2), 1, 0, torch.device("cpu"))
    cfg = ProbeConfig(kind="ridge", pooling="mean", epochs=2, batch_size=8)
    assert read(cached, cfg, *main_readout(cfg)) == read(cached, cfg, *parse_readout("ridge_mean"))
    attentive = ProbeConfig(epochs=2, batch_size=8)
    first = read(cached, attentive, *main_readout(attentive))["task"]
    beside = read(cached, cfg, *parse_readout("attentive"))["task"]
    assert first["accuracy"] == beside["accuracy"] and first["train_accuracy"] == beside["train_accuracy"]
