"""Training by the expected (mean-field) update: nothing sampled, the gap to the theory is the model's.

The sampled trainer's expected step for a scheme with ``h'_M = g`` is ``g(p_x) grad p_x`` per
prompt (Davis & Recht 2025, Theorem 1) and, for a KL penalty whose expected gradient is that of a
divergence ``D_x``, ``- beta grad D_x`` (THEORY.md §4). This loop descends

    loss = -(1/N) sum_x g(p_x) p_x + beta (1/N) sum_x D_x,

with ``g(p_x)`` held fixed within each step (its gradient is exactly the expected update), ``p_x``
and ``D_x`` computed exactly (teacher forcing over an enumerable completion space). Its stationary
points are those of the theory, so a gap to a prediction is the network's (coupling, capacity,
horizon), not sampling noise. The optimiser and schedule are the config's
(:func:`rlvrlens.training.optim.build_optimizer`), as in the sampled trainer.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from rlvrlens.core.checks import check_int
from rlvrlens.training.config import TrainConfig
from rlvrlens.training.optim import build_optimizer, build_scheduler
from rlvrlens.training.policy import trainable_parameters

#: ``terms(policy) -> (p, D)``: exact success per prompt and the penalty's divergence per prompt
#: (``None`` without a penalty), both differentiable.
Terms = Callable[[object], "tuple[torch.Tensor, torch.Tensor | None]"]


def expected_update_training(policy, terms: Terms, gap: Callable[[np.ndarray], np.ndarray], config: TrainConfig,
                             steps: int) -> np.ndarray:
    """Train ``policy`` (in place) for ``steps`` expected-update steps; the per-prompt success history.

    Parameters
    ----------
    policy : Policy
        Its parameters that require grad are trained.
    terms : callable
        ``terms(policy) -> (p, D)`` (:data:`Terms`).
    gap : callable
        ``g(p)`` on a float64 array of success probabilities: ``h'_M`` of a scheme
        (``lambda p: dh(scheme, p)``) or any map's gap (Mroueh's population ``Omega``).
    config : TrainConfig
        ``beta`` and the optimiser: ``optim``, ``learning_rate``, Adam's moments, ``weight_decay``,
        ``lr_scheduler_type``, ``warmup_steps`` (with ``steps`` the schedule's horizon).
    steps : int

    Returns
    -------
    ndarray, shape (steps + 1, N)
        ``p`` before every step and after the last (float64).

    Examples
    --------
    >>> from rlvrlens.training.policy import TabularPolicy
    >>> from rlvrlens.training.success import exact_success
    >>> from rlvrlens.training.task import Task
    >>> pol, task = TabularPolicy(["q"], ["a", "b"]).clone(trainable=True), Task("t", ["q"], ["a"])
    >>> hist = expected_update_training(pol, lambda p: (exact_success(p, task), None), lambda p: np.ones_like(p),
    ...                                 TrainConfig(optim="sgd", learning_rate=1.0), steps=3)
    >>> hist.shape, bool(np.all(np.diff(hist[:, 0]) > 0))
    ((4, 1), True)
    """
    steps = check_int("steps", steps, minimum=0)
    optimizer = build_optimizer(config, trainable_parameters(policy))
    scheduler = build_scheduler(config, optimizer)
    history = []
    for step in range(steps + 1):
        p, divergence = terms(policy)
        history.append(p.detach().double().cpu().numpy())
        if step == steps:
            break
        weight = torch.as_tensor(gap(history[-1]), dtype=p.dtype, device=p.device)
        loss = -(weight * p).mean()
        if divergence is not None and config.beta > 0:
            loss = loss + config.beta * divergence.mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    return np.array(history)
