"""Any rlvrlens :class:`~rlvrlens.objectives.WeightScheme` inside TRL's ``GRPOTrainer``.

TRL (tested: ``trl`` 1.14.2 and 1.16.0) computes GRPO's advantages inline in
``GRPOTrainer._generate_and_score_completions``, with no hook to replace them. The narrowest robust
extension point is two thin wrappers around ``super()``:

* ``_calculate_rewards`` returns the rewards of the whole generation batch *gathered over all
  processes* (each prompt's ``num_generations`` completions are consecutive there); we keep them.
* ``_generate_and_score_completions`` returns the local batch whose ``"advantages"`` entry we replace
  by the scheme's weights ``Z = scheme.weights(R.reshape(-1, M))`` (Davis & Recht 2025, Algorithm 1),
  computed on the gathered rewards and sliced to this process exactly as TRL slices its own.

Everything else -- generation (including vLLM), importance ratios, clipping, KL, loss aggregation
(``loss_type``), logging and distributed launch -- stays TRL's. TRL's ``scale_rewards`` is ignored: the
scheme defines the whole weight. The module imports without TRL (so the core test suite can collect
it); using the trainer needs ``pip install 'rlvrlens[trl]'``.

:class:`PromptSuccessRecorder` is a ``TrainerCallback`` that writes one JSONL record per prompt group
per generation (and per evaluation group when TRL evaluates), flushed as it is written.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from rlvrlens.core.records import SCHEME, TRL_ARGS, append_lines, json_ready
from rlvrlens.objectives import WeightScheme
from rlvrlens.core.intervals import wilson_interval

try:  # TRL is an optional extra; the module must import without it.
    import torch
    from accelerate.utils import gather_object
    from transformers import TrainerCallback
    from trl import GRPOTrainer
    from trl import __version__ as TRL_VERSION

    _TRL_IMPORT_ERROR: ImportError | None = None
except ImportError as err:  # pragma: no cover - exercised only without the extra
    GRPOTrainer = TrainerCallback = object  # type: ignore[assignment,misc]
    TRL_VERSION = None
    _TRL_IMPORT_ERROR = err

__all__ = [
    "TESTED_TRL_VERSIONS",
    "PromptSuccessRecorder",
    "WeightSchemeGRPOTrainer",
    "group_records",
    "scheme_advantages",
]

#: TRL versions the adapter was tested with: ``[lower, upper)`` (see the ``trl`` extra).
TESTED_TRL_VERSIONS = ("1.14.2", "1.17")
#: The ``GRPOConfig`` fields :class:`PromptSuccessRecorder` records (those that decide the dynamics), where TRL has them.
RECORDED_TRL_ARGS = (
    "num_generations", "beta", "loss_type", "scale_rewards", "use_bias_correction_kl", "num_iterations", "epsilon",
    "epsilon_high", "delta", "learning_rate", "lr_scheduler_type", "warmup_steps", "warmup_ratio", "weight_decay",
    "adam_beta1", "adam_beta2", "adam_epsilon", "max_grad_norm", "optim", "max_steps", "num_train_epochs",
    "per_device_train_batch_size", "gradient_accumulation_steps", "steps_per_generation", "temperature", "top_p",
    "top_k", "min_p", "repetition_penalty", "max_completion_length", "mask_truncated_completions",
    "top_entropy_quantile", "importance_sampling_level", "sync_ref_model", "reward_weights",
    "multi_objective_aggregation", "seed",
)


def scheme_advantages(scheme: WeightScheme, rewards: object, num_generations: int) -> np.ndarray:
    """Advantages of a flat batch of rewards laid out as consecutive groups of ``num_generations``.

    ``Z_i = (1 - R_i) a[S_i] + R_i b[S_i]``, ``S_i`` the number of other right answers in the group
    (Davis & Recht 2025, Algorithm 1), via :meth:`WeightScheme.weights` on ``R.reshape(-1, M)``.

    Parameters
    ----------
    scheme : WeightScheme
        The weight scheme; its ``M`` must equal ``num_generations``.
    rewards : array_like, shape (N,)
        Rewards of ``N = G * num_generations`` completions, group ``g`` at ``g*M:(g+1)*M``.
    num_generations : int
        TRL's group size.

    Returns
    -------
    numpy.ndarray, shape (N,)

    Raises
    ------
    ValueError
        If ``num_generations != scheme.M``, ``N`` is not a multiple of it, a reward is missing
        (NaN: every reward function returned ``None``) or not finite, or the rewards are not 0/1 and
        the scheme has no formula for real-valued rewards.

    Examples
    --------
    >>> from rlvrlens.objectives import rloo
    >>> scheme_advantages(rloo(2), [1.0, 0.0, 1.0, 1.0], 2).tolist()
    [1.0, -1.0, 0.0, 0.0]
    """
    if not isinstance(scheme, WeightScheme):
        raise TypeError(f"scheme must be a rlvrlens WeightScheme, got {type(scheme).__name__}")
    if num_generations != scheme.M:
        raise ValueError(
            f"num_generations must equal the scheme's group size M = {scheme.M} "
            f"(scheme {scheme.name!r}), got num_generations = {num_generations}"
        )
    R = np.asarray(rewards, dtype=float)
    if R.ndim != 1 or R.size % scheme.M != 0:
        raise ValueError(
            f"rewards must be a flat array whose length is a multiple of M = {scheme.M}, "
            f"got shape {R.shape}"
        )
    if np.isnan(R).any():
        raise ValueError(
            "rewards: every reward function returned None for some completion; a group weight "
            "needs every reward of the group (return 0.0 for a wrong answer instead of None)"
        )
    try:
        Z = scheme.weights(R.reshape(-1, scheme.M))
    except ValueError as err:
        raise ValueError(
            f"rewards: {err}. With TRL, the rewards are sum(reward_weights * reward_funcs); make it "
            "0/1 (one 0/1 reward function, reward_weights=[1.0]) for this scheme"
        ) from None
    return Z.reshape(-1)


def group_records(
    step: int,
    split: str,
    prompt_ids: Sequence[str],
    rewards: object,
    num_generations: int,
) -> list[dict[str, Any]]:
    """One per-prompt success record per group of ``num_generations`` consecutive completions.

    Record fields: ``step`` (optimizer steps taken by the policy that sampled the group), ``split``
    (``"train"`` or ``"eval"``), ``prompt_id``, ``n`` (group size), ``p_hat`` (mean reward: the
    success estimate for 0/1 rewards), ``rewards`` and ``source = "trl"``.

    Examples
    --------
    >>> group_records(3, "train", ["a", "a", "b", "b"], [1.0, 0.0, 1.0, 1.0], 2)[1]
    {'step': 3, 'split': 'train', 'prompt_id': 'b', 'n': 2, 'p_hat': 1.0, 'rewards': [1.0, 1.0], 'source': 'trl'}
    """
    R = np.asarray(rewards, dtype=float).reshape(-1, num_generations)
    if len(prompt_ids) != R.size:
        raise ValueError(f"prompt_ids must have one entry per reward ({R.size}), got {len(prompt_ids)}")
    records = []
    for g, group in enumerate(R):
        ids = set(prompt_ids[g * num_generations : (g + 1) * num_generations])
        if len(ids) != 1:
            raise ValueError(f"prompt_ids: group {g} mixes prompts {sorted(ids)}")
        records.append(
            {
                "step": int(step),
                "split": split,
                "prompt_id": ids.pop(),
                "n": int(num_generations),
                "p_hat": float(np.nanmean(group)),
                "rewards": group.tolist(),
                "source": "trl",
            }
        )
    return records


def _require_trl() -> None:
    if _TRL_IMPORT_ERROR is not None:
        raise ImportError(
            "the TRL adapter needs TRL: pip install 'rlvrlens[trl]'"
        ) from _TRL_IMPORT_ERROR


class PromptSuccessRecorder(TrainerCallback):
    """Write per-prompt success records of a :class:`WeightSchemeGRPOTrainer` run to JSONL files.

    Pass it in ``callbacks=[...]``. Every generation batch (and every evaluation batch when TRL's
    ``eval_strategy`` is on) appends one :func:`group_records` record per prompt group to ``path``.
    After each evaluation, one line per evaluation goes to ``success_path`` in the shape of
    rlvrlens's own ``success.jsonl``: ``{"step", "method": "estimate(K=n)", "p": [...],
    "prompt_ids": [...], "source": "trl"}`` (prompts in the order first seen; ``K`` is the number of
    completions scored per prompt). Lines are written by the main process only and flushed at once,
    so a killed run keeps what it saw.

    Before the first records, :class:`WeightSchemeGRPOTrainer` has it write, next to ``path``,
    ``scheme.json`` (:meth:`WeightScheme.describe`: name, ``M``, parameters and the coefficients
    ``a``, ``b``, so that a designed scheme is known exactly) and ``trl_config.json`` (the
    ``GRPOConfig`` fields of :data:`RECORDED_TRL_ARGS`, the number of processes and TRL's version):
    ``rlvrlens explain --run`` reads them.

    Parameters
    ----------
    path : str or os.PathLike
        The per-group JSONL file (appended to; parent directories are created).
    success_path : str or os.PathLike, optional
        The per-evaluation summary file; none is written without it.
    """

    def __init__(self, path: str | os.PathLike, success_path: str | os.PathLike | None = None) -> None:
        _require_trl()
        self.path = Path(path)
        self.success_path = None if success_path is None else Path(success_path)
        self._eval_groups: list[dict[str, Any]] = []
        self._described = False

    def describe_run(self, scheme: WeightScheme, args: Any) -> None:
        """Write ``scheme.json`` and ``trl_config.json`` next to ``path`` (once; later calls do nothing).

        Parameters
        ----------
        scheme : WeightScheme
            The scheme the trainer weighs the groups with.
        args : GRPOConfig
            The run's TRL arguments.
        """
        if self._described:
            return
        fields = json.loads(args.to_json_string())
        trl_args = {k: fields[k] for k in RECORDED_TRL_ARGS if k in fields}
        trl_args.update(num_processes=int(getattr(args, "world_size", 1)), trl_version=TRL_VERSION)
        record = {**scheme.describe(), "source": "trl", "recorded_by": "rlvrlens WeightSchemeGRPOTrainer"}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for name, data in ((SCHEME, record), (TRL_ARGS, trl_args)):
            (self.path.parent / name).write_text(json.dumps(json_ready(data), indent=2, allow_nan=False) + "\n",
                                                 encoding="utf-8")
        self._described = True

    def write(self, records: Sequence[dict[str, Any]]) -> None:
        """Append ``records`` as JSON lines to ``path`` (and keep evaluation groups for the summary)."""
        _append_jsonl(self.path, records)
        self._eval_groups.extend(r for r in records if r["split"] == "eval")

    def on_evaluate(self, args, state, control, **kwargs):  # noqa: D102 - TrainerCallback hook
        if self.success_path is not None and self._eval_groups:
            wins: dict[str, float] = {}
            counts: dict[str, int] = {}
            for r in self._eval_groups:
                wins[r["prompt_id"]] = wins.get(r["prompt_id"], 0.0) + sum(r["rewards"])
                counts[r["prompt_id"]] = counts.get(r["prompt_id"], 0) + r["n"]
            ids = list(wins)
            K = sorted(set(counts.values()))
            n = np.array([counts[i] for i in ids], dtype=float)
            low, high = wilson_interval(np.array([wins[i] for i in ids]), n)
            _append_jsonl(self.success_path, [{
                "step": int(state.global_step),
                "method": f"estimate(K={K[0] if len(K) == 1 else K})",
                "p": [wins[i] / counts[i] for i in ids],
                "low": low.tolist(),
                "high": high.tolist(),
                "prompt_ids": ids,
                "source": "trl",
            }])
        self._eval_groups = []


def _append_jsonl(path: Path, records: Sequence[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    append_lines(path, records, fsync=False)


class WeightSchemeGRPOTrainer(GRPOTrainer):
    """TRL's ``GRPOTrainer`` with advantages from an rlvrlens :class:`WeightScheme`.

    Takes every ``GRPOTrainer`` argument plus ``scheme`` (keyword-only) and ``prompt_id_key``.

    Parameters
    ----------
    scheme : WeightScheme
        Catalogue or designed scheme; ``scheme.M`` must equal ``GRPOConfig.num_generations``.
    prompt_id_key : str
        Dataset column holding a prompt id for :class:`PromptSuccessRecorder`; without that column
        the prompt text is the id.

    Notes
    -----
    Advantages are ``scheme_advantages(scheme, R, M)`` on the rewards gathered over all processes
    (``R = sum_k reward_weights[k] * reward_funcs[k]``), then sliced to this process as TRL does.
    In evaluation with ``num_generations_eval != M`` the scheme does not apply: TRL's own advantages
    are kept there (they only enter the logged eval loss); the rewards are still recorded.
    """

    def __init__(self, *args: Any, scheme: WeightScheme, prompt_id_key: str = "prompt_id", **kwargs: Any):
        _require_trl()
        if not isinstance(scheme, WeightScheme):
            raise TypeError(f"scheme must be a rlvrlens WeightScheme, got {type(scheme).__name__}")
        _warn_untested_version()
        super().__init__(*args, **kwargs)
        if self.num_generations != scheme.M:
            raise ValueError(
                f"num_generations must equal the scheme's group size M = {scheme.M} "
                f"(scheme {scheme.name!r}), got GRPOConfig.num_generations = {self.num_generations}"
            )
        if self.multi_objective_aggregation != "sum_then_normalize":
            raise ValueError(
                "multi_objective_aggregation must be 'sum_then_normalize' with a weight scheme "
                f"(the scheme weighs the summed reward), got {self.multi_objective_aggregation!r}"
            )
        self.scheme = scheme
        self.prompt_id_key = prompt_id_key
        self._gathered_rewards: torch.Tensor | None = None
        self._gathered_prompt_ids: list[str] | None = None

    def _recorders(self) -> list[PromptSuccessRecorder]:
        return [c for c in self.callback_handler.callbacks if isinstance(c, PromptSuccessRecorder)]

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._gathered_rewards = rewards_per_func
        if self._recorders():  # collective op: every rank has the same callbacks
            ids = [_prompt_id(x, self.prompt_id_key) for x in inputs]
            self._gathered_prompt_ids = gather_object(ids)
        return rewards_per_func

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        mode = "train" if self.model.training else "eval"
        M = self.num_generations if mode == "train" else self.num_generations_eval
        per_func = self._gathered_rewards
        rewards = (per_func * self.reward_weights.to(per_func.device).unsqueeze(0)).nansum(dim=1)
        rewards[torch.isnan(per_func).all(dim=1)] = torch.nan
        rewards = rewards.cpu().numpy()
        if mode == "train" or M == self.scheme.M:
            Z = scheme_advantages(self.scheme, rewards, M)
            local = len(output["advantages"])
            rank = self.accelerator.process_index
            adv = torch.as_tensor(Z, dtype=output["advantages"].dtype)
            output["advantages"] = adv[rank * local : (rank + 1) * local].to(output["advantages"].device)
            logged = self._logs["advantages"]  # TRL logged its own advantages; log ours instead
            for _ in range(min(len(Z), len(logged))):
                logged.pop()
            logged.extend(Z.tolist())
        recorders = self._recorders()
        if recorders and self.accelerator.is_main_process:
            records = group_records(self.state.global_step, mode, self._gathered_prompt_ids, rewards, M)
            for recorder in recorders:
                recorder.describe_run(self.scheme, self.args)
                recorder.write(records)
        self._gathered_rewards = self._gathered_prompt_ids = None
        return output


def _prompt_id(example: dict[str, Any], key: str) -> str:
    if key in example:
        return str(example[key])
    prompt = example["prompt"]
    return prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True)


def _warn_untested_version() -> None:
    from packaging.version import Version

    low, high = TESTED_TRL_VERSIONS
    if not Version(low) <= Version(TRL_VERSION) < Version(high):
        warnings.warn(
            f"rlvrlens's TRL adapter was tested with trl>={low},<{high}; found trl {TRL_VERSION}. "
            "It overrides GRPOTrainer._calculate_rewards and _generate_and_score_completions.",
            stacklevel=3,
        )
