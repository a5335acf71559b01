"""Where a gradient trainer stops: the stationary points of each KL estimator, and their stability.

THEORY.md §4 (derived). A small-step trainer follows the expected update, and the expected update
of a KL term depends on how it is estimated. For a softmax over answers ``pi_j = softmax(theta)_j``
with right answers ``C``, ``p = sum_{j in C} pi_j`` and ``g = h'_M`` (the scheme's expected
right-minus-wrong weight, Davis & Recht 2025, Theorem 1), the expected update per prompt is
``g(p) grad p - beta grad(penalty)``:

The treatments are named by the divergence whose gradient the penalty's expected gradient is
(:mod:`rlvrlens.core.kl`; the field calls ``KL(pi||pi_ref)`` the reverse KL and ``KL(pi_ref||pi)``
the forward KL):

* ``"pi||ref"`` (the exact sequence KL, or k2 ``(log rho)^2/2`` sampled on-policy: its expected
  gradient is ``grad KL(pi||pi_ref)``). Stationary: ``pi ∝ pi_ref exp(weight/beta)``, i.e.
  ``logit p = logit p_ref + g(p)/beta`` (Mroueh 2025's fixed points).
* ``"ref||pi"`` (k3 ``rho^-1 - 1 + log rho``: expected gradient ``grad KL(pi_ref||pi)``).
  ``d KL(pi_ref||pi)/d theta_j = pi_j - pi_ref_j``, so stationarity is
  ``g(p) pi_j (1[j in C] - p) = beta (pi_j - pi_ref_j)`` for every ``j``; summing over ``C``:
  ``p (1-p) g(p) = beta (p - p_ref)``.
* ``"none"`` (k1 ``log rho``: expected gradient ``E_pi[grad log pi] = 0``): stationary only where
  ``g(p) = 0`` or at ``p in {0, 1}``; while ``g > 0``, ``p -> 1``.
* ``"reward"`` (REINFORCE++'s KL in the reward: the scheme's weights applied to
  ``r - beta log rho``). Defined in terms of ``p`` only for a scheme whose formula is affine in the
  rewards, ``Z_i = alpha r_i + gamma sum_{j != i} r_j + c`` (REINFORCE, RLOO, Dr. GRPO): the other
  answers are independent of ``y_i`` and ``E[log rho grad log pi] = grad KL(pi||pi_ref)``, so the
  expected update is ``alpha (grad p - beta grad KL(pi||pi_ref))`` and ``g = b - a = alpha``:
  ``logit p = logit p_ref + 1/beta``. For GRPO (std normalisation), RAFT and other non-affine
  schemes the weights of shaped rewards depend on the whole distribution of ``log rho`` in the
  group, not on ``p``: no stationary condition in ``p`` exists and :func:`stationary_points` says so.

**Stability under the flow.** On the two-class manifold (the answers of each class in the
reference's proportions, kept by the flow when the reference is uniform within each class, and
where every stationary point lies) the logit ``x = logit p`` moves by ``dx/dt = m u(x)`` with a
positive metric factor ``m`` (``1/k + 1/n`` for ``k`` right and ``n`` wrong equally likely answers,
times ``lr / N``) and

* ``pi||ref``: ``u = p (1-p) (g - beta (x - x_ref))``;
* ``ref||pi``: ``u = p (1-p) g - beta (p - p_ref)``;
* none: ``u = p (1-p) g``.

A point is stable when ``u'(x) < 0``; for ``pi||ref`` ``u' = p(1-p) beta (F'(p*) - 1)``,
``F`` the success map: stable whenever the map's slope is below 1, including below -1 where the
map itself has a 2-cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from rlvrlens.core.kl import LOSS_TREATMENTS, PI_REF, REF_PI, check_beta, check_treatment
from rlvrlens.dynamics.fixed_points import scan_nodes
from rlvrlens.dynamics.maps import SuccessMap, success_map
from rlvrlens.objectives import WeightScheme

#: Half-width (in logit, beyond |logit p_ref|) of the scan for ref||pi and none stationary points.
_SCAN_HALF_WIDTH = 60.0


@dataclass(frozen=True)
class StationaryPoint:
    """A stationary point of the mean-field gradient flow.

    Attributes
    ----------
    logit : float
        ``logit p`` (``±inf`` for the endpoints of ``kl="none"``).
    p : float
    one_minus_p : float
        ``1 - p`` from the logit (exact near 1).
    rate : float
        ``u'(x)`` at the point (``dx/dt = m u(x)``, module docstring); negative: stable. 0 at an
        endpoint, whose stability is decided by the sign of ``g`` there.
    stable : bool
    kl : str
        The KL treatment (:data:`rlvrlens.core.kl.TREATMENTS`).
    """

    logit: float
    p: float
    one_minus_p: float
    rate: float
    stable: bool
    kl: str


def check_flow_map(success: object) -> SuccessMap:
    if not isinstance(success, SuccessMap):
        raise TypeError(f"success_map must be a SuccessMap, got {type(success).__name__}")
    if success.alpha != 1.0:
        raise ValueError("the gradient flow is defined for the KL to pi_ref only (alpha = 1); the mixture and "
                         f"mirror maps (alpha = {success.alpha:g}) describe a trust region to pi_(n-1)")
    return success


def velocity(success: SuccessMap, x: object, kl: str = "pi||ref") -> np.ndarray:
    """``u(x)``: the flow's velocity in logit per unit metric, ``dx/dt = m u(x)`` (module docstring).

    Broadcasts ``x`` with the map's ``beta`` and ``p_ref``.

    Parameters
    ----------
    success : SuccessMap
        The map giving the gap ``g``, ``beta`` and ``p_ref``; needs ``alpha = 1``.
    x : array_like
        Logits of the success probability.
    kl : {"pi||ref", "ref||pi", "none"}, default "pi||ref"
        The KL treatment: ``p q (g - beta (x - x_ref))``, ``p q g - beta (p - p_ref)``, or ``p q g``
        without a penalty.

    Returns
    -------
    ndarray
        ``u(x)``, broadcast shape of ``x``, ``beta`` and ``p_ref``.

    Raises
    ------
    TypeError
        If ``success`` is not a :class:`SuccessMap`.
    ValueError
        If ``alpha != 1`` or ``kl`` is not a valid choice.

    Examples
    --------
    >>> from rlvrlens.dynamics import dr_grpo_success_map
    >>> F = dr_grpo_success_map(beta=0.5, p_ref=0.5)   # g = 1: the pi||ref root at logit 2
    >>> float(velocity(F, 2.0)), float(velocity(F, 0.0, "ref||pi"))
    (0.0, 0.25)
    """
    success = check_flow_map(success)
    check_treatment(kl, LOSS_TREATMENTS)
    x = np.asarray(x, dtype=float)
    p, q = special.expit(x), special.expit(-x)
    g = success.gap(x)
    if kl == PI_REF:
        return p * q * (g - success.beta * (x - success.logit_ref))
    if kl == REF_PI:
        # p - p_ref computed as (1 - p_ref) - q where p is close to 1
        diff = np.where(x > 0, (1.0 - success.p_ref) - q, p - success.p_ref)
        return p * q * g - success.beta * diff
    return p * q * g


def _rate(success: SuccessMap, x: float, kl: str) -> float:
    """``u'(x)`` at a root, in closed form."""
    p, q = float(special.expit(x)), float(special.expit(-x))
    g, dg = float(success.gap(np.array(x))), float(success.gap_slope(np.array(x)))  # dg = g'(p)
    beta = float(success.beta)
    if kl == PI_REF:  # the bracket vanishes at the root
        return p * q * (p * q * dg - beta)
    if kl == REF_PI:
        return p * q * ((1 - 2 * p) * g + p * q * dg - beta)
    return p * q * ((1 - 2 * p) * g + p * q * dg)


