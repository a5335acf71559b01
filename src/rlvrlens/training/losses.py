"""The loss pieces of the RL step, each a small function that can be tested on its own.

Shapes: per-token tensors are ``(B, T)`` with a 0/1 ``mask`` of the same shape marking completion
tokens; per-sequence tensors are ``(B,)``. References: THEORY.md §3 (Xiong et al. 2025; CS336;
Schulman's note "Approximating KL divergence", 2020, for k1/k2/k3; Liu et al. 2025 "Dr. GRPO" for the
constant-normaliser aggregation).
"""

from __future__ import annotations

import math

from typing import NamedTuple

import numpy as np
import torch

from rlvrlens.core.checks import check_float
from rlvrlens.objectives import WeightScheme
from rlvrlens.core.kl import KL_LEVELS, SAMPLED_ESTIMATORS
from rlvrlens.training.config import AGGREGATION_ALIASES, AGGREGATIONS


def masked_sum(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """``sum(values * mask)`` over ``dim`` (all elements if ``None``).

    Parameters
    ----------
    values : torch.Tensor
        The values, e.g. a per-token loss ``(B, T)``.
    mask : torch.Tensor
        Broadcastable to ``values``; 1 for the entries counted, 0 for padding.
    dim : int, optional
        Dimension to sum over; ``None`` sums everything.

    Returns
    -------
    torch.Tensor
        The masked sum (a scalar when ``dim`` is ``None``).

    Examples
    --------
    >>> masked_sum(torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([[1.0, 0.0], [1.0, 1.0]]), dim=-1).tolist()
    [1.0, 7.0]
    """
    prod = values * mask
    return prod.sum() if dim is None else prod.sum(dim=dim)


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """``sum(values * mask) / sum(mask)`` over ``dim``; rows with an empty mask give 0, not NaN.

    Parameters
    ----------
    values : torch.Tensor
        The values, e.g. a per-token loss ``(B, T)``.
    mask : torch.Tensor
        Same shape as ``values``; 1 for the entries counted, 0 for padding.
    dim : int, optional
        Dimension to average over; ``None`` averages over all masked entries.

    Returns
    -------
    torch.Tensor
        The masked mean (a scalar when ``dim`` is ``None``).

    Examples
    --------
    >>> v = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    >>> m = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    >>> masked_mean(v, m, dim=-1).tolist()
    [1.5, 0.0]
    """
    count = mask.sum() if dim is None else mask.sum(dim=dim)
    return masked_sum(values, mask, dim) / count.clamp(min=1)


def aggregate(loss: torch.Tensor, mask: torch.Tensor, mode: str = "seq-mean-token-mean",
              constant: float | None = None) -> torch.Tensor:
    """Reduce a per-token loss ``(B, T)`` of one micro-batch to a scalar.

    ``"seq-mean-token-mean"``: mean over each sequence's tokens, then over sequences (GRPO paper;
    TRL's ``grpo``).
    ``"bnpo"`` (old name ``"token-mean"``): mean over all completion tokens of this micro-batch
    (TRL's ``bnpo``).
    ``"dapo"``: sum over the micro-batch's tokens divided by ``constant``, the number of completion
    tokens in the step's whole batch (DAPO's token-level mean, TRL's ``dapo``): with gradient
    accumulation the sum of the micro-batches' values is the token mean of the whole batch.
    ``"seq-sum-constant"``: sum over all tokens divided by ``B * constant`` (Dr. GRPO's
    length-unbiased form, TRL's ``dr_grpo``; the trainer passes ``max_new_tokens``, TRL's
    ``max_completion_length``; without a constant the padded length ``T`` is used).

    Which keeps the policy-gradient identity: with ``loss_t = -Z_i log pi(y_t|...)`` the update of
    ``seq-sum-constant`` is ``(1/(B C)) sum_i Z_i grad log pi(y_i|x)``, a fixed multiple of the
    theory's estimator, so ``E[update] = h'_M(p) grad p / C`` holds whatever the lengths. The other
    modes weigh sequence ``i`` by ``1/|y_i|`` (GRPO) or by ``1/sum_j |y_j|`` (bnpo, dapo), random
    numbers correlated with the completions, which breaks the identity when lengths vary.

    Parameters
    ----------
    loss : torch.Tensor, shape (B, T)
        Per-token loss.
    mask : torch.Tensor, shape (B, T)
        1 on completion tokens, 0 on padding.
    mode : str, default "seq-mean-token-mean"
        One of :data:`~rlvrlens.training.config.AGGREGATIONS`, or an alias (``"token-mean"``,
        ``"grpo"``, ``"dr_grpo"``).
    constant : float, optional
        ``> 0``: required for ``"dapo"``; the length constant ``C`` of ``"seq-sum-constant"``
        (default ``T``); ignored by the other modes.

    Returns
    -------
    torch.Tensor
        The scalar loss.

    Raises
    ------
    ValueError
        For an unknown mode, ``"dapo"`` without ``constant``, or a ``constant <= 0``.

    Examples
    --------
    >>> loss = torch.tensor([[1.0, 1.0, 0.0], [3.0, 0.0, 0.0]])
    >>> mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    >>> [round(aggregate(loss, mask, m, c).item(), 4) for m, c in
    ...  [("seq-mean-token-mean", None), ("bnpo", None), ("dapo", 6.0), ("seq-sum-constant", 4.0)]]
    [2.0, 1.6667, 0.8333, 0.625]
    """
    mode = AGGREGATION_ALIASES.get(mode, mode)
    if mode == "seq-mean-token-mean":
        return masked_mean(loss, mask, dim=-1).mean()
    if mode == "bnpo":
        return masked_mean(loss, mask)
    if mode == "dapo":
        if constant is None:
            raise ValueError("mode 'dapo' needs constant = the number of completion tokens in the whole batch")
        return masked_sum(loss, mask) / check_float("constant", constant, low=0, low_open=True)
    if mode == "seq-sum-constant":
        constant = loss.shape[-1] if constant is None else check_float("constant", constant, low=0, low_open=True)
        return masked_sum(loss, mask) / (loss.shape[0] * constant)
    raise ValueError(f"mode must be one of {AGGREGATIONS} (or {sorted(AGGREGATION_ALIASES)}), got {mode!r}")


class PolicyLoss(NamedTuple):
    """Per-token clipped surrogate loss and where the clip was active (floats in {0, 1})."""

    loss: torch.Tensor
    clipped_low: torch.Tensor
    clipped_high: torch.Tensor


def clipped_policy_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                        eps_low: float = 0.2, eps_high: float = 0.2) -> PolicyLoss:
    """PPO's clipped surrogate with asymmetric clipping (DAPO's clip-higher), per token.

    ``loss_t = -min(rho_t A, clip(rho_t, 1-eps_low, 1+eps_high) A)`` with ``rho_t = exp(logp - old_logp)``;
    ``old_logp`` is not differentiated. ``clipped_low`` marks tokens where ``A < 0`` and
    ``rho < 1 - eps_low`` (the clip is active and the gradient is zero), ``clipped_high`` where
    ``A > 0`` and ``rho > 1 + eps_high``. At ``rho = 1`` (first inner epoch) the gradient is
    ``-A grad logp``: REINFORCE with weights ``A``.

    Parameters
    ----------
    logp : torch.Tensor, shape (B, T)
        Per-token log-probabilities under the current policy.
    old_logp : torch.Tensor, shape (B, T)
        Per-token log-probabilities under the policy that sampled the tokens (detached).
    advantages : torch.Tensor, shape (B,) or (B, T)
        One advantage per sequence, or per token.
    eps_low : float, default 0.2
        Lower clip range, in ``[0, 1]``.
    eps_high : float, default 0.2
        Upper clip range, ``>= 0``.

    Returns
    -------
    PolicyLoss
        The per-token loss ``(B, T)`` and the float masks ``clipped_low``, ``clipped_high`` of the
        same shape.

    Raises
    ------
    ValueError
        If ``eps_low`` or ``eps_high`` is out of range.

    Examples
    --------
    >>> out = clipped_policy_loss(torch.tensor([[0.0]]), torch.tensor([[0.0]]), torch.tensor([2.0]))
    >>> out.loss.tolist()
    [[-2.0]]
    """
    eps_low = check_float("eps_low", eps_low, low=0.0, high=1.0)
    eps_high = check_float("eps_high", eps_high, low=0.0)
    if advantages.dim() == 1:
        advantages = advantages[:, None]
    ratio = torch.exp(logp - old_logp.detach())
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high) * advantages
    loss = -torch.minimum(unclipped, clipped)
    with torch.no_grad():
        low = ((ratio < 1.0 - eps_low) & (advantages < 0)).float()
        high = ((ratio > 1.0 + eps_high) & (advantages > 0)).float()
    return PolicyLoss(loss, low.expand_as(loss), high.expand_as(loss))


