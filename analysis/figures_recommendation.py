"""The report's recommendation figure: the optimum teacher share of each swept budget, the power law through
them and its extrapolation to the recommended budget."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from analysis.figure_axes import flops_axis, steps_axis
from analysis.figure_parts import PALETTE, PANEL_HEIGHT, Figure
from analysis.findings import Findings
from analysis.markdown import budget_name
from analysis.recommend import fit_trend


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
