"""The mean-field ODE of small-step gradient training (THEORY.md §4): trajectories, not map iterates.

A trainer taking steps ``theta <- theta + lr * (update)`` whose expected update is
``(1/N) sum_x [h'_M(p_x) grad p_x - beta grad(penalty_x)]`` follows, for small ``lr``, the ODE
``d theta / dt = (lr/N) [...]`` with ``t`` counted in steps.

* :func:`softmax_flow` integrates it exactly for a softmax over answers (the tabular policy):
  ``d theta_j/dt = r [g(p) pi_j (1[j in C] - p) - beta d(penalty)/d theta_j]`` with
  ``d KL(pi||pi_ref)/d theta_j = pi_j (log(pi_j/pi_ref_j) - KL)`` (``pi||ref``),
  ``d KL(pi_ref||pi)/d theta_j = pi_j - pi_ref_j`` (``ref||pi``), 0 (``none``), and for KL in the reward
  (affine schemes) ``alpha (grad p - beta grad KL(pi||pi_ref))``.
* :func:`flow` integrates the one-dimensional reduction ``dx/dt = rate u(x)``, ``x = logit p``, of
  :mod:`rlvrlens.dynamics.stationary` for any :class:`SuccessMap` (Mroueh's population map
  included). For a softmax with ``k`` right and ``n`` wrong answers, uniform within each class under
  ``pi_ref``, it is exact with ``rate = lr (1/k + 1/n) / N``: then ``|grad p|^2 = p^2 (1-p)^2 (1/k +
  1/n)`` and ``grad p . grad KL = (x - x_ref) |grad p|^2`` (``pi||ref``), ``(p - p_ref) p (1-p)
  (1/k + 1/n)`` (``ref||pi``). The treatments are those of :mod:`rlvrlens.core.kl`.
"""

from __future__ import annotations

import numpy as np
from scipy import integrate, special

from rlvrlens.core.checks import check_float, check_int
from rlvrlens.dynamics.iteration import Trajectory
from rlvrlens.dynamics.maps import SuccessMap
from rlvrlens.core.kl import LOSS_TREATMENTS, PI_REF, REF_PI, check_beta, check_treatment
from rlvrlens.dynamics.stationary import affine_coefficients, check_flow_map, velocity
from rlvrlens.objectives import WeightScheme, dh

#: Tolerances of the ODE solver (RK45 / DOP853).
_RTOL, _ATOL = 1e-10, 1e-12


def _times(steps: object) -> np.ndarray:
    if np.ndim(steps) == 0:
        n = check_int("steps", steps, minimum=0)
        return np.arange(n + 1, dtype=float)
    t = np.asarray(steps, dtype=float)
    if t.ndim != 1 or t.size == 0 or t[0] < 0 or np.any(np.diff(t) < 0) or not np.all(np.isfinite(t)):
        raise ValueError("steps must be an int >= 0 or a non-decreasing 1-D array of finite times >= 0")
    return t


def flow(success: SuccessMap, steps: object, *, kl: str = "pi||ref", rate: float = 1.0,
         p0: object = None) -> Trajectory:
    """Integrate ``dx/dt = rate * u(x)`` (``x = logit p``) from ``p0`` (default ``p_ref``).

    Parameters
    ----------
    success : SuccessMap
        Supplies ``g``, ``beta`` and ``p_ref`` (arrays broadcast); ``alpha`` must be 1.
    steps : int or array_like
        ``n`` (times ``0, 1, ..., n``) or the times themselves, in training steps.
    kl : {"pi||ref", "ref||pi", "none"}
    rate : float
        ``lr * metric / N`` (module docstring): 2 lr for one prompt with one right and one wrong answer.
    p0 : float or array_like, optional

    Returns
    -------
    Trajectory
        ``p`` and ``logit`` of shape ``(len(times),) + broadcast shape``.

    Examples
    --------
    >>> from rlvrlens.dynamics import dr_grpo_success_map
    >>> F = dr_grpo_success_map(beta=1.0, p_ref=0.5)   # g = 1: target logit 1
    >>> traj = flow(F, 2000, rate=0.05)
    >>> round(float(traj.logit[-1]), 6)
    1.0
    """
    success = check_flow_map(success)
    check_treatment(kl, LOSS_TREATMENTS)
    rate = check_float("rate", rate, low=0.0, low_open=True)
    t = _times(steps)
    start = success.p_ref if p0 is None else np.asarray(p0, dtype=float)
    shape = np.broadcast_shapes(np.shape(start), success.beta.shape, success.p_ref.shape)
    x0 = special.logit(np.broadcast_to(start, shape).astype(float))
    if not np.all(np.isfinite(x0)):
        raise ValueError("p0 (default p_ref) must be in the open interval (0, 1)")
    beta = np.broadcast_to(success.beta, shape).ravel()
    p_ref = np.broadcast_to(success.p_ref, shape).ravel()
    flat = success.with_params(beta=beta, p_ref=p_ref)

    def rhs(_t, x):
        return rate * velocity(flat, x, kl)

    sol = integrate.solve_ivp(rhs, (0.0, float(t[-1])), x0.ravel(), t_eval=t, method="DOP853",
                              rtol=_RTOL, atol=_ATOL)
    if not sol.success:
        raise RuntimeError(f"the ODE solver failed: {sol.message}")
    x = sol.y.T.reshape((t.size,) + shape)
    return Trajectory(special.expit(x), x)


