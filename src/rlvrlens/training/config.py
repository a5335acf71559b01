"""The trainer's configuration: one dataclass, option names as in TRL's ``GRPOConfig`` where the
meaning is the same. Imports no torch (the CLI builds its flags from it)."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlvrlens._validation import check_float, check_int

#: Loss aggregation modes (names as in verl's ``loss_agg_mode``).
AGGREGATIONS = ("seq-mean-token-mean", "token-mean", "seq-sum-constant")
#: KL estimators of KL(pi_theta || pi_ref) from samples of pi_theta (Schulman 2020).
KL_ESTIMATORS = ("k1", "k2", "k3")


@dataclass
class TrainConfig:
    """Everything a run depends on (saved in each checkpoint and in ``config.json``).

    Task and model
        task: built-in task name (``mod``, ``add``, ``cot``) or a ``.jsonl`` file of {prompt, answer}.
        n_prompts, task_seed: size and seed of a built-in task. verifier: for JSONL tasks.
        model: a local model directory (``save_pretrained`` layout); ``None`` builds a fresh
        ``arch`` (``gpt2``/``llama``) model of ``n_layer`` layers and ``width`` from config.
        warm_start_steps, warm_start_fraction, warm_start_lr: SFT on a fraction of the prompts before
        RL (the result is pi_ref); 0 steps skips it.
    The update (THEORY.md §1, §3)
        scheme, scheme_params: a catalogue weight scheme by name (``rlvrlens.objectives.get_scheme``).
        num_generations: M, completions per prompt (TRL's name; the papers' G or M).
        prompts_per_step: groups per RL step. gradient_accumulation_steps: micro-batches per step.
        num_iterations: mu, optimisation epochs on each batch (TRL's name); > 1 uses the importance
        ratio pi_theta/pi_old and clipping with epsilon_low, epsilon_high (DAPO's clip-higher).
        beta: KL coefficient to pi_ref (0: no reference model). kl_estimator: ``k1``/``k2``/``k3``
        per token, or ``exact`` (sequence-level KL; tabular policies). kl_in_reward: subtract
        ``beta * log(pi/pi_ref)`` of the sequence from its reward instead (REINFORCE++).
        loss_aggregation: ``seq-mean-token-mean`` (GRPO), ``token-mean`` (DAPO) or ``seq-sum-constant``
        (Dr. GRPO; divides by ``aggregation_constant``, default max_new_tokens). With
        ``seq-sum-constant`` and constant 1 the gradient is exactly the theory's
        ``(1/M) sum_i Z_i grad log pi(y_i|x)`` averaged over groups.
        learning_rate, weight_decay, adam_beta1/2: AdamW. max_grad_norm: clipping (0 disables).
    Sampling, logging
        temperature, top_p, max_new_tokens (``None``: the task's). seed: everything random.
        eval_steps: record per-prompt success every this many steps (and at 0 and the end);
        eval_samples: K for tasks without exact success. save_steps: checkpoint period.
    """

    task: str = "mod"
    n_prompts: int = 24
    task_seed: int = 0
    verifier: str = "exact"
    model: str | None = None
    arch: str = "gpt2"
    n_layer: int = 2
    width: int = 64
    n_head: int = 2
    warm_start_steps: int = 60
    warm_start_fraction: float = 0.5
    warm_start_lr: float = 3e-3
    scheme: str = "grpo"
    scheme_params: dict[str, Any] = field(default_factory=dict)
    num_generations: int = 8
    prompts_per_step: int = 8
    gradient_accumulation_steps: int = 1
    num_iterations: int = 1
    epsilon_low: float = 0.2
    epsilon_high: float = 0.2
    beta: float = 0.0
    kl_estimator: str = "k3"
    kl_in_reward: bool = False
    loss_aggregation: str = "seq-mean-token-mean"
    aggregation_constant: float | None = None
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.99
    max_grad_norm: float = 1.0
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int | None = None
    steps: int = 50
    seed: int = 0
    eval_steps: int = 10
    eval_samples: int = 64
    save_steps: int = 10

    def __post_init__(self) -> None:
        for name in ("n_prompts", "n_layer", "width", "n_head", "num_generations", "prompts_per_step",
                     "gradient_accumulation_steps", "num_iterations", "eval_steps", "eval_samples", "save_steps"):
            check_int(name, getattr(self, name))
        for name in ("warm_start_steps", "steps", "seed", "task_seed"):
            check_int(name, getattr(self, name), minimum=0)
        if self.prompts_per_step % self.gradient_accumulation_steps:
            raise ValueError("prompts_per_step must be divisible by gradient_accumulation_steps, got "
                             f"{self.prompts_per_step} and {self.gradient_accumulation_steps}")
        check_float("epsilon_low", self.epsilon_low, low=0, high=1)
        check_float("epsilon_high", self.epsilon_high, low=0)
        check_float("beta", self.beta, low=0)
        check_float("learning_rate", self.learning_rate, low=0, low_open=True)
        check_float("max_grad_norm", self.max_grad_norm, low=0)
        check_float("temperature", self.temperature, low=0, low_open=True)
        check_float("top_p", self.top_p, low=0, high=1, low_open=True)
        if self.kl_estimator not in KL_ESTIMATORS + ("exact",):
            raise ValueError(f"kl_estimator must be one of {KL_ESTIMATORS + ('exact',)}, got {self.kl_estimator!r}")
        if self.loss_aggregation not in AGGREGATIONS:
            raise ValueError(f"loss_aggregation must be one of {AGGREGATIONS}, got {self.loss_aggregation!r}")
        if self.max_new_tokens is not None:
            check_int("max_new_tokens", self.max_new_tokens)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config option(s): {', '.join(unknown)}")
        return cls(**data)

    @classmethod
    def from_toml(cls, path: str | Path) -> "TrainConfig":
        """Read a TOML file whose top-level keys are field names (``[scheme_params]`` a table)."""
        with open(path, "rb") as fh:
            return cls.from_dict(tomllib.load(fh))
