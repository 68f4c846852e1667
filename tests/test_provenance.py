"""How and where a number was read: the provenance record of a process, the readout's words, and the report
naming the readout and flagging tables that mix readouts, code versions or machines."""

import json
import math

import pandas as pd
import pytest
import torch

from analysis.findings import compute
from analysis.results import Metric, floor_accuracy, from_frame, readout_name, size_order
from analysis.schema import UNKNOWN_READOUT
from analysis.summary import write_summary
from fixtures.results_table import FLOOR, READOUT, results_frame
from trainers.provenance import PROVENANCE_FILE, cpu_model, provenance, record_provenance
from trainers.probe.config import ProbeConfig


def test_a_process_records_its_code_libraries_machine_and_threads(tmp_path):
    record = provenance("cpu")
    assert record["machine"] == cpu_model() and record["threads"] == torch.get_num_threads()
    assert record["torch_version"] == torch.__version__ and isinstance(record["git_dirty"], bool)
    assert record["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    record_provenance(tmp_path, "cpu", world=1)
    record_provenance(tmp_path, "cpu", world=1)  # a resumed run adds a line: both processes stay on record
    lines = [json.loads(line) for line in (tmp_path / PROVENANCE_FILE).read_text().splitlines()]
    assert len(lines) == 2 and all(line["machine"] == cpu_model() and line["world"] == 1 for line in lines)


def test_the_readout_says_ridge_or_attentive_and_how_its_head_was_chosen():
    ridge = ProbeConfig(kind="ridge", pooling="mean").readout()
    assert ridge["readout"].startswith("ridge regression on the per-time-step token means")
    assert (ridge["probe_kind"], ridge["probe_pooling"], ridge["probe_protocol"]) == ("ridge", "mean", "")
    fast = ProbeConfig().readout()["readout"]
    assert fast.startswith("attentive probe") and "one head, lr 0.001" in fast
    full = ProbeConfig(protocol="full", clips=2, views=3).readout()["readout"]
    assert "20 lr x weight-decay heads, the best on a held-out split" in full and "2 clips x 3 views" in full


def _summary(frame: pd.DataFrame) -> str:
    results = from_frame(frame)
    metrics = results.metrics()
    return write_summary(results, compute(results, metrics), metrics, size_order(results.rows))


def test_a_ridge_report_names_ridge_and_never_the_attentive_probe():
    text = _summary(results_frame())
    assert f"Readout: {READOUT['readout']}" in text and "attentive" not in text
    assert "machine Fixture CPU (AVX2 kernels)" in text and "WARNING" not in text


def test_a_table_mixing_readouts_or_code_versions_is_flagged():
    frame = results_frame()
    frame.loc[frame.index[:3], "readout"] = "attentive probe of depth 1 (fast protocol)"
    frame.loc[frame.index[:2], "git_commit"] = "def5678"
    results = from_frame(frame)
    warnings = [note for note in results.notes if note.startswith("WARNING")]
    assert len(warnings) == 2 and "2 readouts" in warnings[0] and "2 code versions" in warnings[1]
    assert " / " in results.readout  # both named, neither hidden
    assert "WARNING: this table mixes 2 readouts" in _summary(frame)


def test_the_random_init_floor_is_kept_apart_from_the_encoders():
    results = from_frame(results_frame(floor=True))
    assert len(results.floor) == 2 and not (results.rows["role"] == "random_init").any()
    assert floor_accuracy(results, Metric("appearance")) == pytest.approx(sum(FLOOR["small"]) / 2)
    assert math.isnan(floor_accuracy(from_frame(results_frame()), Metric("appearance")))  # none measured


def test_a_table_from_before_provenance_says_the_readout_is_not_recorded():
    frame = results_frame().drop(columns=["readout"])
    assert readout_name(frame) == UNKNOWN_READOUT
