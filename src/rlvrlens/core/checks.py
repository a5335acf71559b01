"""Argument checks shared by every layer: each raises an error that names the parameter and range."""

from __future__ import annotations

import numbers

import numpy as np


def check_int(name: str, value: object, *, minimum: int = 1, maximum: int | None = None) -> int:
    """Return ``value`` as an int, or raise if it is not an integer in ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        upper = "" if maximum is None else f" and <= {maximum}"
        raise ValueError(f"{name} must be an integer >= {minimum}{upper}, got {value}")
    return value


def check_float(
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as a finite float inside the stated interval, or raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    lo = "-inf" if low is None else repr(low)
    hi = "inf" if high is None else repr(high)
    interval = f"{'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite and in {interval}, got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be in {interval}, got {value}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must be in {interval}, got {value}")
    return value


#: The normal float32 magnitudes: a parameter of a model's float32 arithmetic is 0 or inside them.
FLOAT32_TINY, FLOAT32_MAX = float(np.finfo(np.float32).tiny), float(np.finfo(np.float32).max)


def check_float32(
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """:func:`check_float`, and the value must be 0 or a normal float32 in magnitude (a larger one
    overflows the model's arithmetic, a smaller one vanishes in it).

    >>> check_float32("temperature", 1e-320, low=0.0, low_open=True)
    Traceback (most recent call last):
    ...
    ValueError: temperature must be 0 or between 1.18e-38 and 3.4e+38 in absolute value (a normal float32, the precision the model computes in), got 1e-320
    """
    value = check_float(name, value, low=low, high=high, low_open=low_open, high_open=high_open)
    if value != 0 and not FLOAT32_TINY <= abs(value) <= FLOAT32_MAX:
        raise ValueError(f"{name} must be 0 or between {FLOAT32_TINY:.3g} and {FLOAT32_MAX:.3g} in absolute value "
                         f"(a normal float32, the precision the model computes in), got {value}")
    return value


def as_float_array(name: str, value: object) -> np.ndarray:
    """Return ``value`` as a float array without NaN, or raise."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a number or an array of numbers, got {value!r}") from exc
    if np.isnan(arr).any():
        raise ValueError(f"{name} must not contain NaN")
    return arr


def check_array(name: str, value: object, *, low: float, high: float, low_open: bool = False) -> np.ndarray:
    """Return ``value`` as a finite float array in ``[low, high]`` (``(low, high]`` if ``low_open``)."""
    arr = as_float_array(name, value)
    bad = (arr < low) | (arr > high) | (low_open & (arr == low)) | ~np.isfinite(arr)
    if bad.any():
        interval = f"{'(' if low_open else '['}{low:g}, {'inf)' if high == np.inf else f'{high:g}]'}"
        raise ValueError(f"{name} must be finite and in {interval}, got {arr[bad].ravel()[0]}")
    return arr


def check_probabilities(name: str, value: object, *, open_interval: bool = False) -> np.ndarray:
    """Return ``value`` as a float array in ``[0, 1]`` (``(0, 1)`` if ``open_interval``), or raise."""
    arr = as_float_array(name, value)
    if open_interval:
        if ((arr <= 0) | (arr >= 1)).any():
            bad = arr[(arr <= 0) | (arr >= 1)].ravel()[0]
            raise ValueError(f"{name} must lie in the open interval (0, 1), got {bad}")
    elif ((arr < 0) | (arr > 1)).any():
        bad = arr[(arr < 0) | (arr > 1)].ravel()[0]
        raise ValueError(f"{name} must lie in [0, 1], got {bad}")
    return arr


def check_finite_array(name: str, value: object, *, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Return ``value`` as a finite float array (of ``shape`` if given), or raise."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array of real numbers, got {value!r}") from exc
    if shape is not None and arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return arr
