"""Issue 14's predictions on a pretrained model: SmolLM2-135M-Instruct on reasoning-gym (14.5).

The task (:data:`rlvrlens.training.showcase.SMOLLM2_TASK`: one-digit additions and subtractions, the
expression prefilled) has an enumerable accepted set, so each prompt's success ``p`` and its
gradient are exact (every tokenisation counted, :mod:`rlvrlens.training.enumeration`). Every
parameter of the model is trained, as the trainer trains it.

1. :func:`projected_identity`: the expected-update identity ``E[(1/M) sum_i Z_i grad log pi(y_i)] =
   h'_M(p) grad p`` (Davis & Recht 2025) projected on ``u = grad p / |grad p|``, with the smallest
   relative error in ``h'`` it detects. The 135M-dimensional score vectors are never stored: each
   distinct completion's ``<grad log pi(y), u>`` is a central difference of its log-probability along
   ``u`` (:func:`directional_scores`, two batched forward passes), checked against autograd on a few
   completions in every run.
2. :func:`rlvrlens.validation.coupling.one_step`: one SGD step of the trainer over ``n_prompts``
   prompts against the coupled kernel prediction ``(lr/N) K h'(p)``.
3. :func:`rlvrlens.validation.coupling.coupled_trajectories`: a short SGD run against the coupled
   model, ``K`` diagonal and each prompt's uncoupled flow.
4. :func:`rlvrlens.validation.lm_fixed_points.sampled_fixed_points`: Adam with a sampled KL
   estimator applied to the sequence's log-ratio (``kl_level="sequence"``, so that k2 is the
   forward and k3 the reverse sequence KL for multi-token answers), each prompt's stationary p
   against its flow target; a beta sweep (the gpu size).

The runner and the report are :func:`rlvrlens.validation.report.run_real_model_validation`.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from rlvrlens.objectives import WeightScheme, dh
from rlvrlens.training.policy import CausalLMPolicy
from rlvrlens.training.success import exact_success
from rlvrlens.training.tasks import Task, get_task
from rlvrlens.validation.experiments import (
    RealModelSize, distinct_completions, group_coefficients, projected_test, spread_prompts, trainable_parameters,
)


@torch.no_grad()
def directional_scores(policy, rollout, direction: Sequence[torch.Tensor], *, eps: float = 1e-3,
                       chunk: int = 32) -> np.ndarray:
    """``<grad_theta log pi(y_r | x_r), direction>`` for every row ``r`` of ``rollout``.

    A central difference of each sequence's log-probability (the sum over its completion tokens)
    along ``direction`` (one tensor per trainable parameter, unit norm for ``eps`` to be a step
    length): ``(log pi_{theta + eps d}(y) - log pi_{theta - eps d}(y)) / (2 eps)``. Error
    ``O(eps^2)`` plus float32 rounding of order ``1e-6 |log pi| / eps``; at ``eps = 1e-3`` on
    SmolLM2 it is within 0.2% of autograd (the runs record the check). Parameters are restored
    exactly (copied back), also when a forward pass fails.

    Examples
    --------
    >>> from rlvrlens.training.policy import CausalLMPolicy
    >>> pol = CausalLMPolicy.from_config(n_layer=1, width=16, n_head=2, seed=0)
    >>> ro = pol.sample(["1+1="], 2, generator=torch.Generator().manual_seed(0), max_new_tokens=2)
    >>> d = [torch.ones_like(q) / sum(q.numel() for q in pol.parameters()) ** 0.5 for q in pol.parameters()]
    >>> directional_scores(pol, ro, d).shape
    (2,)
    """
    params = trainable_parameters(policy)
    if len(direction) != len(params):
        raise ValueError(f"direction has {len(direction)} tensors, the policy {len(params)} trainable parameters")
    theta = [q.detach().clone() for q in params]
    rows = list(range(rollout.completion_ids.shape[0]))

    def logp() -> torch.Tensor:
        return torch.cat([policy.token_logprobs(rollout.select(rows[k:k + chunk]))[0].sum(-1).double()
                          for k in range(0, len(rows), chunk)])

    try:
        for q, v in zip(params, direction):
            q.add_(v.to(q.dtype), alpha=eps)
        plus = logp()
        for q, t, v in zip(params, theta, direction):
            q.copy_(t).add_(v.to(q.dtype), alpha=-eps)
        minus = logp()
    finally:
        for q, t in zip(params, theta):
            q.copy_(t)
    return ((plus - minus) / (2 * eps)).cpu().numpy()


def _unit_grad_p(policy, task: Task, i: int) -> tuple[float, float, list[torch.Tensor]]:
    """``(p, |grad p|, grad p / |grad p|)`` of prompt ``i`` (exact, autograd)."""
    params = trainable_parameters(policy)
    p = exact_success(policy, task, [i])[0]
    grads = [g if g is not None else torch.zeros_like(q)
             for g, q in zip(torch.autograd.grad(p, params, allow_unused=True), params)]
    norm = float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads)))
    if norm == 0:
        raise ValueError(f"prompt {i}: grad p is zero (p = {float(p):.3g}); the identity has nothing to test")
    return float(p.detach()), norm, [g / norm for g in grads]


def projected_identity(policy, task: Task, prompts: Sequence[int], schemes: dict[str, WeightScheme], M: int,
                       groups: Sequence[int], generator: torch.Generator, *, eps: float = 1e-3,
                       check: int = 3) -> list[dict[str, Any]]:
    """The expected-update identity projected on ``u = grad p / |grad p|``, per prompt, scheme and number
    of groups ``G`` (the first ``G`` of ``max(groups)`` sampled groups of ``M``).

    Per group ``s_g = (1/M) sum_i Z_i <grad log pi(y_i), u>``, predicted mean ``h'_M(p) |grad p|``;
    :func:`rlvrlens.validation.experiments.projected_test` gives ``z``, the measured/predicted ratio
    and the smallest relative error in ``h'`` detected. REINFORCE (``Z = R``) puts no weight on wrong
    answers, so its statistic is the sharpest check that the sampler, the verifier and the exact
    ``p`` agree; schemes with weight on wrong answers carry their large score variance.
    ``fd_rel_error``: the largest relative difference between the central differences and autograd
    on ``check`` distinct completions.
    """
    params = trainable_parameters(policy)
    records = []
    for i in prompts:
        p, norm, u = _unit_grad_p(policy, task, i)
        n_groups = max(groups)
        rollout = policy.sample([task.prompts[i]] * n_groups, M, generator=generator,
                                max_new_tokens=task.max_new_tokens)
        rewards = task.rewards(rollout.prompts, rollout.texts).reshape(n_groups, M)
        which, first = distinct_completions(rollout)
        distinct = rollout.select(first)
        d = directional_scores(policy, distinct, u, eps=eps)
        fd_err = 0.0
        for k in range(min(check, len(first))):
            grads = torch.autograd.grad(policy.token_logprobs(distinct.select([k]))[0].sum(), params, allow_unused=True)
            exact = float(sum((g.double() * v.double()).sum() for g, v in zip(grads, u) if g is not None))
            fd_err = max(fd_err, abs(d[k] - exact) / max(abs(exact), 1e-12))
        for name, scheme in schemes.items():
            C = group_coefficients(rewards, which.reshape(n_groups, M), len(first), scheme)
            target = float(dh(scheme, p)) * norm
            for G in groups:
                records.append({"experiment": "expected_step_projected", "prompt": int(i), "p": p, "scheme": name,
                                "groups": int(G), "M": M, "dh": float(dh(scheme, p)), "grad_norm": norm,
                                "distinct": len(first), "fd_eps": eps, "fd_rel_error": float(fd_err),
                                "accuracy": float(rewards[:G].mean()), **projected_test(C[:G] @ d, target)})
    return records


def real_model_setup(size: RealModelSize) -> tuple[CausalLMPolicy, Task, np.ndarray, list[int]]:
    """The size's pretrained model and task; ``(policy, task, p of the pool, chosen prompts)`` with
    ``n_prompts`` prompts spread over ``(0.02, 0.98)``."""
    policy = CausalLMPolicy.from_pretrained(size.model)
    if size.device != "cpu":
        policy.model.to(size.device)
    task = get_task(size.task, n=size.pool, seed=size.seed)
    with torch.no_grad():
        p = exact_success(policy, task).double().cpu().numpy()
    return policy, task, p, spread_prompts(p, size.n_prompts, low=0.02, high=0.98, what=size.model)