def surrogate_value(ratio: float, advantage: float, eps_low: float = 0.2, eps_high: float = 0.2) -> float:
    """The clipped surrogate ``min(rho A, clip(rho, 1-eps_low, 1+eps_high) A)`` of one token, as
    :func:`clipped_policy_loss` computes it (minus its loss), for a torch-free caller.

    Examples
    --------
    >>> round(surrogate_value(1.5, 1.0, 0.2, 0.28), 6)
    1.28
    """
    logp = torch.tensor([[math.log(ratio)]], dtype=torch.float64)
    adv = torch.tensor([advantage], dtype=torch.float64)
    return -float(clipped_policy_loss(logp, torch.zeros_like(logp), adv, eps_low, eps_high).loss)


def kl_estimate(logp: torch.Tensor, ref_logp: torch.Tensor, kind: str = "k3") -> torch.Tensor:
    """Per-token estimator of ``KL(pi_theta || pi_ref)`` from tokens sampled from ``pi_theta``.

    With ``log r = ref_logp - logp`` (Schulman 2020, "Approximating KL divergence"):
    ``k1 = -log r`` (unbiased, can be negative), ``k2 = (log r)^2 / 2`` (biased, low variance),
    ``k3 = (r - 1) - log r`` (unbiased, always >= 0; GRPO's choice).

    Parameters
    ----------
    logp : torch.Tensor
        Log-probabilities of the sampled tokens under ``pi_theta``.
    ref_logp : torch.Tensor
        Their log-probabilities under ``pi_ref``, same shape.
    kind : {"k1", "k2", "k3"}, default "k3"
        The estimator.

    Returns
    -------
    torch.Tensor
        The estimate per element, shaped like ``logp``.

    Raises
    ------
    ValueError
        For an unknown ``kind``.

    Examples
    --------
    >>> kl_estimate(torch.tensor([0.0]), torch.tensor([0.0]), "k3").item()
    0.0
    """
    log_r = ref_logp - logp
    if kind == "k1":
        return -log_r
    if kind == "k2":
        return 0.5 * log_r**2
    if kind == "k3":
        return torch.expm1(log_r) - log_r
    raise ValueError(f"kind must be one of {SAMPLED_ESTIMATORS}, got {kind!r}")


