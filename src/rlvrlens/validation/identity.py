"""The expected-update identity and what it implies, measured on real policies.

Davis & Recht (2025), Theorem 1: ``E[(1/M) sum_i Z_i grad log pi(y_i|x)] = h'_M(p) grad p``.

1. :func:`expected_step` (tiny transformer): the Monte-Carlo mean of the sampled update against
   ``h'_M(p) grad p`` with the CLT error scale, and the statistic projected on ``grad p`` with its
   power (the smallest relative error in ``h'`` it detects);
2. :func:`relative_speed`: one small parameter step per scheme from the same parameters; the
   measured change of ``p`` relative to REINFORCE's against ``h'_A(p) / h'_REINFORCE(p)``;
3. :func:`projected_identity` (a pretrained model): the identity projected on ``u = grad p /
   |grad p|`` with the score vectors never stored (:func:`rlvrlens.forecast.directional_scores`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from rlvrlens.forecast.probes import directional_scores, flat_grad, unit_grad_p
from rlvrlens.objectives import WeightScheme, dh
from rlvrlens.training.policy import trainable_parameters
from rlvrlens.training.success import exact_success
from rlvrlens.training.task import Task
from rlvrlens.validation.setups import LMSetup
from rlvrlens.validation.verdicts import IDENTITY_Z


@dataclass
class PromptSample:
    """Groups sampled for one prompt, with the score vectors of its distinct completions.

    ``J[u]`` is ``grad log pi(y_u|x)`` for distinct completion ``u``; ``which[g, i]`` says which one
    answer ``i`` of group ``g`` is. Any scheme's per-group update is then ``C_g @ J`` with
    ``C_g[u] = (1/M) sum_{i: which[g,i]=u} Z_{g,i}``: one backward pass per distinct completion
    serves every scheme and every number of groups.
    """

    prompt: int
    p: float
    grad_p: np.ndarray
    rewards: np.ndarray
    which: np.ndarray
    J: np.ndarray


def completion_keys(rollout) -> list[tuple]:
    """Each row's completion as a key: its token ids (the stop token included) and whether it ended."""
    return [tuple(ids[m.bool()].tolist()) + (bool(f),) for ids, m, f in
            zip(rollout.completion_ids.cpu(), rollout.mask.cpu(), rollout.finished.cpu())]


def distinct_completions(rollout) -> tuple[np.ndarray, list[int]]:
    """``(which, first)``: the index of each row's distinct completion (token ids and whether it
    ended) and, per distinct completion, the first row holding it."""
    keys = completion_keys(rollout)
    index: dict[tuple, int] = {}
    which = np.array([index.setdefault(k, len(index)) for k in keys])
    first = {u: row for row, u in reversed(list(enumerate(which)))}
    return which, [first[u] for u in range(len(index))]


def sample_prompt(setup: LMSetup, i: int, M: int, n_groups: int, generator: torch.Generator) -> PromptSample:
    policy, task = setup.policy, setup.task
    params = trainable_parameters(policy)
    p = exact_success(policy, task, [i])[0]
    grad_p = flat_grad(p, params)
    rollout = policy.sample([task.prompts[i]] * n_groups, M, generator=generator,
                            max_new_tokens=task.max_new_tokens)
    rewards = task.rewards(rollout.prompts, rollout.texts).reshape(n_groups, M)
    which, first = distinct_completions(rollout)
    J = np.stack([flat_grad(policy.token_logprobs(rollout.select([row]))[0].sum(), params) for row in first])
    return PromptSample(i, float(p.detach()), grad_p, rewards, which.reshape(n_groups, M), J)


def group_coefficients(rewards: np.ndarray, which: np.ndarray, n_distinct: int, scheme: WeightScheme) -> np.ndarray:
    """``C[g, u] = (1/M) sum_{i: which[g,i]=u} Z_{g,i}``: group ``g``'s update is ``C[g] @ scores``."""
    G, M = rewards.shape
    C = np.zeros((G, n_distinct))
    np.add.at(C, (np.repeat(np.arange(G), M), which.ravel()), scheme.weights(rewards).ravel() / M)
    return C


def sample_coefficients(sample: PromptSample, scheme: WeightScheme) -> np.ndarray:
    return group_coefficients(sample.rewards, sample.which, sample.J.shape[0], scheme)


def projected_test(proj: np.ndarray, target: float) -> dict[str, float]:
    """The identity statistic: per-group projections ``proj`` (``s_g = <update_g, u>``) against their
    predicted mean ``target = h'_M(p) <grad p, u>``. ``z = (mean - target) / SE``; the test rejects a
    relative error ``delta`` in ``h'`` when ``|delta| target > IDENTITY_Z SE``, so
    ``detectable_rel_error = IDENTITY_Z SE / |target|`` is the smallest one it detects."""
    se = float(proj.std(ddof=1) / np.sqrt(proj.size))
    return {"z_projected": float((proj.mean() - target) / se), "detectable_rel_error": float(IDENTITY_Z * se / abs(target)),
            "ratio": float(proj.mean() / target), "ratio_se": float(se / abs(target))}


