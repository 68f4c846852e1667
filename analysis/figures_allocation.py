"""The report's figures of accuracy against compute and allocation: the Pareto front over total FLOPs, the
allocation curves (accuracy against the teacher's share of each budget) and the teacher-size comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analysis.allocation import CURVE, curve_value
from analysis.figure_axes import flops_axis
from analysis.figure_parts import (
    BASELINE_COLOUR, Figure, References, accuracy_title, cell, fit_legend, legend_proxy, panels, reference_legend,
    reference_lines, shade_table, share_and_steps_axes, size_colour, size_index, size_symbol,
)
from analysis.figure_points import hover_text, pct
from analysis.findings import Findings
from analysis.markdown import budget_name
from analysis.pareto import front_steps
from analysis.results import Metric, baseline_name, equals
from analysis.schema import COLLAPSE_COLUMNS

COLLAPSED_SYMBOL = "x"  # a baseline run flagged collapsed
FADED = 0.25  # dominated points: visible, but the front reads first
SEED_OPACITY = 0.55  # one seed's point beside the mean over seeds


def _pareto_series(role: str, size: object, collapsed: bool, sizes: list) -> tuple[str, dict, int]:
    """A Pareto series' legend name, marker and legend rank (students, then teachers alone, then baselines)."""
    if role == "student":
        return f"student of a {size} teacher", dict(color=size_colour(size, sizes), symbol="circle"), 100
    if role == "teacher":
        return f"{size} teacher alone", dict(color=size_colour(size, sizes), symbol="diamond"), 200
    name = f"{baseline_name(role)} baseline" + (" (collapsed)" if collapsed else "")
    return name, dict(color=BASELINE_COLOUR, symbol=COLLAPSED_SYMBOL if collapsed else "square"), 300


def pareto_figure(findings: Findings, metrics: list[Metric], sizes: list[str], references: References) -> Figure:
    table = findings.pareto
    title = "Accuracy against total compute"
    figure, cols = panels(accuracy_title(title, references), [m.label for m in metrics])
    shown: set[str] = set()
    for i, metric in enumerate(metrics):
        panel = table[table["task"] == metric.name]
        collapsed = panel["collapsed"].fillna(False).astype(bool) if "collapsed" in panel else False
        for (role, size, down), group in panel.assign(_down=collapsed).groupby(
                ["role", "teacher_size", "_down"], dropna=False, sort=False):
            name, marker, rank = _pareto_series(role, size, down, sizes)
            for on_front, part in group.groupby("on_front", sort=False):
                figure.add_trace(go.Scatter(
                    x=part["flops_total"], y=pct(part["accuracy"]), mode="markers", name=name, legendgroup=name,
                    showlegend=False, hovertext=hover_text(part, ("flops_total", "accuracy", *COLLAPSE_COLUMNS)),
                    hoverinfo="text", marker=dict(**marker, size=9, opacity=1.0 if on_front else FADED)),
                    **cell(i, cols))
            if name not in shown:  # at full opacity, whether or not the first point drawn is dominated
                legend_proxy(figure, name, name, marker=dict(**marker, size=9), rank=rank + size_index(size, sizes))
                shown.add(name)
        xs, ys = front_steps(panel["flops_total"].to_numpy(), panel["accuracy"].to_numpy(),
                             panel["on_front"].to_numpy(bool), until=panel["flops_total"].max())
        figure.add_trace(go.Scatter(x=xs, y=pct(ys), mode="lines", line=dict(shape="hv", color="black", width=1.5),
                                    name="Pareto front", legendgroup="front", showlegend=i == 0, hoverinfo="skip",
                                    legendrank=1500), **cell(i, cols))
        reference_lines(figure, references, metric, cell(i, cols))
    reference_legend(figure, references)
    figure.update_xaxes(title_text="total training FLOPs", **flops_axis(table.get("flops_total", [])))
    figure.update_yaxes(title_text="accuracy (%)")
    fit_legend(figure)
    return Figure("pareto", title,
                  "Each unit's final checkpoint (students, teachers alone and baselines). x: total training FLOPs "
                  "(teacher + student; a baseline's own, which include the EMA encoder's forward). Black step "
                  "line: the Pareto front, the best accuracy reached with at most that much compute; faded points "
                  "are dominated. Colour: teacher size; circles are students, diamonds teachers alone, black "
                  "squares baselines trained the whole budget, crosses baselines whose targets collapsed.",
                  figure, ("pareto",))


