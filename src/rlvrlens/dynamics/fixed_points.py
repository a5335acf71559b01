"""All fixed points and 2-cycles of a success map, and a vectorised grid of attracting fixed points.

In logit space a fixed point solves ``G(x) = F_logit(x) - x = 0``; for ``alpha > 0`` that is
``x = logit p_ref + g(sigmoid x)/(alpha beta)``, so every fixed point lies in
``[x_ref + g_min/(alpha beta), x_ref + g_max/(alpha beta)]`` (for ``g >= 0`` above ``x_ref``:
Mroueh's amplification). We scan that interval densely (step 0.005 on ``|x| <= 100``, 1% geometric
steps beyond, where ``g`` is flat), bracket the sign changes of ``G`` and refine each with Brent's
method. Points indistinguishable from 1 in float64 (``x > 37``) are found like any other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from rlvrlens.core.checks import check_int
from rlvrlens.dynamics.iteration import Outcome, check_map, attractor
from rlvrlens.dynamics.maps import SuccessMap

#: Dense part of the scan: |x| <= _T with step _H.
_T = 100.0
_H = 0.005
#: Geometric step beyond |x| = _T.
_GEOMETRIC_RATIO = 1.01
#: Scan limit where the bound on g is infinite (Mroueh with eps = 0) or for the mirror map.
_X_CAP = 1e4
#: Smallest relative amplitude (in logit) for a 2-cycle of the grid (or of attractor).
_MIN_AMPLITUDE = 1e-6
#: Slopes within this of +-1 are called neutral (a double root, slope 1, is located only to about
#: sqrt(machine epsilon), so its computed slope is off by ~1e-8).
NEUTRAL_TOL = 1e-7


@dataclass(frozen=True)
class FixedPoint:
    """A fixed point ``p* = F(p*)`` of a success map.

    Attributes
    ----------
    logit : float
        ``logit p*`` (``±inf`` for the endpoints); exact even where ``p*`` rounds to 1.
    p : float
        ``p*`` in float64.
    one_minus_p : float
        ``1 - p*`` computed from the logit (e.g. ``1e-200`` where ``p`` prints as 1.0).
    slope : float
        ``F'(p*)`` (equal to the slope in logit space at a fixed point).
    kind : str
        ``"attracting"`` (``|F'| < 1``), ``"repelling"`` or ``"neutral"`` (``|F'| = 1`` within 1e-7).
    reached : bool
        Whether the iteration from ``p_0 = p_ref`` converges to it (its basin contains ``p_ref``).
    """

    logit: float
    p: float
    one_minus_p: float
    slope: float
    kind: str
    reached: bool = False


@dataclass(frozen=True)
class TwoCycle:
    """A 2-cycle ``a -> b -> a`` (``a < b``, logits), with multiplier ``F'(a) F'(b)``."""

    logits: tuple[float, float]
    p: tuple[float, float]
    multiplier: float
    kind: str


def _classify(slope: float) -> str:
    if abs(abs(slope) - 1.0) <= NEUTRAL_TOL:
        return "neutral"
    return "attracting" if abs(slope) < 1.0 else "repelling"


def scan_interval(success: SuccessMap) -> tuple[float, float]:
    """The logit interval that contains every interior fixed point and periodic orbit of the map.

    ``[x_ref + g_min/(alpha beta), x_ref + g_max/(alpha beta)]`` for ``alpha > 0`` (it is mapped
    into itself); ``[-1e4, 1e4]`` for the mirror map; an infinite bound is capped at ``±1e4``.
    """
    if success.alpha == 0:
        return -_X_CAP, _X_CAP
    scale = success.alpha * float(success.beta)
    x_ref = float(success.logit_ref)
    g_lo, g_hi = success.gap_range
    lo, hi = x_ref + g_lo / scale, x_ref + g_hi / scale
    lo = -_X_CAP if np.isinf(lo) else lo  # only an infinite bound is capped
    hi = _X_CAP if np.isinf(hi) else hi
    pad = 1e-6 * (1.0 + max(abs(lo), abs(hi)))  # rounding of G at the ends of the bracket
    return lo - pad, hi + pad


def scan_nodes(lo: float, hi: float) -> np.ndarray:
    """Nodes for the sign scan of ``[lo, hi]``: step 0.005 where ``|x| <= 100``, 1% geometric beyond."""
    parts = [np.array([lo, hi])]
    a, b = max(lo, -_T), min(hi, _T)
    if a < b:
        parts.append(np.linspace(a, b, int(np.ceil((b - a) / _H)) + 1))
    for sign in (1.0, -1.0):
        near, far = (max(lo, _T), hi) if sign > 0 else (max(-hi, _T), -lo)
        if far > near:
            count = int(np.ceil(np.log(far / near) / np.log(_GEOMETRIC_RATIO))) + 1
            parts.append(sign * np.geomspace(near, far, count))
    nodes = np.unique(np.concatenate(parts))
    return nodes[(nodes >= lo) & (nodes <= hi)]


def sign_change_roots(fn, nodes: np.ndarray) -> list[float]:
    """Roots of ``fn`` (vectorised) on ``[nodes[0], nodes[-1]]``: sign changes refined by brentq,
    plus touching (double) roots: a local minimum of ``|fn|`` between same-sign neighbours whose
    refined value is zero to ``1e-12 (1 + |x|)`` (a tangent fixed point, slope exactly 1)."""
    values = fn(nodes)
    sign = np.sign(values)
    roots = list(nodes[sign == 0])
    brackets = np.flatnonzero(sign[:-1] * sign[1:] < 0)
    for i in brackets:
        a, b = nodes[i], nodes[i + 1]
        roots.append(optimize.brentq(lambda x: float(fn(np.array(x))), a, b, xtol=1e-300, rtol=1e-15,
                                     maxiter=400))
    mag = np.abs(values)
    dips = np.flatnonzero((mag[1:-1] < mag[:-2]) & (mag[1:-1] <= mag[2:])
                          & (sign[:-2] == sign[1:-1]) & (sign[1:-1] == sign[2:]) & (sign[1:-1] != 0)) + 1
    for i in dips:
        s = sign[i]
        res = optimize.minimize_scalar(lambda x: s * float(fn(np.array(x))), bounds=(nodes[i - 1], nodes[i + 1]),
                                       method="bounded", options={"xatol": 1e-13 * (1 + abs(nodes[i]))})
        if abs(res.fun) <= 1e-12 * (1.0 + abs(res.x)):
            roots.append(float(res.x))
    return sorted(roots)


def _gap_at(success: SuccessMap, x: float) -> float:
    return float(success.gap(np.array(x)))


def _endpoint_fixed_points(success: SuccessMap) -> list[FixedPoint]:
    """Fixed points at ``p = 0`` and ``p = 1`` (absorbing endpoints), with their slopes."""
    out = []
    p_ref = float(success.p_ref)
    for side in (-1.0, 1.0):
        x = side * np.inf
        p = float(special.expit(x))
        if success.alpha > 0 and p_ref in (0.0, 1.0):
            fixed, slope = p == p_ref, 0.0  # F is constant = p_ref
        elif success.alpha == 0:
            g = _gap_at(success, x)
            fixed, slope = True, float(np.exp(-side * g / float(success.beta)))
        elif success.alpha < 1:
            fixed, slope = True, np.inf  # 1 - F ~ C (1 - p)^(1 - alpha)
        else:  # F(1) = 1 only if g(1) = +inf (super-attracting); F(0) = 0 only if g(0) = -inf
            fixed, slope = _gap_at(success, x) == side * np.inf, 0.0
        if fixed:
            out.append(FixedPoint(x, p, 1.0 - p, slope, _classify(slope)))
    return out


def fixed_points(success: SuccessMap, *, find_reached: bool = True) -> list[FixedPoint]:
    """Every fixed point of the map in ``[0, 1]``, in increasing order, with slope and character.

    Parameters
    ----------
    success : SuccessMap
        A map with a single ``beta`` and ``p_ref``.
    find_reached : bool, default True
        Also iterate from ``p_ref`` (:func:`rlvrlens.dynamics.attractor`) and mark the fixed point
        it converges to (none is marked if the iteration ends on a cycle or is unresolved).

    Notes
    -----
    The scan misses a pair of fixed points closer together than the scan step (0.005 in logit, 1%
    beyond ``|x| = 100``), e.g. just before they merge at a tangent bifurcation. A double root that
    touches zero without a sign change (slope exactly 1) is found from the local minima of ``|G|``.

    Examples
    --------
    >>> from rlvrlens.dynamics import grpo_success_map
    >>> fps = fixed_points(grpo_success_map(beta=1.0, p_ref=0.2, eps=1e-5))
    >>> [(fp.kind, fp.reached) for fp in fps]
    [('attracting', True), ('repelling', False), ('attracting', False)]
    >>> fps[2].p, fps[2].one_minus_p < 1e-136  # the third is indistinguishable from 1 in float64
    (1.0, True)
    """
    success = check_map(success)
    if not success.is_scalar:
        raise ValueError("fixed_points needs a map with a single beta and p_ref (use fixed_point_grid)")
    points = _endpoint_fixed_points(success)
    interior = float(success.p_ref) not in (0.0, 1.0) or success.alpha < 1
    if interior:
        nodes = scan_nodes(*scan_interval(success))

        def residual(x: np.ndarray) -> np.ndarray:
            return success.step_logit(x) - x

        for x in sign_change_roots(residual, nodes):
            slope = float(success.logit_slope(x))
            p = float(special.expit(x))
            points.append(FixedPoint(x, p, float(special.expit(-x)), slope, _classify(slope)))
    points.sort(key=lambda fp: fp.logit)
    if find_reached:
        settled = attractor(success)
        if settled.outcome == Outcome.FIXED_POINT and points:
            target = float(settled.logits[0])
            gaps = [abs(fp.logit - target) if np.isfinite(fp.logit) else (0.0 if fp.logit == target else np.inf)
                    for fp in points]
            best = int(np.argmin(gaps))
            if gaps[best] <= 1e-6 * (1.0 + abs(target)):
                points[best] = FixedPoint(**{**points[best].__dict__, "reached": True})
    return points


#: Former private name, kept for modules not yet switched to :func:`sign_change_roots`.
_roots = sign_change_roots


def two_cycles(success: SuccessMap) -> list[TwoCycle]:
    """Every 2-cycle found as a root of ``F(F(x)) - x`` that is not a fixed point of ``F``.

    The roots are searched on the same scan as :func:`fixed_points` (all periodic orbits of a map
    with ``alpha > 0`` lie in the scanned interval). A cycle whose two points are closer than the
    scan step (just after a period-doubling) can be missed; :func:`attractor` still sees it.

    Parameters
    ----------
    success : SuccessMap
        The map, with a single ``beta`` and ``p_ref``.

    Returns
    -------
    list of TwoCycle
        The cycles, sorted by their logits, each with its multiplier ``F'(a) F'(b)`` and kind
        (``"attracting"``, ``"repelling"`` or ``"neutral"``). Empty when ``p_ref`` is 0 or 1 and
        ``alpha > 0`` (the map is constant).

    Raises
    ------
    TypeError
        If ``success`` is not a :class:`SuccessMap`.
    ValueError
        If ``beta`` or ``p_ref`` is an array.

    Examples
    --------
    >>> from rlvrlens.dynamics import grpo_success_map
    >>> cyc = two_cycles(grpo_success_map(beta=3.0, p_ref=1e-3, eps=1e-5))
    >>> [c.kind for c in cyc]
    ['attracting']
    """
    success = check_map(success)
    if not success.is_scalar:
        raise ValueError("two_cycles needs a map with a single beta and p_ref")
    if float(success.p_ref) in (0.0, 1.0) and success.alpha > 0:
        return []
    nodes = scan_nodes(*scan_interval(success))

    def residual2(x: np.ndarray) -> np.ndarray:
        return success.step_logit(success.step_logit(x)) - x

    cycles: dict[tuple[float, float], TwoCycle] = {}
    for a in sign_change_roots(residual2, nodes):
        b = float(success.step_logit(a))
        if abs(b - a) <= 1e-7 * (1.0 + abs(a)):
            continue  # a fixed point of F
        lo, hi = min(a, b), max(a, b)
        key = (round(lo, 6), round(hi, 6))
        if key in cycles:
            continue
        multiplier = float(success.logit_slope(lo) * success.logit_slope(hi))
        cycles[key] = TwoCycle((lo, hi), (float(special.expit(lo)), float(special.expit(hi))),
                               multiplier, _classify(multiplier))
    return sorted(cycles.values(), key=lambda c: c.logits)


# -- the vectorised grid ------------------------------------------------------------------------
@dataclass(frozen=True)
class FixedPointGrid:
    """The attractor reached from ``p_0 = p_ref`` over a ``beta x p_ref`` grid.

    Attributes
    ----------
    betas, p_refs : ndarray
        The grid axes; the arrays below have shape ``(len(betas), len(p_refs))``.
    logit, p, slope : ndarray
        The attracting fixed point reached (``logit p*``, ``p*``, ``F'(p*)``); NaN where the
        iteration ends on a cycle or is unresolved.
    kind : ndarray of int8
        The :class:`~rlvrlens.dynamics.Outcome` of each cell: ``FIXED_POINT`` (1), ``TWO_CYCLE``
        (2) or ``UNRESOLVED`` (0; the grid detects periods 1 and 2 only, a longer cycle times out
        as unresolved: :func:`rlvrlens.dynamics.attractor` tells them apart).
    """

    betas: np.ndarray
    p_refs: np.ndarray
    logit: np.ndarray
    p: np.ndarray
    slope: np.ndarray
    kind: np.ndarray

    def outcome(self, i: int, j: int) -> Outcome:
        """The outcome of cell ``(i, j)`` as an :class:`~rlvrlens.dynamics.Outcome`."""
        return Outcome(int(self.kind[i, j]))


def fixed_point_grid(success: SuccessMap, betas: object = None, p_refs: object = None, *,
                     max_steps: int = 2000, tol: float = 1e-9) -> FixedPointGrid:
    """The attracting fixed point reached from ``p_ref`` for every ``(beta, p_ref)`` of a grid.

    Vectorised over the whole grid (no Python loop over points): (1) iterate the map from
    ``x_0 = logit p_ref`` with ``g`` interpolated on a table (:meth:`SuccessMap.tabulated`, step
    0.005 in logit) until each orbit has period 1 or 2 to ``tol`` (points that settle leave the
    active set); (2) polish the period-1 ones by two Newton steps on ``G(x) = F(x) - x`` with the
    exact ``g`` (slope from the table's :meth:`SuccessMap.logit_slope`); (3) keep those whose
    residual is below ``1e-8 (1 + |x|)`` and whose exact slope has ``|F'| < 1``. Every step is
    :meth:`SuccessMap.step_logit` of the tabulated or the exact map.

    Parameters
    ----------
    success : SuccessMap
        Supplies ``g`` and ``alpha > 0`` (its ``beta``, ``p_ref`` are replaced by the grid's).
    betas, p_refs : array_like
        1-D axes; ``betas > 0``, ``p_refs`` in ``(0, 1)``. Default: the map's own (then scalar).
    max_steps : int
        Iterations before an orbit is declared unresolved.

    Examples
    --------
    >>> from rlvrlens.dynamics import dr_grpo_success_map
    >>> grid = fixed_point_grid(dr_grpo_success_map(1.0, 0.5), [1.0, 2.0], [0.5])
    >>> np.round(grid.logit.ravel(), 12).tolist()  # logit p_ref + 1/beta
    [1.0, 0.5]
    >>> grid.outcome(0, 0)
    <Outcome.FIXED_POINT: 1>
    """
    success = check_map(success)
    if success.alpha == 0:
        raise ValueError("fixed_point_grid needs alpha > 0 (the mirror map has no interior attractor)")
    max_steps = check_int("max_steps", max_steps, minimum=1)
    betas, p_refs = _grid_axes(success, betas, p_refs)
    flat = success.with_params(beta=np.repeat(betas, p_refs.size), p_ref=np.tile(p_refs, betas.size))
    if ((flat.p_ref <= 0) | (flat.p_ref >= 1)).any():
        raise ValueError("p_refs must lie in the open interval (0, 1) for fixed_point_grid")
    table = success.tabulated(half_width=_T, step=_H)

    n = betas.size * p_refs.size
    kind = np.full(n, Outcome.UNRESOLVED, dtype=np.int8)
    x_end = np.full(n, np.nan)
    idx = np.arange(n)
    x = flat.logit_ref.copy()
    for k in range(0, max_steps, 8):
        live_map = table.with_params(beta=flat.beta[idx], p_ref=flat.p_ref[idx])
        for _ in range(6):
            x = live_map.step_logit(x)
        x1 = live_map.step_logit(x)
        x2 = live_map.step_logit(x1)
        scale = tol * (1.0 + np.abs(x))
        with np.errstate(invalid="ignore"):
            # an orbit that reached p = 1 exactly (logit inf, g unbounded: eps = 0) stays there
            fixed = (np.abs(x1 - x) <= scale) | (np.isinf(x1) & (x1 == x))
            # a 2-cycle needs a visible amplitude: a slow oscillation into a fixed point with slope
            # near -1 also has x2 ~ x, and is left to converge (or to time out as unresolved)
            cycle = ~fixed & (np.abs(x2 - x) <= scale) & (np.abs(x1 - x) > _MIN_AMPLITUDE * (1.0 + np.abs(x)))
        kind[idx[fixed]] = Outcome.FIXED_POINT
        kind[idx[cycle]] = Outcome.TWO_CYCLE
        x_end[idx[fixed]] = x1[fixed]
        live = ~(fixed | cycle)
        idx, x = idx[live], x2[live]
        if idx.size == 0:
            break

    # polish the finite period-1 points with the exact g (Newton with the table's slope, twice)
    settled = kind == Outcome.FIXED_POINT
    at_end = np.flatnonzero(settled & np.isinf(x_end))
    sel = np.flatnonzero(settled & np.isfinite(x_end))
    polished = flat.with_params(beta=flat.beta[sel], p_ref=flat.p_ref[sel])
    slope_map = table.with_params(beta=flat.beta[sel], p_ref=flat.p_ref[sel])
    xs = x_end[sel]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        for _ in range(2):
            newton = xs - (polished.step_logit(xs) - xs) / (slope_map.logit_slope(xs) - 1.0)
            xs = np.where(np.isfinite(newton), newton, xs)
        resid = polished.step_logit(xs) - xs
        slope = polished.logit_slope(xs)
        good = (np.abs(resid) <= 1e-8 * (1.0 + np.abs(xs))) & (np.abs(slope) < 1.0)
    kind[sel[~good]] = Outcome.UNRESOLVED
    out_logit = np.full(n, np.nan)
    out_slope = np.full(n, np.nan)
    out_logit[sel[good]] = xs[good]
    out_slope[sel[good]] = slope[good]
    out_logit[at_end] = x_end[at_end]
    out_slope[at_end] = 0.0  # super-attracting endpoint (see fixed_points)
    shape = (betas.size, p_refs.size)
    out_logit = out_logit.reshape(shape)
    return FixedPointGrid(betas, p_refs, out_logit, special.expit(out_logit),
                          out_slope.reshape(shape), kind.reshape(shape))


def _grid_axes(success: SuccessMap, betas: object, p_refs: object) -> tuple[np.ndarray, np.ndarray]:
    betas = np.atleast_1d(success.beta if betas is None else np.asarray(betas, dtype=float))
    p_refs = np.atleast_1d(success.p_ref if p_refs is None else np.asarray(p_refs, dtype=float))
    if betas.ndim != 1 or p_refs.ndim != 1:
        raise ValueError("betas and p_refs must be 1-D")
    return betas, p_refs


def count_fixed_points(success: SuccessMap, betas: object = None, p_refs: object = None) -> np.ndarray:
    """How many fixed points in ``(0, 1)`` the map has at each ``(beta, p_ref)`` of a grid.

    Counts the sign changes of ``G(x) = F(x) - x`` (:meth:`SuccessMap.step_logit`) on the nodes of
    :func:`scan_nodes` over the union of the cells' :func:`scan_interval` (which contains every
    interior fixed point), vectorised over ``p_refs`` one ``beta`` at a time. A pair of fixed points
    closer than the node spacing (0.005 in logit; 1% beyond ``|x| = 100``), e.g. at a tangency, is
    missed, as in :func:`fixed_points`; a double root without a sign change is not counted.

    Parameters
    ----------
    success : SuccessMap
        Supplies ``g`` and ``alpha > 0``; its ``beta`` and ``p_ref`` are replaced by the grid's.
    betas, p_refs : array_like
        1-D axes; ``betas > 0``, ``p_refs`` in ``(0, 1)``. Default: the map's own.

    Returns
    -------
    ndarray of int, shape ``(len(betas), len(p_refs))``

    Examples
    --------
    >>> from rlvrlens.dynamics import grpo_success_map
    >>> count_fixed_points(grpo_success_map(1.0, 0.5), [1.0], [0.2, 0.5]).tolist()  # 0.2: bistable
    [[3, 1]]
    """
    success = check_map(success)
    if success.alpha == 0:
        raise ValueError("count_fixed_points needs alpha > 0 (the mirror map has no interior fixed point)")
    betas, p_refs = _grid_axes(success, betas, p_refs)
    if ((p_refs <= 0) | (p_refs >= 1)).any():
        raise ValueError("p_refs must lie in the open interval (0, 1) for count_fixed_points")
    rows = success.with_params(beta=betas[:, None], p_ref=p_refs[None, :])  # validates beta
    # the interval's ends are monotone in 1/beta and logit p_ref: the union is spanned by the corners
    corners = [scan_interval(rows.with_params(beta=b, p_ref=r))
               for b in (betas.min(), betas.max()) for r in (p_refs.min(), p_refs.max())]
    nodes = scan_nodes(min(c[0] for c in corners), max(c[1] for c in corners))
    out = np.empty((betas.size, p_refs.size), dtype=int)
    for i, beta in enumerate(betas):  # one row at a time bounds memory; each row is vectorised
        F = success.with_params(beta=beta, p_ref=p_refs[:, None])
        resid = F.step_logit(nodes[None, :]) - nodes[None, :]
        out[i] = np.count_nonzero(np.diff(np.sign(resid), axis=1) != 0, axis=1)
    return out
