"""The study's figures (accuracies in %): the allocation ablation per budget, against the teacher's share and
its steps, and teacher against student for the teacher-size and teacher-masking ablations. Each seed's point
is drawn beside the mean where there are several seeds (one seed draws no error bar); every panel carries
chance and the random-init floor, and every figure names the readout."""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go

from analysis.figure_axes import data_range
from analysis.figure_parts import (
    PALETTE, PANEL_HEIGHT, Figure, References, accuracy_title, cell, fit_legend, panels, reference_legend,
    reference_lines, reference_values, share_and_steps_axes,
)
from analysis.markdown import budget_name
from analysis.results import Metric, readout_name
from analysis.schema import UNKNOWN_READOUT
from analysis.study_data import StudyData, final_pairs

SEED_OPACITY = 0.6
TEACHER_COLOUR, STUDENT_COLOUR = PALETTE[1], PALETTE[0]


def _references(chance: dict[str, float], floor: dict[str, float], readout: str | None,
                floor_what: str = "") -> References:
    return References(readout or UNKNOWN_READOUT, dict(chance), dict(floor), floor_what)


def _several(frame: pd.DataFrame) -> pd.Series:
    return frame["seeds"].fillna(1).astype(int).gt(1) if "seeds" in frame else pd.Series(False, index=frame.index)


def _spread(frame: pd.DataFrame, column: str) -> dict | None:
    """One standard deviation over seeds where a point has several seeds and no seed points are drawn; none
    where every point has one seed (a zero-width bar would claim a spread that was never measured)."""
    several = _several(frame)
    if f"{column}_sd" not in frame or not several.any():
        return None
    sd = 100 * frame[f"{column}_sd"].astype(float).where(several)
    return {"type": "data", "array": sd.tolist(), "visible": True}


def _match(per_seed: pd.DataFrame | None, keys: dict) -> pd.DataFrame:
    if per_seed is None or per_seed.empty:
        return pd.DataFrame()
    rows = per_seed
    for column, value in keys.items():
        rows = rows[rows[column] == value]
    return rows


# -- the allocation ablation ---------------------------------------------------------------------------------------


def _budget_traces(figure: go.Figure, rows: pd.DataFrame, seeds: pd.DataFrame, metric: Metric, x: str,
                   budget: object, colour: str, first: bool, where: dict) -> None:
    student, label = f"student_{metric.name}", f"budget {budget_name(budget)}"
    with_seeds = len(seeds) > 0 and _several(rows).any()
    figure.add_trace(go.Scatter(
        x=rows[x], y=100 * rows[student], mode="lines+markers", name=f"{label} student", legendgroup=str(budget),
        showlegend=first, line_color=colour, marker=dict(color=colour, size=9),
        error_y=None if with_seeds else _spread(rows, student),
        hovertext=[f"{label}, T{t} (share {s:.3g}), {n} seed(s)" for t, s, n in
                   zip(rows["teacher_steps"], rows["teacher_share"], rows["seeds"])]), **where)
    if with_seeds:
        figure.add_trace(go.Scatter(
            x=seeds[x], y=100 * seeds[metric.column], mode="markers", name=f"{label} student, one seed",
            legendgroup=str(budget), showlegend=False,
            marker=dict(color=colour, symbol="circle-open", size=7, opacity=SEED_OPACITY),
            hovertext=[f"{label}, T{t}, seed {s}" for t, s in zip(seeds["teacher_steps"], seeds["seed"])]), **where)
    figure.add_trace(go.Scatter(
        x=rows[x], y=100 * rows[f"teacher_{metric.name}"], mode="markers", marker_symbol="diamond-open",
        name=f"{label} teacher", legendgroup=str(budget), showlegend=first, marker=dict(color=colour, size=9)),
        **where)


def allocation_figure(allocation: pd.DataFrame, metrics: list[Metric], chance: dict[str, float],
                      floor: dict[str, float], readout: str | None = None, per_seed: pd.DataFrame | None = None,
                      floor_what: str = "") -> Figure:
    """`per_seed`: the final students behind `allocation` (analysis.study.final_pairs), one row per seed."""
    references = _references(chance, floor, readout, floor_what)
    title = "Allocation: student accuracy against the teacher's share, and against its steps"
    titles = [text for m in metrics for text in (f"{m.label}: by teacher share", f"{m.label}: by teacher steps")]
    figure, cols = panels(accuracy_title(title, references), titles, cols=2)
    budgets = sorted(allocation["budget"].unique())
    for i, metric in enumerate(metrics):
        for index, budget in enumerate(budgets):
            rows = allocation[allocation["budget"] == budget].sort_values("teacher_share")
            seeds = _match(per_seed, {"budget": budget})
            for j, x in enumerate(("teacher_share", "teacher_steps")):
                _budget_traces(figure, rows, seeds, metric, x, budget, PALETTE[index % len(PALETTE)],
                               first=i == 0 and j == 0, where=cell(2 * i + j, cols))
        for j in range(2):
            reference_lines(figure, references, metric, cell(2 * i + j, cols))
    share_and_steps_axes(figure, references, allocation["teacher_share"], allocation["teacher_steps"])
    figure.update_yaxes(title_text="probe accuracy (%)", col=1)
    fit_legend(figure)
    return Figure("study_allocation", "Allocation ablation",
                  "Final students (lines: the mean over seeds; faint open circles: each seed, where there are "
                  "several) and their teachers (open diamonds) at each teacher share of each budget (left, a tick "
                  "at every tested share) and at each teacher step count (right).", figure, ("study_allocation",))


