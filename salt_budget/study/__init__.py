"""salt-budget study: the paper's ablations as sweeps of one experiment (config.py: the study file; runner.py:
running its sweeps)."""
