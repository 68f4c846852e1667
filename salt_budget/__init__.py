"""salt-budget: plan, run and analyse SALT teacher/student compute allocations."""

__version__ = "0.1.0"
