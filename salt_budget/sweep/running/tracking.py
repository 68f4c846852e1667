"""A sweep on the trackers of --tracker (trainers/tracking/): one tracker run per unit, named by its key so that
the trunk's segments, retries and resumed sweeps continue it, holding its training metrics (the loop logs them)
and its probe rows (logged here); and one run per sweep with its summary and report, written at its end."""

from __future__ import annotations

import json
import math
import sys
import traceback
from typing import Any

from trainers.config import config_hash, to_dict
from trainers.tracking.sinks import open_sink
from trainers.tracking.spec import TrackingSpec

from salt_budget.sweep.planning.plan import Plan
from salt_budget.sweep.planning.search_space import is_search_trunk
from salt_budget.sweep.planning.units import BaselineUnit, StudentUnit, TeacherUnit
from salt_budget.sweep.results.store import append_rows, read_results

# The results columns a probe row is logged with (as probe/<column>): its accuracies and RankMe.
_PROBE_PREFIXES = ("acc_", "train_acc_", "readout_")
_PROBE_COLUMNS = ("rankme",)
SWEEP_KIND = "sweep"


def unit_tags(unit: Any) -> dict[str, str | int | float]:
    """What the unit trains: a student its allocation, a teacher its size, steps and seed, a baseline its method,
    budget, size and seed (the results table's column names)."""
    if isinstance(unit, StudentUnit):
        a = unit.allocation
        return {"allocation_id": a.id, "budget": a.budget_value, "budget_kind": a.budget_kind,
                "teacher_size": a.teacher_size, "teacher_steps": a.teacher_steps, "teacher_share": a.teacher_share,
                "student_size": a.student_size, "student_steps": a.student_steps, "seed": a.seed,
                "teacher_key": unit.teacher.key}
    if isinstance(unit, TeacherUnit):
        return {"teacher_size": unit.id.size, "teacher_steps": unit.id.steps, "seed": unit.id.seed,
                "teacher_schedule": unit.cfg.optim.schedule}
    if isinstance(unit, BaselineUnit):
        return {"method": unit.method, "allocation_id": unit.id, "budget": unit.budget_value,
                "budget_kind": unit.budget_kind, "student_size": unit.size, "student_steps": unit.budget,
                "seed": unit.seed}
    raise TypeError(f"not a unit of a sweep: {type(unit).__name__}")


def display_name(unit: Any) -> str:
    """The unit's id as the results table gives it; a teacher's as allocation ids spell it."""
    if isinstance(unit, StudentUnit):
        return unit.allocation.id
    if isinstance(unit, TeacherUnit):
        # A search's trunk is no teacher of its length (that one is a branch of it): a name of its own.
        trunk = "search-trunk-" if is_search_trunk(unit) else ""
        return f"{trunk}T{unit.id.steps}-{unit.id.size}_seed{unit.id.seed}"
    return unit.id


def unit_tracking(plan: Plan, unit: Any) -> TrackingSpec | None:
    """The tracker run of a teacher, student or baseline unit (a ladder's trunk is a unit too); None without
    trackers."""
    if not plan.options.trackers:
        return None
    return TrackingSpec(trackers=tuple(plan.options.trackers), group=plan.name, run_id=unit.key,
                        name=display_name(unit), kind=unit.kind, folder=plan.sweep_dir, tags=unit_tags(unit),
                        config=to_dict(unit.cfg))


def _number(value: Any) -> float | None:
    """A row's value as a float for a tracker; None where it has none (a probe that did not converge: NaN, NA)."""
    if isinstance(value, (bool, str)) or type(value).__name__ == "bool_":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def probe_metrics(row: dict[str, Any]) -> dict[str, float]:
    """probe/<column> for each accuracy and RankMe of a results row that has a value."""
    names = [c for c in row if c.startswith(_PROBE_PREFIXES) or c in _PROBE_COLUMNS]
    return {f"probe/{c}": n for c in names if (n := _number(row[c])) is not None}


def log_probe_rows(plan: Plan, unit: Any, rows: list[dict[str, Any]]) -> None:
    """Log each results row of `unit` (a probed checkpoint) to the unit's tracker run at the row's step."""
    spec = unit_tracking(plan, unit)
    if spec is None or not rows:
        return
    with open_sink(spec) as sink:
        for row in sorted(rows, key=lambda row: int(row["step"])):
            sink.log(probe_metrics(row), int(row["step"]))


