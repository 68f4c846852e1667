"""The report's figures of the student's loss: against probe accuracy over checkpoints (with one fit per
teacher and one pooled), and against step for every run, teachers of several step counts coloured by steps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from analysis.figure_parts import (
    PALETTE, Figure, References, accuracy_title, cell, fit_legend, panels, reference_legend, reference_lines,
    size_index, size_symbol,
)
from analysis.figure_points import fit_line, fit_stats, hover_text, pct, size_group
from analysis.findings import LOSS, Findings
from analysis.markdown import budget_name
from analysis.markdown import steps as steps_name
from analysis.results import Metric, equals


def steps_colours(steps: pd.Series) -> dict:
    """One clearly different colour per teacher step count, the same for every teacher size (the symbol tells
    the sizes apart): neighbouring shades of one hue are too close to match a point to its teacher at a glance."""
    values = sorted(pd.Series(steps).dropna().unique())
    palette = PALETTE if len(values) <= len(PALETTE) else qualitative.Dark24
    return {value: palette[i % len(palette)] for i, value in enumerate(values)}


def _run_styles(points: pd.DataFrame, sizes: list) -> dict[tuple, dict]:
    """Per (teacher size, teacher steps): the identity its students have in the loss figures (colour: the
    teacher steps, symbol: the teacher size); seeds share it. Per baseline run label: black to grey squares.
    Keys: (size, steps) for students, (label,) for baselines."""
    students = points[equals(points, "role", "student")]
    colours = steps_colours(students["teacher_steps"])
    styles = {}
    for (size, steps), _ in students.groupby(["teacher_size", "teacher_steps"], sort=False):
        # The legend lists sizes small to large and, within a size, teacher steps in increasing order.
        rank = 100 * size_index(size, sizes) + list(colours).index(steps)
        styles[(size, steps)] = dict(colour=colours[steps], symbol=size_symbol(size, sizes), group=size_group(size),
                                     title=f"{size} teacher", name=f"T{steps_name(steps)}", rank=rank)
    baselines = list(dict.fromkeys(points.loc[~equals(points, "role", "student"), "teacher"]))
    greys = np.linspace(0.0, 0.5, len(baselines)) if len(baselines) > 1 else [0.0]
    for label, grey in zip(baselines, greys):
        level = int(255 * grey)
        styles[(label,)] = dict(colour=f"rgb({level},{level},{level})", symbol="square", group="baselines",
                                title="baselines", name=f"{label} baseline (its own loss)", rank=1200)
    return styles


def _style_key(group: pd.DataFrame) -> tuple:
    first = group.iloc[0]
    return (first["teacher_size"], first["teacher_steps"]) if first["role"] == "student" else (first["teacher"],)


def loss_figure(findings: Findings, metrics: list[Metric], sizes: list[str], references: References) -> Figure:
    points, fits = findings.loss_points, findings.loss_fits
    titles = []
    for metric in metrics:
        pooled = fits[(fits["task"] == metric.name) & (fits["teacher"] == "pooled")]
        fit = pooled.iloc[0] if len(pooled) else None
        defined = fit is not None and not pd.isna(fit["r2"])
        titles.append(f"{metric.label}: pooled R² {fit['r2']:.2f}, ρ {fit['spearman']:+.2f}" if defined
                      else f"{metric.label}: pooled fit undefined")
    title = "Student (and baseline) loss against accuracy, over checkpoints"
    figure, cols = panels(accuracy_title(title, references), titles)
    styles = _run_styles(points, sizes) if len(points) else {}
    shown: set[tuple] = set()
    for i, metric in enumerate(metrics):
        panel = points[points["task"] == metric.name]
        for teacher, group in panel.groupby("teacher", sort=False):
            key = _style_key(group)
            style, student = styles[key], group["role"].iloc[0] == "student"
            first = key not in shown
            shown.add(key)
            figure.add_trace(go.Scatter(
                x=group["loss"], y=pct(group["accuracy"]), mode="markers", name=style["name"],
                legendgroup=style["group"], showlegend=first, legendrank=style["rank"],
                legendgrouptitle=dict(text=style["title"]) if first else None,
                marker=dict(color=style["colour"], size=8, symbol=style["symbol"]),
                hovertext=hover_text(group, ("loss", "accuracy")), hoverinfo="text"), **cell(i, cols))
            fit = fits[(fits["task"] == metric.name) & (fits["teacher"] == teacher)].iloc[0]
            if not pd.isna(fit["slope"]):
                xs, ys = fit_line(fit, group["loss"])
                figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines", showlegend=False, legendgroup=style["group"],
                                            line=dict(color=style["colour"], dash=None if student else "dot"),
                                            hoverinfo="text", hovertext=[f"{teacher}: {fit_stats(fit)}"] * 2),
                                 **cell(i, cols))
        pooled = fits[(fits["task"] == metric.name) & (fits["teacher"] == "pooled")]
        if len(pooled) and not pd.isna(pooled["slope"].iloc[0]):
            xs, ys = fit_line(pooled.iloc[0], panel.loc[panel["role"] == "student", "loss"])
            figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="pooled fit", legendgroup="pooled",
                                        showlegend=i == 0, line=dict(color="black", dash="dash"), hoverinfo="text",
                                        legendrank=1500, hovertext=[f"pooled: {fit_stats(pooled.iloc[0])}"] * 2),
                             **cell(i, cols))
        reference_lines(figure, references, metric, cell(i, cols))
    reference_legend(figure, references)
    figure.update_xaxes(title_text="student loss at the checkpoint (smoothed)")
    figure.update_yaxes(title_text="accuracy (%)")
    fit_legend(figure)
    return Figure("loss_accuracy", title,
                  "Every probed student checkpoint. Colour: the teacher's steps; symbol: the teacher's size (its "
                  "seeds share both). Lines: least-squares fits per teacher and pooled over the "
                  "students (dashed). Squares and dotted lines: a baseline's checkpoints against its own loss "
                  "(another objective, not pooled; the paper finds the V-JEPA 2 loss does not track accuracy). R²: "
                  "variance explained; ρ: Spearman rank correlation (negative when lower loss goes with higher "
                  f"accuracy); LOO: mean absolute error predicting each checkpoint from a line through the others. "
                  f"Loss ({LOSS}): the mean of the last 10% of logged losses up to the checkpoint (one batch's loss "
                  "is too noisy to rank checkpoints).", figure, ("loss_points", "loss_fits"))


def _teacher_ladders(pairs: pd.DataFrame) -> pd.DataFrame:
    """Each frozen teacher once: its size, seed, steps and smoothed loss at those steps."""
    columns = [c for c in ("teacher_key", "teacher_size", "teacher_steps", "seed", "teacher_loss") if c in pairs]
    if "teacher_loss" not in columns or pairs.empty:
        return pd.DataFrame(columns=columns)
    return pairs[columns].drop_duplicates("teacher_key").dropna(subset=["teacher_loss"])


def loss_curves_figure(findings: Findings, sizes: list[str]) -> Figure:
    """Smoothed training loss at every probed checkpoint, one line per run: students by budget, the
    teachers' ladders, and each baseline against its own loss."""
    points = findings.loss_points
    task = points["task"].iloc[0] if len(points) else None
    runs = points[points["task"] == task] if task is not None else points
    students, baselines = runs[equals(runs, "role", "student")], runs[~equals(runs, "role", "student")]
    teachers = _teacher_ladders(findings.pairs)
    budgets = sorted(students["budget"].dropna().unique())
    titles = [f"students, budget {budget_name(b)}" for b in budgets]
    titles += ["teachers (their own loss)"] * (len(teachers) > 0)
    titles += ["baselines (their own loss)"] * (len(baselines) > 0)
    title = "Training loss against step, one line per run"
    figure, cols = panels(dict(text=title), titles or ["no checkpoint yet"])
    styles = _run_styles(runs, sizes) if len(runs) else {}
    shown: set[tuple] = set()

    def add_run(rows: pd.DataFrame, index: int) -> None:
        key = _style_key(rows)
        style, first = styles[key], key not in shown
        shown.add(key)
        rows = rows.sort_values("step")
        figure.add_trace(go.Scatter(
            x=rows["step"], y=rows["loss"], mode="lines+markers", name=style["name"], legendgroup=style["group"],
            showlegend=first, legendrank=style["rank"], legendgrouptitle=dict(text=style["title"]) if first else None,
            marker=dict(color=style["colour"], symbol=style["symbol"], size=7), line=dict(color=style["colour"]),
            hoverinfo="text", hovertext=hover_text(rows, ("loss",))), **cell(index, cols))

    for index, budget in enumerate(budgets):
        for _, run in students[students["budget"] == budget].groupby("unit_key", sort=False):
            add_run(run, index)
    if len(teachers):
        index = len(budgets)
        for (size, seed), ladder in teachers.groupby(["teacher_size", "seed"], sort=False):
            ladder = ladder.sort_values("teacher_steps")
            figure.add_trace(go.Scatter(
                x=ladder["teacher_steps"], y=ladder["teacher_loss"], mode="lines+markers", name="teacher alone",
                legendgroup=size_group(size), showlegend=(size, "ladder") not in shown,
                legendrank=100 * size_index(size, sizes) + 99,
                legendgrouptitle=dict(text=f"{size} teacher") if (size,) not in shown else None,
                marker=dict(color="dimgrey", symbol=size_symbol(size, sizes) + "-open", size=8),
                line=dict(color="dimgrey", dash="dot"), hoverinfo="text",
                hovertext=[f"{size} teacher, seed {seed}, step {s}: loss {v:.4g}"
                           for s, v in zip(ladder["teacher_steps"], ladder["teacher_loss"])]), **cell(index, cols))
            shown.add((size, "ladder"))
    if len(baselines):
        index = len(budgets) + (len(teachers) > 0)
        for _, run in baselines.groupby("unit_key", sort=False):
            add_run(run, index)
    figure.update_xaxes(title_text="training step")
    figure.update_yaxes(title_text="loss (smoothed)", col=1)
    fit_legend(figure)
    return Figure("loss_curves", title,
                  f"The smoothed training loss ({LOSS}: the mean of the last 10% of logged losses) at every probed "
                  "checkpoint, joined per run: the curve fills in with more probe points. Students by budget "
                  "(colour: the teacher's steps; symbol: the teacher's size; seeds share both); "
                  "teachers and baselines on their own objectives, each in its own panel.",
                  figure, ("loss_points", "pairs"))