def _sign_changes(fn, nodes: np.ndarray) -> list[float]:
    """Roots of ``fn`` at its sign changes on ``nodes``, refined by Brent's method (a root where
    ``fn`` touches zero without changing sign is not a point the flow stops at from either side
    generically, and is not reported)."""
    values = fn(nodes)
    roots = list(nodes[values == 0])
    for i in np.flatnonzero(np.sign(values[:-1]) * np.sign(values[1:]) < 0):
        roots.append(optimize.brentq(lambda x: float(fn(np.array(x))), nodes[i], nodes[i + 1],
                                     xtol=1e-300, rtol=1e-15, maxiter=400))
    return sorted(roots)


def _interior(success: SuccessMap, kl: str) -> list[StationaryPoint]:
    x_ref = float(success.logit_ref)
    if kl == PI_REF:
        from rlvrlens.dynamics.fixed_points import fixed_points

        xs = [fp.logit for fp in fixed_points(success, find_reached=False) if np.isfinite(fp.logit)]
    else:
        half = abs(x_ref) + _SCAN_HALF_WIDTH
        nodes = scan_nodes(-half, half)
        if kl == REF_PI:  # u / p: the same roots, well scaled for p near 0
            def fn(x):
                x = np.asarray(x, dtype=float)
                ratio = np.exp(np.log(success.p_ref) - special.log_expit(x))  # p_ref / p
                return special.expit(-x) * success.gap(x) - success.beta * (1.0 - ratio)
        else:
            def fn(x):
                return success.gap(np.asarray(x, dtype=float))
        xs = _sign_changes(fn, nodes)
    out = []
    for x in xs:
        rate = _rate(success, x, kl)
        out.append(StationaryPoint(float(x), float(special.expit(x)), float(special.expit(-x)), rate,
                                   bool(rate < 0), kl))
    return out