# -- allocation: accuracy against the teacher's share and its steps --------------------------------------------------


def _curve_style(points: pd.DataFrame, sizes: list) -> dict[tuple, dict]:
    """Per curve (budget, teacher size, student size): the teacher size's hue, darker for a larger budget,
    its symbol, and a legend entry grouped under "teacher → student"."""
    colours = shade_table(points, sizes, "budget")
    style = {}
    for key in points.groupby(CURVE, sort=True).groups:
        budget, teacher, student = key
        style[key] = dict(colour=colours[(teacher, budget)], symbol=size_symbol(teacher, sizes),
                          group=f"{teacher} → {student}", name=f"budget {budget_name(budget)}",
                          rank=100 * size_index(teacher, sizes))  # the legend lists teacher sizes small to large
    return style


def _seed_points(findings: Findings, metric: Metric, key: tuple) -> pd.DataFrame:
    """One curve's final students seed by seed: the allocation_seeds table where Findings has it, else the
    students among the Pareto table's final encoders (the same values)."""
    table = getattr(findings, "allocation_seeds", None)
    if table is None or table.empty or "seed" not in table:
        table = findings.pareto[equals(findings.pareto, "role", "student")]
    rows = table[table["task"] == metric.name]
    for column, value in zip(CURVE, key, strict=True):
        rows = rows[rows[column] == value]
    return rows


def _add_curve_points(figure: go.Figure, curve: pd.DataFrame, seeds: pd.DataFrame, x: str, style: dict,
                      first: bool, where: dict) -> None:
    """The mean over seeds (filled), and each seed's point (small, faint) where a point has several seeds."""
    several = curve["seeds"].fillna(1).astype(int).gt(1).any() if "seeds" in curve else False
    curve = curve.sort_values(x)
    figure.add_trace(go.Scatter(
        x=curve[x], y=pct(curve["accuracy"]), mode="markers" if x == "teacher_share" else "lines+markers",
        name=style["name"], legendgroup=style["group"], showlegend=first, legendrank=style["rank"],
        legendgrouptitle=dict(text=style["group"]) if first else None,
        marker=dict(color=style["colour"], symbol=style["symbol"], size=10), line=dict(color=style["colour"], width=1),
        hoverinfo="text", hovertext=hover_text(curve, ("allocation_ids", "accuracy", "seeds"))), **where)
    if several and len(seeds):
        figure.add_trace(go.Scatter(
            x=seeds[x], y=pct(seeds["accuracy"]), mode="markers", legendgroup=style["group"], showlegend=False,
            name=f"{style['name']}, one seed", marker=dict(color=style["colour"], symbol=style["symbol"] + "-open",
                                                          size=7, opacity=SEED_OPACITY),
            hoverinfo="text", hovertext=hover_text(seeds, ("accuracy",))), **where)


def _add_fit(figure: go.Figure, curve: pd.DataFrame, row: pd.Series | None, style: dict, where: dict) -> None:
    """The fitted quadratic in ln(share) (dashed) and its maximum (star)."""
    if row is None or pd.isna(row["a"]):
        return
    grid = np.geomspace(curve["teacher_share"].min(), curve["teacher_share"].max(), 60)
    figure.add_trace(go.Scatter(x=grid, y=pct(curve_value(row["a"], row["b"], row["c"], grid)), mode="lines",
                                legendgroup=style["group"], showlegend=False, name=f"{style['name']} fit",
                                line=dict(color=style["colour"], dash="dash"), hoverinfo="skip"), **where)
    figure.add_trace(go.Scatter(
        x=[row["optimum_share"]], y=[row["optimum_accuracy"] * 100], mode="markers", legendgroup=style["group"],
        showlegend=False, name=f"{style['name']} fitted optimum",
        marker=dict(color=style["colour"], symbol="star", size=16, line=dict(color="black", width=1)),
        hoverinfo="text", hovertext=[f"{style['group']}, {style['name']}<br>fitted optimum ({row['optimum_where']} "
                                     f"the tested range)<br>share {row['optimum_share']:.3f}, "
                                     f"{row['optimum_accuracy']:.1%}"]), **where)


