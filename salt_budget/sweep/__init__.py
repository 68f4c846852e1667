"""The budget sweep: plan the allocations T + S = N, train each teacher once, one Ray Tune trial per
allocation, a results table a report reads.

By concern, bottom to top:
- results/: what a sweep records and reads back: the results table (store.py, a rows file per unit) and which
  processes trained each unit (processes.py).
- planning/: what a sweep will train, before anything runs: the options and budgets, the units and their keys,
  the ladders they share, predicted FLOPs, time and disk, the plan's table.
- running/: running the plan on Ray: the driver (runner.py), each unit kind's work (teachers.py, trial.py,
  baselines.py, floor.py) through one unit runner (unit_run.py, rungs.py, workers.py), the rows each appends
  (rows.py) and the summary at the end (summary.py).
Ray is imported only when a sweep runs: planning and --dry-run do not start it.
"""