def _endpoints(success: SuccessMap) -> list[StationaryPoint]:
    """``p = 0`` and ``p = 1`` of the penalty-free flow: attracting when ``g`` points towards them."""
    g0, g1 = float(success.gap(np.array(-np.inf))), float(success.gap(np.array(np.inf)))
    return [StationaryPoint(-np.inf, 0.0, 1.0, 0.0, bool(g0 < 0), "none"),
            StationaryPoint(np.inf, 1.0, 0.0, 0.0, bool(g1 > 0), "none")]


def map_stationary_points(success: SuccessMap, kl: str = "pi||ref") -> list[StationaryPoint]:
    """Every stationary point of the gradient flow for the gap ``g`` of ``success``, in increasing order.

    ``kl`` is ``"pi||ref"``, ``"ref||pi"`` or ``"none"`` (for ``"reward"`` build the equivalent
    ``pi||ref`` map with :func:`kl_reward_map`). Interior points only, plus the two endpoints for
    ``"none"``. The ``pi||ref`` points are the map's fixed points (:func:`rlvrlens.dynamics.fixed_points`).

    Parameters
    ----------
    success : SuccessMap
        The map, with ``alpha = 1``, a single ``beta`` and a single ``p_ref`` in ``(0, 1)``.
    kl : {"pi||ref", "ref||pi", "none"}, default "pi||ref"
        The KL treatment.

    Returns
    -------
    list of StationaryPoint
        The points in increasing logit, each with its rate ``u'(x)`` and stability.

    Raises
    ------
    TypeError
        If ``success`` is not a :class:`SuccessMap`.
    ValueError
        If ``alpha != 1``, ``kl`` is not a valid choice, ``beta`` or ``p_ref`` is an array, or
        ``p_ref`` is 0 or 1.

    Examples
    --------
    >>> from rlvrlens.dynamics import dr_grpo_success_map
    >>> [s.logit for s in map_stationary_points(dr_grpo_success_map(beta=0.5, p_ref=0.5))]
    [2.0]
    """
    success = check_flow_map(success)
    check_treatment(kl, LOSS_TREATMENTS)
    if not success.is_scalar:
        raise ValueError("stationary points need a map with a single beta and p_ref")
    if float(success.p_ref) in (0.0, 1.0):
        raise ValueError("p_ref must be in the open interval (0, 1): the endpoints are absorbing")
    points = _interior(success, kl)
    if kl == "none":
        points = [*points, *_endpoints(success)]
    return sorted(points, key=lambda s: s.logit)


