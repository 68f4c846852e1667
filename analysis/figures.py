"""The report's plotly figures, drawn from the Findings tables (accuracies shown in %).

Every point's hover lists its full configuration (CONFIG_COLUMNS and the plotted values), so a
reader can tell which allocation, checkpoint and teacher a point is without the CSV.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from analysis.allocation import CURVE, curve_value
from analysis.findings import LOSS, TEACHER_METRICS, Findings
from analysis.markdown import budget_name
from analysis.pareto import front_steps
from analysis.recommend import fit_trend
from analysis.tables import COLLAPSE_COLUMNS, CONFIG_COLUMNS, MEAN_TASK, Metric, baseline_name

PALETTE = qualitative.Plotly
ROLE_SYMBOL = {"student": "circle", "teacher": "diamond"}  # any other role (a baseline) is a square
COLLAPSED_SYMBOL = "x"  # a baseline run flagged collapsed
FADED = 0.25  # dominated points: visible, but the front reads first
PANEL_HEIGHT = 380


@dataclass(frozen=True)
class Figure:
    name: str  # file stem of its PNG and HTML id
    title: str
    caption: str  # what is drawn and the choices behind it
    figure: go.Figure
    tables: tuple[str, ...]  # Findings tables it is drawn from (written beside it as CSV)


def _pct(values: pd.Series | np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=float) * 100


def _hover(frame: pd.DataFrame, extra: tuple[str, ...] = ()) -> list[str]:
    columns = [c for c in (*CONFIG_COLUMNS, *extra) if c in frame]
    lines = []
    for _, row in frame[columns].iterrows():
        parts = []
        for column in columns:
            value = row[column]
            if pd.isna(value):
                continue
            if isinstance(value, float):
                value = f"{value:.4g}"
            parts.append(f"{column}: {value}")
        lines.append("<br>".join(parts))
    return lines


def _grid(count: int, cols: int = 3) -> tuple[int, int]:
    cols = max(1, min(count, cols))
    return math.ceil(count / cols), cols


def _panels(title: str, titles: list[str], cols: int = 3) -> tuple[go.Figure, int]:
    """One panel per title; the figure's own title too, so that an exported PNG stands alone."""
    rows, cols = _grid(len(titles), cols)
    figure = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.07,
                           vertical_spacing=min(0.3 / max(rows - 1, 1), 0.12))
    figure.update_layout(title=dict(text=title), height=PANEL_HEIGHT * rows + 40, template="plotly_white",
                         hovermode="closest", margin=dict(t=100, b=50))
    return figure, cols


