"""Per-prompt success probability p(C|x): exact by teacher forcing, or estimated by sampling."""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
import torch
from scipy import stats

from rlvrlens._validation import check_float, check_int
from rlvrlens.training.tasks import Task


def exact_success(policy, task: Task, indices: Sequence[int] | None = None) -> torch.Tensor:
    """``p(C|x) = sum_{y in C(x)} pi(y|x)`` for each prompt, by teacher forcing; differentiable.

    Needs an enumerable accepted set (exact-match or one-of tasks: each accepted answer followed
    by EOS). This is the
    probability under the policy itself (temperature 1, no top-p), the ``p`` of the theory.
    """
    if not task.enumerable:
        raise ValueError(f"task {task.name!r} (verifier {task.verifier!r}) has no enumerable accepted set; "
                         "use estimate_success")
    idx = list(range(len(task))) if indices is None else list(indices)
    prompts, completions, owner = [], [], []
    for k, i in enumerate(idx):
        for c in task.accepted(i):
            prompts.append(task.prompts[i]), completions.append(c), owner.append(k)
    rollout = policy.encode(prompts, completions)
    logp, _ = policy.token_logprobs(rollout)
    probs = torch.exp(logp.sum(-1))
    # the result follows the policy's device and dtype (probs live there)
    return torch.zeros(len(idx), dtype=probs.dtype, device=probs.device).index_add(
        0, torch.tensor(owner, device=probs.device), probs)


class SuccessEstimate(NamedTuple):
    """Per-prompt estimate ``p`` with a Wilson ``confidence`` interval ``[low, high]`` from ``K`` samples."""

    p: np.ndarray
    low: np.ndarray
    high: np.ndarray
    K: int


def wilson_interval(successes: np.ndarray, K: int, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial proportion (Wilson 1927)."""
    z = stats.norm.ppf(0.5 + confidence / 2)
    phat = np.asarray(successes, dtype=float) / K
    centre = (phat + z**2 / (2 * K)) / (1 + z**2 / K)
    half = z / (1 + z**2 / K) * np.sqrt(phat * (1 - phat) / K + z**2 / (4 * K**2))
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


@torch.no_grad()
def estimate_success(policy, task: Task, K: int = 64, *, generator: torch.Generator | None = None,
                     indices: Sequence[int] | None = None, confidence: float = 0.95,
                     max_new_tokens: int | None = None) -> SuccessEstimate:
    """Estimate ``p(C|x)`` from ``K`` completions per prompt sampled at temperature 1."""
    K = check_int("K", K)
    confidence = check_float("confidence", confidence, low=0, high=1, low_open=True, high_open=True)
    idx = list(range(len(task))) if indices is None else list(indices)
    prompts = [task.prompts[i] for i in idx]
    rollout = policy.sample(prompts, K, generator=generator, max_new_tokens=max_new_tokens or task.max_new_tokens)
    wins = task.rewards(rollout.prompts, rollout.texts).reshape(len(idx), K).sum(-1)
    low, high = wilson_interval(wins, K, confidence)
    return SuccessEstimate(wins / K, low, high, K)


def success_probabilities(policy, task: Task, *, K: int = 64, generator: torch.Generator | None = None,
                          indices: Sequence[int] | None = None) -> dict:
    """Exact per-prompt success where the task allows it, else a sampled estimate: a JSON-ready dict."""
    if task.enumerable:
        with torch.no_grad():
            p = exact_success(policy, task, indices).double().cpu().numpy()
        return {"method": "exact", "p": p.tolist()}
    est = estimate_success(policy, task, K, generator=generator, indices=indices)
    return {"method": f"estimate(K={K})", "p": est.p.tolist(), "low": est.low.tolist(), "high": est.high.tolist()}
