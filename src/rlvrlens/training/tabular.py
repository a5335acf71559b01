"""Exact updates of a :class:`~rlvrlens.training.policy.TabularPolicy` (no sampling).

The KL-regularised objective ``max_pi E_{y~pi}[w(y)] - beta KL(pi || pi_ref)``, with the expected
weight ``w`` of each answer computed from the previous policy, has the closed-form solution
``pi_n ∝ pi_ref exp(w_{n-1} / beta)`` (Mroueh 2025; THEORY.md §2). For a weight scheme the expected
weight of a right answer is ``E[b_S]`` and of a wrong one ``E[a_S]``, ``S ~ Bin(M-1, p)``
(Davis & Recht 2025, Algorithm 1), computed with the objectives layer's binomial expectation.
"""

from __future__ import annotations

import numpy as np
import torch

from rlvrlens.core.checks import check_float
from rlvrlens.objectives import WeightScheme
from rlvrlens.objectives.binomial import binomial_expectation
from rlvrlens.training.policy import TabularPolicy
from rlvrlens.training.success import exact_success
from rlvrlens.training.task import Task


def expected_weights(scheme: WeightScheme, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(E[a_S], E[b_S])`` with ``S ~ Bin(M-1, p)``: the expected weight of a wrong and a right answer."""
    p = np.asarray(p, dtype=float)
    return binomial_expectation(scheme.a, p), binomial_expectation(scheme.b, p)


def right_answers(policy: TabularPolicy, task: Task) -> torch.Tensor:
    """Boolean ``(P, A)``: whether answer ``j`` is accepted for the policy's prompt ``i``."""
    right = torch.zeros(len(policy.prompt_list), len(policy.answers), dtype=torch.bool)
    for i, prompt in enumerate(policy.prompt_list):
        accepted = task.rewards([prompt] * len(policy.answers), policy.answers)
        right[i] = torch.as_tensor(accepted == 1)
    return right


@torch.no_grad()
def kl_regularised_step(policy: TabularPolicy, reference: TabularPolicy, task: Task, scheme: WeightScheme,
                        beta: float) -> None:
    """Set ``policy`` to ``pi_ref exp(w / beta)`` (normalised), ``w`` the expected weights under ``policy``.

    Parameters
    ----------
    policy : TabularPolicy
        The policy, updated in place (its logits become ``reference``'s plus ``w / beta``).
    reference : TabularPolicy
        The reference policy ``pi_ref``.
    task : Task
        The task, with an enumerable accepted set (exact success is used).
    scheme : WeightScheme
        The weight scheme giving the expected weights of right and wrong answers.
    beta : float
        KL coefficient, ``> 0``.

    Returns
    -------
    None

    Raises
    ------
    ValueError
        If ``beta <= 0``.
    """
    beta = check_float("beta", beta, low=0.0, low_open=True)
    p = exact_success(policy, task, [task.index(x) for x in policy.prompt_list]).double().cpu().numpy()
    wrong_w, right_w = expected_weights(scheme, p)
    right = right_answers(policy, task)
    w = torch.where(right, torch.as_tensor(right_w)[:, None], torch.as_tensor(wrong_w)[:, None])
    policy.logits.copy_(reference.logits.double() + w / beta)  # copy_ casts to the policy's dtype