def _cell(index: int, cols: int) -> dict[str, int]:
    return {"row": index // cols + 1, "col": index % cols + 1}


def _colours(keys: list) -> dict:
    return {key: PALETTE[i % len(PALETTE)] for i, key in enumerate(keys)}


def chance_line(figure: go.Figure, chance: dict[str, float], metric: Metric, cell: dict[str, int]) -> None:
    """The probe's chance level (the task average's: the mean over tasks), where the table records it."""
    values = list(chance.values()) if metric.name == MEAN_TASK else [chance.get(metric.name, float("nan"))]
    if values and not np.isnan(np.mean(values)):
        figure.add_hline(y=float(np.mean(values)) * 100, line=dict(dash="dot", color="grey"), annotation_text="chance",
                         **cell)


def pareto_figure(findings: Findings, metrics: list[Metric], sizes: list[str], chance: dict[str, float]) -> Figure:
    table = findings.pareto
    title = "Accuracy against total compute"
    figure, cols = _panels(title, [m.label for m in metrics])
    colours = _colours(sizes)
    shown: set[str] = set()
    for i, metric in enumerate(metrics):
        panel = table[table["task"] == metric.name]
        collapsed = panel["collapsed"].fillna(False).astype(bool) if "collapsed" in panel else False
        for (role, size, down), group in panel.assign(_down=collapsed).groupby(
                ["role", "teacher_size", "_down"], dropna=False, sort=False):
            name = {"student": f"student of a {size} teacher", "teacher": f"{size} teacher alone"}.get(
                role, f"{baseline_name(role)} baseline" + (" (collapsed)" if down else ""))
            symbol = COLLAPSED_SYMBOL if down else ROLE_SYMBOL.get(role, "square")
            for on_front, part in group.groupby("on_front", sort=False):
                figure.add_trace(go.Scatter(
                    x=part["flops_total"], y=_pct(part["accuracy"]), mode="markers", name=name, legendgroup=name,
                    showlegend=name not in shown,
                    hovertext=_hover(part, ("flops_total", "accuracy", *COLLAPSE_COLUMNS)),
                    hoverinfo="text", marker=dict(color=colours.get(size, "black"), size=9, symbol=symbol,
                                                  opacity=1.0 if on_front else FADED)), **_cell(i, cols))
                shown.add(name)
        xs, ys = front_steps(panel["flops_total"].to_numpy(), panel["accuracy"].to_numpy(),
                             panel["on_front"].to_numpy(bool), until=panel["flops_total"].max())
        figure.add_trace(go.Scatter(x=xs, y=_pct(ys), mode="lines", line=dict(shape="hv", color="black", width=1.5),
                                    name="Pareto front", legendgroup="front", showlegend=i == 0, hoverinfo="skip"),
                         **_cell(i, cols))
        chance_line(figure, chance, metric, _cell(i, cols))
    figure.update_xaxes(type="log", title_text="total training FLOPs (teacher + student; a baseline's own)")
    figure.update_yaxes(title_text="accuracy (%)")
    return Figure("pareto", title,
                  "Each unit's final checkpoint (students, teachers alone and baselines). Black step line: the Pareto "
                  "front, the best accuracy reached with at most that much compute; faded points are dominated. "
                  "Colour: teacher size; circles are students, diamonds teachers alone, black squares baselines "
                  "trained the whole budget (their FLOPs include the EMA encoder's forward), crosses baselines whose "
                  "targets collapsed.", figure, ("pareto",))


def _curve_name(key: tuple) -> str:
    budget, teacher, student = key
    return f"budget {budget_name(budget)}, {teacher} → {student}"


def allocation_figure(findings: Findings, metrics: list[Metric], chance: dict[str, float]) -> Figure:
    points, fits = findings.allocation_points, findings.allocation
    title = "Accuracy against the teacher's share of the budget"
    figure, cols = _panels(title, [m.label for m in metrics])
    colours = _colours([key for key, _ in points.groupby(CURVE, sort=True)] if len(points) else [])
    fitted = {(row["task"], *(row[c] for c in CURVE)): row for _, row in fits.iterrows()}
    for i, metric in enumerate(metrics):
        panel = points[points["task"] == metric.name]
        for key, curve in panel.groupby(CURVE, sort=True):
            name, colour = _curve_name(key), colours[key]
            figure.add_trace(go.Scatter(
                x=curve["teacher_share"], y=_pct(curve["accuracy"]), mode="markers", name=name, legendgroup=name,
                showlegend=i == 0, marker=dict(color=colour, size=9), hoverinfo="text",
                hovertext=_hover(curve, ("allocation_ids", "accuracy", "seeds"))), **_cell(i, cols))
            row = fitted.get((metric.name, *key))
            if row is None or pd.isna(row["a"]):
                continue
            grid = np.geomspace(curve["teacher_share"].min(), curve["teacher_share"].max(), 60)
            curve_y = curve_value(row["a"], row["b"], row["c"], grid)
            figure.add_trace(go.Scatter(x=grid, y=_pct(curve_y), mode="lines", legendgroup=name,
                                        showlegend=False, line=dict(color=colour, dash="dash"), hoverinfo="skip"),
                             **_cell(i, cols))
            figure.add_trace(go.Scatter(
                x=[row["optimum_share"]], y=[row["optimum_accuracy"] * 100], mode="markers", legendgroup=name,
                showlegend=False, marker=dict(color=colour, symbol="star", size=16, line=dict(color="black", width=1)),
                hoverinfo="text", hovertext=[f"{name}<br>fitted optimum ({row['optimum_where']} the tested range)"
                                             f"<br>share {row['optimum_share']:.3f}, {row['optimum_accuracy']:.1%}"]),
                **_cell(i, cols))
        chance_line(figure, chance, metric, _cell(i, cols))
    figure.update_xaxes(type="log", title_text="teacher share of the step budget (T / N)")
    figure.update_yaxes(title_text="final student accuracy (%)")
    return Figure("allocation", title,
                  "One curve per budget N and teacher → student size; points are final students (mean over seeds). "
                  "Dashed: a quadratic in ln(share) fitted by least squares (needs 3 distinct shares; through exactly "
                  "3 it interpolates); star: the fitted maximum over the tested shares.",
                  figure, ("allocation_points", "allocation"))


def teacher_size_figure(findings: Findings, metrics: list[Metric], sizes: list[str]) -> Figure:
    pairs = findings.pairs
    title = "Teacher size: the teacher alone against the student it trains"
    figure, cols = _panels(title, [m.label for m in metrics])
    position = {size: i for i, size in enumerate(sizes)}
    for i, metric in enumerate(metrics):
        panel = pairs[pairs["task"] == metric.name].sort_values(["budget", "teacher_steps"], kind="stable")
        panel = panel.reset_index(drop=True)
        x = np.full(len(panel), np.nan)
        for size, group in panel.groupby("teacher_size", sort=False):
            spread = np.linspace(-0.3, 0.3, len(group)) if len(group) > 1 else np.zeros(1)
            x[group.index] = position.get(size, len(sizes)) + spread
        segments_x = np.column_stack([x, x, np.full(len(x), np.nan)]).ravel()
        segments_y = np.column_stack([_pct(panel["teacher_accuracy"]), _pct(panel["student_accuracy"]),
                                      np.full(len(x), np.nan)]).ravel()
        figure.add_trace(go.Scatter(x=segments_x, y=segments_y, mode="lines", line=dict(color="lightgrey"),
                                    showlegend=False, hoverinfo="skip"), **_cell(i, cols))
        hover = _hover(panel, ("teacher_accuracy", "student_accuracy"))
        for column, name, symbol, colour in (("teacher_accuracy", "teacher alone", "circle-open", "darkorange"),
                                             ("student_accuracy", "its student", "circle", "black")):
            figure.add_trace(go.Scatter(x=x, y=_pct(panel[column]), mode="markers", name=name, legendgroup=name,
                                        showlegend=i == 0, hovertext=hover, hoverinfo="text",
                                        marker=dict(symbol=symbol, size=10, color=colour, line=dict(width=2))),
                             **_cell(i, cols))
    figure.update_xaxes(tickvals=list(range(len(sizes))), ticktext=sizes, title_text="teacher size (by FLOPs per step)")
    figure.update_yaxes(title_text="accuracy (%)")
    return Figure("teacher_size", title,
                  "The paper's Table 14 view. For every allocation, the teacher probed alone (open) and the final "
                  "student trained from it (filled), joined by a line; allocations of one teacher size spread "
                  "side by side, by budget and teacher steps.", figure, ("pairs",))


def _fit_line(fit: pd.Series, xs: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    grid = np.linspace(xs.min(), xs.max(), 2)
    return grid, (fit["slope"] * grid + fit["intercept"]) * 100


def _stats(fit: pd.Series) -> str:
    if pd.isna(fit["r2"]) and pd.isna(fit["spearman"]):
        return fit["note"] or "undefined"
    return f"R² {fit['r2']:.2f}, ρ {fit['spearman']:+.2f}, LOO {fit['loo_mae'] * 100:.1f} pts"


def loss_figure(findings: Findings, metrics: list[Metric]) -> Figure:
    points, fits = findings.loss_points, findings.loss_fits
    titles = []
    for metric in metrics:
        pooled = fits[(fits["task"] == metric.name) & (fits["teacher"] == "pooled")]
        fit = pooled.iloc[0] if len(pooled) else None
        defined = fit is not None and not pd.isna(fit["r2"])
        titles.append(f"{metric.label}: pooled R² {fit['r2']:.2f}, ρ {fit['spearman']:+.2f}" if defined
                      else f"{metric.label}: pooled fit undefined")
    title = "Student (and baseline) loss against accuracy, over checkpoints"
    figure, cols = _panels(title, titles)
    colours = _colours(list(dict.fromkeys(points["teacher"]))) if len(points) else {}
    for i, metric in enumerate(metrics):
        panel = points[points["task"] == metric.name]
        for teacher, group in panel.groupby("teacher", sort=False):
            colour = colours[teacher]
            student = group["role"].iloc[0] == "student"
            name = f"teacher {teacher}" if student else f"{teacher} baseline (its own loss)"
            figure.add_trace(go.Scatter(
                x=group["loss"], y=_pct(group["accuracy"]), mode="markers", name=name,
                legendgroup=teacher, showlegend=i == 0, marker=dict(color=colour, size=8,
                                                                   symbol="circle" if student else "square"),
                hovertext=_hover(group, ("loss", "accuracy")), hoverinfo="text"), **_cell(i, cols))
            fit = fits[(fits["task"] == metric.name) & (fits["teacher"] == teacher)].iloc[0]
            if not pd.isna(fit["slope"]):
                xs, ys = _fit_line(fit, group["loss"])
                figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=colour, dash=None if student
                                                                                else "dot"),
                                            legendgroup=teacher, showlegend=False, hoverinfo="text",
                                            hovertext=[f"{name}: {_stats(fit)}"] * 2), **_cell(i, cols))
        pooled = fits[(fits["task"] == metric.name) & (fits["teacher"] == "pooled")]
        if len(pooled) and not pd.isna(pooled["slope"].iloc[0]):
            xs, ys = _fit_line(pooled.iloc[0], panel.loc[panel["role"] == "student", "loss"])
            figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="pooled fit", legendgroup="pooled",
                                        showlegend=i == 0, line=dict(color="black", dash="dash"), hoverinfo="text",
                                        hovertext=[f"pooled: {_stats(pooled.iloc[0])}"] * 2), **_cell(i, cols))
    figure.update_xaxes(title_text=f"student training loss at the checkpoint ({LOSS})")
    figure.update_yaxes(title_text="accuracy (%)")
    return Figure("loss_accuracy", title,
                  "Every probed student checkpoint. Lines: least-squares fits per teacher and pooled over the "
                  "students (dashed). Squares and dotted line: a baseline's checkpoints against its own loss (another "
                  "objective, not pooled; the paper finds the V-JEPA 2 loss does not track accuracy). R²: "
                  "variance explained; ρ: Spearman rank correlation (negative when lower loss goes with higher "
                  "accuracy); LOO: mean absolute error predicting each checkpoint from a line through the others. "
                  "Loss: the mean of the last 10% of logged losses up to the checkpoint (one batch's loss is too "
                  "noisy to rank checkpoints).", figure, ("loss_points", "loss_fits"))


