"""A run's configuration in the trainer's words (from TRL's and verl's configs), and the scheme it names.

:func:`trl_settings` maps TRL's ``GRPOConfig`` fields (TRL 1.16's defaults) and :func:`verl_settings`
a verl trainer YAML (``ppo_trainer.yaml``) to the field names of
:class:`rlvrlens.training.TrainConfig` (a plain dict: this layer does not import the trainer);
``forecast`` builds the config from it, ``explain --run`` audits a recorded run with it. What has
no counterpart is listed in :attr:`RunSettings.refused` (keyed by the trainer field, or the
framework's option, it would set) with the reason: a forecast refuses to run on it unless the user
sets that field, ``explain --run`` reports it as not modelled.

:func:`read_scheme` builds the scheme a run used from a catalogue name, a framework preset or a
JSON file (``rlvrlens design --json`` output, or the ``scheme.json`` that
:class:`~rlvrlens.training.trl_adapter.PromptSuccessRecorder` writes). Imports core, objectives,
dynamics only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from rlvrlens.core.kl import ESTIMATOR_TREATMENT
from rlvrlens.explain.frameworks import FrameworkConfig, from_trl_config, from_verl_config
from rlvrlens.explain.report import config_kl_estimator
from rlvrlens.objectives import PRESETS, SCHEMES, WeightScheme, get_preset, get_scheme
from rlvrlens.objectives.spec import load_scheme, scheme_from_description

#: TRL ``loss_type`` -> the trainer's ``loss_aggregation``.
TRL_LOSS = {"dapo": "dapo", "grpo": "seq-mean-token-mean", "bnpo": "bnpo", "dr_grpo": "seq-sum-constant"}
#: Hugging Face ``optim`` names -> the trainer's ``optim`` (the torch AdamW variants and plain SGD).
HF_OPTIM = {"adamw_torch": "adamw", "adamw_torch_fused": "adamw", "adamw_hf": "adamw", "adamw": "adamw",
            "sgd": "sgd"}


@dataclass(frozen=True)
class RunSettings:
    """A framework configuration in the trainer's field names (see the module docstring).

    Attributes
    ----------
    framework : str
        ``"TRL"`` or ``"verl"``.
    fields : dict
        :class:`~rlvrlens.training.TrainConfig` field values (only those the file decides).
    scheme : WeightScheme
        The framework's own advantages as a scheme (its preset).
    kl_estimator : str or None
        The estimator (:data:`rlvrlens.core.kl.EXPLAIN_ESTIMATORS`) whose treatment the run's KL term
        has (``"reward"`` for the KL in the reward); None without a KL term.
    framework_config : FrameworkConfig
        :func:`~rlvrlens.explain.from_trl_config` / :func:`~rlvrlens.explain.from_verl_config` of the file.
    refused : dict
        Option (trainer field or framework option) -> why it has no counterpart in the trainer.
    notes : tuple of str
        How options were mapped where the mapping is not one to one.
    """

    framework: str
    fields: dict[str, Any]
    scheme: WeightScheme
    kl_estimator: str | None
    framework_config: FrameworkConfig
    refused: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)


def trl_settings(cfg: Mapping[str, Any]) -> RunSettings:
    """Map TRL ``GRPOConfig`` fields to the trainer's (one process; defaults: TRL 1.16's).

    ``beta`` with ``use_bias_correction_kl`` (k3 times the importance ratio, per token) has the
    gradient of k2 per token, so it maps to ``kl_estimator="k2", kl_level="token"``; without the
    correction to ``k3`` per token. ``loss_type`` maps by :data:`TRL_LOSS` (``dr_grpo`` divides by
    ``max_completion_length``), ``optim`` by :data:`HF_OPTIM`, ``warmup_steps`` below 1 is a ratio
    of ``max_steps`` (``warmup_ratio`` too), ``prompts_per_step`` is
    ``per_device_train_batch_size * gradient_accumulation_steps / num_generations``.

    Parameters
    ----------
    cfg : mapping
        ``GRPOConfig`` field names to values; fields not given take TRL's defaults.

    Returns
    -------
    RunSettings
        The trainer fields the config fixes, the scheme and KL estimator it implies, the mapped
        :class:`~rlvrlens.explain.frameworks.FrameworkConfig`, the fields refused (with the reason:
        a setting the trainer does not have) and notes.

    Raises
    ------
    TypeError, ValueError
        As :func:`~rlvrlens.explain.frameworks.from_trl_config`, or for a non-numeric value of a
        numeric field.

    Examples
    --------
    >>> s = trl_settings({"num_generations": 8, "beta": 0.04, "max_steps": 100, "loss_type": "dr_grpo",
    ...                   "max_completion_length": 16})
    >>> s.fields["kl_estimator"], s.fields["loss_aggregation"], s.fields["aggregation_constant"], s.kl_estimator
    ('k2', 'seq-sum-constant', 16.0, 'k2')
    >>> trl_settings({"lr_scheduler_type": "cosine"}).refused["lr_scheduler_type"]
    "lr_scheduler_type = 'cosine': the trainer has constant and linear schedules"
    """
    fc = from_trl_config(cfg)
    get = cfg.get
    M = fc.M
    fields: dict[str, Any] = {"num_generations": M}
    refused: dict[str, str] = {}
    notes: list[str] = []
    for name, key, default in (("learning_rate", "learning_rate", 1e-6), ("weight_decay", "weight_decay", 0.0),
                               ("adam_beta1", "adam_beta1", 0.9), ("adam_beta2", "adam_beta2", 0.999),
                               ("adam_epsilon", "adam_epsilon", 1e-8), ("max_grad_norm", "max_grad_norm", 1.0),
                               ("temperature", "temperature", 1.0), ("top_p", "top_p", 1.0),
                               ("epsilon_low", "epsilon", 0.2)):
        fields[name] = _number(key, get(key, default))
    fields["epsilon_high"] = _number("epsilon_high", get("epsilon_high") if get("epsilon_high") is not None
                                     else fields["epsilon_low"])
    fields["num_iterations"] = int(get("num_iterations", 1))
    fields["seed"] = int(get("seed", 42))
    steps = int(get("max_steps", -1))
    if steps > 0:
        fields["steps"] = steps
    else:
        refused["steps"] = (f"max_steps = {steps}: TRL then trains num_train_epochs over the dataset, a number of "
                            "steps the config alone does not fix")
    schedule = str(get("lr_scheduler_type", "linear"))
    if schedule in ("constant", "linear"):
        fields["lr_scheduler_type"] = schedule
    elif schedule == "constant_with_warmup":
        fields["lr_scheduler_type"] = "constant"
    else:
        refused["lr_scheduler_type"] = f"lr_scheduler_type = {schedule!r}: the trainer has constant and linear schedules"
    warmup = _number("warmup_steps", get("warmup_steps", 0))
    ratio = _number("warmup_ratio", get("warmup_ratio", 0.0))
    if 0 < warmup < 1:
        ratio, warmup = warmup, 0
    if ratio > 0:
        if steps > 0:
            fields["warmup_steps"] = math.ceil(ratio * steps)
            notes.append(f"warm-up ratio {ratio:g} of max_steps {steps}: warmup_steps = {fields['warmup_steps']}")
        else:
            refused["warmup_steps"] = f"a warm-up ratio ({ratio:g}) of an unknown number of steps (max_steps unset)"
    else:
        fields["warmup_steps"] = int(warmup)
    optim = str(get("optim", "adamw_torch_fused"))
    if optim in HF_OPTIM:
        fields["optim"] = HF_OPTIM[optim]
    else:
        refused["optim"] = f"optim = {optim!r}: the trainer has torch's AdamW, Adam and SGD"
    loss_type = str(get("loss_type", "dapo"))
    length = int(get("max_completion_length", 512))
    fields["max_new_tokens"] = length
    if loss_type in TRL_LOSS:
        fields["loss_aggregation"] = TRL_LOSS[loss_type]
        if loss_type == "dr_grpo":
            fields["aggregation_constant"] = float(length)
    else:
        refused["loss_aggregation"] = (f"loss_type = {loss_type!r}: a loss the trainer does not have (its on-policy "
                                       "step: rlvrlens explain --trl-config; give --loss-aggregation to forecast that)")
    fields["beta"] = fc.beta or 0.0
    if fc.beta:
        corrected = fc.kl_treatment == ESTIMATOR_TREATMENT["k2"]
        fields["kl_estimator"], fields["kl_level"] = ("k2" if corrected else "k3"), "token"
        if corrected:
            notes.append("beta with use_bias_correction_kl: k3 times the importance ratio on each token has the "
                         "gradient of k2 on each token, log(pi/pi_ref) grad log pi: kl_estimator k2, kl_level token "
                         "(per token: the sum over tokens is not the sequence's KL for answers of several tokens)")
    processes = int(get("num_processes", 1))
    batch = int(get("per_device_train_batch_size", 8)) * int(get("gradient_accumulation_steps", 1)) * processes
    if batch % M:
        refused["prompts_per_step"] = (f"per_device_train_batch_size x gradient_accumulation_steps = {batch} "
                                       f"completions per step is not a multiple of num_generations = {M}")
    else:
        fields["prompts_per_step"] = batch // M
        accumulation = int(get("gradient_accumulation_steps", 1))
        fields["gradient_accumulation_steps"] = accumulation if (batch // M) % accumulation == 0 else 1
        notes.append(f"prompts_per_step = {batch // M} ({batch} completions per step over {processes} process(es))")
    generation = get("steps_per_generation")
    if generation is not None and int(generation) > int(get("gradient_accumulation_steps", 1)):
        refused["steps_per_generation"] = (f"steps_per_generation = {generation}: one generated batch feeds several "
                                           "optimizer steps (off-policy after the first)")
    for key, default in (("top_k", 0), ("min_p", None), ("repetition_penalty", 1.0)):
        if get(key, default) not in (default, None) and not (key == "top_k" and get(key) in (0, -1)):
            refused[key] = f"{key} = {get(key)!r}: sampling other than the policy's own distribution"
    if fc.params.get("scale_rewards") == "batch":
        refused["scheme"] = ("scale_rewards = 'batch': TRL divides by the reward std of each batch, which changes as "
                             "the run moves (give the scheme with --scheme)")
    _add_not_covered(refused, fc, handled=("num_iterations", "loss_type"))
    return RunSettings("TRL", fields, _preset_scheme(fc), config_kl_estimator(fc), fc, refused, tuple(notes))


def verl_settings(cfg: Mapping[str, Any]) -> RunSettings:
    """Map a verl trainer YAML (``ppo_trainer.yaml`` layout and defaults) to the trainer's fields.

    ``actor_rollout_ref.actor.optim`` (``lr``, ``weight_decay``, ``betas``, ``lr_warmup_steps`` or
    ``lr_warmup_steps_ratio``, ``warmup_style`` / ``lr_scheduler_type``: constant), ``actor.grad_clip``,
    ``actor.clip_ratio(_low/_high)``, ``actor.ppo_epochs`` (``num_iterations``), ``loss_agg_mode``
    (``token-mean`` -> ``dapo``, ``seq-mean-token-mean``, ``seq-mean-token-sum`` and
    ``-sum-norm`` -> ``seq-sum-constant``), the KL in the loss (per token) or in the reward,
    ``rollout.temperature/top_p/response_length``, ``data.train_batch_size`` (prompts per step),
    ``trainer.total_training_steps``. Refused: mini-batches smaller than the batch (several
    optimizer steps per generated batch), schedules other than constant, entropy bonuses.

    Parameters
    ----------
    cfg : mapping
        The trainer config as a nested mapping (the parsed YAML); unresolved ``${...}``
        interpolations are read as unset.

    Returns
    -------
    RunSettings
        The trainer fields the config fixes, the scheme and KL estimator it implies, the mapped
        :class:`~rlvrlens.explain.frameworks.FrameworkConfig`, the fields refused (with the reason)
        and notes.

    Raises
    ------
    TypeError, ValueError
        As :func:`~rlvrlens.explain.frameworks.from_verl_config`, or for a non-numeric value of a
        numeric field.

    Examples
    --------
    >>> s = verl_settings({"algorithm": {"adv_estimator": "grpo"}, "trainer": {"total_training_steps": 50},
    ...                    "data": {"train_batch_size": 4},
    ...                    "actor_rollout_ref": {"rollout": {"n": 8}, "actor": {"use_kl_loss": True,
    ...                                          "ppo_mini_batch_size": 4, "optim": {"lr": 1e-5}}}})
    >>> s.fields["kl_estimator"], s.fields["weight_decay"], s.fields["steps"], s.refused
    ('k3', 0.01, 50, {})
    """
    fc = from_verl_config(cfg)

    def get(dotted: str, default: Any = None) -> Any:
        node: Any = cfg
        for part in dotted.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return default
            node = node[part]
        return default if isinstance(node, str) and node.startswith("${") else node  # an unresolved interpolation

    actor, rollout = "actor_rollout_ref.actor", "actor_rollout_ref.rollout"
    fields: dict[str, Any] = {"num_generations": fc.M, "optim": "adamw"}
    refused: dict[str, str] = {}
    notes: list[str] = []
    fields["learning_rate"] = _number(f"{actor}.optim.lr", get(f"{actor}.optim.lr", 1e-6))
    fields["weight_decay"] = _number(f"{actor}.optim.weight_decay", get(f"{actor}.optim.weight_decay", 0.01))
    betas = get(f"{actor}.optim.betas", [0.9, 0.999])
    fields["adam_beta1"], fields["adam_beta2"] = (_number(f"{actor}.optim.betas", b) for b in betas)
    fields["max_grad_norm"] = _number(f"{actor}.grad_clip", get(f"{actor}.grad_clip", 1.0))
    clip = _number(f"{actor}.clip_ratio", get(f"{actor}.clip_ratio", 0.2))
    fields["epsilon_low"] = _number(f"{actor}.clip_ratio_low", get(f"{actor}.clip_ratio_low", clip))
    fields["epsilon_high"] = _number(f"{actor}.clip_ratio_high", get(f"{actor}.clip_ratio_high", clip))
    fields["num_iterations"] = int(get(f"{actor}.ppo_epochs", 1))
    steps = get("trainer.total_training_steps")
    if isinstance(steps, int) and steps > 0:
        fields["steps"] = steps
    else:
        refused["steps"] = "trainer.total_training_steps is not set (verl then trains total_epochs over the data)"
    style = str(get(f"{actor}.optim.lr_scheduler_type", get(f"{actor}.optim.warmup_style", "constant")))
    if style == "constant":
        fields["lr_scheduler_type"] = "constant"
    else:
        refused["lr_scheduler_type"] = f"{actor}.optim.warmup_style = {style!r}: the trainer has constant and linear"
    warmup, ratio = get(f"{actor}.optim.lr_warmup_steps", -1), get(f"{actor}.optim.lr_warmup_steps_ratio", 0.0)
    if isinstance(warmup, int) and warmup > 0:
        fields["warmup_steps"] = warmup
    elif ratio:
        if "steps" in fields:
            fields["warmup_steps"] = int(_number(f"{actor}.optim.lr_warmup_steps_ratio", ratio) * fields["steps"])
        else:
            refused["warmup_steps"] = f"lr_warmup_steps_ratio = {ratio} of an unknown number of steps"
    else:
        fields["warmup_steps"] = 0
    length = int(get(f"{rollout}.response_length", get("data.max_response_length", 512)))
    fields["max_new_tokens"] = length
    agg = str(get(f"{actor}.loss_agg_mode", "token-mean"))
    fields["loss_aggregation"] = {"token-mean": "dapo", "seq-mean-token-mean": "seq-mean-token-mean"}.get(
        agg, "seq-sum-constant")
    if agg.startswith("seq-mean-token-sum"):
        fields["aggregation_constant"] = float(length) if agg.endswith("-norm") else 1.0
    fields["temperature"] = _number(f"{rollout}.temperature", get(f"{rollout}.temperature", 1.0))
    fields["top_p"] = _number(f"{rollout}.top_p", get(f"{rollout}.top_p", 1.0))
    if get(f"{rollout}.top_k", -1) not in (-1, 0, None):
        refused["top_k"] = f"{rollout}.top_k = {get(f'{rollout}.top_k')!r}: sampling other than the policy's own"
    batch = get("data.train_batch_size", 1024)
    mini = get(f"{actor}.ppo_mini_batch_size", 256)
    fields["prompts_per_step"] = int(batch)
    if int(mini) < int(batch):
        refused["prompts_per_step"] = (f"{actor}.ppo_mini_batch_size = {mini} < data.train_batch_size = {batch}: "
                                       f"{int(batch) // int(mini)} optimizer steps per generated batch (off-policy "
                                       "after the first)")
    fields["beta"] = fc.beta or 0.0
    if fc.beta:
        raw = fc.kl_estimator
        if raw not in ("k1", "k2", "k3"):
            refused["kl_estimator"] = f"KL estimator {raw!r}: its expected gradient is not one of the theory's"
        else:
            fields["kl_estimator"], fields["kl_level"] = raw, "token"
            fields["kl_in_reward"] = fc.kl_treatment == "reward"
    _add_not_covered(refused, fc, handled=("actor.ppo_epochs",))
    if fc.dynamic_sampling:
        notes.append("dynamic sampling: the scheme is the preset's with all-equal groups dropped and refilled")
    return RunSettings("verl", fields, _preset_scheme(fc), config_kl_estimator(fc), fc, refused, tuple(notes))


def _add_not_covered(refused: dict[str, str], fc: FrameworkConfig, handled: tuple[str, ...]) -> None:
    """The options :mod:`~rlvrlens.explain.frameworks` finds not covered, but those mapped here (``handled``)."""
    for line in fc.not_covered:
        key = line.split(" = ")[0].split(":")[0]
        if key not in handled:
            refused.setdefault(key, line)


def _preset_scheme(fc: FrameworkConfig) -> WeightScheme:
    """The weights of the framework's advantages: the scheme the config names (verl's ``rlvrlens`` plugin),
    else its preset."""
    if fc.scheme is not None:
        return fc.scheme
    params = dict(fc.params)
    if params.get("scale_rewards") == "batch":  # the batch's std at p = 1/2: a scale, the shape is Dr. GRPO's
        params["p_batch"] = 0.5
    return get_preset(fc.preset, fc.M, **params)


def read_scheme(spec: str, M: int | None = None, params: Mapping[str, Any] | None = None, *,
                what: str = "--scheme") -> WeightScheme:
    """The scheme ``spec`` names: a catalogue scheme, a framework preset, or a JSON file of coefficients.

    A catalogue scheme or preset is built with ``M`` and ``params``; a JSON file holds ``a`` and
    ``b`` (``rlvrlens design --json`` output, or :meth:`WeightScheme.describe` as the TRL recorder's
    ``scheme.json``: :func:`rlvrlens.objectives.spec.load_scheme`). A file naming a catalogue scheme
    whose coefficients it reproduces gives the catalogue's scheme (with its formula for real-valued
    rewards).

    Parameters
    ----------
    spec : str
        A catalogue scheme name, a preset name, or the path of a JSON file.
    M : int, optional
        Group size: required for a name; for a file, the scheme's ``M`` must equal it when given.
    params : mapping, optional
        Keyword parameters of the named scheme or preset (not allowed with a file).
    what : str, default "--scheme"
        The option named in error messages.

    Returns
    -------
    WeightScheme
        The scheme.

    Raises
    ------
    ValueError
        If ``spec`` is neither a known name nor a JSON file, a name comes without ``M``, a file comes
        with ``params`` or its ``M`` differs, or the scheme or file is invalid.

    Examples
    --------
    >>> read_scheme("rloo", 4).name, read_scheme("trl-grpo", 4).params["scale_rewards"]
    ('rloo', 'group')
    >>> read_scheme("nope", 4)
    Traceback (most recent call last):
    ...
    ValueError: --scheme 'nope' is neither a catalogue scheme, a preset nor a JSON file (catalogue: ...
    """
    params = dict(params or {})
    if spec in SCHEMES or spec in PRESETS:
        if M is None:
            raise ValueError(f"{what} {spec!r} needs the group size: give --num-generations M")
        return get_scheme(spec, M, **params) if spec in SCHEMES else get_preset(spec, M, **params)
    path = Path(spec)
    if not (path.suffix == ".json" or path.is_file()):
        raise ValueError(f"{what} {spec!r} is neither a catalogue scheme, a preset nor a JSON file (catalogue: "
                         f"{', '.join(SCHEMES)}; presets: {', '.join(PRESETS)})")
    if params:
        raise ValueError(f"{what} {spec} holds its coefficients; scheme parameters ({', '.join(params)}) do not apply")
    return _for_run(load_scheme(path, what), M, f"{what} {spec}")


def scheme_from_dict(data: Any, M: int | None = None, *, where: str = "scheme") -> WeightScheme:
    """The scheme of a recorded JSON object (:func:`rlvrlens.objectives.spec.scheme_from_description`:
    ``WeightScheme.describe()``, at the top level or under ``"scheme"``), checked against the run's ``M``."""
    return _for_run(scheme_from_description(data, where), M, where)


def _for_run(scheme: WeightScheme, M: int | None, where: str) -> WeightScheme:
    if M is not None and M != scheme.M:
        raise ValueError(f"{where} is a scheme for M = {scheme.M}, the run has M = {M}")
    return _catalogue_twin(scheme)


def _catalogue_twin(scheme: WeightScheme) -> WeightScheme:
    """The catalogue's (or a preset's) own scheme of that name and parameters when it has these coefficients."""
    registry = get_scheme if scheme.name in SCHEMES else get_preset if scheme.name in PRESETS else None
    if registry is None:
        return scheme
    try:
        twin = registry(scheme.name, scheme.M, **{k: tuple(v) if isinstance(v, list) else v
                                                   for k, v in scheme.params.items()})
    except (TypeError, ValueError):
        return scheme
    same = np.allclose(twin.a, scheme.a, rtol=1e-12, atol=1e-12) and np.allclose(twin.b, scheme.b, rtol=1e-12,
                                                                                atol=1e-12)
    return twin if same else scheme