def _softmax_field(theta: np.ndarray, theta_ref: np.ndarray, right: np.ndarray, scheme: WeightScheme,
                   beta: float, kl: str, alpha: float) -> np.ndarray:
    """``d theta/dt`` per unit rate for logits ``(P, A)``."""
    log_pi = theta - special.logsumexp(theta, axis=-1, keepdims=True)
    log_ref = theta_ref - special.logsumexp(theta_ref, axis=-1, keepdims=True)
    pi, ref = np.exp(log_pi), np.exp(log_ref)
    p = np.clip((pi * right).sum(-1, keepdims=True), 0.0, 1.0)
    grad_p = pi * (right - p)
    if kl == "reward":
        lr = log_pi - log_ref
        grad_kl = pi * (lr - (pi * lr).sum(-1, keepdims=True))
        return alpha * (grad_p - beta * grad_kl)
    field = dh(scheme, p) * grad_p
    if kl == PI_REF:
        lr = log_pi - log_ref
        field = field - beta * pi * (lr - (pi * lr).sum(-1, keepdims=True))
    elif kl == REF_PI:
        field = field - beta * (pi - ref)
    return field


def softmax_flow(logits_ref: object, right: object, scheme: WeightScheme, beta: float, steps: object, *,
                 kl: str = "pi||ref", rate: float = 1.0, logits0: object = None) -> np.ndarray:
    """Success probabilities along the exact mean-field flow of a softmax-over-answers policy.

    Parameters
    ----------
    logits_ref : array_like, shape (P, A)
        Reference logits per prompt (the start, unless ``logits0``).
    right : array_like of bool, shape (P, A)
        Which answers are right for each prompt.
    scheme : WeightScheme
    beta : float
        KL coefficient (``>= 0``; 0 removes the penalty whatever ``kl``).
    steps : int or array_like
        As in :func:`flow`.
    kl : {"pi||ref", "ref||pi", "none", "reward"}
    rate : float
        ``lr / N``: SGD with learning rate ``lr`` on a loss averaged over ``N`` prompts.
    logits0 : array_like, optional

    Returns
    -------
    ndarray, shape (len(times), P)

    Examples
    --------
    >>> from rlvrlens.objectives import get_scheme
    >>> ref = np.log([[0.3, 0.7]])                     # one right, one wrong answer
    >>> p = softmax_flow(ref, [[True, False]], get_scheme("rloo", 4), 1.0, 4000, rate=0.05)
    >>> round(float(special.logit(p[-1, 0]) - special.logit(0.3)), 6)   # h' = 1, beta = 1
    1.0
    """
    check_treatment(kl)
    beta = check_beta(beta, zero=True)
    rate = check_float("rate", rate, low=0.0, low_open=True)
    theta_ref = np.asarray(logits_ref, dtype=float)
    right = np.asarray(right, dtype=bool)
    if theta_ref.ndim != 2 or right.shape != theta_ref.shape:
        raise ValueError(f"logits_ref and right must have the same shape (P, A); got {theta_ref.shape} and "
                         f"{right.shape}")
    if not np.all(np.isfinite(theta_ref)):
        raise ValueError("logits_ref must be finite")
    theta0 = theta_ref if logits0 is None else np.asarray(logits0, dtype=float)
    if theta0.shape != theta_ref.shape:
        raise ValueError(f"logits0 must have shape {theta_ref.shape}, got {theta0.shape}")
    alpha = affine_coefficients(scheme)[0] if kl == "reward" else 1.0
    t = _times(steps)
    shape = theta_ref.shape

    def rhs(_t, y):
        return rate * _softmax_field(y.reshape(shape), theta_ref, right, scheme, beta, kl, alpha).ravel()

    sol = integrate.solve_ivp(rhs, (0.0, float(t[-1])), theta0.ravel(), t_eval=t, method="DOP853",
                              rtol=_RTOL, atol=_ATOL)
    if not sol.success:
        raise RuntimeError(f"the ODE solver failed: {sol.message}")
    theta = sol.y.T.reshape((t.size,) + shape)
    pi = np.exp(theta - special.logsumexp(theta, axis=-1, keepdims=True))
    return (pi * right).sum(-1)
