"""The quantities of Mroueh's analysis (THEORY.md §2) as functions, generalised to every scheme.

* amplification: every fixed point exceeds ``p_ref`` when ``g > 0`` (:func:`amplification`);
* local convergence: a fixed point is attracting iff ``beta > p*(1-p*) |g'(p*)|``
  (:func:`stability_beta`), which for population GRPO is Mroueh's ``B(p*)`` (:func:`mroueh_bound`)
  and for a scheme ``p*(1-p*) |h''_M(p*)|``;
* global contraction: the ``beta`` above which ``sup_p |F'(p)| < 1`` (:func:`contraction_beta`);
* the parametric case: ``lim |p~_n - p*| <= 2 delta*`` (:func:`parametric_bound`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import special

from rlvrlens.core.checks import check_float, check_probabilities
from rlvrlens.dynamics.fixed_points import FixedPoint, fixed_points
from rlvrlens.dynamics.iteration import check_map as _check_map
from rlvrlens.dynamics.maps import SuccessMap
from rlvrlens.objectives import WeightScheme, d2h


def mroueh_bound(p_star: object, eps: float = 1e-5) -> np.ndarray:
    """Mroueh's local-convergence bound ``B(p*) = p*(1-p*) |2p*-1| / (2 (p*(1-p*) + eps)^{3/2})``.

    A fixed point ``p*`` of the population-GRPO map is locally attracting iff ``beta > B(p*)``
    (``|h'(p*)| < 1``).

    Parameters
    ----------
    p_star : array_like
        Fixed points in ``[0, 1]``.
    eps : float, default 1e-5
        GRPO's stabiliser, finite and ``>= 0``.

    Returns
    -------
    ndarray
        ``B(p*)``, shaped like ``p_star``; at ``p* = 0, 1`` it is 0 (``eps > 0``) or ``inf``
        (``eps = 0``).

    Raises
    ------
    ValueError
        If a ``p_star`` lies outside ``[0, 1]`` or ``eps`` is negative or not finite.

    References
    ----------
    Y. Mroueh, "Reinforcement learning with verifiable rewards: GRPO's effective loss, dynamics,
    and success amplification", 2025 (Fig. 4 plots ``B`` on ``[0.01, 0.99]``).

    Examples
    --------
    >>> float(mroueh_bound(0.5))
    0.0
    """
    p = check_probabilities("p_star", p_star)
    eps = check_float("eps", eps, low=0.0)
    v = p * (1.0 - p)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = v * np.abs(2.0 * p - 1.0) / (2.0 * (v + eps) ** 1.5)
    return np.where(v == 0, 0.0 if eps > 0 else np.inf, out)


def stability_beta(source: SuccessMap | WeightScheme, p_star: object) -> np.ndarray:
    """The smallest ``beta`` for which a fixed point at ``p*`` is locally attracting: ``p*(1-p*)|g'(p*)|``.

    At a fixed point of the ``alpha = 1`` map ``F'(p*) = F(1-F) g'(p*)/beta = p*(1-p*) g'(p*)/beta``,
    so ``|F'(p*)| < 1`` iff ``beta > p*(1-p*)|g'(p*)|``. For a scheme ``g' = h''_M``; for the
    population-GRPO map this is :func:`mroueh_bound`.

    Parameters
    ----------
    source : SuccessMap or WeightScheme
        Supplies ``g'`` (a map's ``beta`` and ``p_ref`` are not used).
    p_star : array_like
        Points in ``[0, 1]``.
    """
    p = check_probabilities("p_star", p_star)
    if isinstance(source, WeightScheme):
        slope = d2h(source, p)
    else:
        success = _check_map(source)
        with np.errstate(divide="ignore"):
            slope = success.gap_slope(special.logit(p))
    v = p * (1.0 - p)
    return np.where(v == 0, 0.0, v * np.abs(slope))


def contraction_beta(success: SuccessMap, *, n_grid: int = 20001) -> float:
    """The ``beta_c`` such that ``F`` is a global contraction on ``[0, 1]`` for every ``beta > beta_c``.

    ``F'_beta(p) = F_beta(1-F_beta) g'(p)/beta`` and ``F(1-F) <= 1/4`` give
    ``sup_p |F'_beta| <= sup|g'|/(4 beta)``, so ``beta_c <= sup|g'|/4``. We evaluate
    ``S(beta) = sup_p |F'_beta(p)|`` on a logit grid of ``n_grid`` points over ``[-40, 40]``, scan
    ``beta`` on a log grid below that bound, and bisect the last crossing of ``S = 1``. (A very small
    ``beta`` can also give a contraction, with ``F`` saturated near 1; ``beta_c`` is the threshold
    above which it is one for every larger ``beta``.) Returns 0 when ``S < 1`` for every ``beta``
    scanned (e.g. RAFT with ``M = 4``, ``p_ref = 0.3``). Uses ``success.p_ref``; needs ``alpha = 1``.
    Refuses an unbounded ``g`` (population GRPO with ``eps = 0``), whose ``g'`` is unbounded too.

    Parameters
    ----------
    success : SuccessMap
        The map, with ``alpha = 1`` and a single ``p_ref`` (its ``beta`` is not used).
    n_grid : int, default 20001
        Points of the logit grid on which ``sup_p |F'_beta|`` is evaluated.

    Returns
    -------
    float
        ``beta_c`` (0 for ``p_ref`` of 0 or 1, a constant map, or when every ``beta`` scanned
        gives a contraction).

    Raises
    ------
    TypeError
        If ``success`` is not a :class:`SuccessMap`.
    ValueError
        If ``alpha != 1``, ``p_ref`` is an array, or ``g'`` is unbounded.

    Examples
    --------
    >>> from rlvrlens.dynamics import dr_grpo_success_map
    >>> contraction_beta(dr_grpo_success_map(beta=1.0, p_ref=0.3))  # g' = 0: F is constant
    0.0
    """
    success = _check_map(success)
    if success.alpha != 1 or success.p_ref.ndim != 0:
        raise ValueError("contraction_beta needs alpha = 1 and a single p_ref")
    p_ref = float(success.p_ref)
    if p_ref in (0.0, 1.0):
        return 0.0  # constant map
    x = np.linspace(-40.0, 40.0, n_grid)
    g, dg = success.gap(x), np.abs(success.gap_slope(x))
    x_ref = float(success.logit_ref)

    def sup_slope(beta: np.ndarray) -> np.ndarray:
        beta = np.asarray(beta, dtype=float)[..., None]
        y = x_ref + g / beta
        with np.errstate(invalid="ignore"):
            vals = special.expit(y) * special.expit(-y) * dg / beta
        return np.nanmax(np.where(np.isfinite(vals), vals, np.inf), axis=-1)

    upper = float(np.max(dg)) / 4.0
    if not np.isfinite(upper) or np.isinf(success.gap_range[1]):
        raise ValueError("g' is unbounded (e.g. eps = 0): no beta makes the map a global contraction")
    if upper == 0:
        return 0.0
    betas = upper * np.geomspace(1e-8, 1.0, 321)
    s = np.concatenate([sup_slope(chunk) for chunk in np.array_split(betas, 16)])
    bad = np.flatnonzero(s >= 1.0)
    if bad.size == 0:
        return 0.0  # a contraction for every beta scanned (down to 1e-8 of the bound)
    lo, hi = betas[bad[-1]], betas[min(bad[-1] + 1, betas.size - 1)]
    for _ in range(60):
        mid = np.sqrt(lo * hi)
        lo, hi = (mid, hi) if sup_slope(mid) >= 1.0 else (lo, mid)
    return float(hi)


@dataclass(frozen=True)
class Amplification:
    """Result of :func:`amplification`.

    Attributes
    ----------
    holds : bool
        Every interior fixed point exceeds ``p_ref``.
    gap_min : float
        The smallest ``g(p)`` on a grid of ``(0, 1)``; ``g > 0`` everywhere implies ``holds``.
    violating : list of FixedPoint
        Interior fixed points with ``p* <= p_ref``.
    message : str
    """

    holds: bool
    gap_min: float
    violating: list[FixedPoint] = field(default_factory=list)
    message: str = ""


def amplification(success: SuccessMap) -> Amplification:
    """Check Mroueh's success amplification, ``p* > p_ref`` for every fixed point, for any map.

    For ``alpha > 0`` a fixed point satisfies ``x* - x_ref = g(p*)/(alpha beta)``, so ``p* > p_ref``
    exactly where ``g(p*) > 0``: guaranteed when ``g > 0`` on ``(0, 1)`` (every catalogue scheme,
    Mroueh's ``Omega``); a scheme with negative ``c`` (e.g. designed for a decreasing target) can
    break it, and the violating fixed points are reported.

    Parameters
    ----------
    success : SuccessMap
        The map, with ``alpha > 0`` and a single ``beta`` and ``p_ref``.

    Returns
    -------
    Amplification
        Whether it holds, the smallest ``g`` on a logit grid over ``[-40, 40]``, the violating
        interior fixed points and a message.

    Raises
    ------
    TypeError
        If ``success`` is not a :class:`SuccessMap`.
    ValueError
        If ``alpha = 0`` or ``beta`` or ``p_ref`` is an array.

    Examples
    --------
    >>> from rlvrlens.dynamics import grpo_success_map
    >>> amplification(grpo_success_map(1.0, 0.2)).holds
    True
    """
    success = _check_map(success)
    if success.alpha == 0 or not success.is_scalar:
        raise ValueError("amplification needs alpha > 0 and a single beta and p_ref")
    p_ref = float(success.p_ref)
    x = np.linspace(-40.0, 40.0, 8001)
    gap_min = float(np.min(success.gap(x)))
    interior = [fp for fp in fixed_points(success, find_reached=False) if np.isfinite(fp.logit)]
    x_ref = float(success.logit_ref)
    violating = [fp for fp in interior if not fp.logit > x_ref]
    holds = not violating
    if holds:
        message = f"every fixed point exceeds p_ref = {p_ref:g} (min g = {gap_min:.6g})"
    else:
        message = (f"amplification fails: {len(violating)} fixed point(s) at or below p_ref = {p_ref:g} "
                   f"(g takes negative values, min g = {gap_min:.6g}): "
                   + ", ".join(f"p* = {fp.p:.6g}" for fp in violating))
    return Amplification(holds, gap_min, violating, message)


def parametric_bound(deltas: object) -> float:
    """Mroueh's parametric-case bound ``lim |p~_n - p*| <= 2 delta*``, ``delta* = sum_n delta_n < 1``.

    If each step's policy is within total variation ``delta_n`` of the ideal (closed-form) one and
    the deviations sum to ``delta* < 1``, the realised success probabilities stay within ``2 delta*``
    of the fixed point in the limit.

    Parameters
    ----------
    deltas : float or array_like
        ``delta*`` itself, or the sequence ``delta_n >= 0`` (summed).

    Examples
    --------
    >>> parametric_bound([0.25, 0.125])
    0.75
    """
    d = np.asarray(deltas, dtype=float)
    if np.isnan(d).any() or (d < 0).any() or not np.isfinite(d).all():
        raise ValueError("deltas must be finite total-variation distances >= 0 (no NaN)")
    total = float(d.sum())
    if total >= 1.0:
        raise ValueError(f"delta* = sum of deltas must be < 1, got {total}")
    return 2.0 * total
