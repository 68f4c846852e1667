"""The axes a reader of a figure must not misread: tested shares and steps as ticks (1/6, 40k), FLOPs as powers
of ten, and value ranges that do not start at 0 when the differences are a few points."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pandas as pd

from analysis.markdown import steps as steps_name


def share_text(share: float) -> str:
    """A tested share as a reader writes it: 1/6 rather than 0.167, where it is a simple fraction."""
    fraction = Fraction(float(share)).limit_denominator(64)
    if fraction.numerator and abs(float(fraction) - share) <= 1e-6 * share:
        return f"{fraction.numerator}/{fraction.denominator}" if fraction.denominator != 1 else str(fraction.numerator)
    return f"{share:.3g}"


def tested_values(values: pd.Series | np.ndarray) -> list[float]:
    values = pd.Series(np.asarray(values, dtype=float)).dropna()
    return sorted(set(np.round(values[values > 0], 12)))


def share_axis(values: pd.Series | np.ndarray) -> dict:
    """A log axis with a tick at every tested share (a log axis otherwise ticks 0.2, 0.3, ... and skips 1/6)."""
    shares = tested_values(values)
    return dict(type="log", tickmode="array", tickvals=shares, ticktext=[share_text(s) for s in shares])


def steps_axis(values: pd.Series | np.ndarray) -> dict:
    """A log axis with a tick at every tested step count, written as the tables write them (40k)."""
    counts = tested_values(values)
    return dict(type="log", tickmode="array", tickvals=counts, ticktext=[steps_name(c) for c in counts])


# FLOPs as powers of ten: plotly's default SI suffixes write 1e12 as "1T", which reads as teacher steps.
FLOPS_AXIS = dict(type="log", exponentformat="power", showexponent="all")
SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def power_text(value: float) -> str:
    """2e11 as 2×10¹¹ (1e12 as 10¹²): every tick label a whole number, never a bare "2" between powers."""
    exponent = math.floor(math.log10(value) + 1e-9)
    mantissa = round(value / 10 ** exponent, 6)
    power = f"10{str(exponent).translate(SUPERSCRIPT)}"
    return power if mantissa == 1 else f"{mantissa:g}×{power}"


def flops_axis(values: pd.Series | np.ndarray) -> dict:
    """A log FLOPs axis ticked at 1, 2 and 5 × 10^k over the data (powers of ten alone past three decades),
    each tick written out in full."""
    values = np.asarray(tested_values(values), dtype=float)
    if not len(values):
        return dict(FLOPS_AXIS)
    low, high = math.floor(math.log10(values.min())), math.ceil(math.log10(values.max()))
    mantissas = (1,) if high - low > 3 else (1, 2, 5)
    ticks = [m * 10.0 ** e for e in range(low, high + 1) for m in mantissas]
    ticks = [t for t in ticks if values.min() / 1.5 <= t <= values.max() * 1.5]
    return dict(FLOPS_AXIS, tickmode="array", tickvals=ticks, ticktext=[power_text(t) for t in ticks])


def data_range(values: list[float] | np.ndarray, pad: float = 0.06) -> list[float]:
    """An axis range around the values (bars included): never from 0 when every value is above it, so that
    differences of a few points between 10 and 20 stay visible."""
    values = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if not len(values):
        return [0.0, 1.0]
    low, high = float(values.min()), float(values.max())
    margin = pad * (high - low) if high > low else max(abs(high) * pad, 1.0)
    lower = low - margin
    if low > 0 and lower <= 0:
        lower = low / 2
    return [lower, high + margin]
