"""Success-probability maps: what a KL-regularised RLVR iteration does to ``p = P(right)``.

Mroueh (2025) solves ``max_pi E_pi[A] - beta KL(pi || pi_ref)`` in closed form,
``pi_n ∝ pi_ref exp(A_{n-1}/beta)``, with the advantage ``A_{n-1}`` computed from the previous
policy. For a verifier with two outcomes only the gap ``g(p)`` between the advantage of a right and
of a wrong answer matters, and the success probability follows

    logit p_n = logit p_ref + g(p_{n-1}) / beta.                                   (1)

For GRPO with population statistics and ``eps`` inside the root, ``g = Omega(p) =
(p(1-p) + eps)^{-1/2}``; for any weight scheme with finite ``M`` (THEORY.md §2, derived)
``g = h'_M``, the expected right-minus-wrong weight. Two variants change the KL anchor:

* "mirror" (KL to the previous policy): ``logit p_n = logit p_{n-1} + g(p_{n-1})/beta``;
* the two-KL mixture ``alpha KL(pi||pi_ref) + (1-alpha) KL(pi||pi_{n-1})`` (derived below):
  ``logit p_n = alpha logit p_ref + (1-alpha) logit p_{n-1} + g(p_{n-1})/beta``.

A :class:`SuccessMap` holds ``g`` as a function of the logit ``x`` so that ``p`` within 1e-300 of 1
(``x`` up to ~690, and far beyond) is represented exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
from scipy import special

from rlvrlens.core.checks import check_array, check_float
from rlvrlens.core.kl import BETA_RANGE
from rlvrlens.core.logit import logit
from rlvrlens.objectives import WeightScheme, d2h, dh_logit

#: Logits beyond this are clipped before evaluating a scheme's h'_M (1 - p < 1e-304 there).
_LOGIT_CLIP = 700.0
#: A function of the logit ``x`` of ``p`` (array in, array out).
LogitFunction = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True, eq=False)
class SuccessMap:
    """The map ``logit p_n = alpha logit p_ref + (1-alpha) logit p_{n-1} + g(p_{n-1})/beta``.

    Build one with :func:`success_map`, :func:`grpo_success_map`, :func:`dr_grpo_success_map`,
    :func:`mirror_map` or :func:`mixture_map` rather than directly.

    Parameters
    ----------
    gap : callable
        ``g`` at ``p = sigmoid(x)``, as a function of the logit ``x`` (exact for ``|x|`` large).
    gap_slope : callable
        ``g'(p)`` (derivative in ``p``) at ``p = sigmoid(x)``, as a function of ``x``.
    gap_range : (float, float)
        Bounds ``g_min <= g <= g_max`` on ``[0, 1]`` (``g_max`` may be ``inf``); every fixed point
        of a map with ``alpha > 0`` has ``x_ref + g_min/(alpha beta) <= x* <= x_ref +
        g_max/(alpha beta)``.
    beta : float or ndarray
        KL coefficient(s), ``> 0``. Arrays broadcast with ``p_ref`` and the points mapped.
    p_ref : float or ndarray
        Success probability of the reference policy, in ``[0, 1]``; 0 and 1 are absorbing (the
        reference puts no mass on right, resp. wrong, answers, and neither can any ``pi_n``).
    alpha : float
        Weight of the KL to ``pi_ref`` (1: Mroueh's map, 0: mirror).
    name : str
        What ``g`` is, for printing.
    """

    gap: LogitFunction
    gap_slope: LogitFunction
    gap_range: tuple[float, float]
    beta: np.ndarray
    p_ref: np.ndarray
    alpha: float = 1.0
    name: str = "custom"

    def __post_init__(self) -> None:
        beta = check_array("beta", self.beta, low=BETA_RANGE[0], high=BETA_RANGE[1])
        p_ref = check_array("p_ref", self.p_ref, low=0.0, high=1.0, low_open=False)
        alpha = check_float("alpha", self.alpha, low=0.0, high=1.0)
        np.broadcast_shapes(beta.shape, p_ref.shape)
        object.__setattr__(self, "beta", beta)
        object.__setattr__(self, "p_ref", p_ref)
        object.__setattr__(self, "alpha", alpha)

    # -- parameters -------------------------------------------------------------------------
    @property
    def logit_ref(self) -> np.ndarray:
        """``logit p_ref`` (``±inf`` at the absorbing endpoints)."""
        with np.errstate(divide="ignore"):
            return special.logit(self.p_ref)

    @property
    def is_scalar(self) -> bool:
        """True when ``beta`` and ``p_ref`` are single numbers."""
        return self.beta.ndim == 0 and self.p_ref.ndim == 0

    def with_params(self, *, beta: object = None, p_ref: object = None, alpha: object = None) -> "SuccessMap":
        """The same ``g`` with other ``beta``, ``p_ref`` or ``alpha``."""
        return replace(self,
                       beta=self.beta if beta is None else beta,
                       p_ref=self.p_ref if p_ref is None else p_ref,
                       alpha=self.alpha if alpha is None else alpha)

    def __repr__(self) -> str:
        def fmt(v: np.ndarray) -> str:
            return f"{float(v):g}" if v.ndim == 0 else f"array{v.shape}"

        kl = {1.0: "", 0.0: ", mirror"}.get(self.alpha, f", alpha={self.alpha:g}")
        return f"SuccessMap({self.name}, beta={fmt(self.beta)}, p_ref={fmt(self.p_ref)}{kl})"

    @property
    def title(self) -> str:
        """A plain-language one-liner for figure titles and printed headers (no Python repr).

        >>> from rlvrlens.objectives import grpo
        >>> success_map(grpo(8), 0.5, 0.2).title
        'grpo M=8 (eps=1e-06, std=sample, eps_inside_sqrt=False): β = 0.5, p_ref = 0.2'
        """
        def fmt(v: np.ndarray) -> str:
            return f"{float(v):g}" if v.ndim == 0 else f"{v.size} values"

        kl = {1.0: "", 0.0: ", KL to the previous policy"}.get(self.alpha, f", α = {self.alpha:g}")
        return f"{self.name}: β = {fmt(self.beta)}, p_ref = {fmt(self.p_ref)}{kl}"

    def tabulated(self, *, half_width: float = 100.0, step: float = 0.005) -> "SuccessMap":
        """The same map with ``g`` and ``g'`` linearly interpolated on a uniform logit table.

        ``g`` is tabulated on ``[-half_width, half_width]`` with spacing ``step``; beyond the table
        it is taken constant where the exact ``g`` is flat to 1e-14 relative there (true of every
        bounded scheme) and evaluated exactly otherwise; ``g'`` is 0 beyond the table. Used by the
        vectorised grid (:func:`rlvrlens.dynamics.fixed_point_grid`) to *locate* an attractor fast;
        it then polishes with the exact map. The interpolation error of ``g`` is at most
        ``step^2/8 max|d^2 g/dx^2|``.

        Examples
        --------
        >>> from rlvrlens.dynamics import grpo_success_map
        >>> F = grpo_success_map(1.0, 0.2)
        >>> bool(abs(F.tabulated().step_logit(0.3) - F.step_logit(0.3)) < 1e-5)
        True
        """
        half_width = check_float("half_width", half_width, low=0.0, low_open=True)
        step = check_float("step", step, low=0.0, low_open=True)
        nodes = np.linspace(-half_width, half_width, int(round(2 * half_width / step)) + 1)
        h = nodes[1] - nodes[0]
        values = np.asarray(self.gap(nodes), dtype=float)
        slopes = np.asarray(self.gap_slope(nodes), dtype=float)
        far = np.asarray(self.gap(np.array([-1e4, -np.inf, 1e4, np.inf])), dtype=float)
        flat_low = bool(np.allclose(far[:2], values[0], rtol=1e-14, atol=0))
        flat_high = bool(np.allclose(far[2:], values[-1], rtol=1e-14, atol=0))
        exact = self.gap

        def interp(table: np.ndarray, x: np.ndarray) -> np.ndarray:
            u = np.clip((x + half_width) / h, 0.0, nodes.size - 1.0)
            i = np.minimum(u.astype(np.int64), nodes.size - 2)
            w = u - i
            return table[i] * (1.0 - w) + table[i + 1] * w

        def gap(x: np.ndarray) -> np.ndarray:
            x = np.asarray(x, dtype=float)
            out = np.asarray(interp(values, x))
            outside = np.zeros(x.shape, dtype=bool)
            if not flat_high:
                outside |= x > half_width
            if not flat_low:
                outside |= x < -half_width
            if outside.any():
                out = out.copy()
                out[outside] = exact(x[outside])
            return out

        def gap_slope(x: np.ndarray) -> np.ndarray:
            x = np.asarray(x, dtype=float)
            return np.where(np.abs(x) > half_width, 0.0, interp(slopes, x))

        return replace(self, gap=gap, gap_slope=gap_slope, name=f"{self.name} (tabulated)")

    # -- the map ----------------------------------------------------------------------------
    def step_logit(self, x: object) -> np.ndarray:
        """``logit p_n`` from ``x = logit p_{n-1}``; broadcasts ``x`` with ``beta`` and ``p_ref``.

        The endpoints are absorbing: ``p_ref`` in ``{0, 1}`` (with ``alpha > 0``) gives
        ``logit p_ref``; ``p_{n-1}`` in ``{0, 1}`` with ``alpha < 1`` stays where it is.
        """
        x = np.asarray(x, dtype=float)
        if np.isnan(x).any():
            raise ValueError("x (logit of p) must not contain NaN")
        x_ref = self.logit_ref
        g = self.gap(x)
        a = self.alpha
        with np.errstate(invalid="ignore"):
            anchor = a * x_ref if a > 0 else 0.0
            own = (1.0 - a) * x if a < 1 else 0.0
            out = anchor + own + g / self.beta
        if a > 0:
            out = np.where(np.isinf(x_ref), x_ref, out)
            if a < 1:
                out = np.where(np.isinf(x) & ~np.isinf(x_ref), x, out)
        else:
            out = np.where(np.isinf(x), x, out)
        return out

    def __call__(self, p: object) -> np.ndarray:
        """``p_n = F(p_{n-1})`` for probabilities in ``[0, 1]``."""
        return special.expit(self.step_logit(logit(p)))

    def logit_slope(self, x: object) -> np.ndarray:
        """``d logit p_n / d logit p_{n-1} = (1 - alpha) + p (1-p) g'(p) / beta`` at ``p = sigmoid(x)``.

        At a fixed point this equals the slope ``F'(p*)`` in ``p`` (the map is conjugated by the
        logit), so it decides stability.
        """
        x = np.asarray(x, dtype=float)
        pq = special.expit(x) * special.expit(-x)
        with np.errstate(invalid="ignore"):
            term = np.where(pq > 0, pq * self.gap_slope(x), 0.0)
        return (1.0 - self.alpha) + term / self.beta

    def derivative_logit(self, x: object) -> np.ndarray:
        """``F'(p)`` at ``p = sigmoid(x)``: ``F(1-F)/(p(1-p))`` times :meth:`logit_slope`.

        For ``alpha = 1`` this is Mroueh's ``F'(p) = F (1-F) g'(p) / beta``.
        """
        x = np.asarray(x, dtype=float)
        y = self.step_logit(x)
        log_ratio = (special.log_expit(y) + special.log_expit(-y)
                     - special.log_expit(x) - special.log_expit(-x))
        with np.errstate(invalid="ignore", over="ignore"):
            return np.exp(log_ratio) * self.logit_slope(x)

    def derivative(self, p: object) -> np.ndarray:
        """``F'(p)`` for ``p`` in the open interval ``(0, 1)``."""
        p = check_array("p", p, low=0.0, high=1.0, low_open=True)
        if (p >= 1).any():
            raise ValueError("p must be in the open interval (0, 1) for the derivative; use "
                             "derivative_logit for points near 1")
        return self.derivative_logit(special.logit(p))


