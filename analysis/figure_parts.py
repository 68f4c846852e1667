"""What every report figure shares: the Figure record, the panel grid, the identity (colour and symbol) of a
teacher size, the allocation figures' finish (their axes: analysis/figure_axes.py) and the references every
accuracy is read against (the readout, chance and the random-init floor)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative, sample_colorscale
from plotly.subplots import make_subplots

from analysis.figure_axes import share_axis, steps_axis
from analysis.results import Metric, Results, floor_accuracy
from analysis.schema import MEAN_TASK, UNKNOWN_READOUT

PALETTE = qualitative.Plotly
PANEL_HEIGHT = 380
# One hue family and one symbol per teacher size, the same in every figure; within a size, a darker shade is
# more teacher steps (or a larger budget). Seven symbols against six hues: no two sizes of 42 share both.
SIZE_HUES = ("Blues", "Oranges", "Greens", "Purples", "Reds", "Greys")
SIZE_SYMBOLS = ("circle", "diamond", "square", "triangle-up", "pentagon", "star-triangle-up", "hexagon")
SHADES = (0.45, 0.95)  # the lightest shade still reads on white
BASELINE_COLOUR = "black"
FLOOR_NAME = "random-init floor"
CHANCE_NAME = "chance"
FLOOR_LINE = dict(dash="dash", color="dimgrey", width=1.5)
CHANCE_LINE = dict(dash="dot", color="grey", width=1.5)
# Legend rows in pixels, to size a figure so that its legend is never cut (plotly clips it at the bottom).
LEGEND_ROW_PX, LEGEND_GROUP_GAP_PX = 21, 12


@dataclass(frozen=True)
class Figure:
    name: str  # file stem of its PNG and HTML id
    title: str
    caption: str  # what is drawn and the choices behind it
    figure: go.Figure
    tables: tuple[str, ...]  # Findings tables it is drawn from (written beside it as CSV)


# -- references: the readout, chance and the random-init floor ----------------------------------------------


@dataclass(frozen=True)
class References:
    """What every accuracy is read against: the readout that produced it, chance, and the never-trained
    encoder's accuracy on the same readout (per metric name, fractions; a missing one was not measured)."""

    readout: str = UNKNOWN_READOUT
    chance: dict[str, float] = field(default_factory=dict)
    floor: dict[str, float] = field(default_factory=dict)
    floor_what: str = ""  # which encoders the floor averages, e.g. "tiny encoder, 2 seeds"

    def chance_of(self, metric: Metric) -> float:
        if metric.name in self.chance:
            return float(self.chance[metric.name])
        if metric.name == MEAN_TASK:  # the task average's chance: the mean of the tasks'
            values = [v for name, v in self.chance.items() if name != MEAN_TASK]
            return float(np.mean(values)) if values else math.nan
        return math.nan

    def floor_of(self, metric: Metric) -> float:
        return float(self.floor.get(metric.name, math.nan))

    @property
    def floor_measured(self) -> bool:
        return any(not math.isnan(v) for v in self.floor.values())

    def subtitle(self) -> str:
        floor = (f"dashed: {FLOOR_NAME} ({self.floor_what})" if self.floor_what else f"dashed: {FLOOR_NAME}") \
            if self.floor_measured else f"{FLOOR_NAME} not measured"
        return f"Readout: {self.readout}. Grey {floor}; dotted: chance."


def floor_description(floor: pd.DataFrame) -> str:
    """Which never-trained encoders a floor averages: their sizes and seed count."""
    if floor.empty:
        return ""
    sizes = ", ".join(str(s) for s in dict.fromkeys(floor["student_size"].dropna())) if "student_size" in floor \
        else ""
    seeds = floor["seed"].nunique() if "seed" in floor else len(floor)
    what = f"{sizes} encoder" if sizes else "never-trained encoder"
    return f"{what}, mean of {seeds} seed{'s' * (seeds != 1)}"


def references_from(results: Results | None, metrics: list[Metric], chance: dict[str, float]) -> References:
    """The sweep report's references; without a Results (older callers), the readout is unknown and the floor
    not measured, which the figures then say."""
    if results is None:
        return References(chance=dict(chance))
    floor = {m.name: floor_accuracy(results, m) for m in metrics}
    return References(results.readout, dict(chance), floor, floor_description(results.floor))


def _has(value: float) -> bool:
    return value is not None and not math.isnan(value)


def reference_values(references: References, metric: Metric) -> list[float]:
    """Chance and the floor in %, where known: an explicit axis range must include the lines."""
    return [100 * v for v in (references.chance_of(metric), references.floor_of(metric)) if _has(v)]


def reference_lines(figure: go.Figure, references: References, metric: Metric, cell: dict[str, int],
                    vertical: bool = False) -> None:
    """Chance (dotted) and the random-init floor (dashed) across a panel; across its x axis too where
    `vertical` (a panel with accuracy on x). Named in the legend (reference_legend), not by labels on the
    lines, which collide where the two lie close."""
    for value, name, line in ((references.chance_of(metric), CHANCE_NAME, CHANCE_LINE),
                              (references.floor_of(metric), FLOOR_NAME, FLOOR_LINE)):
        if not _has(value):
            continue
        figure.add_hline(y=100 * value, line=line, name=name, **cell)
        if vertical:
            figure.add_vline(x=100 * value, line=line, name=name, **cell)


