"""The study's figures (accuracies in %): the allocation ablation per budget with the seeds' spread, and
teacher against student for the teacher-size and teacher-masking ablations; chance and the random-init
encoder drawn as reference lines in every panel."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analysis.figures import PALETTE, PANEL_HEIGHT, Figure, chance_line
from analysis.tables import Metric


def _references(figure: go.Figure, chance: dict[str, float], floor: dict[str, float], metric: Metric,
                row: int, col: int) -> None:
    """The chance line as the sweep report draws it, and the random-init encoder's accuracy (dashed)."""
    chance_line(figure, chance, metric, {"row": row, "col": col})
    value = floor.get(metric.name)
    if value is not None and value == value:
        figure.add_hline(y=100 * value, line_dash="dash", line_color="grey", annotation_text="random init",
                         annotation_position="bottom right", row=row, col=col)


def allocation_figure(allocation: pd.DataFrame, metrics: list[Metric], chance: dict[str, float],
                      floor: dict[str, float]) -> Figure:
    figure = make_subplots(rows=1, cols=len(metrics), subplot_titles=[m.label for m in metrics])
    budgets = sorted(allocation["budget"].unique())
    for col, metric in enumerate(metrics, 1):
        for index, budget in enumerate(budgets):
            rows = allocation[allocation["budget"] == budget].sort_values("teacher_share")
            colour = PALETTE[index % len(PALETTE)]
            figure.add_trace(go.Scatter(
                x=rows["teacher_share"], y=100 * rows[f"student_{metric.name}"], mode="lines+markers",
                name=f"N{budget} student", legendgroup=str(budget), showlegend=col == 1, line_color=colour,
                error_y={"type": "data", "array": 100 * rows[f"student_{metric.name}_sd"].fillna(0)},
                hovertext=[f"N{budget} T{t} (share {s:.3g}), {n} seed(s)" for t, s, n in
                           zip(rows["teacher_steps"], rows["teacher_share"], rows["seeds"])]), row=1, col=col)
            figure.add_trace(go.Scatter(
                x=rows["teacher_share"], y=100 * rows[f"teacher_{metric.name}"], mode="markers",
                marker_symbol="diamond-open", name=f"N{budget} teacher", legendgroup=str(budget),
                showlegend=col == 1, marker_color=colour), row=1, col=col)
        _references(figure, chance, floor, metric, 1, col)
        figure.update_xaxes(title_text="teacher share of the budget (T / N)", type="log", row=1, col=col)
        figure.update_yaxes(title_text="probe accuracy (%)", row=1, col=1)
    figure.update_layout(height=PANEL_HEIGHT + 60, title="Allocation: student accuracy against the teacher's share")
    return Figure("study_allocation", "Allocation ablation",
                  "Final students (lines, mean over seeds, bars one standard deviation) and their teachers (open "
                  "diamonds) at each teacher share of each budget.", figure, ("study_allocation",))


def variants_figure(frame: pd.DataFrame, by: str, metrics: list[Metric], chance: dict[str, float],
                    floor: dict[str, float], name: str, title: str) -> Figure:
    figure = make_subplots(rows=1, cols=len(metrics), subplot_titles=[m.label for m in metrics])
    labels = frame[by].astype(str).tolist()
    for col, metric in enumerate(metrics, 1):
        figure.add_trace(go.Bar(x=labels, y=100 * frame[f"teacher_{metric.name}"], name="teacher alone",
                                marker_color=PALETTE[1], showlegend=col == 1), row=1, col=col)
        figure.add_trace(go.Bar(x=labels, y=100 * frame[f"student_{metric.name}"], name="its student",
                                marker_color=PALETTE[0], showlegend=col == 1,
                                error_y={"type": "data", "array": 100 * frame[f"student_{metric.name}_sd"].fillna(0)}),
                         row=1, col=col)
        _references(figure, chance, floor, metric, 1, col)
    figure.update_yaxes(title_text="probe accuracy (%)", row=1, col=1)
    figure.update_layout(barmode="group", height=PANEL_HEIGHT + 60, title=title)
    return Figure(name, title, "Each teacher alone and the student trained from it (mean over seeds, bars one "
                  "standard deviation).", figure, (name,))