def affine_coefficients(scheme: WeightScheme) -> tuple[float, float, float]:
    """``(alpha, gamma, c)`` with ``Z_i = alpha r_i + gamma sum_{j!=i} r_j + c`` for real rewards, or a
    ValueError when the scheme's weights are not of that form (checked on its table and its formula)."""
    a, b, M = scheme.a, scheme.b, scheme.M
    s = np.arange(M)
    alpha = float(b[0] - a[0])
    gamma = float(a[1] - a[0]) if M > 1 else 0.0
    c0 = float(a[0])
    table_ok = np.allclose(a, c0 + gamma * s, rtol=0, atol=1e-12) and np.allclose(b - a, alpha, rtol=0, atol=1e-12)
    formula_ok = False
    if table_ok and scheme.formula is not None:
        R = np.random.default_rng(0).normal(size=(16, M))
        expected = alpha * R + gamma * (R.sum(-1, keepdims=True) - R) + c0
        formula_ok = np.allclose(scheme.weights(R), expected, rtol=1e-10, atol=1e-10)
    if not formula_ok:
        raise ValueError(
            f"kl='reward' (KL folded into the reward) has a stationary condition in p only for schemes whose "
            f"weights are affine in real rewards (reinforce, rloo, dr_grpo); scheme {scheme.name!r} is not "
            "(its weights of shaped rewards depend on the whole distribution of log(pi/pi_ref) in the group)")
    return alpha, gamma, c0


def kl_reward_map(scheme: WeightScheme, beta: object, p_ref: object) -> SuccessMap:
    """The ``pi||ref`` map equivalent to KL-in-reward for an affine scheme: ``g = alpha``, ``beta -> alpha beta``.

    Its fixed point is ``logit p = logit p_ref + 1/beta`` for every affine scheme (module docstring).

    Parameters
    ----------
    scheme : WeightScheme
        A scheme whose weights are affine in real rewards,
        ``Z_i = alpha r_i + gamma sum_{j!=i} r_j + c`` with ``alpha > 0`` (reinforce, rloo, dr_grpo).
    beta : float
        KL coefficient in ``[1e-12, 1e12]``.
    p_ref : float or array_like
        Success probability of the reference policy, in ``[0, 1]``.

    Returns
    -------
    SuccessMap
        The map with constant gap ``alpha`` and KL coefficient ``alpha beta``.

    Raises
    ------
    ValueError
        If the scheme is not affine in real rewards, its ``alpha <= 0``, or ``beta`` or ``p_ref`` is
        out of range.

    Examples
    --------
    >>> from rlvrlens.objectives import rloo
    >>> F = kl_reward_map(rloo(4), beta=0.5, p_ref=0.5)
    >>> float(F.step_logit(0.0))
    2.0
    """
    alpha, _, _ = affine_coefficients(scheme)
    if alpha <= 0:
        raise ValueError(f"scheme {scheme.name!r} has alpha = {alpha:g} <= 0: the reward does not push p up")
    beta = check_beta(beta)

    def gap(x):
        return np.full_like(np.asarray(x, dtype=float), alpha)

    def gap_slope(x):
        return np.zeros_like(np.asarray(x, dtype=float))

    return SuccessMap(gap, gap_slope, (alpha, alpha), alpha * beta, p_ref, name=f"{scheme.name}, KL in reward")