def reference_legend(figure: go.Figure, references: References) -> None:
    """Legend entries for the reference lines (shapes have none of their own)."""
    entries = [(FLOOR_NAME, FLOOR_LINE)] if references.floor_measured else []
    if any(_has(v) for v in references.chance.values()):
        entries.append((CHANCE_NAME, CHANCE_LINE))
    for name, line in entries:
        figure.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=name, line=line, legendgroup=name,
                                    legendrank=2000, hoverinfo="skip"))


def accuracy_title(title: str, references: References) -> dict:
    """The figure's title with the readout and the floor's source on a smaller second line (a <sup> line
    rather than layout.title.subtitle, which plotly older than 5.23 lacks)."""
    return dict(text=f"{title}<br><sup>{references.subtitle()}</sup>")


# -- panels and legends ---------------------------------------------------------------------------------------


def grid(count: int, cols: int = 3) -> tuple[int, int]:
    cols = max(1, min(count, cols))
    return math.ceil(count / cols), cols


def panels(title: str | dict, titles: list[str], cols: int = 3, top: int = 120) -> tuple[go.Figure, int]:
    """One panel per title; the figure's own title too, so that an exported PNG stands alone."""
    rows, cols = grid(len(titles), cols)
    figure = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.07,
                           vertical_spacing=min(0.3 / max(rows - 1, 1), 0.12))
    figure.update_layout(title=title if isinstance(title, dict) else dict(text=title),
                         height=PANEL_HEIGHT * rows + 40, template="plotly_white", hovermode="closest",
                         margin=dict(t=top, b=60))
    return figure, cols


def cell(index: int, cols: int) -> dict[str, int]:
    return {"row": index // cols + 1, "col": index % cols + 1}


def legend_entries(figure: go.Figure) -> tuple[int, int]:
    """(entries, group titles) the legend shows: one per named trace shown in it."""
    entries, titles = set(), set()
    for trace in figure.data:
        if trace.showlegend is False or not trace.name:
            continue
        entries.add((trace.legendgroup, trace.name))
        if trace.legendgrouptitle and trace.legendgrouptitle.text:
            titles.add(trace.legendgrouptitle.text)
    return len(entries), len(titles)


def fit_legend(figure: go.Figure) -> go.Figure:
    """Make the figure tall enough for its whole legend: plotly cuts a legend that overflows (a PNG has no
    scroll bar)."""
    entries, titles = legend_entries(figure)
    groups = len({trace.legendgroup for trace in figure.data if trace.showlegend is not False and trace.name})
    margin = figure.layout.margin
    needed = (entries + titles) * LEGEND_ROW_PX + groups * LEGEND_GROUP_GAP_PX + (margin.t or 100) + (margin.b or 80)
    if needed > (figure.layout.height or 450):
        figure.update_layout(height=needed)
    return figure


def legend_proxy(figure: go.Figure, name: str, group: str, marker: dict | None = None, line: dict | None = None,
                 group_title: str | None = None, rank: int = 1000) -> None:
    """A legend entry drawn at full opacity: the real traces (some faded) stay out of the legend."""
    mode = "+".join(m for m, on in (("markers", marker), ("lines", line)) if on) or "markers"
    figure.add_trace(go.Scatter(x=[None], y=[None], mode=mode, name=name, legendgroup=group, legendrank=rank,
                                marker=marker or {}, line=line or {}, hoverinfo="skip",
                                legendgrouptitle=dict(text=group_title) if group_title else None))


# -- identities: a teacher size's hue and symbol, shades within it ------------------------------------------------


def size_index(size: object, sizes: list) -> int:
    """A size's place in `sizes`; past the end for an unknown or missing one (a baseline has no teacher)."""
    if size is None or pd.isna(size):
        return len(sizes)
    return sizes.index(size) if size in sizes else len(sizes)


def size_symbol(size: object, sizes: list) -> str:
    return SIZE_SYMBOLS[size_index(size, sizes) % len(SIZE_SYMBOLS)]


def size_shade(size: object, sizes: list, rank: int = 0, count: int = 1) -> str:
    """The hue of a teacher size, shade `rank` of `count` (light to dark); one shade is the middle one."""
    scale = SIZE_HUES[size_index(size, sizes) % len(SIZE_HUES)]
    position = 0.75 if count <= 1 else np.linspace(*SHADES, count)[rank]
    return sample_colorscale(scale, [float(position)])[0]


def size_colour(size: object, sizes: list) -> str:
    return size_shade(size, sizes)


def shade_table(frame: pd.DataFrame, sizes: list, by: str) -> dict[tuple, str]:
    """Colour of each (teacher size, `by` value): the size's hue, darker for a larger `by` within the size."""
    colours = {}
    for size, group in frame.groupby("teacher_size", sort=False):
        values = sorted(group[by].dropna().unique())
        for rank, value in enumerate(values):
            colours[(size, value)] = size_shade(size, sizes, rank, len(values))
    return colours


def share_and_steps_axes(figure: go.Figure, references, shares, steps) -> None:
    """An allocation figure's finish: column 1 by teacher share, column 2 by teacher steps, a tick at every tested
    value, and the legend entries for per-seed points and the reference lines."""
    if any(t.name and t.name.endswith("one seed") for t in figure.data):
        legend_proxy(figure, "one seed (open; filled: the mean)", "seeds", rank=1400,
                     marker=dict(color="grey", symbol="circle-open", size=7))
    reference_legend(figure, references)
    figure.update_xaxes(title_text="teacher share of the budget (T / N)", col=1, **share_axis(shares))
    figure.update_xaxes(title_text="teacher steps (T)", col=2, **steps_axis(steps))