def _pooled(fits: pd.DataFrame, task: str, label: str) -> pd.DataFrame:
    return fits[(fits["task"] == task) & (fits["teacher_metric"] == label) & (fits["group"] == "pooled")]


def teacher_metrics_figure(findings: Findings, metrics: list[Metric]) -> Figure:
    points, fits = findings.teacher_points, findings.teacher_fits
    titles = []
    for metric in metrics:
        for label in TEACHER_METRICS.values():
            pooled = _pooled(fits, metric.name, label)
            r2 = f"{pooled['r2'].iloc[0]:.2f}" if len(pooled) and not pd.isna(pooled["r2"].iloc[0]) else "n/a"
            titles.append(f"{metric.label} vs {label}: R² {r2}")
    title = "Do teacher-side metrics predict the student?"
    figure, cols = _panels(title, titles, cols=len(TEACHER_METRICS))
    colours = _colours(list(dict.fromkeys(points["group"])) if len(points) else [])  # budget order
    for i, metric in enumerate(metrics):
        for j, label in enumerate(TEACHER_METRICS.values()):
            cell = _cell(i * len(TEACHER_METRICS) + j, cols)
            panel = points[(points["task"] == metric.name) & (points["teacher_metric"] == label)]
            for group, part in panel.groupby("group", sort=False):
                figure.add_trace(go.Scatter(
                    x=part["x"] * (100 if label == "teacher accuracy" else 1), y=_pct(part["student_accuracy"]),
                    mode="markers", name=group, legendgroup=group, showlegend=i == 0 and j == 0,
                    marker=dict(color=colours[group], size=9), hoverinfo="text",
                    hovertext=_hover(part, ("x", "student_accuracy"))), **cell)
            pooled = _pooled(fits, metric.name, label)
            if len(pooled) and not pd.isna(pooled["slope"].iloc[0]):
                scale = 100 if label == "teacher accuracy" else 1
                xs, ys = _fit_line(pooled.iloc[0], panel["x"])
                figure.add_trace(go.Scatter(x=xs * scale, y=ys, mode="lines", line=dict(color="black", dash="dash"),
                                            name="pooled fit", legendgroup="pooled", showlegend=i == 0 and j == 0,
                                            hoverinfo="text", hovertext=[f"pooled: {_stats(pooled.iloc[0])}"] * 2),
                                 **cell)
            figure.update_xaxes(title_text=label + (" (%)" if label == "teacher accuracy" else ""), **cell)
            figure.update_yaxes(title_text="student accuracy (%)" if j == 0 else None, **cell)
    return Figure("teacher_metrics", title,
                  "Final students against their frozen teacher's smoothed training loss, RankMe and probe accuracy "
                  "(on the same task). Colour: budget; dashed: pooled least-squares line, its R² in the panel title. "
                  "The paper reports that teacher loss and RankMe do not predict student accuracy.",
                  figure, ("teacher_points", "teacher_fits"))


