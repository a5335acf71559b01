"""What a scheme's weights cost: their second moment, variance and the chance of a silent group.

For a prompt of success probability ``p`` answer 1 is right with probability ``p`` and the number
``S`` of the other ``M - 1`` answers that are right is ``Bin(M-1, p)``, independently. Its weight is
``b_S`` if it is right and ``a_S`` if not, so (all answers being exchangeable)

    E[Z]   = p E[b_S] + (1-p) E[a_S],
    E[Z^2] = p E[b_S^2] + (1-p) E[a_S^2],    S ~ Bin(M-1, p),

and the group carries no signal (every weight zero) with probability

    P0(p) = sum_k C(M, k) p^k (1-p)^(M-k) [k = 0 or b_{k-1} = 0] [k = M or a_k = 0],

``k`` being the number of right answers. ``E[Z^2]`` is what a designed target costs in gradient
noise (the step's variance is ``E[Z^2] E[|grad log pi|^2]/M`` to leading order when the score
vectors are uncorrelated with the weights); ``P0`` is the fraction of prompts that DAPO-style
dynamic sampling would drop.

Examples
--------
>>> from rlvrlens.objectives import grpo, rloo
>>> round(float(zero_weight_probability(grpo(4), 0.5)), 6)  # all right or all wrong: 2/16
0.125
>>> round(float(second_moment(rloo(2), 0.5)), 6)  # Z = R_1 - R_2: E[Z^2] = 1/2
0.5
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from rlvrlens.core.checks import check_probabilities
from rlvrlens.objectives.binomial import binomial_expectation
from rlvrlens.objectives.scheme import WeightScheme


def _check(scheme: object, p: object) -> tuple[WeightScheme, np.ndarray]:
    if not isinstance(scheme, WeightScheme):
        raise TypeError(f"scheme must be a WeightScheme, got {type(scheme).__name__}")
    return scheme, check_probabilities("p", p)


def mean_weight(scheme: WeightScheme, p: object) -> np.ndarray:
    """``E[Z] = p E[b_S] + (1-p) E[a_S]`` with ``S ~ Bin(M-1, p)``: the average weight of an answer.

    Parameters
    ----------
    scheme : WeightScheme
        The scheme.
    p : array_like
        Success probabilities in ``[0, 1]``.

    Returns
    -------
    ndarray
        ``E[Z]``, shaped like ``p``.

    Raises
    ------
    TypeError
        If ``scheme`` is not a :class:`WeightScheme`.
    ValueError
        If a ``p`` lies outside ``[0, 1]``.

    Examples
    --------
    >>> from rlvrlens.objectives import rloo
    >>> round(float(mean_weight(rloo(4), 0.3)), 12)
    0.0
    """
    scheme, p = _check(scheme, p)
    return p * binomial_expectation(scheme.b, p) + (1 - p) * binomial_expectation(scheme.a, p)


def second_moment(scheme: WeightScheme, p: object) -> np.ndarray:
    """``E[Z^2] = p E[b_S^2] + (1-p) E[a_S^2]`` with ``S ~ Bin(M-1, p)``, elementwise in ``p``.

    Parameters
    ----------
    scheme : WeightScheme
        The scheme.
    p : array_like
        Success probabilities in ``[0, 1]``.

    Returns
    -------
    ndarray
        ``E[Z^2]``, shaped like ``p`` (``inf`` where it exceeds float64).

    Raises
    ------
    TypeError
        If ``scheme`` is not a :class:`WeightScheme`.
    ValueError
        If a ``p`` lies outside ``[0, 1]``.

    Examples
    --------
    >>> from rlvrlens.objectives import rloo
    >>> round(float(second_moment(rloo(2), 0.5)), 6)  # Z = R_1 - R_2: E[Z^2] = 1/2
    0.5
    """
    scheme, p = _check(scheme, p)
    scale = float(max(np.abs(scheme.a).max(), np.abs(scheme.b).max())) or 1.0  # squares of a / scale cannot overflow
    unit = p * binomial_expectation((scheme.b / scale) ** 2, p) + (1 - p) * binomial_expectation((scheme.a / scale) ** 2, p)
    with np.errstate(over="ignore"):  # beyond float64 it is inf, which it is
        return np.where(unit == 0, 0.0, unit * np.square(scale))


def weight_variance(scheme: WeightScheme, p: object) -> np.ndarray:
    """``Var Z = E[Z^2] - E[Z]^2`` of one answer's weight (clipped at 0 against rounding).

    Parameters
    ----------
    scheme : WeightScheme
        The scheme.
    p : array_like
        Success probabilities in ``[0, 1]``.

    Returns
    -------
    ndarray
        ``Var Z >= 0``, shaped like ``p``.

    Raises
    ------
    TypeError
        If ``scheme`` is not a :class:`WeightScheme`.
    ValueError
        If a ``p`` lies outside ``[0, 1]``.

    Examples
    --------
    >>> from rlvrlens.objectives import reinforce
    >>> round(float(weight_variance(reinforce(4), 0.5)), 12)  # Z = R: p (1 - p)
    0.25
    """
    return np.maximum(second_moment(scheme, p) - mean_weight(scheme, p) ** 2, 0.0)


def zero_weight_probability(scheme: WeightScheme, p: object) -> np.ndarray:
    """Probability that every weight of a group is zero (the group teaches nothing), elementwise in ``p``.

    Parameters
    ----------
    scheme : WeightScheme
        The scheme.
    p : array_like
        Success probabilities in ``[0, 1]``.

    Returns
    -------
    ndarray
        ``P0(p)`` (module docstring), shaped like ``p``.

    Raises
    ------
    TypeError
        If ``scheme`` is not a :class:`WeightScheme`.
    ValueError
        If a ``p`` lies outside ``[0, 1]``.

    Examples
    --------
    >>> from rlvrlens.objectives import raft
    >>> round(float(zero_weight_probability(raft(3), 0.5)), 12)  # only the all-wrong group: 1/8
    0.125
    """
    scheme, p = _check(scheme, p)
    M = scheme.M
    k = np.arange(M + 1)
    right_zero = np.ones(M + 1, dtype=bool)
    right_zero[1:] = scheme.b == 0
    wrong_zero = np.ones(M + 1, dtype=bool)
    wrong_zero[:M] = scheme.a == 0
    silent = k[right_zero & wrong_zero]
    pmf = stats.binom.pmf(silent[None, :], M, p.reshape(-1, 1))
    return pmf.sum(axis=1).reshape(p.shape)