def record_probe_row(plan: Plan, unit: Any, row: dict[str, Any]) -> Any:
    """A probed checkpoint's row into the results table and onto the unit's tracker run; the table after."""
    table = append_rows(plan.sweep_dir, [row])
    log_probe_rows(plan, unit, [row])
    return table


def _sweep_record(plan: Plan) -> tuple[int, dict[str, Any]]:
    """How many times the sweep has ended (sweep_log.jsonl's lines) and the last record summarize wrote."""
    path = plan.sweep_dir / "sweep_log.jsonl"
    lines = [line for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    return len(lines), json.loads(lines[-1]) if lines else {}


def sweep_metrics(plan: Plan, record: dict[str, Any], code: int) -> dict[str, float]:
    """The summary's numbers (times, counts) and each final student's and baseline's mean accuracy."""
    metrics = {"sweep/exit_code": float(code)}
    for key, value in record.items():
        if key == "argv":
            continue
        items = value.items() if isinstance(value, dict) else [("", value)]
        for sub, item in items:
            if (number := _number(item)) is not None:
                metrics[f"sweep/{key}.{sub}" if sub else f"sweep/{key}"] = number
        if isinstance(value, list):
            metrics[f"sweep/{key}_count"] = float(len(value))
    table = read_results(plan.sweep_dir)
    if len(table):
        finals = table[(table["status"] == "ok") & table["is_final"].fillna(False).astype(bool)]
        for _, row in finals.iterrows():
            if not isinstance(row.get("allocation_id"), str):
                continue  # a teacher: the students' rows say what it gave
            if (accuracy := _number(row.get("acc_mean"))) is not None:
                metrics[f"final/{row['allocation_id']}/acc_mean"] = accuracy
        students = finals[finals["role"] == "student"]["acc_mean"].astype(float)
        if students.notna().any():
            metrics["sweep/best_student_acc_mean"] = float(students.max())
    return metrics


def sweep_tracking(plan: Plan) -> TrackingSpec:
    """The sweep's own tracker run, one per sweep folder."""
    options = json.loads(json.dumps(to_dict(plan.options), default=str))
    return TrackingSpec(trackers=tuple(plan.options.trackers), group=plan.name,
                        run_id=f"sweep-{config_hash({'sweep_dir': str(plan.sweep_dir)})}", name=plan.name,
                        kind=SWEEP_KIND, folder=plan.sweep_dir,
                        tags={"search": plan.options.search, "budgets": " ".join(f"{b:g}" for b in plan.options.budgets),
                              "config_hash": plan.config_hash},
                        config={"options": options, "experiment": to_dict(plan.experiment)})


def _report(plan: Plan) -> tuple[list, str]:
    """The files `salt-budget report` writes for this sweep (report.html with every figure, summary.md), in
    <sweep>/tracking/report, and a note where it could not write them. No PNGs: kaleido's Chromium took 26 s for
    the 8 figures of a micro sweep on 2 cores, against 1.3 s for the HTML that holds them all."""
    from analysis.report import write_report

    try:
        written = write_report([plan.sweep_dir], out=plan.sweep_dir / "tracking" / "report", formats=("html", "md"))
    except Exception as error:  # the report is a view; its failure must not cost the sweep's own records
        return [], f"report not written: {type(error).__name__}: {error}"
    files = [path for path in written.files if path.suffix in (".html", ".md", ".png")]
    return files, "\n".join(written.notes)


def _log_sweep_end(plan: Plan, code: int) -> None:
    ended, record = _sweep_record(plan)
    files, note = _report(plan)
    with open_sink(sweep_tracking(plan)) as sink:
        sink.log(sweep_metrics(plan, record, code), ended)
        summary = next((path for path in files if path.name == "summary.md"), None)
        text = summary.read_text() if summary else ""
        sink.add_text("summary", "\n\n".join(part for part in (json.dumps(record, indent=1), note, text) if part))
        for path in [*files, plan.sweep_dir / "results.csv"]:
            if path.is_file():
                sink.add_file(path)


def log_sweep_end(plan: Plan, code: int) -> None:
    """The sweep's run: its summary's numbers, the summary and the report's files (or, where the report cannot be
    written, the results table). Never raises: a finished sweep does not fail on a tracker."""
    if not plan.options.trackers:
        return
    try:
        _log_sweep_end(plan, code)
    except Exception as error:
        print(f"[sweep] warning: the sweep's summary could not be logged to {', '.join(plan.options.trackers)}: "
              f"{type(error).__name__}: {error}", file=sys.stderr, flush=True)
        traceback.print_exc(file=sys.stderr)
