"""The joint stationary point of prompts that share parameters, predicted from a probe of ``pi_ref``.

Per prompt (a tabular policy), the KL-regularised flow stops where ``D'(p) = h'_M(p)/beta`` with
``D'`` the treatment's derivative along the success direction (``x - x_ref`` for KL(pi||pi_ref),
``(p - p_ref)/(p(1-p))`` for KL(pi_ref||pi); :mod:`rlvrlens.dynamics.stationary`). With shared
parameters the summed expected update vanishes instead:

    sum_y h'_M(p_y) grad p_y = beta sum_y grad D_y(theta).

Near ``pi_ref`` both divergences have the Fisher information ``F_y`` of ``pi(.|y)`` as Hessian, so
``grad D_y ~ F_y (theta - theta_ref)`` and, with ``F = sum_y F_y``,

    theta - theta_ref = (1/beta) F^+ sum_y h'_M(p_y) grad p_y,
    Delta x_x = (1/beta) sum_y A_xy h'_M(p_y),   A_xy = <grad p_x, F^+ grad p_y> / (p_x (1-p_x)) at pi_ref.

For a tabular policy ``A`` is the identity (``<grad p, F^+ grad p> = p (1-p)`` for a Bernoulli
success, nothing shared), and keeping ``D'`` exact on the left gives each prompt's own equation:
:func:`joint_stationary_points` solves ``D'_x(p_x) = (1/beta) sum_y A_xy h'_M(p_y)`` for every
prompt at once. Off the diagonal ``A`` couples prompts; on it, ``A_xx < 1`` says that moving
``p_x`` costs KL on the other prompts too. Exact to first order in ``1/beta`` (the linear response at
``pi_ref``); approximate beyond it (``A`` frozen at ``pi_ref``).

:func:`fisher_coupling` computes ``A`` exactly for a task whose completions are at most two
tokens (:class:`rlvrlens.training.tasks.EnumeratedTask`), in the space of completions.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import optimize, special

from rlvrlens.core.checks import check_float
from rlvrlens.core.kl import PI_REF, REF_PI, check_treatment
from rlvrlens.forecast.probes import flat_grad, kernel
from rlvrlens.objectives import WeightScheme, dh
from rlvrlens.training.policy import trainable_parameters
from rlvrlens.training.runtime import device_memory
from rlvrlens.training.task import Task
from rlvrlens.training.tasks import EnumeratedTask


def _all_logprobs(enum: EnumeratedTask, policy) -> list[torch.Tensor]:
    """Per prompt, ``log pi`` of every completion of the two-token space (EOS first), differentiable."""
    first, second = enum.log_probs(policy)
    go_on = torch.ones(enum.V, dtype=torch.bool)
    go_on[[enum.eos, enum.pad]] = False
    valid = torch.ones(enum.V, dtype=torch.bool)
    valid[enum.pad] = False
    return [torch.cat([f[enum.eos:enum.eos + 1], (f[go_on][:, None] + s[go_on][:, valid]).flatten()])
            for f, s in zip(first, second)]


#: The Fisher coupling may use at most this fraction of the machine's memory (checked before allocating).
FISHER_MEMORY_FRACTION = 0.8


def fisher_memory(completions: int, parameters: int) -> int:
    """Bytes :func:`fisher_coupling` holds at its peak: the scores (float32, completions x parameters),
    their Gram matrix and its eigenvectors (float64, completions squared each).

    >>> fisher_memory(1000, 10**5)
    416000000
    """
    return 4 * completions * parameters + 16 * completions**2


def fisher_coupling(policy, task: Task, *, rtol: float = 1e-10) -> tuple[np.ndarray, np.ndarray, int]:
    """``(p, A, rank)``: exact success at ``pi_ref = policy``, the coupling ``A`` of the module
    docstring, and the rank of the score vectors.

    Exactly, in the space of completions: with ``S`` the score vectors ``grad log pi(seq)`` of every
    completion of every prompt (rows) and ``W`` their probabilities, ``F = S^T W S`` and ``grad p_x =
    S^T W 1_{C_x}``, so ``<grad p_x, F^+ grad p_y> = c_x^T Pi c_y`` with ``c_x = W^(1/2) 1_{C_x}`` and
    ``Pi`` the projection on the column space of ``W^(1/2) S`` (eigenvectors of its Gram matrix whose
    eigenvalues exceed ``rtol`` times the largest). When the scores span every completion's direction
    but each prompt's ``E[s] = 0`` (rank = completions - prompts: a model that can move each prompt's
    distribution freely), ``A`` is the identity and the joint stationary point is each prompt's own.

    Parameters
    ----------
    policy : CausalLMPolicy
        ``pi_ref``; its trainable parameters are the ones shared.
    task : Task
        Accepted answers of one token each, completions of at most two tokens.
    rtol : float

    Returns
    -------
    p : ndarray (N,)
    A : ndarray (N, N)
    rank : int

    Raises
    ------
    MemoryError
        Before allocating, when :func:`fisher_memory` exceeds :data:`FISHER_MEMORY_FRACTION` of the
        machine's memory (the cpu validation size needs about 18 GB).
    """
    params = trainable_parameters(policy)
    enum = EnumeratedTask(policy, task)
    logps = _all_logprobs(enum, policy)
    weights, accepted = [], []
    for x, lp in enumerate(logps):
        weights.append(lp.detach().exp().double().cpu().numpy())
        accepted.append(_accepted_mask(enum, x))
    w = np.sqrt(np.concatenate(weights))
    n = sum(q.numel() for q in params)
    need, have = fisher_memory(len(w), n), device_memory(torch.device("cpu"))
    if need > FISHER_MEMORY_FRACTION * have:
        raise MemoryError(f"fisher_coupling needs about {need / 2**30:.1f} GiB ({len(w)} completions x {n:,} parameters "
                          f"of scores and their Gram matrix), more than {FISHER_MEMORY_FRACTION:.0%} of this machine's "
                          f"{have / 2**30:.1f} GiB; use fewer prompts, a smaller vocabulary or a smaller model")
    S = np.empty((len(w), n), dtype=np.float32)  # W^(1/2) S, one row at a time
    row = 0
    for lp in logps:
        for k in range(lp.numel()):
            S[row] = w[row] * flat_grad(lp[k], params, retain_graph=True)
            row += 1
    gram = kernel(S)  # (W^(1/2) S)(W^(1/2) S)^T: the column space is that of its eigenvectors
    vals, vecs = np.linalg.eigh(gram)
    keep = vals > rtol * vals.max()
    rank = int(keep.sum())
    sizes = [len(a) for a in accepted]
    C = np.zeros((len(w), len(task)))
    for x, (start, ok) in enumerate(zip(np.cumsum([0] + sizes[:-1]), accepted)):
        C[start:start + len(ok), x] = ok * w[start:start + len(ok)]
    proj = vecs[:, keep].T @ C
    Q = proj.T @ proj
    p = np.array([float((ok * wx**2).sum()) for ok, wx in zip(accepted, np.split(w, np.cumsum(sizes)[:-1]))])
    return p, Q / (p * (1 - p))[:, None], rank


def _accepted_mask(enum: EnumeratedTask, x: int) -> np.ndarray:
    """Which completions of :func:`_all_logprobs`'s order (EOS first, then (y1, y2) by rows) are accepted:
    ``(a, EOS)`` for an accepted one-token answer ``a``."""
    go_on = [v for v in range(enum.V) if v not in (enum.eos, enum.pad)]
    valid = [v for v in range(enum.V) if v != enum.pad]
    mask = np.zeros(1 + len(go_on) * len(valid))
    for a in enum.answers[x]:
        mask[1 + go_on.index(a) * len(valid) + valid.index(enum.eos)] = 1.0
    return mask


def joint_stationary_points(scheme: WeightScheme, beta: float, p_ref: np.ndarray, A: np.ndarray,
                            kl: str = PI_REF) -> np.ndarray:
    """Solve ``D'_x(p_x) = (1/beta) sum_y A_xy h'_M(p_y)`` for every prompt (module docstring).

    Parameters
    ----------
    scheme : WeightScheme
    beta : float
    p_ref : ndarray (N,)
    A : ndarray (N, N)
        :func:`fisher_coupling`'s; the identity gives each prompt's own stationary point.
    kl : {"pi||ref", "ref||pi"}

    Returns
    -------
    ndarray (N,)
        The joint stationary ``p``.

    Examples
    --------
    >>> from rlvrlens.objectives import get_scheme
    >>> from rlvrlens.dynamics import stationary_points
    >>> own = joint_stationary_points(get_scheme("grpo", 4), 1.0, np.array([0.05, 0.3]), np.eye(2))
    >>> [round(float(q), 4) for q in own], round(stationary_points(get_scheme("grpo", 4), 1.0, 0.05)[0].p, 4)
    ([0.1818, 0.6364], 0.1818)
    """
    beta = check_float("beta", beta, low=0.0, low_open=True)
    check_treatment(kl, (PI_REF, REF_PI))
    p_ref = np.asarray(p_ref, dtype=float)
    x_ref = special.logit(p_ref)

    def residual(x: np.ndarray) -> np.ndarray:
        p = special.expit(x)
        lhs = x - x_ref if kl == PI_REF else (p - p_ref) / (p * (1 - p))
        return lhs - (A @ dh(scheme, p)) / beta

    start = x_ref + np.diag(A) * dh(scheme, p_ref) / beta
    sol = optimize.root(residual, start, method="hybr", tol=1e-12)
    if not sol.success or np.abs(residual(sol.x)).max() > 1e-8:
        raise RuntimeError(f"the joint stationary equations did not converge: {sol.message}")
    return special.expit(sol.x)
