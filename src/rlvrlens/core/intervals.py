"""Intervals of estimated probabilities, and numbers printed to the digits their interval supports.

:func:`wilson_interval` is the Wilson score interval of a binomial proportion (Wilson 1927), the
interval of every sampled success estimate of the package. :func:`decimals` and
:func:`format_interval` print a number with as many decimals as the half-width of its interval
supports: the decimal of the half-width's first significant digit, plus one. A number with no
interval (an exact success probability) is printed by :func:`format_exact`. Imports nothing above
:mod:`rlvrlens.core`.

Examples
--------
>>> format_interval(0.92345, 0.9012, 0.9431)
'0.923 [0.901, 0.943]'
>>> format_interval(0.9412, 0.62, 0.99)
'0.94 [0.62, 0.99]'
>>> format_exact(0.99996), format_exact(0.31416)
('1 - 4.0e-05', '0.3142')
>>> format_interval(0.9999996, 0.999992, 1.0)
'1 - 4e-07 [1 - 8e-06, 1]'
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

#: The most decimals printed for a number with an interval (a zero-width interval prints this many).
MAX_DECIMALS = 6
#: An exact probability closer than this to 0 or 1 is printed as ``1 - x`` / in scientific notation.
NEAR_EDGE = 1e-3


def wilson_interval(successes: object, K: object, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval ``(low, high)`` of ``successes`` out of ``K`` trials (elementwise).

    Examples
    --------
    >>> lo, hi = wilson_interval(3, 8)
    >>> round(float(lo), 4), round(float(hi), 4)
    (0.1368, 0.6943)
    """
    z = stats.norm.ppf(0.5 + confidence / 2)
    K = np.asarray(K, dtype=float)
    phat = np.asarray(successes, dtype=float) / K
    centre = (phat + z**2 / (2 * K)) / (1 + z**2 / K)
    half = z / (1 + z**2 / K) * np.sqrt(phat * (1 - phat) / K + z**2 / (4 * K**2))
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def decimals(low: float, high: float) -> int:
    """Decimals supported by the interval ``[low, high]``: those of the first significant digit of
    its half-width, plus one (at most :data:`MAX_DECIMALS`; at least 0).

    >>> decimals(0.90, 0.94), decimals(0.2, 0.8), decimals(0.5, 0.5)
    (3, 2, 6)
    """
    half = 0.5 * (float(high) - float(low))
    if not half > 0 or not math.isfinite(half):
        return MAX_DECIMALS
    return int(min(MAX_DECIMALS, max(0, -math.floor(math.log10(half)) + 1)))


def format_interval(value: float | None, low: float | None, high: float | None) -> str:
    """``"value [low, high]"`` with :func:`decimals` decimals; ``"-"`` for a missing value, the value
    alone (:func:`format_exact`) without an interval or with one of width 0 (an exact number)."""
    if value is None or not np.isfinite(value):
        return "-"
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)) or low == high:
        return format_exact(value)
    if low > 1 - NEAR_EDGE or high < NEAR_EDGE:  # all of it at an edge: the distance to it, one digit
        return f"{_edge(value)} [{_edge(low)}, {_edge(high)}]"
    d = decimals(low, high)
    return f"{value:.{d}f} [{low:.{d}f}, {high:.{d}f}]"


def _edge(value: float) -> str:
    """``1 - 4e-07`` / ``3e-09`` / ``1`` / ``0``: a number next to 1 or 0 by its distance, one digit."""
    if value >= 1 or value <= 0:
        return f"{value:.0f}"
    return f"1 - {1 - value:.0e}" if value > 0.5 else f"{value:.0e}"


def format_exact(value: float | None) -> str:
    """A probability known exactly (no interval): four decimals, or ``1 - x`` / ``x`` in scientific
    notation within :data:`NEAR_EDGE` of 1 or 0; ``"-"`` for a missing value."""
    if value is None or not np.isfinite(value):
        return "-"
    value = float(value)
    if 1 - NEAR_EDGE < value < 1:
        return f"1 - {1 - value:.1e}"
    if 0 < value < NEAR_EDGE:
        return f"{value:.1e}"
    return f"{value:.4f}"
