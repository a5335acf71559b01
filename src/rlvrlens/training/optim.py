"""The optimiser and the learning-rate schedule a :class:`~rlvrlens.training.TrainConfig` names.

One factory for every training loop of the package (the sampled :class:`~rlvrlens.training.Trainer`
and the expected-update loop of :mod:`rlvrlens.training.expected`), so that an experiment changes
the optimiser by configuration, never by replacing an object after construction.

* ``adamw``: ``torch.optim.AdamW(lr, betas=(adam_beta1, adam_beta2), eps=adam_epsilon,
  weight_decay)`` (decoupled weight decay; the Hugging Face and TRL default);
* ``adam``: ``torch.optim.Adam`` with the same moments (``weight_decay`` as an L2 term);
* ``sgd``: ``torch.optim.SGD(lr, weight_decay)``, no momentum.

The schedule multiplies the learning rate at optimiser step ``s`` (0-based) by the factor of
Hugging Face's ``get_constant_schedule_with_warmup`` / ``get_linear_schedule_with_warmup`` (what
TRL uses): ``s / warmup_steps`` while ``s < warmup_steps``; then 1 (``constant``) or
``max(0, (steps - s) / (steps - warmup_steps))`` (``linear``: decay to 0 at ``steps``).
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch

from rlvrlens.training.config import TrainConfig


def build_optimizer(config: TrainConfig, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """The optimiser ``config.optim`` over ``params`` with the config's hyper-parameters.

    Parameters
    ----------
    config : TrainConfig
        Reads ``optim``, ``learning_rate``, ``adam_beta1``, ``adam_beta2``, ``adam_epsilon``, ``weight_decay``.
    params : iterable of Parameter

    Returns
    -------
    torch.optim.Optimizer

    Examples
    --------
    >>> p = torch.nn.Parameter(torch.zeros(2))
    >>> type(build_optimizer(TrainConfig(optim="sgd"), [p])).__name__
    'SGD'
    """
    params = list(params)
    if config.optim == "sgd":
        return torch.optim.SGD(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    cls = torch.optim.AdamW if config.optim == "adamw" else torch.optim.Adam
    return cls(params, lr=config.learning_rate, betas=(config.adam_beta1, config.adam_beta2), eps=config.adam_epsilon,
               weight_decay=config.weight_decay)


def lr_factor(config: TrainConfig, step: int) -> float:
    """The schedule's multiplier of ``learning_rate`` at optimiser step ``step`` (0-based; module docstring).

    >>> cfg = TrainConfig(lr_scheduler_type="linear", steps=4)
    >>> [lr_factor(cfg, s) for s in range(5)]
    [1.0, 0.75, 0.5, 0.25, 0.0]
    >>> [lr_factor(TrainConfig(warmup_steps=2), s) for s in range(3)]
    [0.0, 0.5, 1.0]
    """
    warm = config.warmup_steps
    if step < warm:
        return step / warm
    if config.lr_scheduler_type == "constant":
        return 1.0
    return max(0.0, (config.steps - step) / max(1, config.steps - warm))


def build_scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` of :func:`lr_factor` (step it once after every optimiser step)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(config, step))


def adam_preconditioner(optimizer: torch.optim.Optimizer, params: list[torch.Tensor]) -> np.ndarray | None:
    """Adam's current diagonal ``1/(sqrt(v_hat) + eps)`` as a flat float64 numpy array (ordered like
    ``params``), or ``None`` before its first step or for an optimiser without a second moment.

    ``v_hat = v / (1 - beta2^t)`` is the bias-corrected second moment after ``t`` steps (Kingma & Ba
    2015); a step of Adam is ``-lr m_hat / (sqrt(v_hat) + eps)``, so this diagonal is the
    preconditioner ``P`` of ``Delta theta = -lr P m_hat``.
    """
    blocks = {}
    for group in optimizer.param_groups:
        if "betas" not in group:
            return None
        b2, eps = group["betas"][1], group["eps"]
        for q in group["params"]:
            state = optimizer.state.get(q, {})
            if "exp_avg_sq" not in state:
                return None
            v_hat = state["exp_avg_sq"].double() / (1 - b2 ** float(state["step"]))
            blocks[id(q)] = (1.0 / (v_hat.sqrt() + eps)).flatten().cpu().numpy()
    return np.concatenate([blocks[id(q)] for q in params])
