"""Warm start: supervised fine-tuning on part of a task, giving the reference policy pi_ref.

A fresh tiny model answers nothing right; a short SFT on a fraction of the prompts' solutions puts
success probabilities strictly between 0 and 1 (higher on the trained prompts, partial transfer to
the others), which is where the RL theory has something to say.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from rlvrlens.core.checks import check_float, check_int
from rlvrlens.training.losses import masked_sum
from rlvrlens.training.task import Task


def sft_loss(policy, prompts: Sequence[str], targets: Sequence[str]) -> torch.Tensor:
    """Mean over sequences of the negative log-likelihood of ``target + EOS`` given the prompt."""
    rollout = policy.encode(list(prompts), list(targets))
    logp, _ = policy.token_logprobs(rollout)
    return -masked_sum(logp, rollout.mask, dim=-1).mean()


def warm_start(policy, task: Task, *, fraction: float = 0.5, steps: int = 100, batch_size: int = 16,
               lr: float = 3e-3, seed: int = 0) -> list[float]:
    """Fit ``policy`` by SFT on the solutions of a random ``fraction`` of the task's prompts.

    The prompts trained on are the first ``round(fraction * len(task))`` (at least one) of a
    permutation drawn from ``seed``; each step trains on ``batch_size`` of them drawn with
    replacement, with AdamW (no weight decay).

    Parameters
    ----------
    policy : Policy
        The policy, trained in place.
    task : Task
        The task whose ``solutions`` are the SFT targets.
    fraction : float, default 0.5
        Share of the prompts trained on, in ``(0, 1]``.
    steps : int, default 100
        Optimizer steps, ``>= 0``.
    batch_size : int, default 16
        Prompts per step, ``>= 1``.
    lr : float, default 3e-3
        AdamW learning rate.
    seed : int, default 0
        Seed of the choice of prompts and of the batches.

    Returns
    -------
    list of float
        The SFT loss per step.

    Raises
    ------
    ValueError
        If ``fraction``, ``steps`` or ``batch_size`` is out of range.
    """
    fraction = check_float("fraction", fraction, low=0.0, high=1.0, low_open=True)
    steps = check_int("steps", steps, minimum=0)
    batch_size = check_int("batch_size", batch_size)
    rng = np.random.default_rng(seed)
    chosen = rng.permutation(len(task))[: max(1, round(fraction * len(task)))]
    opt = torch.optim.AdamW(policy.parameters(), lr=lr, weight_decay=0.0)
    losses = []
    for _ in range(steps):
        batch = rng.choice(chosen, size=batch_size)
        loss = sft_loss(policy, [task.prompts[i] for i in batch], [task.solutions[i] for i in batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses
