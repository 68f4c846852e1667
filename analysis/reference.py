"""The SALT paper's numbers that a sweep's findings are compared with.

Constants quoted from the paper, not results of this project: "Rethinking JEPA: Compute-Efficient
Video Self-Supervised Learning with Frozen Teachers" (arXiv 2509.24317, ICLR 2026), as gathered in
docs/paper.md section 8. ViT-L teacher and student, fast probe protocol, accuracies in %.
"""

from __future__ import annotations

import pandas as pd

CITATION = "SALT (Rethinking JEPA, arXiv 2509.24317), ViT-L, fast probe protocol"

# The embedded data set's tasks stand in for the paper's benchmarks (README, "The embedded synthetic set":
# appearance is like K400, motion like SSv2); the task average sits beside the paper's average over four benchmarks.
BENCHMARK_OF_TASK = {"appearance": "K400", "motion": "SSv2", "mean": "avg of 4"}

# Table 16: (budget, teacher steps, student steps, total FLOPs, K400, SSv2, avg of 4), SALT rows.
TABLE_16 = (
    (240_000, 80_000, 160_000, 1.192e21, 76.0, 71.3, 77.9),
    (240_000, 40_000, 200_000, 1.311e21, 76.3, 71.7, 78.2),
    (240_000, 20_000, 220_000, 1.370e21, 75.8, 71.2, 77.7),
    (160_000, 80_000, 80_000, 0.717e21, 75.5, 70.9, 77.4),
    (160_000, 40_000, 120_000, 0.835e21, 75.5, 70.9, 77.6),
    (160_000, 20_000, 140_000, 0.894e21, 74.9, 70.6, 77.0),
    (120_000, 80_000, 40_000, 0.479e21, 74.0, 69.5, 76.4),
    (120_000, 40_000, 80_000, 0.597e21, 75.0, 70.2, 77.0),
    (120_000, 20_000, 100_000, 0.656e21, 74.6, 70.1, 76.7),
)
BENCHMARKS = ("K400", "SSv2", "avg of 4")
# Table 16's baseline row: V-JEPA 2 trained 240k steps (total FLOPs, K400, SSv2, avg of 4).
VJEPA2_240K = (1.900e21, 73.3, 68.4, 74.6)

# Teacher size, avg of 4: teacher alone -> the ViT-L student it trains (Table 14).
TEACHER_SIZES = (("ViT-B", 67.4, 76.5), ("ViT-L", 72.5, 77.4), ("ViT-H", 74.2, 77.3), ("ViT-G", 75.2, 77.6))

# Student loss against SSv2 accuracy over checkpoints, R^2 per teacher (teacher steps -> R^2).
LOSS_R2_SSV2 = ((80_000, 0.951), (40_000, 0.972), (20_000, 0.984))

STUDENTS_BEAT_TEACHERS = "every student beats its teacher"
TEACHER_METRICS = "teacher loss and teacher RankMe do not predict student accuracy (no R^2 given)"


def table_16(benchmark: str) -> pd.DataFrame:
    """Table 16 in the shape of allocation.allocation_points, accuracies as fractions like a results table."""
    column = 4 + BENCHMARKS.index(benchmark)
    return pd.DataFrame([
        {"budget": row[0], "teacher_size": "ViT-L", "student_size": "ViT-L", "teacher_steps": row[1],
         "student_steps": row[2], "teacher_share": row[1] / row[0], "accuracy": row[column] / 100,
         "accuracy_sd": float("nan"), "seeds": 1, "allocation_ids": f"T{row[1] // 1000}k+S{row[2] // 1000}k"}
        for row in TABLE_16
    ])
