"""The report's figures of teacher against student: teacher-side metrics (loss, RankMe, accuracy) against
the student's accuracy, and each final student against its teacher."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from analysis.figure_parts import (
    Figure, References, accuracy_title, cell, fit_legend, panels, reference_legend, reference_lines, size_colour,
    size_symbol,
)
from analysis.figure_points import fit_line, fit_stats, hover_text, palette_colours, pct
from analysis.findings import TEACHER_METRICS, Findings
from analysis.results import Metric


def _pooled(fits: pd.DataFrame, task: str, label: str) -> pd.DataFrame:
    return fits[(fits["task"] == task) & (fits["teacher_metric"] == label) & (fits["group"] == "pooled")]


def teacher_metrics_figure(findings: Findings, metrics: list[Metric], references: References) -> Figure:
    points, fits = findings.teacher_points, findings.teacher_fits
    titles = []
    for metric in metrics:
        for label in TEACHER_METRICS.values():
            pooled = _pooled(fits, metric.name, label)
            r2 = f"{pooled['r2'].iloc[0]:.2f}" if len(pooled) and not pd.isna(pooled["r2"].iloc[0]) else "n/a"
            titles.append(f"{metric.label} vs {label}: R² {r2}")
    title = "Do teacher-side metrics predict the student?"
    figure, cols = panels(accuracy_title(title, references), titles, cols=len(TEACHER_METRICS))
    colours = palette_colours(list(dict.fromkeys(points["group"])) if len(points) else [])  # budget order
    for i, metric in enumerate(metrics):
        for j, label in enumerate(TEACHER_METRICS.values()):
            where = cell(i * len(TEACHER_METRICS) + j, cols)
            is_accuracy = label == "teacher accuracy"
            panel = points[(points["task"] == metric.name) & (points["teacher_metric"] == label)]
            for group, part in panel.groupby("group", sort=False):
                figure.add_trace(go.Scatter(
                    x=part["x"] * (100 if is_accuracy else 1), y=pct(part["student_accuracy"]),
                    mode="markers", name=group, legendgroup=group, showlegend=i == 0 and j == 0,
                    marker=dict(color=colours[group], size=9), hoverinfo="text",
                    hovertext=hover_text(part, ("x", "student_accuracy"))), **where)
            pooled = _pooled(fits, metric.name, label)
            if len(pooled) and not pd.isna(pooled["slope"].iloc[0]):
                scale = 100 if is_accuracy else 1
                xs, ys = fit_line(pooled.iloc[0], panel["x"])
                figure.add_trace(go.Scatter(x=xs * scale, y=ys, mode="lines", line=dict(color="black", dash="dash"),
                                            name="pooled fit", legendgroup="pooled", showlegend=i == 0 and j == 0,
                                            legendrank=1500, hoverinfo="text",
                                            hovertext=[f"pooled: {fit_stats(pooled.iloc[0])}"] * 2), **where)
            reference_lines(figure, references, metric, where, vertical=is_accuracy)
            figure.update_xaxes(title_text=label + (" (%)" if is_accuracy else ""), **where)
            figure.update_yaxes(title_text="student accuracy (%)" if j == 0 else None, **where)
    reference_legend(figure, references)
    fit_legend(figure)
    return Figure("teacher_metrics", title,
                  "Final students against their frozen teacher's smoothed training loss, RankMe and probe accuracy "
                  "(on the same task). Colour: budget; dashed: pooled least-squares line, its R² in the panel title. "
                  "The paper reports that teacher loss and RankMe do not predict student accuracy.",
                  figure, ("teacher_points", "teacher_fits"))


def student_teacher_figure(findings: Findings, metrics: list[Metric], sizes: list[str],
                           references: References) -> Figure:
    pairs = findings.pairs
    titles = []
    for metric in metrics:
        panel = pairs[pairs["task"] == metric.name].dropna(subset=["teacher_accuracy", "student_accuracy"])
        titles.append(f"{metric.label}: {int(panel['beats_teacher'].sum())} of {len(panel)} above the diagonal")
    title = "Students against their teachers"
    figure, cols = panels(accuracy_title(title, references), titles)
    for i, metric in enumerate(metrics):
        panel = pairs[pairs["task"] == metric.name]
        for size, group in panel.groupby("teacher_size", sort=False):
            figure.add_trace(go.Scatter(
                x=pct(group["teacher_accuracy"]), y=pct(group["student_accuracy"]), mode="markers",
                name=f"teacher {size}", legendgroup=str(size), showlegend=i == 0,
                marker=dict(color=size_colour(size, sizes), symbol=size_symbol(size, sizes), size=9),
                hoverinfo="text", hovertext=hover_text(group, ("teacher_accuracy", "student_accuracy"))),
                **cell(i, cols))
        both = pct(pd.concat([panel["teacher_accuracy"], panel["student_accuracy"]]).dropna())
        if len(both):
            ends = [both.min(), both.max()]
            figure.add_trace(go.Scatter(x=ends, y=ends, mode="lines", line=dict(color="grey", dash="dashdot"),
                                        name="student = teacher", legendgroup="diagonal", showlegend=i == 0,
                                        legendrank=1500, hoverinfo="skip"), **cell(i, cols))
        reference_lines(figure, references, metric, cell(i, cols), vertical=True)
    reference_legend(figure, references)
    figure.update_xaxes(title_text="teacher accuracy (%)")
    figure.update_yaxes(title_text="student accuracy (%)")
    fit_legend(figure)
    return Figure("student_vs_teacher", title,
                  "Each final student against the frozen teacher it learned from. Above the dash-dotted diagonal: "
                  "the student beats its teacher (the paper: every student does). The floor and chance are drawn on "
                  "both axes.", figure, ("pairs",))