def allocation_figure(findings: Findings, metrics: list[Metric], sizes: list[str], references: References) -> Figure:
    points, fits = findings.allocation_points, findings.allocation
    title = "Accuracy against the teacher's share of the budget, and against its steps"
    titles = [text for m in metrics for text in (f"{m.label}: by teacher share", f"{m.label}: by teacher steps")]
    figure, cols = panels(accuracy_title(title, references), titles, cols=2)
    style = _curve_style(points, sizes) if len(points) else {}
    fitted = {(row["task"], *(row[c] for c in CURVE)): row for _, row in fits.iterrows()}
    for i, metric in enumerate(metrics):
        panel = points[points["task"] == metric.name]
        for key, curve in panel.groupby(CURVE, sort=True):
            seeds = _seed_points(findings, metric, key)
            for j, x in enumerate(("teacher_share", "teacher_steps")):
                where = cell(2 * i + j, cols)
                _add_curve_points(figure, curve, seeds, x, style[key], first=i == 0 and j == 0, where=where)
            _add_fit(figure, curve, fitted.get((metric.name, *key)), style[key], cell(2 * i, cols))
        for j in range(2):
            reference_lines(figure, references, metric, cell(2 * i + j, cols))
    share_and_steps_axes(figure, references, points.get("teacher_share", []), points.get("teacher_steps", []))
    figure.update_yaxes(title_text="final student accuracy (%)", col=1)
    fit_legend(figure)
    return Figure("allocation", "Accuracy against the teacher's share of the budget",
                  "One curve per budget N and teacher → student size (colour: teacher size, darker for a larger "
                  "budget); filled points are final students, the mean over seeds, with each seed's point faint "
                  "and open where there are several. Left: against the teacher's share, a tick at every tested "
                  "share; dashed: a quadratic in ln(share) fitted by least squares (needs 3 distinct shares; "
                  "through exactly 3 it interpolates); star: the fitted maximum over the tested shares. Right: the "
                  "same students against the teacher's absolute steps.",
                  figure, ("allocation_points", "allocation"))


# -- teacher size -------------------------------------------------------------------------------------------------


def teacher_size_figure(findings: Findings, metrics: list[Metric], sizes: list[str], references: References) -> Figure:
    pairs = findings.pairs
    title = "Teacher size: the teacher alone against the student it trains"
    figure, cols = panels(accuracy_title(title, references), [m.label for m in metrics])
    position = {size: i for i, size in enumerate(sizes)}
    for i, metric in enumerate(metrics):
        panel = pairs[pairs["task"] == metric.name].sort_values(["budget", "teacher_steps"], kind="stable")
        panel = panel.reset_index(drop=True)
        x = np.full(len(panel), np.nan)
        for size, group in panel.groupby("teacher_size", sort=False):
            spread = np.linspace(-0.3, 0.3, len(group)) if len(group) > 1 else np.zeros(1)
            x[group.index] = position.get(size, len(sizes)) + spread
        segments_x = np.column_stack([x, x, np.full(len(x), np.nan)]).ravel()
        segments_y = np.column_stack([pct(panel["teacher_accuracy"]), pct(panel["student_accuracy"]),
                                      np.full(len(x), np.nan)]).ravel()
        figure.add_trace(go.Scatter(x=segments_x, y=segments_y, mode="lines", line=dict(color="lightgrey"),
                                    showlegend=False, hoverinfo="skip"), **cell(i, cols))
        hover = hover_text(panel, ("teacher_accuracy", "student_accuracy"))
        for column, name, symbol, colour in (("teacher_accuracy", "teacher alone", "circle-open", "darkorange"),
                                             ("student_accuracy", "its student", "circle", "black")):
            figure.add_trace(go.Scatter(x=x, y=pct(panel[column]), mode="markers", name=name, legendgroup=name,
                                        showlegend=i == 0, hovertext=hover, hoverinfo="text",
                                        marker=dict(symbol=symbol, size=10, color=colour, line=dict(width=2))),
                             **cell(i, cols))
        reference_lines(figure, references, metric, cell(i, cols))
    reference_legend(figure, references)
    figure.update_xaxes(tickvals=list(range(len(sizes))), ticktext=sizes, title_text="teacher size (by FLOPs per step)")
    figure.update_yaxes(title_text="accuracy (%)")
    fit_legend(figure)
    return Figure("teacher_size", title,
                  "The paper's Table 14 view. For every allocation, the teacher probed alone (open) and the final "
                  "student trained from it (filled), joined by a line; allocations of one teacher size spread "
                  "side by side, by budget and teacher steps.", figure, ("pairs",))
