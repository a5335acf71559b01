"""Per-prompt success probability p(C|x): exact by teacher forcing, or estimated by sampling."""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
import torch

from rlvrlens.core.budget import format_bytes
from rlvrlens.core.checks import check_float, check_int
from rlvrlens.core.intervals import wilson_interval
from rlvrlens.training.enumeration import NotEnumerable, check_task_encodable, exact_success_tokens
from rlvrlens.training.runtime import device_memory
from rlvrlens.training.task import Task


def exact_success(policy, task: Task, indices: Sequence[int] | None = None, *,
                  max_new_tokens: int | None = None) -> torch.Tensor:
    """``p(C|x) = sum_{y in C(x)} pi(y|x)`` for each prompt, by teacher forcing; differentiable.

    Needs an enumerable accepted set (exact-match or one-of tasks: each accepted answer followed
    by EOS). For a :class:`~rlvrlens.training.policy.CausalLMPolicy` every token sequence that decodes
    to an accepted answer is counted, within ``max_new_tokens`` (default: the task's), as the sampler
    would produce it (:mod:`rlvrlens.training.enumeration`). This is the probability under the policy
    itself (temperature 1, no top-p), the ``p`` of the theory.

    Parameters
    ----------
    policy : Policy
        The policy (a causal LM with a tokenizer, or a tabular/toy policy).
    task : Task
        A task with an enumerable accepted set.
    indices : sequence of int, optional
        The prompts to score; default all.
    max_new_tokens : int, optional
        Longest completion counted (causal LMs), ``>= 1``; default the task's.

    Returns
    -------
    torch.Tensor, shape (len(indices),)
        Success probabilities, on the policy's device and dtype, differentiable.

    Raises
    ------
    ValueError
        If the task has no enumerable accepted set (use :func:`estimate_success`).
    NotEnumerable
        (:class:`~rlvrlens.training.enumeration.NotEnumerable`) when the accepted answers have too
        many token sequences.
    """
    if not task.enumerable:
        raise ValueError(f"task {task.name!r} (verifier {task.verifier!r}) has no enumerable accepted set; "
                         "use estimate_success")
    idx = list(range(len(task))) if indices is None else list(indices)
    if hasattr(policy, "tokenizer"):
        limit = check_int("max_new_tokens", max_new_tokens or task.max_new_tokens)
        return exact_success_tokens(policy, [task.prompts[i] for i in idx], [task.accepted(i) for i in idx], limit)
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


@torch.no_grad()
def estimate_success(policy, task: Task, K: int = 64, *, generator: torch.Generator | None = None,
                     indices: Sequence[int] | None = None, confidence: float = 0.95,
                     max_new_tokens: int | None = None) -> SuccessEstimate:
    """Estimate ``p(C|x)`` from ``K`` completions per prompt sampled at temperature 1.

    The ``len(indices) * K`` completions are sampled together; a ``K`` whose batch needs more memory
    than the policy's device has (:func:`sampling_memory`) is refused before sampling.

    Parameters
    ----------
    policy : Policy
        The policy sampled from.
    task : Task
        The task whose verifier scores the completions.
    K : int, default 64
        Completions per prompt, ``>= 1``.
    generator : torch.Generator, optional
        Source of the samples.
    indices : sequence of int, optional
        The prompts to estimate; default all.
    confidence : float, default 0.95
        Level of the Wilson interval, in ``(0, 1)``.
    max_new_tokens : int, optional
        Completion length; default the task's.

    Returns
    -------
    SuccessEstimate
        ``p`` (wins / K), Wilson bounds ``low`` and ``high``, and ``K``.

    Raises
    ------
    ValueError
        If ``K`` or ``confidence`` is out of range, or the sampling batch would not fit in memory.
    """
    K = check_int("K", K)
    confidence = check_float("confidence", confidence, low=0, high=1, low_open=True, high_open=True)
    idx = list(range(len(task))) if indices is None else list(indices)
    prompts = [task.prompts[i] for i in idx]
    tokens = max_new_tokens or task.max_new_tokens
    need, have = sampling_memory(len(idx) * K, tokens, *policy.footprint()), device_memory(_device(policy))
    if need > have:
        raise ValueError(f"K = {K} is too large: sampling {len(idx)} prompts x K completions of {tokens} tokens needs "
                         f"at least {format_bytes(need)} of memory, more than the {format_bytes(have)} there are; lower K")
    rollout = policy.sample(prompts, K, generator=generator, max_new_tokens=tokens)
    wins = task.rewards(rollout.prompts, rollout.texts).reshape(len(idx), K).sum(-1)
    low, high = wilson_interval(wins, K, confidence)
    return SuccessEstimate(wins / K, low, high, K)


def sampling_memory(rows: int, tokens: int, vocab: int, width: int, layers: int) -> int:
    """A lower bound (bytes) on sampling ``rows`` completions of ``tokens`` tokens together without
    gradients: one step's float32 logits kept three times (``3 V`` per row), the key/value cache
    (``2 T L H`` per row) and the tokens (int64).

    >>> f"{sampling_memory(10**9, 8, vocab=65, width=64, layers=2) / 2**40:.2f} TB"  # --K 10**9, one prompt
    '8.22 TB'
    """
    return rows * (4 * (3 * vocab + 2 * tokens * layers * width) + 8 * tokens)


def _device(policy) -> torch.device:
    for q in policy.parameters():
        return q.device
    return torch.device("cpu")


def success_probabilities(policy, task: Task, *, K: int = 64, generator: torch.Generator | None = None,
                          indices: Sequence[int] | None = None, max_new_tokens: int | None = None) -> dict:
    """Exact per-prompt success where the task allows it, else a sampled estimate: a JSON-ready dict.

    ``"method"`` says which: ``"exact"``, or ``"estimate(K=...)"`` with Wilson bounds ``low``/``high``
    (and ``"why"`` when the task's accepted set is finite but has too many token sequences).

    Parameters
    ----------
    policy : Policy
        The policy.
    task : Task
        The task.
    K : int, default 64
        Completions per prompt for a sampled estimate.
    generator : torch.Generator, optional
        Source of the samples.
    indices : sequence of int, optional
        The prompts; default all.
    max_new_tokens : int, optional
        Completion length; default the task's.

    Returns
    -------
    dict
        ``{"method", "p"}`` plus ``"low"``, ``"high"`` (and ``"why"``) for an estimate.

    Raises
    ------
    ValueError
        For a task whose prompts or answers the tokenizer cannot encode (naming the characters), or
        as :func:`estimate_success` does.
    """
    check_task_encodable(policy, task)
    why = None
    if task.enumerable:
        try:
            with torch.no_grad():
                p = exact_success(policy, task, indices, max_new_tokens=max_new_tokens).double().cpu().numpy()
            return {"method": "exact", "p": p.tolist()}
        except NotEnumerable as exc:
            why = str(exc)
    est = estimate_success(policy, task, K, generator=generator, indices=indices, max_new_tokens=max_new_tokens)
    out = {"method": f"estimate(K={K})", "p": est.p.tolist(), "low": est.low.tolist(), "high": est.high.tolist()}
    if why:
        out["why"] = why
    return out
