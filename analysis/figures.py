"""The report's plotly figures, drawn from the Findings tables (accuracies shown in %).

Every point's hover lists its full configuration (CONFIG_COLUMNS and the plotted values), so a
reader can tell which allocation, checkpoint and teacher a point is without the CSV. Every accuracy
figure names its readout and draws chance and the random-init floor (analysis/figure_parts.py). A teacher
size has one symbol in every figure; where the series are sizes (or sizes by budget) it has one hue too, and
where they are teachers of several step counts (the loss figures), the colour is the step count.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from analysis.allocation import CURVE, curve_value
from analysis.figure_parts import (
    BASELINE_COLOUR, PALETTE, PANEL_HEIGHT, Figure, References, accuracy_title, cell, fit_legend,
    flops_axis, legend_proxy, panels, reference_legend, reference_lines, references_from, shade_table, share_and_steps_axes, size_colour, size_index, size_symbol, steps_axis,
)
from analysis.findings import LOSS, TEACHER_METRICS, Findings
from analysis.markdown import budget_name
from analysis.markdown import steps as steps_name
from analysis.pareto import front_steps
from analysis.recommend import fit_trend
from analysis.tables import COLLAPSE_COLUMNS, CONFIG_COLUMNS, Metric, Results, baseline_name, equals

ROLE_SYMBOL = {"student": "circle", "teacher": "diamond"}  # any other role (a baseline) is a square
COLLAPSED_SYMBOL = "x"  # a baseline run flagged collapsed
FADED = 0.25  # dominated points: visible, but the front reads first
SEED_OPACITY = 0.55  # one seed's point beside the mean over seeds


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


def _colours(keys: list) -> dict:
    return {key: PALETTE[i % len(PALETTE)] for i, key in enumerate(keys)}


def _size_group(size: object) -> str:
    return f"teacher size {size}"


# -- Pareto ---------------------------------------------------------------------------------------------------------


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
                    x=part["flops_total"], y=_pct(part["accuracy"]), mode="markers", name=name, legendgroup=name,
                    showlegend=False, hovertext=_hover(part, ("flops_total", "accuracy", *COLLAPSE_COLUMNS)),
                    hoverinfo="text", marker=dict(**marker, size=9, opacity=1.0 if on_front else FADED)),
                    **cell(i, cols))
            if name not in shown:  # at full opacity, whether or not the first point drawn is dominated
                legend_proxy(figure, name, name, marker=dict(**marker, size=9), rank=rank + size_index(size, sizes))
                shown.add(name)
        xs, ys = front_steps(panel["flops_total"].to_numpy(), panel["accuracy"].to_numpy(),
                             panel["on_front"].to_numpy(bool), until=panel["flops_total"].max())
        figure.add_trace(go.Scatter(x=xs, y=_pct(ys), mode="lines", line=dict(shape="hv", color="black", width=1.5),
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
        x=curve[x], y=_pct(curve["accuracy"]), mode="markers" if x == "teacher_share" else "lines+markers",
        name=style["name"], legendgroup=style["group"], showlegend=first, legendrank=style["rank"],
        legendgrouptitle=dict(text=style["group"]) if first else None,
        marker=dict(color=style["colour"], symbol=style["symbol"], size=10), line=dict(color=style["colour"], width=1),
        hoverinfo="text", hovertext=_hover(curve, ("allocation_ids", "accuracy", "seeds"))), **where)
    if several and len(seeds):
        figure.add_trace(go.Scatter(
            x=seeds[x], y=_pct(seeds["accuracy"]), mode="markers", legendgroup=style["group"], showlegend=False,
            name=f"{style['name']}, one seed", marker=dict(color=style["colour"], symbol=style["symbol"] + "-open",
                                                          size=7, opacity=SEED_OPACITY),
            hoverinfo="text", hovertext=_hover(seeds, ("accuracy",))), **where)


def _add_fit(figure: go.Figure, curve: pd.DataFrame, row: pd.Series | None, style: dict, where: dict) -> None:
    """The fitted quadratic in ln(share) (dashed) and its maximum (star)."""
    if row is None or pd.isna(row["a"]):
        return
    grid = np.geomspace(curve["teacher_share"].min(), curve["teacher_share"].max(), 60)
    figure.add_trace(go.Scatter(x=grid, y=_pct(curve_value(row["a"], row["b"], row["c"], grid)), mode="lines",
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
        segments_y = np.column_stack([_pct(panel["teacher_accuracy"]), _pct(panel["student_accuracy"]),
                                      np.full(len(x), np.nan)]).ravel()
        figure.add_trace(go.Scatter(x=segments_x, y=segments_y, mode="lines", line=dict(color="lightgrey"),
                                    showlegend=False, hoverinfo="skip"), **cell(i, cols))
        hover = _hover(panel, ("teacher_accuracy", "student_accuracy"))
        for column, name, symbol, colour in (("teacher_accuracy", "teacher alone", "circle-open", "darkorange"),
                                             ("student_accuracy", "its student", "circle", "black")):
            figure.add_trace(go.Scatter(x=x, y=_pct(panel[column]), mode="markers", name=name, legendgroup=name,
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


# -- student loss against accuracy, and against step ---------------------------------------------------------------


def _fit_line(fit: pd.Series, xs: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    grid = np.linspace(xs.min(), xs.max(), 2)
    return grid, (fit["slope"] * grid + fit["intercept"]) * 100


def _stats(fit: pd.Series) -> str:
    if pd.isna(fit["r2"]) and pd.isna(fit["spearman"]):
        return fit["note"] or "undefined"
    return f"R² {fit['r2']:.2f}, ρ {fit['spearman']:+.2f}, LOO {fit['loo_mae'] * 100:.1f} pts"


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
        styles[(size, steps)] = dict(colour=colours[steps], symbol=size_symbol(size, sizes), group=_size_group(size),
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
                x=group["loss"], y=_pct(group["accuracy"]), mode="markers", name=style["name"],
                legendgroup=style["group"], showlegend=first, legendrank=style["rank"],
                legendgrouptitle=dict(text=style["title"]) if first else None,
                marker=dict(color=style["colour"], size=8, symbol=style["symbol"]),
                hovertext=_hover(group, ("loss", "accuracy")), hoverinfo="text"), **cell(i, cols))
            fit = fits[(fits["task"] == metric.name) & (fits["teacher"] == teacher)].iloc[0]
            if not pd.isna(fit["slope"]):
                xs, ys = _fit_line(fit, group["loss"])
                figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines", showlegend=False, legendgroup=style["group"],
                                            line=dict(color=style["colour"], dash=None if student else "dot"),
                                            hoverinfo="text", hovertext=[f"{teacher}: {_stats(fit)}"] * 2),
                                 **cell(i, cols))
        pooled = fits[(fits["task"] == metric.name) & (fits["teacher"] == "pooled")]
        if len(pooled) and not pd.isna(pooled["slope"].iloc[0]):
            xs, ys = _fit_line(pooled.iloc[0], panel.loc[panel["role"] == "student", "loss"])
            figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="pooled fit", legendgroup="pooled",
                                        showlegend=i == 0, line=dict(color="black", dash="dash"), hoverinfo="text",
                                        legendrank=1500, hovertext=[f"pooled: {_stats(pooled.iloc[0])}"] * 2),
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
            hoverinfo="text", hovertext=_hover(rows, ("loss",))), **cell(index, cols))

    for index, budget in enumerate(budgets):
        for _, run in students[students["budget"] == budget].groupby("unit_key", sort=False):
            add_run(run, index)
    if len(teachers):
        index = len(budgets)
        for (size, seed), ladder in teachers.groupby(["teacher_size", "seed"], sort=False):
            ladder = ladder.sort_values("teacher_steps")
            figure.add_trace(go.Scatter(
                x=ladder["teacher_steps"], y=ladder["teacher_loss"], mode="lines+markers", name="teacher alone",
                legendgroup=_size_group(size), showlegend=(size, "ladder") not in shown,
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


# -- teacher-side metrics and students against teachers -----------------------------------------------------------


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
    colours = _colours(list(dict.fromkeys(points["group"])) if len(points) else [])  # budget order
    for i, metric in enumerate(metrics):
        for j, label in enumerate(TEACHER_METRICS.values()):
            where = cell(i * len(TEACHER_METRICS) + j, cols)
            is_accuracy = label == "teacher accuracy"
            panel = points[(points["task"] == metric.name) & (points["teacher_metric"] == label)]
            for group, part in panel.groupby("group", sort=False):
                figure.add_trace(go.Scatter(
                    x=part["x"] * (100 if is_accuracy else 1), y=_pct(part["student_accuracy"]),
                    mode="markers", name=group, legendgroup=group, showlegend=i == 0 and j == 0,
                    marker=dict(color=colours[group], size=9), hoverinfo="text",
                    hovertext=_hover(part, ("x", "student_accuracy"))), **where)
            pooled = _pooled(fits, metric.name, label)
            if len(pooled) and not pd.isna(pooled["slope"].iloc[0]):
                scale = 100 if is_accuracy else 1
                xs, ys = _fit_line(pooled.iloc[0], panel["x"])
                figure.add_trace(go.Scatter(x=xs * scale, y=ys, mode="lines", line=dict(color="black", dash="dash"),
                                            name="pooled fit", legendgroup="pooled", showlegend=i == 0 and j == 0,
                                            legendrank=1500, hoverinfo="text",
                                            hovertext=[f"pooled: {_stats(pooled.iloc[0])}"] * 2), **where)
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
                x=_pct(group["teacher_accuracy"]), y=_pct(group["student_accuracy"]), mode="markers",
                name=f"teacher {size}", legendgroup=str(size), showlegend=i == 0,
                marker=dict(color=size_colour(size, sizes), symbol=size_symbol(size, sizes), size=9),
                hoverinfo="text", hovertext=_hover(group, ("teacher_accuracy", "student_accuracy"))), **cell(i, cols))
        both = _pct(pd.concat([panel["teacher_accuracy"], panel["student_accuracy"]]).dropna())
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


# -- the recommendation ---------------------------------------------------------------------------------------------


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
    budgets = [*swept["budget"], advised["budget"]]
    x_axis = flops_axis(budgets) if kind == "flops" else steps_axis(budgets)
    figure.update_layout(title=f"Optimum teacher share against budget ({advised['teacher_size']} teacher, "
                               f"{advised['student_size']} student)", height=PANEL_HEIGHT + 40,
                         template="plotly_white", xaxis={**x_axis, "title": f"budget ({kind})"},
                         yaxis={"title": "teacher share"})
    return Figure("recommendation", "Optimum share against budget", caption, figure, ("recommendation",))


def all_figures(findings: Findings, metrics: list[Metric], sizes: list[str], chance: dict[str, float],
                results: Results | None = None) -> list[Figure]:
    """Every figure of the sweep report; `results` gives the readout and the random-init floor (without it the
    figures say that the readout is not recorded and the floor not measured)."""
    references = references_from(results, metrics, chance)
    return [
        pareto_figure(findings, metrics, sizes, references),
        allocation_figure(findings, metrics, sizes, references),
        teacher_size_figure(findings, metrics, sizes, references),
        loss_figure(findings, metrics, sizes, references),
        loss_curves_figure(findings, sizes),
        teacher_metrics_figure(findings, metrics, references),
        student_teacher_figure(findings, metrics, sizes, references),
        recommendation_figure(findings),
    ]