def student_teacher_figure(findings: Findings, metrics: list[Metric], sizes: list[str]) -> Figure:
    pairs = findings.pairs
    titles = []
    for metric in metrics:
        panel = pairs[pairs["task"] == metric.name].dropna(subset=["teacher_accuracy", "student_accuracy"])
        titles.append(f"{metric.label}: {int(panel['beats_teacher'].sum())} of {len(panel)} above the diagonal")
    title = "Students against their teachers"
    figure, cols = _panels(title, titles)
    colours = _colours(sizes)
    for i, metric in enumerate(metrics):
        panel = pairs[pairs["task"] == metric.name]
        for size, group in panel.groupby("teacher_size", sort=False):
            figure.add_trace(go.Scatter(
                x=_pct(group["teacher_accuracy"]), y=_pct(group["student_accuracy"]), mode="markers",
                name=f"teacher {size}", legendgroup=str(size), showlegend=i == 0,
                marker=dict(color=colours.get(size, "grey"), size=9), hoverinfo="text",
                hovertext=_hover(group, ("teacher_accuracy", "student_accuracy"))), **_cell(i, cols))
        both = _pct(pd.concat([panel["teacher_accuracy"], panel["student_accuracy"]]).dropna())
        if len(both):
            ends = [both.min(), both.max()]
            figure.add_trace(go.Scatter(x=ends, y=ends, mode="lines", line=dict(color="grey", dash="dot"),
                                        name="student = teacher", legendgroup="diagonal", showlegend=i == 0,
                                        hoverinfo="skip"), **_cell(i, cols))
    figure.update_xaxes(title_text="teacher accuracy (%)")
    figure.update_yaxes(title_text="student accuracy (%)")
    return Figure("student_vs_teacher", title,
                  "Each final student against the frozen teacher it learned from. Above the dotted diagonal: the "
                  "student beats its teacher (the paper: every student does).", figure, ("pairs",))


