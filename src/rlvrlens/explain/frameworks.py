"""Read a TRL or verl training configuration as users keep it, and say what the theory makes of it.

:func:`from_trl_config` takes the fields of TRL's ``GRPOConfig`` (the YAML given to ``trl grpo
--config``, or the JSON of ``GRPOConfig.to_json_string()``); :func:`from_verl_config` a verl trainer
YAML (``algorithm.*``, ``actor_rollout_ref.actor.*``, ``actor_rollout_ref.rollout.n``). Both return a
:class:`FrameworkConfig`: the preset (:mod:`rlvrlens.objectives.presets`) and its parameters, the
group size, the KL coefficient and how the KL is estimated, dynamic sampling, and three lists:
the options *honoured* (they change the per-prompt weighting and are modelled), the options that
are *neutral* (they change nothing the theory predicts, with the reason), and the options the
theory does *not cover* (listed, never silently ignored). Unknown keys are ignored only when they
are not about the objective (logging, batch sizes, paths): the lists say which were read.

Sources: TRL ``trl/trainer/grpo_config.py`` and ``grpo_trainer.py`` (the installed TRL, 1.16: KL
``k3 = exp(ref - logp) - (ref - logp) - 1`` in the loss, multiplied by the importance ratio when
``use_bias_correction_kl``, which makes its gradient that of k2 on each token, the per-token
reverse KL ``KL(pi || pi_ref)`` as TRL's documentation names it: the sequence's only for one-token
answers); verl ``verl/trainer/config/ppo_trainer.yaml`` (volcengine/verl, commit
``008db456bf612da5543c9bb6e26fe654029ad5b8``: ``algorithm.adv_estimator: gae``,
``norm_adv_by_std_in_grpo: True``, ``use_kl_in_reward: False``, ``kl_penalty: kl``,
``kl_ctrl: {type: fixed, kl_coef: 0.001}``, ``actor.use_kl_loss: False``, ``kl_loss_coef: 0.001``,
``kl_loss_type: low_var_kl``, ``loss_agg_mode: token-mean``, ``entropy_coeff: 0``,
``ppo_epochs: 1``, ``rollout.n: 1``) and the DAPO recipe's ``algorithm.filter_groups.enable``;
checked again, with the estimators, KL names, loss modes and aggregations of verl 0.9.1 (the
release on PyPI: ``verl/trainer/ppo/core_algos.py``, ``ray_trainer.py``, ``trainer/config/actor/actor.yaml``),
against which ``tests/verl`` runs (the straight-through ``X+`` KL names; ``grpo_vectorized`` not
reading ``norm_adv_by_std_in_grpo``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from rlvrlens.core.budget import MAX_GROUP_SIZE
from rlvrlens.core.kl import DIVERGENCE, ESTIMATOR_TREATMENT, PI_REF, REF_PI, check_beta
from rlvrlens.objectives import WeightScheme, scheme_spec

#: verl's kl_loss_type / kl_penalty names -> this package's estimator names (verl core_algos.kl_penalty).
#: Any of them but "full" followed by "+" (``k3+``, ``low_var_kl+``, ...) keeps its value and takes the
#: k2 gradient (a straight-through estimator): the estimator "k2" (:func:`_verl_estimator`).
_VERL_KL = {"kl": "k1", "k1": "k1", "abs": "abs", "mse": "k2", "k2": "k2", "low_var_kl": "k3", "k3": "k3",
            "full": "full"}
#: verl adv_estimator -> preset.
_VERL_PRESETS = {"grpo": "verl-grpo", "grpo_vectorized": "verl-grpo-vectorized", "rloo": "verl-rloo",
                 "rloo_vectorized": "verl-rloo-vectorized", "gpg": "verl-gpg", "grpo_passk": "verl-grpo-passk",
                 "reinforce_plus_plus_baseline": "verl-reinforce-plus-plus-baseline"}
#: The estimator this package registers in verl (rlvrlens.training.verl_plugin): the scheme is in algorithm.rlvrlens.
_VERL_PLUGIN = "rlvrlens"
#: verl estimators the theory does not describe by (R_i, S_i) weights, with the reason (verl 0.9.1 core_algos).
_VERL_UNCOVERED = {
    "gae": "PPO with a learned critic: the advantage depends on a value network, not on the group's rewards",
    "reinforce_plus_plus": "token-level returns whitened over the batch with KL in the reward: not a function "
                           "of (R_i, S_i)",
    "remax": "baseline from a greedy rollout: depends on the policy's greedy answer, not on the group",
    "opo": "length-weighted baseline: depends on response lengths",
    "gdpo": "several rewards (algorithm.gdpo_reward_keys), each GRPO-normalised per group, summed with "
            "gdpo_reward_weights and whitened over the batch: the theory takes one 0/1 reward",
    "optimal_token_baseline": "a per-token baseline weighted by 1 - 2 pi_t + sum pi^2 (the policy's token "
                              "probabilities): likelihood-dependent, not a function of (R_i, S_i)",
    "tir_optimal_token_baseline": "optimal_token_baseline for multi-turn tool use: a per-token, likelihood-dependent "
                                  "baseline, not a function of (R_i, S_i)",
}
#: verl estimators whose config switch norm_adv_by_std_in_grpo reaches them (compute_advantage passes it to
#: the wired-in grpo; grpo_passk reads it from the config; registry estimators otherwise do not see it).
_VERL_NORM = ("grpo", "grpo_passk")
#: verl actor.policy_loss.loss_mode values whose on-policy step is the plain policy gradient (verl 0.9.1
#: core_algos: the importance ratio is 1 and its gradient the log-probability's), with the reason.
_VERL_ON_POLICY_LOSS = {
    "vanilla": "PPO's clipped ratio",
    "gspo": "the sequence ratio (the token's log-probability plus the detached sequence mean)",
    "sapo": "a soft gate with slope 1 at ratio 1",
    "gpg": "-log pi times the advantage",
    "cispo": "the detached ratio clamped to [1 - clip_ratio_low, 1 + clip_ratio_high], 1 on-policy, times log pi",
}
_TRL_LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo")
#: Why these loss types take the plain policy-gradient step on-policy (ratio 1): TRL 1.16 ``_compute_loss``.
_TRL_ON_POLICY = {
    "sapo": "the soft gate sigmoid(tau (r - 1)) 4/tau has slope 1 at the ratio r = 1 whatever tau, so the on-policy "
            "step is the plain policy gradient (aggregated like grpo)",
    "luspo": "on-policy the clipped ratio's gradient is the log-probability's, summed over each completion's tokens "
             "(no length normalisation): the plain sequence-level policy gradient",
    "vespo": "the detached Gamma weight exp(lambda + k log w - lambda w) is 1 at the on-policy sequence ratio w = 1, "
             "so the step is the plain policy gradient (aggregated like dapo)",
}
_VERL_AGG = ("token-mean", "token-sum", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm")


@dataclass(frozen=True)
class FrameworkConfig:
    """What a framework configuration means for the theory (see the module docstring).

    Attributes
    ----------
    framework : str
        ``"TRL"`` or ``"verl"``.
    preset : str
        Key of :data:`rlvrlens.objectives.PRESETS`, or ``"rlvrlens"``: verl's ``adv_estimator: rlvrlens``
        (this package's plugin), whose weights are ``scheme``.
    M : int
        Answers per prompt.
    params : dict
        The preset's parameters.
    beta : float or None
        The KL coefficient (None: no KL term).
    kl_estimator : str or None
        ``"k1"``, ``"k2"``, ``"k3"``, ``"exact"`` (None without KL).
    kl_treatment : str or None
        One of :data:`rlvrlens.core.kl.TREATMENTS`: what the estimator's expected gradient is.
    dynamic_sampling : bool
        DAPO's filter of groups whose rewards are all equal, with the batch refilled.
    honoured, neutral, not_covered : tuple of str
        ``"option = value: what it does"`` lines.
    scheme : WeightScheme or None
        The weights themselves when the config names a scheme rather than a preset (``preset ==
        "rlvrlens"``), built for ``M``.
    """

    framework: str
    preset: str
    M: int
    params: dict[str, Any] = field(default_factory=dict)
    beta: float | None = None
    kl_estimator: str | None = None
    kl_treatment: str | None = None
    dynamic_sampling: bool = False
    honoured: tuple[str, ...] = ()
    neutral: tuple[str, ...] = ()
    not_covered: tuple[str, ...] = ()
    scheme: WeightScheme | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"framework": self.framework, "preset": self.preset, "M": self.M, "params": dict(self.params),
                "beta": self.beta, "kl_estimator": self.kl_estimator, "kl_treatment": self.kl_treatment,
                "dynamic_sampling": self.dynamic_sampling, "honoured": list(self.honoured),
                "neutral": list(self.neutral), "not_covered": list(self.not_covered),
                "scheme": None if self.scheme is None else self.scheme.describe()}


#: Largest config file read (a TRL or verl config is a few KB).
MAX_CONFIG_BYTES = 2**20
#: Most nested levels and values a config may hold (YAML aliases counted each time they are used).
MAX_CONFIG_DEPTH, MAX_CONFIG_VALUES = 64, 100_000
#: YAML 1.2 floats without a dot (``1e-3``, ``4e-2``), read as numbers as OmegaConf (verl) reads them;
#: PyYAML's YAML 1.1 would keep them as strings.
_YAML_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")


def read_config_file(path: str | Path, what: str) -> dict[str, Any]:
    """A JSON or YAML file as a mapping (``what`` names the option in messages).

    YAML is read with the safe loader (no tags run code) and with ``1e-3`` as a number.

    Parameters
    ----------
    path : str or Path
        The config file (JSON is tried first, then YAML).
    what : str
        The option the file came from (``"--trl-config"``, ...), named in every error.

    Returns
    -------
    dict
        The file's top-level mapping.

    Raises
    ------
    FileNotFoundError, IsADirectoryError, PermissionError
        Naming the file, when it cannot be opened.
    ValueError
        Naming it, for a file that is not UTF-8 text, not JSON/YAML, not a mapping, larger than
        :data:`MAX_CONFIG_BYTES` or nested deeper or larger than :data:`MAX_CONFIG_DEPTH` /
        :data:`MAX_CONFIG_VALUES` (also when YAML aliases expand it).
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(21, "Is a directory", str(path))
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ValueError(f"{what}: {path} is {path.stat().st_size} bytes; a config file is at most {MAX_CONFIG_BYTES}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{what}: {path} is not a text file ({exc.reason} at byte {exc.start})") from None
    try:
        data = json.loads(text)
    except ValueError as json_error:  # JSONDecodeError, or an integer of more than 4300 digits
        try:
            data = yaml.load(text, Loader=_ConfigLoader)
        except yaml.YAMLError as exc:
            where = getattr(exc, "problem_mark", None)
            at = f" at line {where.line + 1}" if where is not None else ""
            reason = getattr(json_error, "msg", str(json_error))
            raise ValueError(f"{what}: {path} is neither JSON ({reason}) nor YAML{at}") from None
        except (RecursionError, ValueError):  # nesting beyond the parser's stack; digits beyond int's limit
            raise ValueError(f"{what}: {path} is nested deeper or holds larger numbers than a config does") from None
    except RecursionError:
        raise ValueError(f"{what}: {path} is nested deeper than a config is (at most {MAX_CONFIG_DEPTH} levels)") from None
    if not isinstance(data, dict):
        raise ValueError(f"{what}: {path} must hold a mapping of options, got {type(data).__name__}")
    _check_tree(data, what, path)
    return data


class _ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2's floats (``1e-3``)."""


_ConfigLoader.add_implicit_resolver("tag:yaml.org,2002:float", _YAML_FLOAT, list("-+0123456789"))


def _check_tree(data: Any, what: str, path: Path) -> None:
    """Refuse a config nested deeper than :data:`MAX_CONFIG_DEPTH` or with more than
    :data:`MAX_CONFIG_VALUES` values (aliases counted at each use: no exponential blow-up later)."""
    count, stack = 0, [(data, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if depth > MAX_CONFIG_DEPTH:
            raise ValueError(f"{what}: {path} is nested deeper than a config is (at most {MAX_CONFIG_DEPTH} levels)")
        if count > MAX_CONFIG_VALUES:
            raise ValueError(f"{what}: {path} holds more than {MAX_CONFIG_VALUES} values (YAML aliases counted "
                             "each time they are used)")
        children = node.values() if isinstance(node, Mapping) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children)


def _get(cfg: Mapping[str, Any], dotted: str, default: Any = None) -> Any:
    node: Any = cfg
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        if not isinstance(node, Mapping):
            raise ValueError(f"{'.'.join(parts[:i])} must be a mapping of options, got {node!r}")
        if part not in node:
            return default
        node = node[part]
    return node


def _number(name: str, value: Any, kind: type) -> Any:
    """``value`` as TRL reads a field of type ``kind``: its YAML values become argparse defaults, so
    a string is converted by the field's type (``beta: '4e-2'`` is 0.04; ``num_generations: 1e9`` is refused)."""
    if not isinstance(value, str):
        return value
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"{name} must be {'an integer' if kind is int else 'a number'}, got {value!r}") from None


def _int(name: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    value = _number(name, value, int)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (maximum and value > maximum):
        upper = f" and <= {maximum}" if maximum else ""
        raise ValueError(f"{name} must be an integer >= {minimum}{upper}, got {value!r}")
    return value


def _float(name: str, value: Any) -> float:
    """A KL coefficient: 0, or inside :data:`rlvrlens.core.kl.BETA_RANGE`."""
    return check_beta(_number(name, value, float), name=name, zero=True)


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


def from_trl_config(cfg: Mapping[str, Any]) -> FrameworkConfig:
    """Map TRL ``GRPOConfig`` fields (defaults: TRL 1.16's) to the theory.

    Honoured: ``num_generations`` (M), ``scale_rewards`` (``"group"``/``"batch"``/``"none"``, or the
    older ``true``/``false``), ``beta`` with ``use_bias_correction_kl`` (k3 times the ratio: the gradient of
    KL(pi||pi_ref); without it, that of KL(pi_ref||pi)), ``loss_type``: on-policy (the first step on a
    batch, the only one with ``num_iterations = 1``) the importance ratio is 1, and with equal
    completion lengths ``grpo``/``dr_grpo``/``dapo``/``bnpo`` scale the policy and KL terms alike,
    ``sapo``/``luspo``/``vespo`` take the plain policy-gradient step (neutral), while ``cispo``'s clamp
    of the detached ratio at ``epsilon_high`` (default ``epsilon``, 0.2) scales the policy term alone
    by ``min(1, epsilon_high)``: honoured as ``beta / min(1, epsilon_high)``.
    ``importance_sampling_level`` is neutral on-policy. Not covered: clipping and several steps per
    batch (``num_iterations > 1``, ``steps_per_generation > gradient_accumulation_steps``), entropy
    bonuses, masked truncated completions, top-entropy token filtering, several reward functions
    (``reward_weights``, ``multi_objective_aggregation = "normalize_then_sum"``), reference-model syncing.

    Parameters
    ----------
    cfg : mapping
        ``GRPOConfig`` field names to values (a parsed config file or ``vars(args)``); fields not
        given take TRL's defaults (``num_generations = 8``, ``beta = 0``, ``loss_type = "dapo"``,
        ``scale_rewards = "group"``).

    Returns
    -------
    FrameworkConfig
        Preset ``"trl-grpo"`` with ``M``, ``scale_rewards``, the effective ``beta`` (None without a
        KL term), the KL estimator and treatment, and the fields honoured, neutral and not covered.

    Raises
    ------
    TypeError
        If ``cfg`` is not a mapping.
    ValueError
        For a value TRL does not accept: ``num_generations`` not an integer in ``[2, 10**6]``,
        ``scale_rewards``, ``loss_type``, ``importance_sampling_level`` or
        ``multi_objective_aggregation`` not one of its choices, a non-numeric ``beta``, ...

    Examples
    --------
    >>> c = from_trl_config({"num_generations": 16, "beta": 0.04})
    >>> c.preset, c.M, c.beta, c.kl_estimator, c.kl_treatment
    ('trl-grpo', 16, 0.04, 'k3', 'pi||ref')
    """
    if not isinstance(cfg, Mapping):
        raise TypeError(f"a TRL config must be a mapping of GRPOConfig fields, got {type(cfg).__name__}")
    honoured, neutral, uncovered = [], [], []
    M = _int("num_generations", cfg.get("num_generations", 8), 2, MAX_GROUP_SIZE)
    honoured.append(f"num_generations = {M}: the group size M")
    scale = cfg.get("scale_rewards", "group")
    if scale is True:
        scale = "group"
    elif scale is False:
        scale = "none"
    if scale not in ("group", "batch", "none"):
        raise ValueError(f"scale_rewards must be 'group', 'batch', 'none' (or true/false), got {scale!r}")
    honoured.append(f"scale_rewards = {scale!r}: "
                    + {"group": "divide by the group's std", "batch": "divide by the batch's std (modelled by "
                       "the spread of p)", "none": "no std: mean-centred rewards"}[scale])
    loss_type = cfg.get("loss_type", "dapo")
    if loss_type not in _TRL_LOSS_TYPES:
        raise ValueError(f"loss_type must be one of {', '.join(_TRL_LOSS_TYPES)}, got {loss_type!r}")
    beta = _float("beta", cfg.get("beta", 0.0))
    policy_scale = 1.0
    if loss_type in ("grpo", "dr_grpo", "dapo", "bnpo"):
        neutral.append(f"loss_type = {loss_type!r}: with equal completion lengths the aggregation scales the "
                       "advantage and KL terms alike, so the per-prompt weighting and the fixed points are "
                       "unchanged (unequal lengths weight answers by length: not modelled)")
    elif loss_type == "cispo":
        eps_high = cfg.get("epsilon_high")
        eps_high = _float("epsilon", cfg.get("epsilon", 0.2)) if eps_high is None else _float("epsilon_high", eps_high)
        policy_scale = min(1.0, eps_high)
        what = (f"loss_type = 'cispo' with epsilon_high = {eps_high:g}: on-policy the ratio is 1 and its detached "
                f"clamp (max = epsilon_high) multiplies the policy term by {policy_scale:g}, not the KL term")
        if policy_scale == 1.0 or beta == 0:
            neutral.append(what + (": nothing changes" if policy_scale == 1.0 else ": without a KL term only the "
                                   "step size changes"))
        else:
            honoured.append(what + f": modelled as beta / {policy_scale:g} = {beta / policy_scale:g}")
    else:
        neutral.append(f"loss_type = {loss_type!r}: {_TRL_ON_POLICY[loss_type]} (later off-policy steps: see "
                       "num_iterations)")
    kl_estimator = kl_treatment = None
    if beta > 0:
        correction = _bool("use_bias_correction_kl", cfg.get("use_bias_correction_kl", True))
        kl_estimator = "k3"
        kl_treatment = PI_REF if correction else REF_PI
        honoured.append(f"beta = {beta:g} with k3 in the loss"
                        + (", times the importance ratio (use_bias_correction_kl): per token, the gradient of "
                           "KL(pi||pi_ref) (TRL's 'unbiased reverse-KL gradient'; summed over tokens it is the sequence's "
                           "only for one-token answers)"
                           if correction else " (use_bias_correction_kl = false): the gradient of KL(pi_ref||pi), "
                           "the forward KL"))
    else:
        neutral.append("beta = 0: no KL term, no reference model")
    level = cfg.get("importance_sampling_level", "token")
    if level not in ("token", "sequence"):
        raise ValueError(f"importance_sampling_level must be 'token' or 'sequence', got {level!r}")
    if level == "sequence":
        neutral.append("importance_sampling_level = 'sequence': on-policy the sequence ratio is 1 and its gradient "
                       "is the mean of the tokens' log-probability gradients, so the policy term's gradient is the "
                       "token level's" + ("; the KL term is multiplied by the sequence ratio, which keeps the "
                                          "gradient of KL(pi||pi_ref) for one-token answers only"
                                          if kl_treatment == PI_REF else ""))
    iters = _int("num_iterations", cfg.get("num_iterations", 1), 1)
    if iters > 1:
        uncovered.append(f"num_iterations = {iters}: several clipped steps per batch (the theory is the "
                         "on-policy expected step)")
    else:
        neutral.append("num_iterations = 1: on-policy, so the clipping (epsilon) never binds at the first step")
    accumulation = _int("gradient_accumulation_steps", cfg.get("gradient_accumulation_steps", 1), 1)
    per_generation = cfg.get("steps_per_generation")
    if per_generation is not None and _int("steps_per_generation", per_generation, 1) > accumulation:
        uncovered.append(f"steps_per_generation = {per_generation} > gradient_accumulation_steps = {accumulation}: "
                         "several optimizer steps per generation batch, the later ones off-policy (clipped)")
    aggregation = cfg.get("multi_objective_aggregation", "sum_then_normalize")
    if aggregation not in ("sum_then_normalize", "normalize_then_sum"):
        raise ValueError("multi_objective_aggregation must be 'sum_then_normalize' or 'normalize_then_sum', "
                         f"got {aggregation!r}")
    if aggregation == "normalize_then_sum":
        uncovered.append("multi_objective_aggregation = 'normalize_then_sum': each reward function normalised per "
                         "group, summed, then normalised over the batch (GDPO): not a function of (R_i, S_i)")
    for key, default, why in (
        ("mask_truncated_completions", False, "drops truncated answers: their reward is not a verifier outcome"),
        ("top_entropy_quantile", 1.0, "trains only high-entropy tokens: token-level, not (R_i, S_i)"),
        ("entropy_coef", 0.0, "an entropy bonus changes the stationary policy"),
        ("use_adaptive_entropy", False, "an entropy bonus changes the stationary policy"),
        ("off_policy_mask_threshold", None, "masks sequences by their KL: likelihood-dependent"),
        ("sync_ref_model", False, "moves pi_ref during training: p_ref is not fixed"),
        ("delta", None, "two-sided clipping of the ratio: binds only off-policy"),
    ):
        value = cfg.get(key, default)
        if value != default:
            uncovered.append(f"{key} = {value!r}: {why}")
    weights = cfg.get("reward_weights")
    if weights is not None and (not isinstance(weights, (list, tuple)) or len(weights) != 1):
        uncovered.append(f"reward_weights = {weights!r}: several reward functions; the theory needs one 0/1 reward")
    read = {"num_generations", "scale_rewards", "loss_type", "beta", "use_bias_correction_kl", "num_iterations",
            "mask_truncated_completions", "top_entropy_quantile", "entropy_coef", "use_adaptive_entropy",
            "off_policy_mask_threshold", "sync_ref_model", "delta", "reward_weights", "epsilon", "epsilon_high",
            "importance_sampling_level", "gradient_accumulation_steps", "steps_per_generation",
            "multi_objective_aggregation"}
    neutral.append(_others(sorted(set(cfg) - read)))
    return FrameworkConfig("TRL", "trl-grpo", M, {"scale_rewards": scale}, beta / policy_scale if beta > 0 else None,
                           kl_estimator, kl_treatment, False, tuple(honoured), tuple(neutral), tuple(uncovered))


def from_verl_config(cfg: Mapping[str, Any]) -> FrameworkConfig:
    """Map a verl trainer config (the ``ppo_trainer.yaml`` tree, defaults from it; verl 0.9.1) to the theory.

    Honoured: ``algorithm.adv_estimator`` (grpo, grpo_vectorized, rloo, rloo_vectorized, gpg,
    grpo_passk, reinforce_plus_plus_baseline, and ``rlvrlens``, this package's plugin, with the
    scheme its ``algorithm.rlvrlens`` block names; the others are refused with the reason),
    ``norm_adv_by_std_in_grpo`` (where verl lets it reach the estimator), ``actor_rollout_ref.rollout.n``
    (M), the KL in the loss (``actor.use_kl_loss``, ``kl_loss_coef``, ``kl_loss_type``: ``kl``/k1,
    ``mse``/k2, ``low_var_kl``/k3, and any of them with ``+``, such as ``k3+``, ``low_var_kl+``: the
    value with the k2 gradient, per token) or in the reward (``algorithm.use_kl_in_reward``,
    ``kl_ctrl.kl_coef`` with ``kl_ctrl.type: fixed``), ``algorithm.filter_groups.enable`` (DAPO dynamic
    sampling, also read from ``data.filter_groups``). Neutral on-policy: ``actor.loss_agg_mode`` (all five)
    and ``actor.policy_loss.loss_mode`` vanilla, gspo, sapo, gpg, cispo; the other loss modes, several
    PPO epochs and an entropy bonus are not covered.

    Parameters
    ----------
    cfg : mapping
        The trainer config as a nested mapping (the parsed YAML); keys not given take verl's
        defaults.

    Returns
    -------
    FrameworkConfig
        The preset (or ``"rlvrlens"`` with its scheme), ``M``, the preset's parameters, ``beta``
        (None without a KL term), the KL estimator and treatment, whether dynamic sampling is on,
        and the fields honoured, neutral and not covered.

    Raises
    ------
    TypeError
        If ``cfg`` is not a mapping.
    ValueError
        For an ``adv_estimator`` the theory does not cover or does not know, ``rollout.n`` not an
        integer in ``[2, 10**6]``, an ``adv_estimator: rlvrlens`` without a valid
        ``algorithm.rlvrlens`` block, or another value verl would not accept.

    Examples
    --------
    >>> c = from_verl_config({"algorithm": {"adv_estimator": "grpo"},
    ...                       "actor_rollout_ref": {"rollout": {"n": 8},
    ...                                             "actor": {"use_kl_loss": True, "kl_loss_coef": 0.01}}})
    >>> c.preset, c.M, c.beta, c.kl_estimator, c.kl_treatment
    ('verl-grpo', 8, 0.01, 'k3', 'ref||pi')
    >>> c = from_verl_config({"algorithm": {"adv_estimator": "rlvrlens", "rlvrlens": {"scheme": "log_odds"}},
    ...                       "actor_rollout_ref": {"rollout": {"n": 8}}})
    >>> c.preset, c.scheme.name, c.scheme.M
    ('rlvrlens', 'log_odds', 8)
    """
    if not isinstance(cfg, Mapping):
        raise TypeError(f"a verl config must be a mapping (the trainer YAML), got {type(cfg).__name__}")
    honoured, neutral, uncovered = [], [], []
    est = _get(cfg, "algorithm.adv_estimator", "gae")
    if est in _VERL_UNCOVERED:
        raise ValueError(f"algorithm.adv_estimator = {est!r} is not covered by the theory: {_VERL_UNCOVERED[est]}")
    if est not in _VERL_PRESETS and est != _VERL_PLUGIN:
        raise ValueError(f"algorithm.adv_estimator = {est!r} is unknown; covered: {', '.join(_VERL_PRESETS)}, "
                         f"{_VERL_PLUGIN} (rlvrlens's verl plugin)")
    M = _number("actor_rollout_ref.rollout.n", _get(cfg, "actor_rollout_ref.rollout.n", 1), int)
    if isinstance(M, bool) or not isinstance(M, int) or not 2 <= M <= MAX_GROUP_SIZE:
        raise ValueError(f"actor_rollout_ref.rollout.n must be an integer >= 2 (answers per prompt) for a group "
                         f"estimator and <= {MAX_GROUP_SIZE}, got {M!r}")
    scheme = None
    if est == _VERL_PLUGIN:
        block = _get(cfg, f"algorithm.{_VERL_PLUGIN}")
        if not isinstance(block, Mapping):
            raise ValueError(f"algorithm.adv_estimator = {est!r} needs an algorithm.{_VERL_PLUGIN} block naming the "
                             "scheme (scheme: NAME, target: EXPR or scheme_file: PATH; docs/verl.md)")
        spec = scheme_spec({k: v for k, v in block.items() if k != "record_dir"}, f"algorithm.{_VERL_PLUGIN}", M=M)
        scheme, preset = spec.build(M), _VERL_PLUGIN
        honoured.append(f"algorithm.adv_estimator = {est!r} (rlvrlens's verl plugin) with algorithm.{_VERL_PLUGIN} "
                        f"= {json.dumps(spec.describe())}: the weights of {scheme.name}")
        if block.get("record_dir") is not None:
            neutral.append(f"algorithm.{_VERL_PLUGIN}.record_dir = {block['record_dir']!r}: where the run records "
                           "its groups' rewards (groups.jsonl) and the scheme (scheme.json)")
    else:
        preset = _VERL_PRESETS[est]
        honoured.append(f"algorithm.adv_estimator = {est!r}: preset {preset}")
    honoured.append(f"actor_rollout_ref.rollout.n = {M}: the group size M")
    params: dict[str, Any] = {}
    norm = _bool("algorithm.norm_adv_by_std_in_grpo", _get(cfg, "algorithm.norm_adv_by_std_in_grpo", True))
    if est in _VERL_NORM:
        params["norm_adv_by_std_in_grpo"] = norm
        honoured.append(f"algorithm.norm_adv_by_std_in_grpo = {norm}")
    elif _get(cfg, "algorithm.norm_adv_by_std_in_grpo") is not None:
        neutral.append(f"algorithm.norm_adv_by_std_in_grpo = {norm}: not read by adv_estimator = {est!r} (verl passes "
                       "it to its wired-in grpo only, and grpo_passk reads it from the config)"
                       + {"grpo_vectorized": ": grpo_vectorized always divides by the std",
                          _VERL_PLUGIN: ": the scheme is the whole weight"}.get(est, ""))
    in_loss = _bool("actor_rollout_ref.actor.use_kl_loss", _get(cfg, "actor_rollout_ref.actor.use_kl_loss", False))
    in_reward = _bool("algorithm.use_kl_in_reward", _get(cfg, "algorithm.use_kl_in_reward", False))
    beta = kl_estimator = kl_treatment = None
    if in_loss and in_reward:
        uncovered.append("KL both in the loss and in the reward: two penalties (the theory takes one)")
    if in_loss:
        raw = _get(cfg, "actor_rollout_ref.actor.kl_loss_type", "low_var_kl")
        kl_estimator = _verl_estimator("actor_rollout_ref.actor.kl_loss_type", raw, loss=True)
        beta = _float("actor_rollout_ref.actor.kl_loss_coef", _get(cfg, "actor_rollout_ref.actor.kl_loss_coef", 0.001))
        kl_treatment = ESTIMATOR_TREATMENT.get(kl_estimator)
        how = (f"the {_VERL_KL[raw[:-1]]} value with the k2 gradient (straight-through), " if raw.endswith("+")
               and kl_estimator == "k2" else "")
        per_token = (f": {how}per token the gradient of {DIVERGENCE[kl_treatment]}; summed over a response's tokens it "
                     "is the sequence KL's gradient for one-token answers only" if kl_estimator in ("k2", "k3") else "")
        honoured.append(f"actor.use_kl_loss with kl_loss_type = {raw!r} ({kl_estimator}), kl_loss_coef = {beta:g}"
                        + per_token)
    elif in_reward:
        raw = _get(cfg, "algorithm.kl_penalty", "kl")
        kl_estimator = _verl_estimator("algorithm.kl_penalty", raw, loss=False)
        beta = _float("algorithm.kl_ctrl.kl_coef", _get(cfg, "algorithm.kl_ctrl.kl_coef", 0.001))
        kl_treatment = "reward"
        honoured.append(f"algorithm.use_kl_in_reward with kl_penalty = {raw!r}, kl_ctrl.kl_coef = {beta:g}")
        if _get(cfg, "algorithm.kl_ctrl.type", "fixed") != "fixed":
            uncovered.append(f"algorithm.kl_ctrl.type = {_get(cfg, 'algorithm.kl_ctrl.type')!r}: an adaptive "
                             "coefficient; the prediction uses the initial kl_coef")
        if scheme is not None and scheme.formula is None:
            uncovered.append(f"algorithm.use_kl_in_reward with adv_estimator = {est!r}: the KL makes the rewards real "
                             f"and {scheme.name} has weights for 0/1 rewards only: the plugin refuses the first batch")
    else:
        neutral.append("no KL term (actor.use_kl_loss and algorithm.use_kl_in_reward are false)")
    if kl_estimator in ("abs", "full"):
        uncovered.append(f"KL estimator {kl_estimator!r}: its expected gradient is not one of the theory's")
        kl_treatment = None
    dyn = _get(cfg, "algorithm.filter_groups.enable", _get(cfg, "data.filter_groups.enable", False))
    dyn = _bool("algorithm.filter_groups.enable", dyn)
    if dyn:
        honoured.append("algorithm.filter_groups.enable = true: dynamic sampling (groups with equal rewards "
                        "dropped, the batch refilled)")
    agg = _get(cfg, "actor_rollout_ref.actor.loss_agg_mode", "token-mean")
    if agg not in _VERL_AGG:
        raise ValueError(f"actor_rollout_ref.actor.loss_agg_mode must be one of {', '.join(_VERL_AGG)}, got {agg!r}")
    neutral.append(f"actor.loss_agg_mode = {agg!r}: with equal response lengths every aggregation scales all "
                   "answers alike")
    mode = _get(cfg, "actor_rollout_ref.actor.policy_loss.loss_mode", "vanilla")
    if mode in _VERL_ON_POLICY_LOSS:
        neutral.append(f"actor.policy_loss.loss_mode = {mode!r}: on-policy (ratio 1) {_VERL_ON_POLICY_LOSS[mode]} "
                       "gives the plain policy gradient")
    else:
        uncovered.append(f"actor.policy_loss.loss_mode = {mode!r}: changes the per-token weighting of the policy "
                         "term (not modelled)")
    epochs = _get(cfg, "actor_rollout_ref.actor.ppo_epochs", 1)
    if epochs != 1:
        uncovered.append(f"actor.ppo_epochs = {epochs!r}: several clipped passes over a batch")
    ent = _get(cfg, "actor_rollout_ref.actor.entropy_coeff", 0)
    if ent not in (0, 0.0, None):
        uncovered.append(f"actor.entropy_coeff = {ent!r}: an entropy bonus changes the stationary policy")
    read = {"algorithm.adv_estimator", "actor_rollout_ref.rollout.n", "algorithm.norm_adv_by_std_in_grpo",
            "actor_rollout_ref.actor.use_kl_loss", "algorithm.use_kl_in_reward", "actor_rollout_ref.actor.kl_loss_type",
            "actor_rollout_ref.actor.kl_loss_coef", "algorithm.kl_penalty", "algorithm.kl_ctrl.kl_coef",
            "algorithm.kl_ctrl.type", "algorithm.filter_groups.enable", "data.filter_groups.enable",
            "actor_rollout_ref.actor.loss_agg_mode", "actor_rollout_ref.actor.ppo_epochs",
            "actor_rollout_ref.actor.entropy_coeff", "actor_rollout_ref.actor.policy_loss.loss_mode"}
    others = [k for k in _flatten(cfg) if k not in read and not k.startswith(f"algorithm.{_VERL_PLUGIN}.")]
    neutral.append(_others(sorted(others)))
    return FrameworkConfig("verl", preset, M, params, beta, kl_estimator, kl_treatment, dyn,
                           tuple(honoured), tuple(neutral), tuple(uncovered), scheme)


def _verl_estimator(name: str, raw: Any, *, loss: bool) -> str:
    """The estimator a verl KL name stands for: ``X+`` is X's value with the k2 gradient, so "k2" in the
    loss and X in the reward (where only the value enters)."""
    base = raw[:-1] if isinstance(raw, str) and raw.endswith("+") else raw
    if base not in _VERL_KL:
        raise ValueError(f"{name} must be one of {', '.join(_VERL_KL)}, each optionally followed by '+', got {raw!r}")
    return "k2" if loss and base != raw and base != "full" else _VERL_KL[base]


def _flatten(cfg: Mapping[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        out.extend(_flatten(value, name + ".") if isinstance(value, Mapping) and value else [name])
    return out


def _others(keys: list[str]) -> str:
    """The fields read but irrelevant to the per-prompt weighting, named (the first 12)."""
    if not keys:
        return "no other fields"
    shown = ", ".join(keys[:12]) + (f", ... ({len(keys) - 12} more)" if len(keys) > 12 else "")
    return (f"{len(keys)} other field(s) (optimiser, sampling, batching, logging, paths) do not enter the "
            f"per-prompt weighting of 0/1 rewards: {shown}")
