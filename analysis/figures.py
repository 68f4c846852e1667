"""The report's plotly figures, drawn from the Findings tables (accuracies shown in %).

Every point's hover lists its full configuration (CONFIG_COLUMNS and the plotted values), so a
reader can tell which allocation, checkpoint and teacher a point is without the CSV. Every accuracy
figure names its readout and draws chance and the random-init floor (analysis/figure_parts.py). A teacher
size has one symbol in every figure; where the series are sizes (or sizes by budget) it has one hue too, and
where they are teachers of several step counts (the loss figures), the colour is the step count.
"""

from __future__ import annotations

from analysis.figure_parts import Figure, references_from
from analysis.figures_allocation import allocation_figure, pareto_figure, teacher_size_figure
from analysis.figures_loss import loss_curves_figure, loss_figure
from analysis.figures_recommendation import recommendation_figure
from analysis.figures_teachers import student_teacher_figure, teacher_metrics_figure
from analysis.findings import Findings
from analysis.results import Metric, Results


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
