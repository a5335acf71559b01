"""rlvrlens.training: the weight schemes on real transformers models (needs the ``train`` extra).

The RL step of :class:`Trainer` samples M completions per prompt, scores them with a verifier,
weighs them with the scheme's own :meth:`~rlvrlens.objectives.WeightScheme.weights`, and takes a
clipped policy-gradient step; per-prompt success probabilities are logged so that trajectories can
be compared with the dynamics the theory predicts (THEORY.md §1-3).

Modules: ``losses`` (loss pieces), ``policy`` (:class:`CausalLMPolicy`, :class:`TabularPolicy`),
``tokenizer``, ``tasks`` (tasks, verifiers, reward hooks), ``trl_adapter`` (TRL's ``GRPOTrainer``),
``verl_plugin`` (verl's advantage estimator ``rlvrlens``), ``success`` (exact / estimated p(C|x)),
``sft`` (warm start), ``tabular`` (exact KL-regularised update), ``config``, ``trainer``,
``protocol`` (the :class:`Policy` protocol the trainer depends on), ``rundir`` (run directories:
checks, lock, JSONL logs), ``runtime`` (a seeded generator and a thread limit, for the layers above
that must not import torch), ``models`` (named pretrained models, GGUF cache), ``reasoning_gym``
(``rg:NAME`` tasks), ``enumeration`` (exact success over every tokenisation), ``showcase``
(SmolLM2 on reasoning-gym).
Names are loaded lazily, so ``import rlvrlens.training.config`` does not import torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "TrainConfig": "config", "Trainer": "trainer", "load_policy": "trainer",
    "CausalLMPolicy": "policy", "TabularPolicy": "policy", "Rollout": "policy",
    "char_tokenizer": "tokenizer", "chars_for_task": "tokenizer", "PREFILL": "task",
    "resolve_model": "models", "MissingDependencyError": "models", "rg_task": "reasoning_gym",
    "NotEnumerable": "enumeration", "smollm2_demo": "showcase",
    "Task": "task", "RewardFunction": "task", "RewardError": "task", "get_task": "tasks", "EnumeratedTask": "tasks",
    "load_jsonl": "tasks", "modular_arithmetic": "tasks", "addition": "tasks", "chain_sum": "tasks",
    "exact_success": "success", "estimate_success": "success", "success_probabilities": "success",
    "warm_start": "sft", "kl_regularised_step": "tabular",
    "masked_mean": "losses", "masked_sum": "losses", "aggregate": "losses",
    "clipped_policy_loss": "losses", "kl_estimate": "losses", "sequence_kl_estimate": "losses",
    "group_weights": "losses",
    "Policy": "protocol", "ExactKLPolicy": "protocol", "SavablePolicy": "protocol",
    "Callback": "trainer", "MACHINE_METRICS": "trainer", "estimate_step_memory": "trainer",
    "tempered_logprobs": "policy", "RunLock": "rundir", "RunDirError": "rundir",
    "seeded_generator": "runtime", "limit_threads": "runtime",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"rlvrlens.training.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'rlvrlens.training' has no attribute {name!r}")