# -- teacher against student, per variant ---------------------------------------------------------------------------


def _variant_seeds(figure: go.Figure, seeds: pd.DataFrame, by: str, metric: Metric, first: bool,
                   where: dict) -> list[float]:
    """Each seed's teacher and student, over their bars (scattermode "group" aligns them); their values."""
    values = []
    for column, group, name in ((f"teacher_{metric.column}", "teacher", "teacher alone"),
                                (metric.column, "student", "its student")):
        if column not in seeds:
            continue
        y = 100 * seeds[column].astype(float)
        values += y.dropna().tolist()
        figure.add_trace(go.Scatter(
            x=seeds[by].astype(str), y=y, mode="markers", name=f"{name}, one seed", legendgroup=f"{group} seeds", showlegend=first, offsetgroup=group, alignmentgroup="variants",
            marker=dict(color="black", symbol="circle-open" if group == "teacher" else "circle", size=7,
                        opacity=SEED_OPACITY, line=dict(width=1.5)),
            hovertext=[f"{v}, seed {s}" for v, s in zip(seeds[by], seeds["seed"])]), **where)
    return values


def variants_figure(frame: pd.DataFrame, by: str, metrics: list[Metric], chance: dict[str, float],
                    floor: dict[str, float], name: str, title: str, readout: str | None = None,
                    per_seed: pd.DataFrame | None = None, floor_what: str = "") -> Figure:
    """`per_seed`: the final pairs behind `frame` (analysis.study.final_pairs), one row per seed."""
    references = _references(chance, floor, readout, floor_what)
    figure, cols = panels(accuracy_title(title, references), [m.label for m in metrics], cols=len(metrics))
    labels = frame[by].astype(str).tolist()
    several = bool(_several(frame).any())
    seeds = per_seed if per_seed is not None and len(per_seed) and several else pd.DataFrame()
    for i, metric in enumerate(metrics):
        where = cell(i, cols)
        teacher, student = 100 * frame[f"teacher_{metric.name}"], 100 * frame[f"student_{metric.name}"]
        figure.add_trace(go.Bar(x=labels, y=teacher, name="teacher alone", marker_color=TEACHER_COLOUR,
                                offsetgroup="teacher", alignmentgroup="variants", showlegend=i == 0), **where)
        figure.add_trace(go.Bar(x=labels, y=student, name="its student", marker_color=STUDENT_COLOUR,
                                offsetgroup="student", alignmentgroup="variants", showlegend=i == 0,
                                error_y=None if len(seeds) else _spread(frame, f"student_{metric.name}")), **where)
        values = [*teacher, *student, *reference_values(references, metric)]
        if len(seeds):
            values += _variant_seeds(figure, seeds, by, metric, first=i == 0, where=where)
        elif several:
            spread = frame[f"student_{metric.name}_sd"].fillna(0) * 100
            values += [*(student + spread), *(student - spread)]
        figure.update_yaxes(range=data_range(values), **where)
        reference_lines(figure, references, metric, where)
    reference_legend(figure, references)
    figure.update_yaxes(title_text="probe accuracy (%)", col=1)
    figure.update_layout(barmode="group", scattermode="group", height=PANEL_HEIGHT + 100)
    fit_legend(figure)
    seeds_text = ("each seed's teacher (open) and student (filled) over the bars" if len(seeds) else
                  "bars one standard deviation over seeds" if several else "one seed: no spread to show")
    return Figure(name, title, f"Each teacher alone and the student trained from it (mean over seeds; {seeds_text}). "
                  "The axis starts near the lowest value, not at 0: read the bars' tops, not their lengths.",
                  figure, (name,))


# -- the study's figures from its folder ------------------------------------------------------------------------------


def study_references(study: StudyData) -> References:
    """The study's readout (from its sweeps' rows), chance and the random-init floor (mean over seeds)."""
    rows = pd.concat([r.rows for r in study.results.values()], ignore_index=True)
    floor, what = {}, ""
    if not study.random_init.empty:
        floor = {m.name: float(study.random_init[m.column].mean()) for m in study.metrics
                 if m.column in study.random_init}
        seeds = study.random_init["seed"].nunique() if "seed" in study.random_init else len(study.random_init)
        what = f"never-trained encoder, mean of {seeds} seed{'s' * (seeds != 1)}"
    floor = {k: v for k, v in floor.items() if not math.isnan(v)}
    return References(readout_name(rows), study.chance(), floor, what)


VARIANTS = (("study_teacher_size", "teacher_size", "teacher_size", "Teacher size: teacher alone and its student"),
            ("study_teacher_masks", "teacher_masks", "variant", "Teacher masking: teacher alone and its student"))


def study_figures(study: StudyData, found: dict[str, pd.DataFrame]) -> list[Figure]:
    """Every figure of the study report, each seed's point drawn where there are several."""
    references, metrics = study_references(study), study.metrics
    common = dict(readout=references.readout, floor_what=references.floor_what)
    figures = []
    if "study_allocation" in found:
        figures.append(allocation_figure(found["study_allocation"], metrics, references.chance, references.floor,
                                         per_seed=final_pairs(study, "allocation"), **common))
    for name, ablation, by, title in VARIANTS:
        if name in found:
            figures.append(variants_figure(found[name], by, metrics, references.chance, references.floor, name,
                                           title, per_seed=final_pairs(study, ablation), **common))
    return figures