def sequence_kl_estimate(logp: torch.Tensor, ref_logp: torch.Tensor, mask: torch.Tensor, kind: str = "k3",
                         level: str = "token") -> torch.Tensor:
    """Per-sequence KL estimate ``(B,)`` from per-token log-probabilities ``(B, T)`` of sampled completions.

    ``level="token"``: ``sum_t k(logp_t, ref_logp_t)``, the per-token estimator summed (TRL, verl).
    ``level="sequence"``: ``k(sum_t logp_t, sum_t ref_logp_t)``, the estimator of the sequence's
    log-ratio ``log rho = log pi(y)/pi_ref(y)``. As a loss term sampled on-policy the sequence level
    has the gradients of THEORY.md §4 exactly: k2 gives ``E[log rho grad log pi] = grad KL(pi||pi_ref)``,
    k3 gives ``grad KL(pi_ref||pi)``, k1 nothing. The token level drops the cross terms between a
    token's score and the other tokens' log-ratios, so it has them only for one-token answers.
    k1 is linear, so both levels agree for it.

    Parameters
    ----------
    logp : torch.Tensor, shape (B, T)
        Per-token log-probabilities under ``pi_theta``.
    ref_logp : torch.Tensor, shape (B, T)
        Per-token log-probabilities under ``pi_ref``.
    mask : torch.Tensor, shape (B, T)
        1 on completion tokens, 0 on padding.
    kind : {"k1", "k2", "k3"}, default "k3"
        The estimator (:func:`kl_estimate`).
    level : {"token", "sequence"}, default "token"
        Where the estimator is applied (see above).

    Returns
    -------
    torch.Tensor, shape (B,)
        One estimate per sequence.

    Raises
    ------
    ValueError
        For an unknown ``kind`` or ``level``.

    Examples
    --------
    >>> lp, ref, m = torch.tensor([[-1.0, -2.0]]), torch.tensor([[-1.5, -1.0]]), torch.ones(1, 2)
    >>> round(float(sequence_kl_estimate(lp, ref, m, "k2", "token")), 4), float(sequence_kl_estimate(lp, ref, m, "k2", "sequence"))
    (0.625, 0.125)
    """
    if level == "token":
        return (kl_estimate(logp, ref_logp, kind) * mask).sum(-1)
    if level == "sequence":
        return kl_estimate((logp * mask).sum(-1), (ref_logp * mask).sum(-1), kind)
    raise ValueError(f"level must be one of {KL_LEVELS}, got {level!r}")


def group_weights(scheme: WeightScheme, rewards: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Weights ``Z`` of shape ``(G, M)`` for rewards ``(G, M)``, as a float tensor.

    They are the scheme's own :meth:`~rlvrlens.objectives.WeightScheme.weights` (the single
    implementation).

    Parameters
    ----------
    scheme : WeightScheme
        The weight scheme, with ``M`` answers per group.
    rewards : torch.Tensor or ndarray, shape (G, M)
        Rewards of ``G`` groups (0/1, or real-valued for schemes with a formula).

    Returns
    -------
    torch.Tensor, shape (G, M)
        The weights, float32.

    Raises
    ------
    TypeError
        If ``scheme`` is not a :class:`WeightScheme`.
    ValueError
        As :meth:`WeightScheme.weights` does (wrong shape, real rewards for a scheme without a
        formula).

    Examples
    --------
    >>> from rlvrlens.objectives import reinforce
    >>> group_weights(reinforce(2), [[1.0, 0.0]]).tolist()
    [[1.0, 0.0]]
    """
    if not isinstance(scheme, WeightScheme):
        raise TypeError(f"scheme must be a WeightScheme, got {type(scheme).__name__}")
    R = rewards.detach().cpu().numpy() if isinstance(rewards, torch.Tensor) else np.asarray(rewards)
    return torch.as_tensor(scheme.weights(R), dtype=torch.float32)