def expected_step(samples: Sequence[PromptSample], schemes: dict[str, WeightScheme],
                  groups: Sequence[int]) -> list[dict[str, Any]]:
    """One record per (prompt, scheme, number of groups ``G``): the Monte-Carlo mean update against
    ``h'_M(p) grad p``: relative error, cosine, and the CLT scale of the relative error
    ``sqrt(tr Cov(update) / G) / |target|`` (an error within ~3 of it is what sampling explains).

    The test with power is the statistic projected on ``u = grad p / |grad p|`` (as in
    ``tests/training/test_theory.py``): per group ``s_g = <update_g, u>``, ``z = (mean s -
    h'_M(p) |grad p|) / SE(s)``; it rejects a relative error ``delta`` in ``h'`` when
    ``|delta| h'|grad p| > IDENTITY_Z SE``, so ``detectable_rel_error = IDENTITY_Z SE / (h' |grad p|)``
    is the smallest error in ``h'`` this number of groups would detect."""
    records = []
    for sample in samples:
        gram = sample.J @ sample.J.T
        for name, scheme in schemes.items():
            C = sample_coefficients(sample, scheme)
            target = float(dh(scheme, sample.p)) * sample.grad_p
            tnorm = np.linalg.norm(target)
            for G in groups:
                Cg = C[:G]
                mean = Cg.mean(0) @ sample.J
                cov = np.atleast_2d(np.cov(Cg, rowvar=False))
                clt = float(np.sqrt(max(np.sum(cov * gram), 0.0) / G) / tnorm)
                proj = Cg @ (sample.J @ (target / tnorm))  # s_g
                records.append({
                    "experiment": "expected_step", "prompt": sample.prompt, "p": sample.p, "scheme": name,
                    "groups": int(G), "dh": float(dh(scheme, sample.p)),
                    "rel_error": float(np.linalg.norm(mean - target) / tnorm),
                    "cosine": float(mean @ target / (np.linalg.norm(mean) * tnorm)),
                    "clt_rel_error": clt,
                    **projected_test(proj, tnorm),
                })
    return records


def relative_speed(setup: LMSetup, samples: Sequence[PromptSample], schemes: dict[str, WeightScheme],
                   *, delta: float = 2e-3, baseline: str = "reinforce") -> list[dict[str, Any]]:
    """From the same parameters, step ``theta + eta * update_A`` (each scheme's Monte-Carlo update
    from the same sampled groups, ``eta = delta / |grad p|^2``) and measure ``p`` exactly after it.
    The change relative to the baseline's is predicted to be ``h'_A(p) / h'_baseline(p)`` to first order."""
    params = trainable_parameters(setup.policy)
    theta = torch.nn.utils.parameters_to_vector(params).detach().clone()
    records = []
    for sample in samples:
        eta = delta / float(sample.grad_p @ sample.grad_p)
        dp = {}
        for name, scheme in schemes.items():
            update = sample_coefficients(sample, scheme).mean(0) @ sample.J
            with torch.no_grad():
                torch.nn.utils.vector_to_parameters(theta + eta * torch.as_tensor(update, dtype=theta.dtype,
                                                                                  device=theta.device), params)
                dp[name] = float(exact_success(setup.policy, setup.task, [sample.prompt])[0]) - sample.p
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(theta, params)
        base_dh = float(dh(schemes[baseline], sample.p))
        for name, scheme in schemes.items():
            records.append({
                "experiment": "relative_speed", "prompt": sample.prompt, "p": sample.p, "scheme": name,
                "baseline": baseline, "delta_p": dp[name], "delta_p_baseline": dp[baseline],
                "measured_ratio": dp[name] / dp[baseline],
                "predicted_ratio": float(dh(scheme, sample.p)) / base_dh,
            })
    return records


def projected_identity(policy, task: Task, prompts: Sequence[int], schemes: dict[str, WeightScheme], M: int,
                       groups: Sequence[int], generator: torch.Generator, *, eps: float = 1e-3,
                       check: int = 3) -> list[dict[str, Any]]:
    """The expected-update identity projected on ``u = grad p / |grad p|``, per prompt, scheme and number
    of groups ``G`` (the first ``G`` of ``max(groups)`` sampled groups of ``M``).

    Per group ``s_g = (1/M) sum_i Z_i <grad log pi(y_i), u>``, predicted mean ``h'_M(p) |grad p|``;
    :func:`projected_test` gives ``z``, the measured/predicted ratio
    and the smallest relative error in ``h'`` detected. REINFORCE (``Z = R``) puts no weight on wrong
    answers, so its statistic is the sharpest check that the sampler, the verifier and the exact
    ``p`` agree; schemes with weight on wrong answers carry their large score variance.
    ``fd_rel_error``: the largest relative difference between the central differences and autograd
    on ``check`` distinct completions.
    """
    params = trainable_parameters(policy)
    records = []
    for i in prompts:
        p, norm, u = unit_grad_p(policy, task, i)
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