def recommendation_figure(findings: Findings) -> Figure:
    """The optimum share of each swept budget, the power law through them and its extrapolation to the
    recommended budget, with the bootstrap interval there."""
    table = findings.recommendation
    figure = go.Figure()
    caption = ("Optimum teacher share of each swept budget (the maximum of its allocation curve), the power law "
               "fitted through them (solid over the swept budgets, dashed beyond) and the split recommended at twice "
               "the largest budget with its 90% bootstrap interval over seeds.")
    if table.empty:
        figure.update_layout(title="No recommendation: it needs final students at two budgets or more")
        return Figure("recommendation", "Optimum share against budget", caption, figure, ("recommendation",))
    swept, advised = table[table["row"] == "swept"], table[table["row"] == "recommended"].iloc[0]
    kind = advised["budget_kind"]
    trend = fit_trend(swept.rename(columns={"share": "optimum_share", "accuracy": "optimum_accuracy"}))
    inside = np.geomspace(swept["budget"].min(), swept["budget"].max(), 30)
    beyond = np.geomspace(swept["budget"].max(), advised["budget"], 30)
    for xs, dash, name in ((inside, "solid", "fit"), (beyond, "dash", "extrapolation")):
        figure.add_trace(go.Scatter(x=xs, y=[trend.share(x) for x in xs], mode="lines", name=name,
                                    line={"color": PALETTE[0], "dash": dash}))
    figure.add_trace(go.Scatter(
        x=swept["budget"], y=swept["share"], mode="markers", name="optimum of a swept budget",
        marker={"color": PALETTE[0], "size": 10},
        text=[f"{budget_name(b, kind)}: share {s:.3f}, accuracy {100 * a:.1f}% ({w})"
              for b, s, a, w in zip(swept["budget"], swept["share"], swept["accuracy"], swept["where"])],
        hoverinfo="text"))
    figure.add_trace(go.Scatter(
        x=[advised["budget"]], y=[advised["share"]], mode="markers", name="recommended",
        marker={"color": PALETTE[1], "size": 12, "symbol": "star"},
        error_y={"type": "data", "symmetric": False, "array": [advised["share_high"] - advised["share"]],
                 "arrayminus": [advised["share"] - advised["share_low"]]},
        text=[f"{budget_name(advised['budget'], kind)}: share {advised['share']:.3f} "
              f"({advised['share_low']:.3f}-{advised['share_high']:.3f}), accuracy {100 * advised['accuracy']:.1f}%"
              + (" (too far to trust)" if advised["too_far"] else "")], hoverinfo="text"))
    figure.update_layout(title=f"Optimum teacher share against budget ({advised['teacher_size']} teacher, "
                               f"{advised['student_size']} student)", height=PANEL_HEIGHT + 40,
                         xaxis={"type": "log", "title": f"budget ({kind})"}, yaxis={"title": "teacher share"})
    return Figure("recommendation", "Optimum share against budget", caption, figure, ("recommendation",))


def all_figures(findings: Findings, metrics: list[Metric], sizes: list[str], chance: dict[str, float]) -> list[Figure]:
    return [
        pareto_figure(findings, metrics, sizes, chance),
        allocation_figure(findings, metrics, chance),
        teacher_size_figure(findings, metrics, sizes),
        loss_figure(findings, metrics),
        teacher_metrics_figure(findings, metrics),
        student_teacher_figure(findings, metrics, sizes),
        recommendation_figure(findings),
    ]
