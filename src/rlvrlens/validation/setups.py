"""What the validation experiments run on: models, tasks, chosen prompts, and the trainer's configuration.

* :func:`lm_setup`: a tiny GPT-2 warm-started on modular arithmetic (exact ``p``), with prompts whose
  success probabilities spread over (0.05, 0.95);
* :func:`real_model_setup`: a pretrained model (SmolLM2-135M-Instruct) on a reasoning-gym task;
* :func:`tabular_setup`: a softmax over one right and ``n_wrong`` wrong answers per prompt at given ``p_ref``;
* :func:`theory_config`: the :class:`~rlvrlens.training.TrainConfig` of the system the theory
  predicts (every prompt each step, Dr. GRPO's per-sequence sum over the constant 1, no gradient
  clipping, the KL estimator on the sequence's log-ratio);
* :func:`validation_schemes`: the schemes of the identity and speed experiments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from rlvrlens.objectives import WeightScheme, design, get_scheme
from rlvrlens.training.config import TrainConfig
from rlvrlens.training.policy import CausalLMPolicy, TabularPolicy
from rlvrlens.training.sft import warm_start
from rlvrlens.training.success import exact_success
from rlvrlens.training.task import Task
from rlvrlens.training.tasks import get_task, modular_arithmetic
from rlvrlens.validation.sizes import RealModelSize, ValidationSize


def validation_schemes(M: int) -> dict[str, WeightScheme]:
    """The schemes of experiments 1-2: the catalogue's main ones and one designed scheme (log-odds target)."""
    return {
        "reinforce": get_scheme("reinforce", M),
        "rloo": get_scheme("rloo", M),
        "grpo(eps=1e-6)": get_scheme("grpo", M, eps=1e-6),
        "grpo(eps=0.1)": get_scheme("grpo", M, eps=0.1),
        "raft": get_scheme("raft", M),
        "reinforce_rej": get_scheme("reinforce_rej", M),
        "design[logit]": design("log(t/(1-t))", M, split="centred").scheme,
    }


@dataclass
class LMSetup:
    """A policy, its task, the exact success of every prompt and the chosen prompts' indices."""

    policy: CausalLMPolicy
    task: Task
    p: np.ndarray
    prompts: list[int] = field(default_factory=list)


def spread_prompts(p: np.ndarray, n: int, *, low: float = 0.05, high: float = 0.95, what: str = "the model") -> list[int]:
    """Up to ``n`` prompts whose success probabilities ``p`` lie in ``(low, high)``, spread: those
    closest to evenly spaced quantiles of the interior ones.

    Examples
    --------
    >>> spread_prompts(np.array([0.01, 0.2, 0.5, 0.7, 0.99]), 2)
    [1, 3]
    """
    inside = np.flatnonzero((p > low) & (p < high))
    if inside.size == 0:
        raise RuntimeError(f"{what} left no prompt with success probability in ({low:g}, {high:g})")
    order = inside[np.argsort(p[inside])]
    return [int(i) for i in order[np.unique(np.linspace(0, order.size - 1, n).round().astype(int))]]


def lm_setup(size: ValidationSize) -> LMSetup:
    """Build and warm-start the size's transformer on modular arithmetic (exact success available),
    and choose ``n_prompts`` prompts whose success probabilities spread over (0.05, 0.95)."""
    task = modular_arithmetic(size.n_task_prompts, moduli=size.moduli, seed=size.seed + 1)
    policy = CausalLMPolicy.from_config(n_layer=size.n_layer, width=size.width, n_head=size.n_head, seed=size.seed)
    if size.device != "cpu":
        policy.to(size.device)
    warm_start(policy, task, fraction=1.0, steps=size.warm_start_steps, lr=3e-3, seed=size.seed)
    with torch.no_grad():
        p = exact_success(policy, task).double().cpu().numpy()
    return LMSetup(policy, task, p, spread_prompts(p, size.n_prompts, what="the warm start"))


def real_model_setup(size: RealModelSize) -> LMSetup:
    """The size's pretrained model and task: every prompt of the pool scored exactly and
    ``n_prompts`` of them chosen, spread over ``(0.02, 0.98)``."""
    policy = CausalLMPolicy.from_pretrained(size.model)
    if size.device != "cpu":
        policy.to(size.device)
    task = get_task(size.task, n=size.pool, seed=size.seed)
    with torch.no_grad():
        p = exact_success(policy, task).double().cpu().numpy()
    return LMSetup(policy, task, p, spread_prompts(p, size.n_prompts, low=0.02, high=0.98, what=size.model))


def tabular_setup(p_refs: Sequence[float], n_wrong: int = 3, copies: int = 4) -> tuple[TabularPolicy, Task, np.ndarray]:
    """``copies`` prompts per reference success probability; one right answer ``a`` and ``n_wrong``
    wrong ones sharing ``1 - p_ref``. Returns ``(policy, task, p_ref per prompt)``."""
    p_ref = np.repeat(np.asarray(p_refs, dtype=float), copies)
    prompts = [f"q{k}" for k in range(p_ref.size)]
    answers = ["a"] + [f"w{j}" for j in range(n_wrong)]
    logits = np.zeros((p_ref.size, len(answers)))
    logits[:, 0] = np.log(p_ref / (1 - p_ref) * n_wrong)
    task = Task("tabular", tuple(prompts), ("a",) * len(prompts))
    return TabularPolicy(prompts, answers, torch.tensor(logits, dtype=torch.float64)), task, p_ref


def theory_config(task: Task, scheme: WeightScheme, *, lr: float, optim: str = "sgd", seed: int = 0,
                  beta: float = 0.0, kl_estimator: str = "k2", adam_beta2: float = 0.999, steps: int = 0) -> TrainConfig:
    """The trainer configured as the system the theory predicts.

    Every prompt each step, ``M = scheme.M``, Dr. GRPO's per-sequence sum over the constant 1 (so
    that ``E[update] = h'_M(p) grad p`` exactly), no clipping of the gradient, no warm start;
    ``optim`` ``sgd`` (plain, no momentum) or ``adam``/``adamw``; with ``beta > 0`` the penalty is
    ``kl_estimator`` on the sequence's log-ratio (k2: expected gradient ``grad KL(pi||pi_ref)``
    exactly, k3: ``grad KL(pi_ref||pi)``).

    Examples
    --------
    >>> from rlvrlens.training.tasks import modular_arithmetic
    >>> cfg = theory_config(modular_arithmetic(3), get_scheme("grpo", 4), lr=0.1, beta=1.0)
    >>> cfg.optim, cfg.prompts_per_step, cfg.kl_level, cfg.loss_aggregation, cfg.aggregation_constant
    ('sgd', 3, 'sequence', 'seq-sum-constant', 1.0)
    """
    return TrainConfig(num_generations=scheme.M, prompts_per_step=len(task), beta=beta, learning_rate=lr,
                       optim=optim, kl_estimator=kl_estimator, kl_level="sequence" if beta > 0 else "token",
                       loss_aggregation="seq-sum-constant", aggregation_constant=1.0, max_grad_norm=0.0,
                       eval_steps=10**6, save_steps=10**6, seed=seed, max_new_tokens=task.max_new_tokens,
                       adam_beta2=adam_beta2, warm_start_steps=0, steps=steps)
