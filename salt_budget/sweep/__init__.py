"""The budget sweep: plan the allocations T + S = N, train each teacher once, one Ray Tune trial per
student, and the results table (README, "Sweep": the run folder). Ray is imported only by trial.py
and runner.py, and only when a sweep runs: planning and --dry-run do not start it."""
