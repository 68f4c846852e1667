"""What a reader must be able to trust in the report's figures, checked on the figure objects: every series
identifiable in the legend (and the legend tall enough to show it), a tick at every tested share, FLOPs
written as powers of ten, no error bar from one seed, bar axes ranged from the data, and the readout and the
random-init floor named on every accuracy figure (or the floor said to be missing)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from fixtures.results_table import results_frame

from analysis.figure_axes import data_range, share_text
from analysis.figure_parts import (
    FLOOR_NAME, LEGEND_ROW_PX, References, legend_entries,
)
from analysis.figures import all_figures
from analysis.findings import compute
from analysis.results import Metric, from_frame, size_order
from analysis.schema import FLOOR_ROLE
from analysis.study_figures import allocation_figure as study_allocation_figure
from analysis.study_figures import variants_figure
from salt_budget.sweep.results.store import COLUMNS

READOUT = "ridge regression on the flat token grid, lambda by 5-fold cross-validation on train"
SIZES = {"micro": 0.5e9, "tiny": 1e9, "small": 2e9}  # teacher FLOPs per step
BUDGETS = (960, 1440, 1920)
SHARES = (1 / 6, 1 / 3, 1 / 2)
SEEDS = (0, 1)
TASKS = {"appearance": 0.10, "motion": 0.10}  # chance
FLOOR = {"appearance": 0.12, "motion": 0.24}  # the random-init encoder's accuracy
ACCURACY_FIGURES = ("pareto", "allocation", "teacher_size", "loss_accuracy", "teacher_metrics", "student_vs_teacher")


def _common(unit: str, role: str, seed: int) -> dict:
    return {"schema_version": 1, "sweep": "crowded", "config_hash": "c0ffee", "unit_key": unit, "role": role,
            "budget_kind": "steps", "seed": seed, "status": "ok", "readout": READOUT,
            "written_at": "2026-12-01T00:00:00+00:00",
            **{f"chance_{task}": chance for task, chance in TASKS.items()}}


def _accuracies(base: float, seed: int) -> dict:
    values = {task: base + 0.01 * seed + 0.05 * i for i, task in enumerate(TASKS)}
    return {**{f"acc_{t}": v for t, v in values.items()}, "acc_mean": float(np.mean(list(values.values())))}


def _teacher_row(size: str, steps: int, seed: int) -> dict:
    flops = steps * SIZES[size]
    return {**_common(f"teacher-{size}-{steps}-s{seed}", "teacher", seed), "teacher_key": f"{size}-{steps}-s{seed}",
            "teacher_size": size, "teacher_steps": steps, "step": steps, "is_final": True, "flops_teacher": flops,
            "flops_student": 0.0, "flops_total": flops, "loss_final": 1 - steps / 4000 - 0.05 * list(SIZES).index(size),
            "loss_smoothed": 1 - steps / 4000 - 0.05 * list(SIZES).index(size),
            "rankme": 8.0, **_accuracies(0.12 + steps / 10000, seed)}


def _student_rows(size: str, budget: int, share: float, seed: int) -> list[dict]:
    steps = round(budget * share)
    student_steps = budget - steps
    allocation = f"N{budget}_T{steps}-{size}_S{student_steps}-tiny_seed{seed}"
    rows = []
    for fraction in (1 / 3, 2 / 3, 1.0):
        step = round(student_steps * fraction)
        loss = 0.65 - 0.1 * fraction + 0.02 * seed - 0.03 * list(SIZES).index(size) + budget / 40000
        peak = 0.14 + budget / 20000 + 0.01 * list(SIZES).index(size)
        accuracy = peak - 0.05 * (math.log(share / 0.3)) ** 2 - 0.3 * (loss - 0.55)
        rows.append({**_common(f"student-{allocation}", "student", seed), "allocation_id": allocation,
                     "budget": budget, "teacher_key": f"{size}-{steps}-s{seed}", "teacher_size": size,
                     "teacher_steps": steps, "teacher_share": share, "student_size": "tiny",
                     "student_steps": student_steps, "step": step, "is_final": fraction == 1.0,
                     "flops_teacher": steps * SIZES[size], "flops_student": step * 1e9,
                     "flops_total": steps * SIZES[size] + step * 1e9, "loss_final": loss, "loss_smoothed": loss,
                     "rankme": 9.0, **_accuracies(accuracy, seed)})
    return rows


def _floor_rows() -> list[dict]:
    rows = []
    for seed in SEEDS:
        accuracies = {f"acc_{task}": value + 0.002 * seed for task, value in FLOOR.items()}
        rows.append({**_common(f"random_init-tiny-s{seed}", FLOOR_ROLE, seed), "student_size": "tiny", "step": 0,
                     "is_final": True, "flops_teacher": 0.0, "flops_student": 0.0, "flops_total": 0.0,
                     **accuracies, "acc_mean": float(np.mean(list(accuracies.values())))})
    return rows


def crowded_frame(floor: bool = True, seeds: tuple[int, ...] = SEEDS) -> pd.DataFrame:
    """Three teacher sizes at seven teacher-step counts and two seeds: 42 teachers, the crowd that once
    overran a 10-colour legend; with the random-init floor and the readout recorded."""
    rows = []
    for size in SIZES:
        for seed in seeds:
            for budget in BUDGETS:
                for share in SHARES:
                    rows += _student_rows(size, budget, share, seed)
            for steps in sorted({round(b * s) for b in BUDGETS for s in SHARES}):
                rows.append(_teacher_row(size, steps, seed))
    if floor:
        rows += [r for r in _floor_rows() if r["seed"] in seeds]
    frame = pd.DataFrame(rows)
    for column, dtype in COLUMNS.items():
        frame[column] = (frame[column] if column in frame else pd.Series(index=frame.index, dtype=object)).astype(dtype)
    return frame


def sweep_figures(frame: pd.DataFrame, with_results: bool = True) -> dict:
    results = from_frame(frame)
    metrics = results.metrics()
    findings = compute(results, metrics)
    chance = {task: float(frame[f"chance_{task}"].dropna().mean()) for task in results.tasks}
    figures = all_figures(findings, metrics, size_order(results.rows), chance,
                          results=results if with_results else None)
    return {figure.name: figure for figure in figures}


@pytest.fixture(scope="module")
def crowded():
    return sweep_figures(crowded_frame())


# -- helpers that read a figure as a reader does -------------------------------------------------------------------


def _identity(trace) -> tuple:
    """What tells a trace apart to the eye: its markers' colour and symbol, its line's colour and dash."""
    mode = trace.mode or ""
    marker = (trace.marker.color, trace.marker.symbol) if "markers" in mode else (None, None)
    line = (trace.line.color, trace.line.dash) if "lines" in mode else (None, None)
    return (*marker, *line)


def _legend_identities(figure) -> dict[tuple, set]:
    """Each legend entry (group, name) and the (colour, symbol, dash) of the traces it stands for."""
    seen: dict[tuple, set] = {}
    for trace in figure.data:
        if trace.showlegend is False or not trace.name:
            continue
        seen.setdefault((trace.legendgroup, trace.name), set()).add(_identity(trace))
    return seen


def _texts(figure) -> str:
    layout = figure.layout
    parts = [layout.title.text or "", (layout.title.subtitle.text or "") if layout.title.subtitle else ""]
    for axis in (getattr(layout, name) for name in dir(layout) if name.startswith(("xaxis", "yaxis"))):
        if axis is not None and axis.title is not None and axis.title.text:
            parts.append(axis.title.text)
    return " ".join(parts)


def _axes(figure, prefix: str) -> list:
    layout = figure.layout
    return [layout[name] for name in layout if name.startswith(prefix) and layout[name] is not None]


def _shapes_named(figure, name: str) -> list:
    return [shape for shape in figure.layout.shapes if shape.name == name]


# -- the sweep report ------------------------------------------------------------------------------------------------


def test_every_legend_entry_has_its_own_look(crowded):
    """Two legend entries never share a colour, symbol and dash: a reader can match a point to its series."""
    for name, figure in crowded.items():
        identities = _legend_identities(figure.figure)
        assert identities or name == "recommendation", name
        looks = [look for looks in identities.values() for look in looks]
        assert len(looks) == len(set(looks)) == len(identities), f"{name}: {identities}"


def test_the_loss_legend_is_grouped_by_teacher_size_and_fits(crowded):
    figure = crowded["loss_accuracy"].figure
    titles = {t.legendgrouptitle.text for t in figure.data if t.legendgrouptitle and t.legendgrouptitle.text}
    assert titles == {"micro teacher", "tiny teacher", "small teacher"}
    names = {t.name for t in figure.data if t.showlegend is not False and t.name}
    assert {"T160", "T240", "T320", "T480", "T640", "T720", "T960"} <= names
    for name, item in crowded.items():  # the legend is never cut: the figure is tall enough for every row
        entries, group_titles = legend_entries(item.figure)
        assert item.figure.layout.height >= (entries + group_titles) * LEGEND_ROW_PX, name


def test_share_axes_tick_every_tested_share(crowded):
    figure = crowded["allocation"].figure
    share_axes = [axis for axis in _axes(figure, "xaxis") if axis.title.text and "share" in axis.title.text]
    assert share_axes
    for axis in share_axes:
        assert np.allclose(axis.tickvals, sorted(SHARES)) and list(axis.ticktext) == ["1/6", "1/3", "1/2"]
    steps_axes = [axis for axis in _axes(figure, "xaxis") if axis.title.text == "teacher steps (T)"]
    assert steps_axes and all(list(a.tickvals) == [160, 240, 320, 480, 640, 720, 960] for a in steps_axes)


def test_flops_axes_are_powers_of_ten(crowded):
    axes = [a for f in crowded.values() for a in _axes(f.figure, "xaxis")
            if a.type == "log" and "FLOPs" in a.title.text]
    assert axes and all(a.exponentformat in ("e", "E", "power") for a in axes)


def test_every_accuracy_figure_names_its_readout_and_draws_the_floor(crowded):
    for name in ACCURACY_FIGURES:
        figure = crowded[name].figure
        assert READOUT in _texts(figure), name
        floored = {(s.xref.removesuffix(" domain"), s.yref.removesuffix(" domain"))
                   for s in _shapes_named(figure, FLOOR_NAME)}
        drawn = {(t.xaxis or "x", t.yaxis or "y") for t in figure.data if t.x is not None and any(
            v is not None for v in t.x)}
        assert drawn <= floored, name  # every panel (all plot accuracy) has its floor line
        floors = {round(s.y0, 6) for s in _shapes_named(figure, FLOOR_NAME) if s.y0 == s.y1}
        assert round(100 * np.mean([FLOOR["appearance"], FLOOR["appearance"] + 0.002]), 6) in floors, name
        assert any(t.name == FLOOR_NAME for t in figure.data), name  # in the legend


def test_without_floor_rows_the_figures_say_so(tmp_path):
    figures = sweep_figures(crowded_frame(floor=False))
    for name in ACCURACY_FIGURES:
        figure = figures[name].figure
        assert "random-init floor not measured" in _texts(figure), name
        assert not _shapes_named(figure, FLOOR_NAME)
    older = sweep_figures(results_frame(), with_results=False)  # a caller that passes no Results
    assert "readout not recorded" in _texts(older["pareto"].figure)


def test_allocation_shows_each_seed_beside_the_mean(crowded):
    figure = crowded["allocation"].figure
    seeds = [t for t in figure.data if t.name and t.name.endswith("one seed")]
    assert seeds and all(len(t.x) == len(SEEDS) * len(SHARES) for t in seeds)
    assert not any(t.error_y and t.error_y.array is not None for t in figure.data)
    single = sweep_figures(crowded_frame(seeds=(0,)))["allocation"].figure
    assert not [t for t in single.data if t.name and t.name.endswith("one seed")]


def test_loss_curves_draw_each_run_against_step(crowded):
    figure = crowded["loss_curves"].figure
    runs = [t for t in figure.data if t.mode == "lines+markers" and t.name != "teacher alone"]
    assert len(runs) == len(SIZES) * len(SEEDS) * len(BUDGETS) * len(SHARES)
    assert all(list(t.x) == sorted(t.x) and len(t.x) == 3 for t in runs)
    titles = [a.text for a in figure.layout.annotations]
    assert titles[:3] == ["students, budget 960", "students, budget 1440", "students, budget 1920"]
    assert "teachers (their own loss)" in titles


# -- the study's figures -----------------------------------------------------------------------------------------------


METRICS = [Metric("appearance"), Metric("mean")]
CHANCE = {"appearance": 0.1, "mean": 0.1}
STUDY_FLOOR = {"appearance": 0.12, "mean": 0.18}


def _allocation_table(seeds: int) -> pd.DataFrame:
    rows = []
    for budget in (960, 1440):
        for share in SHARES:
            row = {"budget": budget, "teacher_steps": round(budget * share), "teacher_share": share, "seeds": seeds}
            for metric in METRICS:
                row[f"student_{metric.name}"] = 0.15 + share / 10
                row[f"student_{metric.name}_sd"] = 0.01 if seeds > 1 else np.nan
                row[f"teacher_{metric.name}"] = 0.13
            rows.append(row)
    return pd.DataFrame(rows)


def _variants_table(seeds: int) -> pd.DataFrame:
    rows = [{"teacher_size": size, "seeds": seeds, **{f"{who}_{m.name}{sd}": value
                                                      for m in METRICS for who, sd, value in
                                                      (("teacher", "", 0.11 + i / 50), ("student", "", 0.14 + i / 40),
                                                       ("student", "_sd", 0.01 if seeds > 1 else np.nan))}}
            for i, size in enumerate(("micro", "tiny", "small"))]
    return pd.DataFrame(rows)


def _per_seed(table: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """The final pairs behind a table: two seeds around each mean."""
    rows = []
    for _, row in table.iterrows():
        for seed, delta in ((0, -0.01), (1, 0.01)):
            rows.append({**{c: row[c] for c in by}, "seed": seed,
                         **{f"acc_{m.name}": row[f"student_{m.name}"] + delta for m in METRICS},
                         **{f"teacher_acc_{m.name}": row[f"teacher_{m.name}"] - delta for m in METRICS}})
    return pd.DataFrame(rows)


def test_one_seed_draws_no_error_bar():
    allocation = study_allocation_figure(_allocation_table(1), METRICS, CHANCE, STUDY_FLOOR, readout=READOUT)
    variants = variants_figure(_variants_table(1), "teacher_size", METRICS, CHANCE, STUDY_FLOOR, "study_teacher_size",
                               "Teacher size", readout=READOUT)
    for figure in (allocation.figure, variants.figure):
        assert not any(t.error_y and t.error_y.array is not None for t in figure.data)
        assert not any(t.name and "one seed" in t.name for t in figure.data)


def test_several_seeds_show_each_seed_and_the_mean():
    table = _variants_table(2)
    variants = variants_figure(table, "teacher_size", METRICS, CHANCE, STUDY_FLOOR, "study_teacher_size",
                               "Teacher size", readout=READOUT, per_seed=_per_seed(table, ["teacher_size"]))
    seeds = [t for t in variants.figure.data if t.name and "one seed" in t.name]
    assert seeds and all(len(t.y) == 2 * len(table) for t in seeds)
    allocation_table = _allocation_table(2)
    allocation = study_allocation_figure(allocation_table, METRICS, CHANCE, STUDY_FLOOR, readout=READOUT,
                                         per_seed=_per_seed(allocation_table, ["budget", "teacher_steps",
                                                                               "teacher_share"]))
    assert [t for t in allocation.figure.data if t.name and "one seed" in t.name]
    # Without the seeds' own points, the spread shows as one standard deviation, never as a zero-width bar.
    fallback = variants_figure(table, "teacher_size", METRICS, CHANCE, STUDY_FLOOR, "x", "x", readout=READOUT)
    bars = [t for t in fallback.figure.data if t.error_y and t.error_y.array is not None]
    assert bars and all(min(t.error_y.array) > 0 for t in bars)


def test_bar_axes_start_at_the_data_not_at_zero():
    figure = variants_figure(_variants_table(1), "teacher_size", METRICS, CHANCE, STUDY_FLOOR, "study_teacher_size",
                             "Teacher size", readout=READOUT).figure
    bars = [t for t in figure.data if t.type == "bar"]
    assert bars and min(min(t.y) for t in bars) > 0
    for axis in _axes(figure, "yaxis"):
        assert axis.range is not None and axis.range[0] > 0
        assert axis.range[0] <= 100 * min(CHANCE["appearance"], STUDY_FLOOR["appearance"])  # the lines stay in view
    assert data_range([12.0, 18.0])[0] > 0 and data_range([1.0, 50.0])[0] > 0


def test_study_figures_name_the_readout_tick_every_share_and_draw_the_floor():
    allocation = study_allocation_figure(_allocation_table(2), METRICS, CHANCE, STUDY_FLOOR, readout=READOUT).figure
    variants = variants_figure(_variants_table(2), "teacher_size", METRICS, CHANCE, STUDY_FLOOR, "study_teacher_size",
                               "Teacher size", readout=READOUT).figure
    for figure in (allocation, variants):
        assert READOUT in _texts(figure)
        assert len(_shapes_named(figure, FLOOR_NAME)) >= len(METRICS)
        # The floor's and chance's names are in the legend, never as labels that collide on the lines.
        assert not [a for a in figure.layout.annotations if a.text in ("random init", "chance")]
    share_axes = [a for a in _axes(allocation, "xaxis") if "share" in (a.title.text or "")]
    assert share_axes and all(list(a.ticktext) == ["1/6", "1/3", "1/2"] for a in share_axes)
    missing = variants_figure(_variants_table(1), "teacher_size", METRICS, CHANCE, {}, "x", "x").figure
    assert "random-init floor not measured" in _texts(missing)


def test_share_text_writes_simple_fractions():
    assert [share_text(s) for s in (1 / 12, 1 / 6, 2 / 3, 0.5, 0.1234)] == ["1/12", "1/6", "2/3", "1/2", "0.123"]
    assert References(chance={"a": 0.1, "b": 0.3}).chance_of(Metric("mean")) == pytest.approx(0.2)
