"""What the report's figures (analysis/figures*.py) draw every point and fit with: accuracies in %, the hover text
that lists a point's configuration (CONFIG_COLUMNS and the plotted values), colours, and a fitted line with its
statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.figure_parts import PALETTE
from analysis.schema import CONFIG_COLUMNS


def pct(values: pd.Series | np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=float) * 100


def hover_text(frame: pd.DataFrame, extra: tuple[str, ...] = ()) -> list[str]:
    columns = [c for c in (*CONFIG_COLUMNS, *extra) if c in frame]
    lines = []
    for _, row in frame[columns].iterrows():
        parts = []
        for column in columns:
            value = row[column]
            if pd.isna(value):
                continue
            if isinstance(value, float):
                value = f"{value:.4g}"
            parts.append(f"{column}: {value}")
        lines.append("<br>".join(parts))
    return lines


def palette_colours(keys: list) -> dict:
    return {key: PALETTE[i % len(PALETTE)] for i, key in enumerate(keys)}


def size_group(size: object) -> str:
    return f"teacher size {size}"


def fit_line(fit: pd.Series, xs: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    grid = np.linspace(xs.min(), xs.max(), 2)
    return grid, (fit["slope"] * grid + fit["intercept"]) * 100


def fit_stats(fit: pd.Series) -> str:
    if pd.isna(fit["r2"]) and pd.isna(fit["spearman"]):
        return fit["note"] or "undefined"
    return f"R² {fit['r2']:.2f}, ρ {fit['spearman']:+.2f}, LOO {fit['loo_mae'] * 100:.1f} pts"