# -- constructors -----------------------------------------------------------------------------
def success_map(scheme: WeightScheme, beta: object, p_ref: object, *, alpha: float = 1.0) -> SuccessMap:
    """The KL-regularised iteration of a weight scheme: ``logit p_n = logit p_ref + h'_M(p_{n-1})/beta``.

    THEORY.md §2 (derived): with ``S ~ Bin(M-1, p)`` the expected advantage of a right answer is
    ``E[b_S]`` and of a wrong one ``E[a_S]``, so Mroueh's closed form
    ``pi_n ∝ pi_ref exp(A/beta)`` gives the gap ``g = E[b_S] - E[a_S] = h'_M(p)``.

    Parameters
    ----------
    scheme : WeightScheme
    beta : float or array_like
        KL coefficient(s) ``> 0``.
    p_ref : float or array_like
        Reference success probability(ies) in ``[0, 1]`` (0 and 1 absorbing).
    alpha : float, default 1
        Weight of the KL to ``pi_ref``; see :func:`mixture_map`.

    Examples
    --------
    >>> from rlvrlens.objectives import dr_grpo
    >>> F = success_map(dr_grpo(4), beta=0.75, p_ref=0.5)  # h' = 3/4: one step to logit 1
    >>> round(float(F.step_logit(-2.0)), 12)
    1.0
    """
    if not isinstance(scheme, WeightScheme):
        raise TypeError(f"scheme must be a WeightScheme, got {type(scheme).__name__}")

    def gap(x: np.ndarray) -> np.ndarray:
        # beyond |x| = 700 the polynomial equals its endpoint value to 1e-300 relative
        return dh_logit(scheme, np.clip(x, -_LOGIT_CLIP, _LOGIT_CLIP))

    def gap_slope(x: np.ndarray) -> np.ndarray:
        return d2h(scheme, special.expit(x))

    c = scheme.c
    params = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in scheme.params.items()
                       if not isinstance(v, (tuple, list)))
    return SuccessMap(gap, gap_slope, (float(c.min()), float(c.max())), beta, p_ref, alpha,
                      name=f"{scheme.name} M={scheme.M}" + (f" ({params})" if params else ""))


