"""The induced objective ``h_M`` and its derivatives, numerically, for any weight scheme and any M.

Davis & Recht (2025), Theorem 1: the expected update of a scheme with ``c = b - a`` is the gradient
of ``h_M(p)`` with

    h_M(t) = (1/M) sum_{s=0}^{M-1} c_s I_t(s+1, M-s),

``I_t`` the regularised incomplete beta function. Equivalently (THEORY.md §1, derived)
``h'_M(t) = sum_s c_s C(M-1, s) t^s (1-t)^(M-1-s) = E[c_S]`` with ``S ~ Bin(M-1, t)``, and
``h_M(t) = E[K_X] / M`` with ``X ~ Bin(M, t)``, ``K_k = sum_{s<k} c_s``. Both expectations are
evaluated by :func:`rlvrlens.objectives.binomial.binomial_expectation`, in O(sqrt(M)) work per
point instead of the O(M) incomplete-beta calls of the definition.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from rlvrlens.core.checks import check_probabilities
from rlvrlens.objectives.binomial import binomial_expectation
from rlvrlens.objectives.scheme import WeightScheme


def _check_scheme(scheme: object) -> WeightScheme:
    if not isinstance(scheme, WeightScheme):
        raise TypeError(f"scheme must be a WeightScheme, got {type(scheme).__name__}")
    return scheme


def h(scheme: WeightScheme, t: object) -> np.ndarray:
    """The objective ``h_M(t)`` induced by ``scheme``; ``h_M(0) = 0``.

    Parameters
    ----------
    scheme : WeightScheme
    t : array_like
        Points in ``[0, 1]``.

    Returns
    -------
    numpy.ndarray
        ``h_M(t)``, same shape as ``t``.

    Notes
    -----
    ``h_M(t) = (1/M) sum_s c_s I_t(s+1, M-s) = E[K_X]/M``, ``X ~ Bin(M, t)``. Accurate to about
    1e-13 relative for ``c >= 0`` and ``M`` up to ``10^6`` (tested against mpmath).

    References
    ----------
    D. Davis, B. Recht, "What is the objective of reasoning with reinforcement learning?", 2025.

    Examples
    --------
    >>> from rlvrlens.objectives import raft
    >>> float(h(raft(2), 1.0))  # H_2 = 1 + 1/2
    1.5
    """
    scheme = _check_scheme(scheme)
    t = check_probabilities("t", t)
    scale = _scale(scheme.c)
    K = np.concatenate(([0.0], np.cumsum(scheme.c / scale)))  # |K_k| <= k: no overflow for any finite c
    return binomial_expectation(K, t) / scheme.M * scale


def dh(scheme: WeightScheme, t: object) -> np.ndarray:
    """The derivative ``h'_M(t) = sum_s c_s C(M-1,s) t^s (1-t)^(M-1-s)`` (a Bernstein polynomial).

    It is also the expected weight of a right answer minus that of a wrong one,
    ``E[b_S] - E[a_S]`` with ``S ~ Bin(M-1, t)``: the step size the scheme gives a prompt of
    success probability ``t``.

    Parameters
    ----------
    scheme : WeightScheme
        The scheme.
    t : array_like
        Success probabilities in ``[0, 1]``.

    Returns
    -------
    numpy.ndarray
        ``h'_M(t)``, same shape as ``t``.

    Raises
    ------
    TypeError
        If ``scheme`` is not a :class:`WeightScheme`.
    ValueError
        If a ``t`` lies outside ``[0, 1]``.

    Examples
    --------
    >>> from rlvrlens.objectives import dr_grpo
    >>> round(float(dh(dr_grpo(4), 0.3)), 12)  # (M-1)/M
    0.75
    """
    scheme = _check_scheme(scheme)
    t = check_probabilities("t", t)
    return binomial_expectation(scheme.c, t)


def d2h(scheme: WeightScheme, t: object) -> np.ndarray:
    """The second derivative ``h''_M(t) = (M-1) sum_s (c_{s+1} - c_s) C(M-2,s) t^s (1-t)^(M-2-s)``.

    Zero for ``M = 1``. Used by the dynamics layer's local-stability bound.

    Parameters
    ----------
    scheme : WeightScheme
        The scheme.
    t : array_like
        Success probabilities in ``[0, 1]``.

    Returns
    -------
    numpy.ndarray
        ``h''_M(t)``, same shape as ``t``.

    Raises
    ------
    TypeError
        If ``scheme`` is not a :class:`WeightScheme`.
    ValueError
        If a ``t`` lies outside ``[0, 1]``.

    Examples
    --------
    >>> from rlvrlens.objectives import raft
    >>> round(float(d2h(raft(2), 0.3)), 12)  # h' = 2 - t
    -1.0
    """
    scheme = _check_scheme(scheme)
    t = check_probabilities("t", t)
    if scheme.M == 1:
        return np.zeros_like(t)
    scale = _scale(scheme.c)
    return (scheme.M - 1) * binomial_expectation(np.diff(scheme.c / scale), t) * scale


def _scale(c: np.ndarray) -> float:
    """The largest ``|c_s|`` (1 if all are 0): sums of ``c / scale`` cannot overflow."""
    return float(np.abs(c).max()) or 1.0


def dh_logit(scheme: WeightScheme, x: object) -> np.ndarray:
    """``h'_M(t)`` at ``t = 1/(1 + e^-x)``, accurate even where ``t`` rounds to 0 or 1 in float64.

    ``1 - t = 1/(1 + e^x)`` is used as computed from ``x``, so ``x = 700`` (``1 - t ~ 1e-304``)
    gives the value of the Bernstein polynomial there, not at ``t = 1``.

    Parameters
    ----------
    scheme : WeightScheme
        The scheme.
    x : array_like
        Logits of the success probability; ``±inf`` are allowed (``t = 0, 1``), NaN is not.

    Returns
    -------
    numpy.ndarray
        ``h'_M(1/(1 + e^-x))``, same shape as ``x``.

    Raises
    ------
    TypeError
        If ``scheme`` is not a :class:`WeightScheme`.
    ValueError
        If ``x`` contains NaN.

    Examples
    --------
    >>> from rlvrlens.objectives import raft
    >>> round(float(dh_logit(raft(2), 0.0)), 12)  # t = 1/2
    1.5
    """
    scheme = _check_scheme(scheme)
    x = np.asarray(x, dtype=float)
    if np.isnan(x).any():
        raise ValueError("x (logit of t) must not contain NaN")
    return binomial_expectation(scheme.c, special.expit(x), special.expit(-x))
