"""A probe result (trainers/probe/checkpoints.py's JSON) as results-table columns, defined once: the sweep writes every
row's probe columns with probe_columns (salt_budget/sweep/running/rows.py, floor.py) and the study reads its
random-init floor with accuracy_columns (analysis/study_data.py), so both apply the same "converged" rule."""

from __future__ import annotations

import math
from typing import Any


def converged(task: dict[str, Any]) -> bool:
    """Whether a task's head fitted its own train split; a readout that does not say (ridge, results written
    before the rule) counts as converged."""
    return task.get("converged", True)


def accuracy_columns(result: dict[str, Any]) -> dict[str, float]:
    """acc_<task> per task and their mean (acc_mean), then readout_<name>_<task> and readout_<name>_mean per
    readout computed beside the main one (probe.also_ridge). A head that never fitted its own train split (an
    attentive head within CONVERGED_MARGIN of chance on train) gives no accuracy (NaN), so that an under-trained
    probe is never read as a verdict on the encoder."""
    columns = {f"acc_{name}": task["accuracy"] if converged(task) else math.nan
               for name, task in result["tasks"].items()}
    columns["acc_mean"] = sum(columns.values()) / len(columns)
    for readout, tasks in result.get("readouts", {}).items():
        values = [task["accuracy"] for task in tasks.values()]
        for name, task in tasks.items():
            columns[f"readout_{readout}_{name}"] = task["accuracy"]
        columns[f"readout_{readout}_mean"] = sum(values) / len(values)
    return columns


def probe_columns(result: dict[str, Any]) -> dict[str, float | bool | str | None]:
    """A results row's probe columns: rankme, how and where it was read, and per task acc_<task> (accuracy_columns),
    train_acc_<task>, chance_<task> and converged_<task>, then acc_mean and the other readouts' columns."""
    # How and where it was read: a probe result written before these were recorded leaves them empty.
    columns: dict[str, float | bool | str | None] = {
        "rankme": result["rankme"], **result.get("readout", {}), **result.get("provenance", {})}
    accuracies = accuracy_columns(result)
    for name, task in result["tasks"].items():
        columns[f"acc_{name}"] = accuracies[f"acc_{name}"]
        columns[f"train_acc_{name}"] = task["train_accuracy"]
        columns[f"chance_{name}"] = task["chance"]
        columns[f"converged_{name}"] = converged(task)
    return {**columns, **accuracies}  # acc_mean and the readouts' columns after the tasks', as rows have them
