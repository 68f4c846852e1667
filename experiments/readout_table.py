"""Print probe results (the JSON files `salt-budget probe ... --out X.json` writes) as one markdown table:
each readout's accuracy per task, in %, with the train accuracy of the main readout.

    python experiments/readout_table.py LABEL=path.json [LABEL=path.json ...]

The readouts are the main one (probe.kind, with probe.pooling for ridge) and those of probe.also_ridge;
an attentive head that never fitted its train split is printed as "n.c." (not converged).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    rows, columns = [], []
    for argument in argv:
        label, _, path = argument.rpartition("=")
        result = json.loads(Path(path).read_text())
        main_name = "attentive" if result["probe"] == "attentive" else f"ridge_{result.get('pooling') or 'mean_std'}"
        readouts = {main_name: result["tasks"], **result.get("readouts", {})}
        cells = {}
        for readout, tasks in readouts.items():
            for task, value in tasks.items():
                column = f"{readout} {task}"
                if column not in columns:
                    columns.append(column)
                shown = f"{100 * value['accuracy']:.1f}" if value.get("converged", True) else "n.c."
                if readout == main_name:
                    shown += f" ({100 * value['train_accuracy']:.0f})"
                cells[column] = shown
        rows.append((label or Path(path).stem, cells))
    print("| encoder | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for label, cells in rows:
        print(f"| {label} | " + " | ".join(cells.get(c, "-") for c in columns) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
