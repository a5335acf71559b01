"""The first-order model of prompts coupled through shared parameters (THEORY.md §4).

With ``G`` the rows ``grad p_x`` and ``P`` the optimiser's diagonal preconditioner (the identity
for SGD), one step of expected update ``Delta theta = (lr/N) P sum_y [h'_M(p_y) grad p_y - beta
grad D_y]`` changes the prompts by, to first order,

    Delta p_x = (lr/N) sum_y [K_xy h'_M(p_y) - beta C_xy],   K = G P G^T,   C_xy = <grad p_x, P grad D_y>.

:func:`predicted_change` is this step (without the KL term unless ``kl`` is given),
:func:`coupled_step` one step of the model, :func:`step_size_for` the learning rate whose
predicted largest ``|Delta p|`` is a target, and :func:`uncoupled_flow` the same prompts each alone
(K diagonal, frozen) as the one-dimensional flow of :func:`rlvrlens.dynamics.flow`.
"""

from __future__ import annotations

import numpy as np

from rlvrlens.dynamics import flow, success_map
from rlvrlens.objectives import WeightScheme, dh

#: Probabilities of the model are kept in ``[P_CLIP, 1 - P_CLIP]`` (a first-order step may overshoot).
P_CLIP = 1e-9


def predicted_change(K: np.ndarray, scheme: WeightScheme, p: np.ndarray, lr: float,
                     kl: np.ndarray | None = None, beta: float = 0.0) -> np.ndarray:
    """First-order expected ``Delta p_x = (lr/N) [sum_y K_xy h'_M(p_y) - beta sum_y C_xy]``.

    Parameters
    ----------
    K : ndarray, shape (N, N)
        The kernel :func:`rlvrlens.forecast.probes.kernel`.
    scheme : WeightScheme
    p : ndarray, shape (N,)
    lr : float
    kl : ndarray, shape (N, N), optional
        ``C`` (:func:`rlvrlens.forecast.probes.kl_projection`); with ``beta``, the KL term.
    beta : float

    Returns
    -------
    ndarray, shape (N,)

    Examples
    --------
    >>> from rlvrlens.objectives import reinforce
    >>> predicted_change(np.array([[1.0, 0.5], [0.5, 1.0]]), reinforce(4), np.array([0.2, 0.6]), 0.1)
    array([0.075, 0.075])
    """
    change = K @ dh(scheme, p)
    if kl is not None and beta:
        change = change - beta * kl.sum(1)
    return lr / len(p) * change


def coupled_step(p: np.ndarray, K: np.ndarray, scheme: WeightScheme, lr: float) -> np.ndarray:
    """One step of the coupled model: ``clip(p + predicted_change(K, scheme, p, lr))``.

    Parameters
    ----------
    p : ndarray, shape (N,)
        The prompts' success probabilities now.
    K : ndarray, shape (N, N)
        The kernel ``K = G P G^T`` (:func:`rlvrlens.forecast.probes.kernel`).
    scheme : WeightScheme
        The weight scheme, whose ``h'_M`` sets each prompt's push.
    lr : float
        The learning rate.

    Returns
    -------
    ndarray, shape (N,)
        The success probabilities after the step, clipped to ``[P_CLIP, 1 - P_CLIP]`` (the KL term
        is not included).

    Examples
    --------
    >>> from rlvrlens.objectives import reinforce
    >>> coupled_step(np.array([0.2, 0.6]), np.array([[1.0, 0.5], [0.5, 1.0]]), reinforce(4), 0.1)
    array([0.275, 0.675])
    """
    return np.clip(p + predicted_change(K, scheme, p, lr), P_CLIP, 1 - P_CLIP)


def step_size_for(K: np.ndarray, scheme: WeightScheme, p: np.ndarray, target: float,
                  kl: np.ndarray | None = None) -> float:
    """The SGD learning rate whose predicted largest ``|Delta p|`` of one step is ``target``.

    With ``kl`` (``beta sum_y C[x, y]``) the largest of the reward term and the KL term separately
    (near their balance the sum is small and the terms' second-order parts are not).

    Parameters
    ----------
    K : ndarray, shape (N, N)
        The kernel ``K = G P G^T``.
    scheme : WeightScheme
        The weight scheme.
    p : ndarray, shape (N,)
        The prompts' success probabilities.
    target : float
        The wanted largest ``|Delta p|`` of one step.
    kl : ndarray, shape (N,), optional
        ``beta sum_y C[x, y]`` per prompt (the KL term of one step at ``lr = 1`` is ``kl / N``).

    Returns
    -------
    float
        ``target`` divided by the largest predicted ``|Delta p|`` (or KL term) at ``lr = 1``.

    Examples
    --------
    >>> from rlvrlens.objectives import reinforce
    >>> round(step_size_for(np.array([[1.0, 0.5], [0.5, 1.0]]), reinforce(4), np.array([0.2, 0.6]), 0.01), 9)
    0.013333333
    """
    scale = np.abs(predicted_change(K, scheme, p, 1.0))
    if kl is not None:
        scale = np.maximum(scale, np.abs(kl) / len(p))
    return target / float(scale.max())


def uncoupled_flow(scheme: WeightScheme, p0: np.ndarray, K: np.ndarray, lr: float, steps: int) -> np.ndarray:
    """Each prompt alone (``beta = 0``): ``dx/dt = (lr/N) m_x p q h'(p)`` in logit ``x``.

    Each prompt has its own metric ``m_x = K_xx / (p_x (1-p_x))^2`` frozen at ``p0``
    (:func:`rlvrlens.dynamics.flow`, treatment ``none``).

    Parameters
    ----------
    scheme : WeightScheme
        The weight scheme.
    p0 : ndarray, shape (N,)
        Starting success probabilities, in ``(0, 1)``.
    K : ndarray, shape (N, N)
        The kernel; only its diagonal is used.
    lr : float
        The learning rate.
    steps : int
        Number of steps.

    Returns
    -------
    ndarray, shape (steps + 1, N)
        Each prompt's success probability after ``0..steps`` steps.
    """
    N = len(p0)
    metric = np.diag(K) / (p0 * (1 - p0)) ** 2
    return np.stack([flow(success_map(scheme, 1.0, p0[x]), steps, kl="none", rate=lr * metric[x] / N).p
                     for x in range(N)], axis=1)