def stationary_points(scheme: WeightScheme, beta: float, p_ref: float, kl: str = "pi||ref") -> list[StationaryPoint]:
    """The stationary points of KL-regularised gradient training for ``scheme``, with stability.

    Parameters
    ----------
    scheme : WeightScheme
        Supplies ``g = h'_M`` (``"pi||ref"``, ``"ref||pi"``, ``"none"``) or its affine coefficients
        (``"reward"``).
    beta : float
        KL coefficient, ``> 0`` (ignored for ``"none"``, where any positive value may be passed).
    p_ref : float
        Reference success probability in ``(0, 1)``.
    kl : {"pi||ref", "ref||pi", "none", "reward"}
        The KL treatment (:mod:`rlvrlens.core.kl`); :data:`rlvrlens.core.kl.ESTIMATOR_TREATMENT` maps the
        trainer's ``kl_estimator`` to it.

    Returns
    -------
    list of StationaryPoint
        In increasing order of ``p``. The point a run from ``pi_ref`` reaches is :func:`flow_target`.

    Examples
    --------
    >>> from rlvrlens.objectives import get_scheme
    >>> grpo = get_scheme("grpo", 4)
    >>> [round(s.p, 4) for s in stationary_points(grpo, 1.0, 0.05, "pi||ref")]
    [0.1818]
    >>> [round(s.p, 4) for s in stationary_points(grpo, 1.0, 0.05, "ref||pi")]
    [0.3816]
    """
    check_treatment(kl)
    if not isinstance(scheme, WeightScheme):
        raise TypeError(f"scheme must be a WeightScheme, got {type(scheme).__name__}")
    if kl == "reward":
        return [StationaryPoint(**{**s.__dict__, "kl": "reward"})
                for s in map_stationary_points(kl_reward_map(scheme, beta, p_ref), "pi||ref")]
    return map_stationary_points(success_map(scheme, beta, p_ref), kl)


def flow_target(success: SuccessMap, kl: str = "pi||ref") -> StationaryPoint:
    """The stationary point a gradient run started at ``pi_ref`` converges to (mean field).

    The flow starts at ``x_ref = logit p_ref`` with velocity of the sign of ``g(p_ref)`` (the
    penalty's gradient vanishes at ``pi_ref`` for every estimator) and moves monotonically (a 1-D
    autonomous flow) to the first stationary point in that direction: for ``g > 0`` the first root
    above ``logit p_ref``, not the mean of a 2-cycle of the map.

    Parameters
    ----------
    success : SuccessMap
        The map, as for :func:`map_stationary_points` (``alpha = 1``, single ``beta`` and
        ``p_ref`` in ``(0, 1)``).
    kl : {"pi||ref", "ref||pi", "none"}, default "pi||ref"
        The KL treatment. For ``"reward"`` pass ``kl_reward_map(scheme, beta, p_ref)`` with
        ``"pi||ref"``.

    Returns
    -------
    StationaryPoint
        The first stationary point in the direction of ``g(p_ref)`` (the point at ``x_ref`` itself
        when ``g(p_ref) = 0`` and it is one).

    Raises
    ------
    TypeError
        If ``success`` is not a :class:`SuccessMap`.
    ValueError
        If ``kl="reward"``, for the cases :func:`map_stationary_points` refuses, or when no
        stationary point lies ahead of ``p_ref``.

    Examples
    --------
    >>> from rlvrlens.dynamics import grpo_success_map, attractor
    >>> F = grpo_success_map(beta=2.0, p_ref=3e-3)  # Mroueh's map cycles here ...
    >>> attractor(F).kind, [round(float(v), 4) for v in attractor(F).p]
    ('cycle', [0.0082, 0.4357])
    >>> s = flow_target(F)                          # ... the flow does not
    >>> round(s.p, 4), s.stable, round(float(F.logit_slope(s.logit)), 3)
    (0.0387, True, -1.196)
    """
    success = check_flow_map(success)
    if kl == "reward":
        raise ValueError("kl='reward' needs the scheme: use flow_target(kl_reward_map(scheme, beta, p_ref), 'pi||ref')")
    points = map_stationary_points(success, kl)
    x_ref = float(success.logit_ref)
    g_ref = float(success.gap(np.array(x_ref)))
    if g_ref == 0:
        here = [s for s in points if abs(s.logit - x_ref) <= 1e-9 * (1 + abs(x_ref))]
        if here:
            return here[0]
    ahead = [s for s in points if (s.logit > x_ref if g_ref > 0 else s.logit < x_ref)]
    if not ahead:  # no root in that direction (kl = "none" lists the endpoints, so never for it)
        raise ValueError(f"the flow from p_ref has no stationary point ahead (g(p_ref) = {g_ref:g})")
    return ahead[0] if g_ref > 0 else ahead[-1]