def grpo_success_map(beta: object, p_ref: object, eps: float = 1e-5, *, alpha: float = 1.0) -> SuccessMap:
    """Mroueh's population-GRPO map: ``logit p_n = logit p_ref + Omega(p_{n-1})/beta``.

    ``Omega(p) = omega+ + omega- = (p(1-p) + eps)^{-1/2}``: GRPO's advantage of a right answer,
    ``(1-p)/sqrt(p(1-p)+eps)``, plus minus that of a wrong one, ``p/sqrt(p(1-p)+eps)`` (infinite
    group, population std, ``eps`` inside the root). ``eps = 0`` is allowed: then ``Omega`` is
    unbounded and ``p = 1`` is a fixed point.

    Parameters
    ----------
    beta : float or array_like
        KL coefficient(s) in ``[1e-12, 1e12]``; arrays broadcast with ``p_ref``.
    p_ref : float or array_like
        Success probability of the reference policy, in ``[0, 1]``.
    eps : float, default 1e-5
        The stabiliser inside the root, finite and ``>= 0``.
    alpha : float, default 1.0
        Weight of the KL to ``pi_ref`` against ``pi_{n-1}`` (:func:`mixture_map`), in ``[0, 1]``.

    Returns
    -------
    SuccessMap
        The map with gap ``g = Omega`` and gap range ``[(1/4 + eps)^{-1/2}, eps^{-1/2}]``.

    Raises
    ------
    ValueError
        If ``eps``, ``beta``, ``p_ref`` or ``alpha`` is out of range, or ``beta`` and ``p_ref`` do
        not broadcast.

    References
    ----------
    Y. Mroueh, "Reinforcement learning with verifiable rewards: GRPO's effective loss, dynamics,
    and success amplification", 2025, eq. for ``h_{eps, p_ref}``.

    Examples
    --------
    >>> F = grpo_success_map(beta=1.0, p_ref=0.2, eps=0.0)
    >>> x = float(F.step_logit(0.0))  # Omega(1/2) = 2 with eps = 0
    >>> bool(np.isclose(x, np.log(0.25) + 2.0))
    True
    """
    eps = check_float("eps", eps, low=0.0)

    def variance(x: np.ndarray) -> np.ndarray:
        return special.expit(x) * special.expit(-x)

    def gap(x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return (variance(np.asarray(x, dtype=float)) + eps) ** -0.5

    def gap_slope(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        one_minus_2p = special.expit(-x) - special.expit(x)
        with np.errstate(divide="ignore", invalid="ignore"):
            return -one_minus_2p / (2.0 * (variance(x) + eps) ** 1.5)

    g_max = np.inf if eps == 0 else eps**-0.5
    return SuccessMap(gap, gap_slope, ((0.25 + eps) ** -0.5, g_max), beta, p_ref, alpha,
                      name=f"population GRPO, eps={eps:g}")


def dr_grpo_success_map(beta: object, p_ref: object, *, alpha: float = 1.0) -> SuccessMap:
    """The mean-only ("Dr. GRPO") population map: advantage ``r - p``, gap ``g = 1``.

    ``logit p_n = logit p_ref + 1/beta`` whatever ``p_{n-1}``: the fixed point
    ``logit p* = logit p_ref + 1/beta`` is reached in one step (Mroueh 2025). The finite-``M``
    scheme :func:`rlvrlens.objectives.dr_grpo` has ``h'_M = (M-1)/M`` instead.

    Parameters
    ----------
    beta : float or array_like
        KL coefficient(s) in ``[1e-12, 1e12]``; arrays broadcast with ``p_ref``.
    p_ref : float or array_like
        Success probability of the reference policy, in ``[0, 1]``.
    alpha : float, default 1.0
        Weight of the KL to ``pi_ref`` against ``pi_{n-1}`` (:func:`mixture_map`), in ``[0, 1]``.

    Returns
    -------
    SuccessMap
        The map with constant gap ``g = 1``.

    Raises
    ------
    ValueError
        If ``beta``, ``p_ref`` or ``alpha`` is out of range, or ``beta`` and ``p_ref`` do not
        broadcast.

    Examples
    --------
    >>> F = dr_grpo_success_map(beta=0.5, p_ref=0.5)
    >>> float(F.step_logit(3.0))  # logit p_ref + 1/beta, whatever the start
    2.0
    """

    def gap(x: np.ndarray) -> np.ndarray:
        return np.ones_like(np.asarray(x, dtype=float))

    def gap_slope(x: np.ndarray) -> np.ndarray:
        return np.zeros_like(np.asarray(x, dtype=float))

    return SuccessMap(gap, gap_slope, (1.0, 1.0), beta, p_ref, alpha, name="population Dr. GRPO")


def mixture_map(success: SuccessMap, alpha: float) -> SuccessMap:
    """The same advantage with the KL split between ``pi_ref`` (weight ``alpha``) and ``pi_{n-1}``.

    Derived: maximising ``E_pi[A] - beta (alpha KL(pi||pi_ref) + (1-alpha) KL(pi||pi_{n-1}))``
    over distributions gives (Lagrange, as for one KL) ``pi_n ∝ pi_ref^alpha pi_{n-1}^(1-alpha)
    exp(A/beta)``. If ``pi_{n-1}`` is ``pi_ref`` reweighted by outcome (true of ``pi_0 = pi_ref``
    and kept by every such step), summing over the right and the wrong answers gives

        logit p_n = alpha logit p_ref + (1-alpha) logit p_{n-1} + g(p_{n-1})/beta.

    ``alpha = 1`` is the original map, ``alpha = 0`` the mirror map. The fixed points of the
    mixture are those of the ``alpha = 1`` map with ``beta`` replaced by ``alpha beta``; their
    stability differs.

    Parameters
    ----------
    success : SuccessMap
        The map whose gap ``g``, ``beta`` and ``p_ref`` are kept.
    alpha : float
        Weight of the KL to ``pi_ref``, in ``[0, 1]``.

    Returns
    -------
    SuccessMap
        ``success`` with ``alpha`` replaced.

    Raises
    ------
    ValueError
        If ``alpha`` is outside ``[0, 1]``.
    """
    return success.with_params(alpha=alpha)


def mirror_map(success: SuccessMap) -> SuccessMap:
    """"Mirror" variant, KL to the previous policy: ``logit p_n = logit p_{n-1} + g(p_{n-1})/beta``.

    With ``g > 0`` there is no fixed point in ``(0, 1)``: ``p_n`` increases to 1 (Mroueh 2025).
    ``p_ref`` is ignored.

    Parameters
    ----------
    success : SuccessMap
        The map whose gap ``g`` and ``beta`` are kept.

    Returns
    -------
    SuccessMap
        ``success`` with ``alpha = 0``.
    """
    return success.with_params(alpha=0.0)
