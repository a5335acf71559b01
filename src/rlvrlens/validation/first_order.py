"""Is the first-order coupled prediction exact? One SGD step at several sizes, with common random numbers.

The coupled model predicts one SGD step of the trainer (THEORY.md §4; :mod:`rlvrlens.forecast.coupled`):
``E[Delta p_x] = (lr/N) sum_y K_xy h'_M(p_y) + O(lr^2)``. :func:`step_sweep` measures, per repeat
``r`` and step size ``lr_k``, from the same parameters ``theta_0``:

* the change of exact ``p`` per unit learning rate, ``d_{r,k,x} = Delta p_x / lr_k`` (first order
  plus ``O(lr_k)``);
* the step projected on ``grad p_x``, ``g_{r,x} = <Delta theta, grad p_x> / lr_k`` (the first-order
  term alone: for SGD ``Delta theta = lr g``, so it does not depend on ``lr_k``).

The repeats use **common random numbers**: every step size samples the same groups in repeat ``r``
(one trainer per size, all seeded alike, restored to ``theta_0`` without resetting their random
streams), so the differences between sizes are the second-order term alone and the zero-step limit
is estimated per repeat by a straight-line fit in ``lr`` (then averaged, with its standard error over
repeats). The summary statistic is a common factor ``c = sum_x m_x q_x / sum_x q_x^2`` of the measured
``m`` against the predicted ``q``, computed per repeat: 1 when the first-order prediction is exact.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from rlvrlens.forecast.coupled import predicted_change
from rlvrlens.forecast.probes import kernel, project, success_jacobian
from rlvrlens.objectives import WeightScheme
from rlvrlens.training.policy import trainable_parameters
from rlvrlens.training.success import exact_success
from rlvrlens.training.task import Task
from rlvrlens.training.trainer import Trainer
from rlvrlens.validation.setups import theory_config


def _flat(policy) -> np.ndarray:
    return torch.cat([q.detach().flatten() for q in trainable_parameters(policy)]).double().cpu().numpy()


def common_factor(measured: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """``sum_x m_x q_x / sum_x q_x^2`` along the last axis: the factor by which the measured change
    is the predicted one (least squares through the origin).

    >>> common_factor(np.array([[2.0, 4.0], [1.0, 2.0]]), np.array([1.0, 2.0])).tolist()
    [2.0, 1.0]
    """
    return (measured * predicted).sum(-1) / float((predicted ** 2).sum())


def step_sweep(policy, task: Task, scheme: WeightScheme, *, targets: Sequence[float], repeats: int,
               seed: int = 0, label: str = "") -> list[dict[str, Any]]:
    """One SGD step of the trainer at each predicted largest ``|Delta p|`` in ``targets``, ``repeats``
    times from the same parameters with common random numbers (module docstring).

    Parameters
    ----------
    policy : Policy
        Left as it was (every step is undone).
    task : Task
        Enumerable (exact ``p``); every prompt is in every step.
    scheme : WeightScheme
    targets : sequence of float
        Predicted largest ``|Delta p|`` of a step; the learning rates follow from the kernel.
    repeats : int
    seed : int
    label : str
        Names the prompts' family in the records.

    Returns
    -------
    list of dict
        One ``first_order`` record per target (``lr``, per-prompt ``measured``/``measured_se`` of
        ``Delta p / lr``, ``predicted``, the common factor ``ratio`` and ``ratio_se``), one
        ``first_order_projected`` record (the step projected on ``grad p``), and one
        ``first_order_limit`` record (the zero-step extrapolation of the common factor).
    """
    p0, G = success_jacobian(policy, task)
    K = kernel(G)
    unit = predicted_change(K, scheme, p0, 1.0)  # predicted Delta p per unit learning rate
    lrs = [float(t / np.abs(unit).max()) for t in targets]
    trainers = [Trainer(theory_config(task, scheme, lr=lr, seed=seed), policy=policy, task=task, scheme=scheme)
                for lr in lrs]
    starts = [tr.snapshot() for tr in trainers]
    theta0 = _flat(policy)
    measured = np.zeros((repeats, len(lrs), len(p0)))
    projected = np.zeros((repeats, len(lrs), len(p0)))
    for r in range(repeats):
        for k, (tr, lr) in enumerate(zip(trainers, lrs)):
            tr.train(1)
            with torch.no_grad():
                measured[r, k] = (exact_success(policy, task).double().cpu().numpy() - p0) / lr
                projected[r, k] = project(G, _flat(policy) - theta0) / lr
            tr.restore(starts[k], rng=False)  # theta_0 again; the random stream goes on in lockstep
    factors = common_factor(measured, unit)                      # (repeats, sizes)
    proj = common_factor(projected.mean(1), unit)                # (repeats,)
    steps = np.asarray(lrs)
    design = np.stack([np.ones_like(steps), steps], axis=1)
    intercepts = np.linalg.lstsq(design, factors.T, rcond=None)[0][0]  # per repeat: the factor at lr -> 0
    n = np.sqrt(repeats)
    records = [{"experiment": "first_order", "family": label, "target": float(t), "lr": lr, "repeats": repeats,
                "prompts": len(p0), "p": p0.tolist(), "predicted": unit.tolist(),
                "measured": measured[:, k].mean(0).tolist(), "measured_se": (measured[:, k].std(0, ddof=1) / n).tolist(),
                "ratio": float(factors[:, k].mean()), "ratio_se": float(factors[:, k].std(ddof=1) / n)}
               for k, (t, lr) in enumerate(zip(targets, lrs))]
    records.append({"experiment": "first_order_projected", "family": label, "repeats": repeats, "prompts": len(p0),
                    "ratio": float(proj.mean()), "ratio_se": float(proj.std(ddof=1) / n),
                    "spread_between_sizes": float(np.abs(projected - projected[:, :1]).max())})
    records.append({"experiment": "first_order_limit", "family": label, "repeats": repeats, "prompts": len(p0),
                    "targets": [float(t) for t in targets], "lrs": lrs,
                    "ratio": float(intercepts.mean()), "ratio_se": float(intercepts.std(ddof=1) / n),
                    "z": float((intercepts.mean() - 1) / (intercepts.std(ddof=1) / n))})
    return records
