"""Iterating a success map: trajectories, and what an iteration settles on (:class:`Outcome`)."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from rlvrlens.core.budget import MAX_STEPS, check_cells
from rlvrlens.core.checks import check_float, check_int
from rlvrlens.core.logit import logit
from rlvrlens.dynamics.maps import SuccessMap

#: Orbits are tested for periods 1..this once they have settled.
MAX_PERIOD = 64
#: Points of a reported cycle differ by more than this (relative, in logit).
MIN_CYCLE_GAP = 1e-6
#: Beyond this logit, p rounds to 1 in float64 (1 - p < 1e-323).
_P_ONE_LOGIT = 745.0


class Outcome(enum.IntEnum):
    """What an iteration of a success map settles on: the one vocabulary of the dynamics layer.

    Used by :func:`attractor` (``Attractor.outcome``), :func:`~rlvrlens.dynamics.fixed_point_grid`
    (its ``kind`` array holds these codes), :func:`rlvrlens.explain.explain` and the
    reproductions. The integer codes are stable (arrays of outcomes are ``int8`` arrays of them).

    Examples
    --------
    >>> Outcome.of_period(2), Outcome.of_period(4).label
    (<Outcome.TWO_CYCLE: 2>, 'longer cycle')
    >>> str(Outcome.FIXED_POINT)
    'fixed point'
    """

    #: No period <= 64 detected within the step budget (possibly chaotic); never called converged.
    UNRESOLVED = 0
    #: Converges to a fixed point (period 1).
    FIXED_POINT = 1
    #: Settles on a 2-cycle.
    TWO_CYCLE = 2
    #: Settles on a cycle of period 3 or more.
    LONGER_CYCLE = 3

    @classmethod
    def of_period(cls, period: int) -> "Outcome":
        """The outcome of an orbit of the given period (0: none detected)."""
        period = int(period)
        if period < 0:
            raise ValueError(f"period must be >= 0, got {period}")
        return (cls.UNRESOLVED, cls.FIXED_POINT, cls.TWO_CYCLE)[period] if period <= 2 else cls.LONGER_CYCLE

    @property
    def label(self) -> str:
        """Human-readable name: ``"fixed point"``, ``"2-cycle"``, ``"longer cycle"``, ``"unresolved"``."""
        return _OUTCOME_LABELS[self]

    @property
    def is_cycle(self) -> bool:
        return self in (Outcome.TWO_CYCLE, Outcome.LONGER_CYCLE)

    def __str__(self) -> str:
        return self.label


_OUTCOME_LABELS = {Outcome.UNRESOLVED: "unresolved", Outcome.FIXED_POINT: "fixed point",
                   Outcome.TWO_CYCLE: "2-cycle", Outcome.LONGER_CYCLE: "longer cycle"}
#: ``Attractor.kind``'s strings (kept for compatibility), by outcome.
_LEGACY_KIND = {Outcome.UNRESOLVED: "unresolved", Outcome.FIXED_POINT: "fixed_point",
                Outcome.TWO_CYCLE: "cycle", Outcome.LONGER_CYCLE: "cycle"}


def check_map(success: object) -> SuccessMap:
    """``success`` itself if it is a :class:`SuccessMap`; else a ``TypeError`` naming its type.

    Parameters
    ----------
    success : object
        The value to check.

    Returns
    -------
    SuccessMap
        ``success``, unchanged.

    Raises
    ------
    TypeError
        If ``success`` is not a :class:`SuccessMap`.
    """
    if not isinstance(success, SuccessMap):
        raise TypeError(f"map must be a SuccessMap, got {type(success).__name__}")
    return success


@dataclass(frozen=True)
class Trajectory:
    """``p_0, ..., p_n`` and their logits; axis 0 is time, the rest is the broadcast shape of
    ``(p0, beta, p_ref)``."""

    p: np.ndarray
    logit: np.ndarray

    @property
    def final(self) -> np.ndarray:
        """``p_n``."""
        return self.p[-1]


def iterate(success: SuccessMap, p0: object, n: int, *, logit0: object = None) -> Trajectory:
    """Iterate ``p_k = F(p_{k-1})`` ``n`` times, vectorised over ``p0`` and the map's ``beta``, ``p_ref``.

    The iteration runs in logit space, so ``p`` within 1e-300 of 1 keeps its exact logit.

    Parameters
    ----------
    success : SuccessMap
    p0 : float or array_like
        Start(s) in ``[0, 1]``; broadcast with ``success.beta`` and ``success.p_ref``.
    n : int
        Number of steps, ``0 <= n <= MAX_STEPS`` (:data:`rlvrlens.core.budget.MAX_STEPS`).
    logit0 : array_like, optional
        Start given as a logit instead (``p0`` is then ignored); exact for ``p0`` near 0 or 1.

    Returns
    -------
    Trajectory
        Arrays of shape ``(n + 1,) + broadcast shape``.

    Examples
    --------
    >>> from rlvrlens.dynamics import dr_grpo_success_map
    >>> tr = iterate(dr_grpo_success_map(beta=1.0, p_ref=0.5), [0.1, 0.9], 2)
    >>> tr.logit[1:].tolist()  # logit p_ref + 1/beta after one step, whatever p0
    [[1.0, 1.0], [1.0, 1.0]]
    """
    success = check_map(success)
    n = check_int("n", n, minimum=0, maximum=MAX_STEPS)
    x = logit(p0) if logit0 is None else np.asarray(logit0, dtype=float)
    if np.isnan(x).any():
        raise ValueError("logit0 must not contain NaN")
    shape = np.broadcast_shapes(x.shape, success.beta.shape, success.p_ref.shape)
    check_cells(2 * (n + 1) * math.prod(shape), parameter="n", value=n,
                what=f"the trajectory (n + 1 steps x {math.prod(shape)} starts, p and its logit)")
    xs = np.empty((n + 1,) + shape)
    xs[0] = np.broadcast_to(x, shape)
    for k in range(n):
        xs[k + 1] = success.step_logit(xs[k])
    return Trajectory(special.expit(xs), xs)


@dataclass(frozen=True)
class Attractor:
    """What the iteration from ``p0`` settles on.

    Attributes
    ----------
    outcome : Outcome
        ``FIXED_POINT``, ``TWO_CYCLE``, ``LONGER_CYCLE`` or ``UNRESOLVED`` (no period <= 64 within
        ``max_steps``; never reported as converged).
    logits, p : ndarray
        The orbit's points, sorted (one point for a fixed point; empty when unresolved).
    multiplier : float
        Product of the slopes along the orbit, ``prod F'(x_j)`` (``F'(p*)`` for a fixed point);
        attracting when ``|multiplier| < 1``.
    steps : int
        Iterations taken until the period was detected.
    """

    outcome: Outcome
    logits: np.ndarray
    p: np.ndarray
    multiplier: float
    steps: int

    @property
    def kind(self) -> str:
        """The outcome as the strings of earlier versions: ``"fixed_point"``, ``"cycle"`` (any
        period >= 2) or ``"unresolved"``; prefer :attr:`outcome`."""
        return _LEGACY_KIND[self.outcome]

    @property
    def period(self) -> int:
        return int(self.logits.size)

    @property
    def converged(self) -> bool:
        return self.outcome != Outcome.UNRESOLVED


def attractor(success: SuccessMap, p0: object = None, *, max_steps: int = 20_000,
              tol: float = 1e-11, logit0: object = None) -> Attractor:
    """Iterate from ``p0`` (default ``p_ref``) until the orbit repeats, and report what it repeats.

    The orbit is run in logit space; after every 256 steps the last points are tested for a period
    ``k <= 64``: ``|x_j - x_{j-k}| <= tol (1 + |x_j|)`` over the last ``2k`` points, smallest ``k``
    first, and for ``k > 1`` the ``k`` points must differ by more than ``1e-6 (1 + |x|)`` (a slow
    oscillation into a fixed point of slope near -1 is not a cycle). A period of 1 is a fixed point,
    2 a 2-cycle, and so on. Orbits of the mirror map that run off to ``p = 1`` (or 0) are reported
    as the fixed point at that endpoint, with its slope ``exp(-g(1)/beta)`` (``exp(g(0)/beta)``).

    Parameters
    ----------
    success : SuccessMap
        The map, with a single ``beta`` and ``p_ref`` (use ``fixed_point_grid`` for arrays).
    p0 : float, optional
        Starting success probability in ``[0, 1]``; default ``p_ref``. Ignored when ``logit0`` is
        given.
    max_steps : int, default 20000
        Most steps to iterate, ``>= 1``.
    tol : float, default 1e-11
        Relative tolerance of the period test, ``> 0``.
    logit0 : float, optional
        Starting point as a logit (not NaN), for starts too close to 0 or 1 for a float ``p``.

    Returns
    -------
    Attractor
        The outcome (fixed point, 2-cycle, longer cycle, or ``UNRESOLVED`` when no period ``<= 64``
        is found within ``max_steps``), the orbit's points, their multiplier and the steps taken.

    Raises
    ------
    TypeError
        If ``success`` is not a :class:`SuccessMap`.
    ValueError
        If ``beta`` or ``p_ref`` is an array, ``max_steps`` or ``tol`` is out of range, or
        ``logit0`` is NaN.

    Examples
    --------
    >>> from rlvrlens.dynamics import grpo_success_map
    >>> a = attractor(grpo_success_map(beta=1.0, p_ref=0.2, eps=1e-5))
    >>> a.outcome, a.period
    (<Outcome.FIXED_POINT: 1>, 1)
    >>> attractor(grpo_success_map(beta=3.0, p_ref=1e-3, eps=1e-5)).outcome.label
    '2-cycle'
    """
    success = check_map(success)
    if not success.is_scalar:
        raise ValueError("attractor needs a map with a single beta and p_ref (use fixed_point_grid for arrays)")
    max_steps = check_int("max_steps", max_steps, minimum=1)
    tol = check_float("tol", tol, low=0.0, low_open=True)
    if logit0 is None:
        x = float(logit(success.p_ref if p0 is None else p0))
    else:
        x = float(logit0)
        if np.isnan(x):
            raise ValueError("logit0 must not be NaN")
    history = [x]
    steps = 0
    while steps < max_steps:
        chunk = min(256, max_steps - steps)
        for _ in range(chunk):
            x = float(success.step_logit(x))
            history.append(x)
        steps += chunk
        history = history[-(3 * MAX_PERIOD + 1):]
        end = _endpoint(success, x)
        if end is not None:
            return end(steps)
        orbit = np.array(history)
        for k in range(1, MAX_PERIOD + 1):
            recent, earlier = orbit[-2 * k:], orbit[-3 * k:-k]
            if earlier.size < recent.size:
                break
            if np.all(np.abs(recent - earlier) <= tol * (1.0 + np.abs(recent))):
                points = np.sort(orbit[-k:])
                if k > 1 and np.min(np.diff(points)) <= MIN_CYCLE_GAP * (1.0 + np.max(np.abs(points))):
                    break  # points not distinct: a slow oscillation into a fixed point, go on
                multiplier = float(np.prod(success.logit_slope(points)))
                return Attractor(Outcome.of_period(k), points, special.expit(points), multiplier, steps)
    return Attractor(Outcome.UNRESOLVED, np.array([]), np.array([]), float("nan"), steps)


def _endpoint(success: SuccessMap, x: float):
    """An ``Attractor`` factory if the orbit has reached (or, for the mirror map, is running off to)
    ``p = 0`` or ``p = 1``; else None."""
    if np.isinf(x) or (success.alpha == 0 and abs(x) > _P_ONE_LOGIT):
        side = np.sign(x)
        g_end = float(success.gap(np.array(side * np.inf)))
        if success.alpha == 0 and not np.isinf(x) and side * g_end <= 0:
            return None  # not monotonically escaping
        if success.alpha == 0:
            multiplier = float(np.exp(-abs(g_end) / float(success.beta)))
        else:
            multiplier = 0.0  # p_ref absorbing (constant map) or g infinite at the endpoint
        point = np.array([side * np.inf])
        return lambda steps: Attractor(Outcome.FIXED_POINT, point, special.expit(point), multiplier, steps)
    return None
