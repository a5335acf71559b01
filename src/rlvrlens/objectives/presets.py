"""Framework presets: the weight scheme each trainer's advantage *is*, for 0/1 rewards.

Practitioners start from a TRL, verl or OpenRLHF config, not from ``(a_s, b_s)``. Each preset here
reproduces one framework's advantage for a group of ``M`` answers with 0/1 rewards exactly, with
that framework's own conventions (unbiased or biased std, where the ``eps`` goes, leave-one-out
written as an ``n/(n-1)`` rescaling, ...), and names the file and commit it was read from.

Group-level presets are exact. A few frameworks use a **batch-level** statistic (a std, a
whitening, a success count over the whole batch of ``B`` groups); a single group's weights then
depend on the rest of the batch. Those presets model the batch by a stated spread of success
probabilities ``p_batch`` across its prompts (one number: every prompt has that ``p``; a sequence:
the prompts' ``p``, equally weighted) and replace the statistic by its large-batch limit (law of
large numbers, ``B -> infinity``; a finite batch adds a relative fluctuation of order
``1/sqrt(B M)``). With equal response lengths, token-level batch statistics equal the
per-response ones used here. The limits:

* variance of the raw 0/1 rewards in the batch: ``pbar (1 - pbar)``, ``pbar = mean(p_batch)``;
* variance of group-centred rewards ``R_i - mean(R)``: ``(M-1)/M * mean(p (1-p))``, mean 0;
* variance of RLOO advantages ``R_i - S_i/(M-1)``: ``M/(M-1) * mean(p (1-p))``, mean 0;
* fraction of right answers (verl GPG's ``count_nonzero / bsz``): ``pbar``.

For real-valued rewards a preset's ``formula`` is the framework's own expression; batch presets
apply the modelled batch constant in it.

Examples
--------
>>> s = get_preset("trl-grpo", 4)
>>> [round(float(z), 4) for z in s.weights([1, 0, 0, 0])]
[1.4997, -0.4999, -0.4999, -0.4999]
>>> bool(np.allclose(get_preset("verl-rloo", 4).c, get_preset("openrlhf-rloo", 4).c))
True
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

from rlvrlens.core.budget import check_group_size
from rlvrlens.core.checks import check_float, check_probabilities
from rlvrlens.objectives.catalogue import dr_grpo, dynamic_sampling, gpg, grpo, reinforce, reinforce_rej, rloo
from rlvrlens.objectives.registry import Entry, Registry
from rlvrlens.objectives.scheme import WeightScheme

#: Commits the conventions were read from (public repositories, read through the project's
#: code index; the newest stored version of each file).
TRL_COMMIT = "00313f21920d37c3876c4021b51430224c06c936"
VERL_COMMIT = "012be9d9dcb7c38499f23616142870d2682757fc"
VERL_TORCH_FUNCTIONAL_COMMIT = "03c8cca18c827405ad726f7f90b2e0c3823b7830"
OPENRLHF_COMMIT = "89308a0b768dec168dff240ae746710fc967a49b"
MINIMAL_RL_COMMIT = "4b922a01f011c2167fb8825fd022c37d12b9b208"

_TRL_SCALES = ("group", "batch", "none")


# --------------------------------------------------------------------------------------------
# The modelled batch (large-batch limits of batch-level statistics; see the module docstring)
# --------------------------------------------------------------------------------------------

class MissingPBatch(ValueError):
    """A batch-level preset setting was asked for without ``p_batch``."""


def _check_p_batch(preset: str, p_batch: object) -> tuple[float, ...]:
    if p_batch is None:
        raise MissingPBatch(
            f"preset {preset!r} uses a batch-level statistic: give p_batch, the success probability "
            "of the batch's prompts (a number in [0, 1] or a sequence of them)"
        )
    arr = np.atleast_1d(check_probabilities("p_batch", p_batch)).ravel()
    if arr.size == 0:
        raise ValueError("p_batch must contain at least one success probability")
    return tuple(float(x) for x in arr)


def batch_reward_var(p_batch: Sequence[float]) -> float:
    """Large-batch variance of the raw 0/1 rewards of a batch: ``pbar (1 - pbar)``."""
    pbar = float(np.mean(p_batch))
    return pbar * (1.0 - pbar)


def batch_centred_var(p_batch: Sequence[float], M: int) -> float:
    """Large-batch variance of group-centred rewards ``R_i - mean(R)``: ``(M-1)/M E[p(1-p)]``."""
    p = np.asarray(p_batch, dtype=float)
    return float((M - 1) / M * np.mean(p * (1 - p)))


def batch_rloo_var(p_batch: Sequence[float], M: int) -> float:
    """Large-batch variance of RLOO advantages ``R_i - S_i/(M-1)``: ``M/(M-1) E[p(1-p)]``."""
    p = np.asarray(p_batch, dtype=float)
    return float(M / (M - 1) * np.mean(p * (1 - p)))


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------

def _renamed(base: WeightScheme, name: str, params: dict[str, Any]) -> WeightScheme:
    """The catalogue scheme ``base`` under the preset's name and parameters (same weights)."""
    return dataclasses.replace(base, name=name, params=params)


def _scaled(base: WeightScheme, k: float, name: str, params: dict[str, Any]) -> WeightScheme:
    """``k`` times the catalogue scheme ``base`` (a batch constant): weights and formula scale."""
    base_formula = base.formula

    def formula(R: np.ndarray) -> np.ndarray:
        return k * base_formula(R)

    return WeightScheme(base.M, k * base.a, k * base.b, name=name, params=params,
                        formula=formula if base_formula is not None else None, limit=base.limit)


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def _check_eps(name: str, value: object) -> float:
    return check_float(name, value, low=0.0)


# --------------------------------------------------------------------------------------------
# TRL
# --------------------------------------------------------------------------------------------

def trl_grpo(M: int, scale_rewards: str = "group", p_batch: object = None) -> WeightScheme:
    """TRL ``GRPOTrainer``: ``A = (r - group mean) / (std + 1e-4)``.

    ``scale_rewards="group"`` (default): unbiased (``torch.std``) std of the group, i.e.
    ``grpo(M, eps=1e-4, std="sample")``; ``"none"``: mean only, ``dr_grpo(M)``; ``"batch"``:
    group mean but the unbiased std of *all* rewards of the batch, modelled for ``p_batch`` by its
    large-batch limit ``sqrt(pbar (1-pbar))`` (a constant rescaling of ``dr_grpo``).

    Source: huggingface/trl ``trl/trainer/grpo_trainer.py``, ``_generate_and_score_completions``
    (``multi_objective_aggregation="sum_then_normalize"``), commit ``00313f2`` (TRL 2026 main;
    ``scale_rewards`` was a bool equal to ``"group"``/``"none"`` before it took strings).
    """
    M = check_group_size(M, minimum=2)
    if scale_rewards not in _TRL_SCALES:
        raise ValueError(f"scale_rewards must be one of {_TRL_SCALES}, got {scale_rewards!r}")
    if scale_rewards != "batch" and p_batch is not None:
        raise ValueError("p_batch applies only to scale_rewards='batch'")
    name = "trl-grpo"
    if scale_rewards == "group":
        return _renamed(grpo(M, eps=1e-4, std="sample"), name, {"scale_rewards": "group"})
    if scale_rewards == "none":
        return _renamed(dr_grpo(M), name, {"scale_rewards": "none"})
    pb = _check_p_batch(name, p_batch)
    k = 1.0 / (np.sqrt(batch_reward_var(pb)) + 1e-4)
    return _scaled(dr_grpo(M), k, name, {"scale_rewards": "batch", "p_batch": pb})


def trl_rloo(M: int, normalize_advantages: bool = False, p_batch: object = None) -> WeightScheme:
    """TRL ``RLOOTrainer``: ``A = r - (group sum - r)/(G-1)``, i.e. ``rloo(M)``.

    With ``normalize_advantages=True`` the advantages are then whitened over the batch,
    ``(A - mean)/(std + 1e-4)``; modelled for ``p_batch``: the batch mean of RLOO advantages is
    exactly 0 and their std tends to ``sqrt(M/(M-1) E[p(1-p)])``. (With ``beta > 0`` TRL folds the
    sequence KL into the reward; that part is the dynamics layer's ``beta``, not the weights.)

    Source: huggingface/trl ``trl/trainer/rloo_trainer.py``, ``_generate_and_score_completions``,
    commit ``00313f2``.
    """
    M = check_group_size(M, minimum=2)
    normalize_advantages = _check_bool("normalize_advantages", normalize_advantages)
    name = "trl-rloo"
    if not normalize_advantages:
        if p_batch is not None:
            raise ValueError("p_batch applies only to normalize_advantages=True")
        return _renamed(rloo(M), name, {"normalize_advantages": False})
    pb = _check_p_batch(name, p_batch)
    k = 1.0 / (np.sqrt(batch_rloo_var(pb, M)) + 1e-4)
    return _scaled(rloo(M), k, name, {"normalize_advantages": True, "p_batch": pb})


# --------------------------------------------------------------------------------------------
# verl
# --------------------------------------------------------------------------------------------

def verl_grpo(M: int, norm_adv_by_std_in_grpo: bool = True, epsilon: float = 1e-6) -> WeightScheme:
    """verl ``adv_estimator=grpo``: ``(r - mean)/(torch.std + epsilon)`` (unbiased std).

    ``norm_adv_by_std_in_grpo=False`` drops the division (verl's Dr. GRPO switch): ``dr_grpo(M)``.

    Source: volcengine/verl ``verl/trainer/ppo/core_algos.py``, ``compute_grpo_outcome_advantage``,
    commit ``012be9d``.
    """
    M = check_group_size(M, minimum=2)
    norm = _check_bool("norm_adv_by_std_in_grpo", norm_adv_by_std_in_grpo)
    epsilon = _check_eps("epsilon", epsilon)
    params = {"norm_adv_by_std_in_grpo": norm, "epsilon": epsilon}
    base = grpo(M, eps=epsilon, std="sample") if norm else dr_grpo(M)
    return _renamed(base, "verl-grpo", params)


def verl_rloo(M: int) -> WeightScheme:
    """verl ``adv_estimator=rloo``: ``r n/(n-1) - mean n/(n-1)``, which *is* leave-one-out:
    ``n/(n-1) (r - S/n) = r - (S - r)/(n-1)``, i.e. ``rloo(M)`` (no extra scaling of ``h``).

    Source: volcengine/verl ``verl/trainer/ppo/core_algos.py``, ``compute_rloo_outcome_advantage``,
    commit ``012be9d``.
    """
    return _renamed(rloo(check_group_size(M, minimum=2)), "verl-rloo", {})


def verl_grpo_vectorized(M: int, epsilon: float = 1e-6) -> WeightScheme:
    """verl ``adv_estimator=grpo_vectorized``: ``(r - mean)/(std + epsilon)`` with the unbiased std
    (``group_mean_std``, computed in float32), always divided: verl passes
    ``norm_adv_by_std_in_grpo`` only to its wired-in ``grpo``, and this estimator does not read it from
    the config. The same weights as ``verl-grpo`` for groups of two or more.

    Source: verl 0.9.1 ``verl/trainer/ppo/core_algos.py``, ``compute_grpo_vectorized_outcome_advantage``,
    ``verl/utils/groupwise.py``, ``group_mean_std``; ``verl/trainer/ppo/ray_trainer.py``,
    ``compute_advantage``.
    """
    M = check_group_size(M, minimum=2)
    epsilon = _check_eps("epsilon", epsilon)
    return _renamed(grpo(M, eps=epsilon, std="sample"), "verl-grpo-vectorized", {"epsilon": epsilon})


def verl_rloo_vectorized(M: int) -> WeightScheme:
    """verl ``adv_estimator=rloo_vectorized``: ``(n r - group sum)/(n - 1)``, leave-one-out, i.e.
    ``rloo(M)`` (a group of one answer gets 0, where ``rloo`` gives it its reward; groups of
    ``rollout.n >= 2`` answers never are one).

    Source: verl 0.9.1 ``verl/trainer/ppo/core_algos.py``, ``compute_rloo_vectorized_outcome_advantage``.
    """
    return _renamed(rloo(check_group_size(M, minimum=2)), "verl-rloo-vectorized", {})


def verl_gpg(M: int, p_batch: object = None) -> WeightScheme:
    """verl ``adv_estimator=gpg``: ``alpha (r - group mean) / f_norm`` with ``f_norm = 1`` and
    ``alpha = bsz / count_nonzero(scores)``, a batch statistic: for 0/1 rewards ``1 / (fraction of
    right answers in the batch)``, modelled as ``1 / pbar`` for ``p_batch`` (needs ``pbar > 0``).

    Source: volcengine/verl ``verl/trainer/ppo/core_algos.py``, ``compute_gpg_outcome_advantage``,
    commit ``012be9d``.
    """
    M = check_group_size(M, minimum=2)
    pb = _check_p_batch("verl-gpg", p_batch)
    pbar = float(np.mean(pb))
    if pbar <= 0:
        raise ValueError("p_batch must have a positive mean for verl-gpg (alpha = 1/pbar)")
    return _scaled(dr_grpo(M), 1.0 / pbar, "verl-gpg", {"p_batch": pb})


def trl_gpg(M: int, p_batch: object = None) -> WeightScheme:
    """TRL ``GPGTrainer``: ``scale_rewards="none"`` (``r - group mean``) with the loss divided by the
    fraction of the batch's groups whose rewards are not all equal (GPG eq. 7), modelled for
    ``p_batch`` by its large-batch limit ``mean(1 - p^M - (1-p)^M)``: the catalogue's ``gpg``.

    Source: huggingface/trl ``trl/experimental/gpg/gpg_trainer.py``, ``GPGTrainer``, commit ``6b3c38e``.
    """
    M = check_group_size(M, minimum=2)
    pb = _check_p_batch("trl-gpg", p_batch)
    return _renamed(gpg(M, pb), "trl-gpg", {"p_batch": pb})


def verl_dapo(M: int, epsilon: float = 1e-6, p_batch: object = None) -> WeightScheme:
    """verl DAPO recipe: ``adv_estimator=grpo`` with ``algorithm.filter_groups.enable=True`` (metric
    ``acc``): groups whose accuracies are all equal are dropped and the batch refilled, modelled for
    ``p_batch`` by :func:`rlvrlens.objectives.dynamic_sampling` (GRPO already gives such groups
    weight 0, so only the batch normalisation ``1/kappa`` changes).

    Source: volcengine/verl ``recipe/dapo`` (``dapo_ray_trainer.py``, ``filter_groups``), commit ``012be9d``.
    """
    M = check_group_size(M, minimum=2)
    pb = _check_p_batch("verl-dapo", p_batch)
    base = grpo(M, eps=_check_eps("epsilon", epsilon), std="sample")
    return _renamed(dynamic_sampling(base, pb), "verl-dapo", {"epsilon": float(epsilon), "p_batch": pb})


def verl_grpo_passk(M: int, norm_adv_by_std_in_grpo: bool = True, epsilon: float = 1e-6) -> WeightScheme:
    """verl ``adv_estimator=grpo_passk``: only the best answer of a group gets
    ``r_max - r_second_max`` (divided by ``torch.std + epsilon`` by default), everyone else 0.

    For 0/1 rewards that is nonzero only when exactly one answer is right:
    ``b_0 = 1/(1/sqrt(M) + epsilon)`` (the unbiased std of such a group is ``1/sqrt(M)``), all other
    ``a_s, b_s = 0``; so ``h'_M(t) = b_0 (1-t)^(M-1)`` and ``h_M`` is proportional to pass@M.

    Source: volcengine/verl ``verl/trainer/ppo/core_algos.py``,
    ``compute_grpo_passk_outcome_advantage``, commit ``012be9d``.
    """
    M = check_group_size(M, minimum=2)
    norm = _check_bool("norm_adv_by_std_in_grpo", norm_adv_by_std_in_grpo)
    epsilon = _check_eps("epsilon", epsilon)
    b0 = 1.0 / (1.0 / np.sqrt(M) + epsilon) if norm else 1.0
    a, b = np.zeros(M), np.zeros(M)
    b[0] = b0

    def formula(R: np.ndarray) -> np.ndarray:
        order = np.argsort(-R, axis=-1, kind="stable")
        top = np.take_along_axis(R, order[..., :2], axis=-1)
        gap = top[..., :1] - top[..., 1:2]
        if norm:
            den = R.std(axis=-1, ddof=1, keepdims=True) + epsilon
            gap = np.divide(gap, den, out=np.zeros_like(gap), where=gap != 0)
        Z = np.zeros_like(R)
        np.put_along_axis(Z, order[..., :1], gap, axis=-1)
        return Z

    return WeightScheme(M, a, b, name="verl-grpo-passk",
                        params={"norm_adv_by_std_in_grpo": norm, "epsilon": epsilon}, formula=formula)


def verl_reinforce_plus_plus_baseline(M: int, p_batch: object = None) -> WeightScheme:
    """verl ``adv_estimator=reinforce_plus_plus_baseline``: ``r - group mean``, then
    ``masked_whiten`` over the batch: ``(x - mean) * rsqrt(var_unbiased + 1e-8)``. Modelled for
    ``p_batch``: the batch mean of group-centred rewards is exactly 0 (equal lengths) and their
    variance tends to ``(M-1)/M E[p(1-p)]``.

    Source: volcengine/verl ``verl/trainer/ppo/core_algos.py``,
    ``compute_reinforce_plus_plus_baseline_outcome_advantage``, commit ``012be9d``;
    ``masked_whiten`` in ``verl/utils/torch_functional.py``, commit ``03c8cca``.
    """
    M = check_group_size(M, minimum=2)
    name = "verl-reinforce-plus-plus-baseline"
    pb = _check_p_batch(name, p_batch)
    k = 1.0 / np.sqrt(batch_centred_var(pb, M) + 1e-8)
    return _scaled(dr_grpo(M), k, name, {"p_batch": pb})


# --------------------------------------------------------------------------------------------
# OpenRLHF
# --------------------------------------------------------------------------------------------

def openrlhf_group_norm(M: int) -> WeightScheme:
    """OpenRLHF ``--advantage_estimator group_norm``: ``(r - mean)/(torch.std + 1e-9)``, i.e.
    ``grpo(M, eps=1e-9, std="sample")``.

    Source: OpenRLHF/OpenRLHF ``openrlhf/trainer/ppo_utils/experience_maker.py``,
    ``compute_advantages_and_returns``, commit ``89308a0``.
    """
    return _renamed(grpo(check_group_size(M, minimum=2), eps=1e-9, std="sample"), "openrlhf-group-norm", {})


def openrlhf_dr_grpo(M: int) -> WeightScheme:
    """OpenRLHF ``--advantage_estimator dr_grpo``: ``r - group mean`` (no std, no batch
    whitening), i.e. ``dr_grpo(M)``.

    Source: OpenRLHF/OpenRLHF ``openrlhf/trainer/ppo_utils/experience_maker.py``, commit ``89308a0``.
    """
    return _renamed(dr_grpo(check_group_size(M, minimum=2)), "openrlhf-dr-grpo", {})


def openrlhf_rloo(M: int) -> WeightScheme:
    """OpenRLHF ``--advantage_estimator rloo``: ``r - (sum - r)/(n-1)``, i.e. ``rloo(M)``.

    Source: OpenRLHF/OpenRLHF ``openrlhf/trainer/ppo_utils/experience_maker.py``, commit ``89308a0``.
    """
    return _renamed(rloo(check_group_size(M, minimum=2)), "openrlhf-rloo", {})


def openrlhf_reinforce_baseline(M: int, no_advantage_std_norm: bool = False,
                                p_batch: object = None) -> WeightScheme:
    """OpenRLHF ``--advantage_estimator reinforce_baseline`` (REINFORCE++-baseline):
    ``r - group mean``, then normalised over the whole batch: ``(x - mean) * rsqrt(max(var, 1e-8))``
    with the population variance (skipped with ``--no_advantage_std_norm``). Modelled for
    ``p_batch``: mean exactly 0, variance tends to ``(M-1)/M E[p(1-p)]``.

    Source: OpenRLHF/OpenRLHF ``openrlhf/trainer/ppo_utils/experience_maker.py``,
    ``compute_advantages_and_returns``, commit ``89308a0``.
    """
    M = check_group_size(M, minimum=2)
    no_std = _check_bool("no_advantage_std_norm", no_advantage_std_norm)
    name = "openrlhf-reinforce-baseline"
    if no_std:
        if p_batch is not None:
            raise ValueError("p_batch applies only to no_advantage_std_norm=False")
        return _renamed(dr_grpo(M), name, {"no_advantage_std_norm": True})
    pb = _check_p_batch(name, p_batch)
    k = 1.0 / np.sqrt(max(batch_centred_var(pb, M), 1e-8))
    return _scaled(dr_grpo(M), k, name, {"no_advantage_std_norm": False, "p_batch": pb})


# --------------------------------------------------------------------------------------------
# The minimal-RL paper (Xiong et al. 2025) and a cookbook GRPO
# --------------------------------------------------------------------------------------------

def minimal_rl_raft(M: int) -> WeightScheme:
    """RAFT as the minimal-RL code runs it: rewards are ±1, samples whose reward equals the batch
    maximum keep it as advantage, the rest get 0 (and everything is 0 if the maximum is -1). For
    0/1 rewards this is ``Z_i = R_i``, i.e. ``reinforce(M)``: ``h_M(t) = t``. (The per-group
    normalised rejection sampling ``M R_i/#right`` of Davis & Recht is the catalogue's ``raft``.)

    Source: ``verl/trainer/ppo/core_algos.py``, ``compute_raft_outcome_advantage``, of the
    Minimal-RL code (RLHFlow/Minimal-RL, read from its public fork vatsal-kr/Minimal-RL, commit
    ``4b922a0``).
    """
    return _renamed(reinforce(check_group_size(M, minimum=1)), "minimal-rl-raft", {})


def minimal_rl_reinforce_rej(M: int) -> WeightScheme:
    """Reinforce-Rej as the minimal-RL code runs it: the ±1 reward is the advantage, zeroed for
    groups with zero std (all right or all wrong): ``reinforce_rej(M, reward_scale="pm1")``.

    Source: ``verl/trainer/ppo/core_algos.py``, ``compute_reinforce_rej_outcome_advantage``, of
    the Minimal-RL code (fork vatsal-kr/Minimal-RL, commit ``4b922a0``).
    """
    return _renamed(reinforce_rej(check_group_size(M, minimum=2), reward_scale="pm1"),
                    "minimal-rl-reinforce-rej", {})


def grpo_biased_std(M: int, eps: float = 1e-6) -> WeightScheme:
    """GRPO with the biased (population, ``ddof=0``) std, as cookbooks that call ``np.std`` or
    ``torch.std(unbiased=False)`` do: ``(r - mean)/(std_pop + eps)``, ``grpo(M, eps, "population")``.
    """
    return _renamed(grpo(check_group_size(M, minimum=2), eps=_check_eps("eps", eps), std="population"),
                    "grpo-biased-std", {"eps": float(eps)})


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------

#: A framework preset is a registry entry with its framework and configuration filled in.
Preset = Entry

#: Registry: preset name -> :class:`Preset` (framework presets; the validation run sizes live in
#: :mod:`rlvrlens.validation`).
PRESETS = Registry("preset", [
    Preset("trl-grpo", trl_grpo, "arcsin", "TRL", "GRPOConfig(scale_rewards='group'|'batch'|'none')"),
    Preset("trl-rloo", trl_rloo, "t", "TRL", "RLOOConfig(normalize_advantages=False|True)"),
    Preset("verl-grpo", verl_grpo, "arcsin", "verl", "algorithm.adv_estimator=grpo [norm_adv_by_std_in_grpo]"),
    Preset("verl-rloo", verl_rloo, "t", "verl", "algorithm.adv_estimator=rloo"),
    Preset("verl-grpo-vectorized", verl_grpo_vectorized, "arcsin", "verl", "algorithm.adv_estimator=grpo_vectorized"),
    Preset("verl-rloo-vectorized", verl_rloo_vectorized, "t", "verl", "algorithm.adv_estimator=rloo_vectorized"),
    Preset("verl-gpg", verl_gpg, "t", "verl", "algorithm.adv_estimator=gpg"),
    Preset("verl-dapo", verl_dapo, "arcsin", "verl",
           "algorithm.adv_estimator=grpo, algorithm.filter_groups.enable=True (DAPO dynamic sampling)"),
    Preset("trl-gpg", trl_gpg, "t", "TRL", "GPGConfig (scale_rewards='none', bias_correction=True)"),
    Preset("verl-grpo-passk", verl_grpo_passk, None, "verl", "algorithm.adv_estimator=grpo_passk"),
    Preset("verl-reinforce-plus-plus-baseline", verl_reinforce_plus_plus_baseline, "t", "verl",
           "algorithm.adv_estimator=reinforce_plus_plus_baseline"),
    Preset("openrlhf-group-norm", openrlhf_group_norm, "arcsin", "OpenRLHF", "--advantage_estimator group_norm"),
    Preset("openrlhf-dr-grpo", openrlhf_dr_grpo, "t", "OpenRLHF", "--advantage_estimator dr_grpo"),
    Preset("openrlhf-rloo", openrlhf_rloo, "t", "OpenRLHF", "--advantage_estimator rloo"),
    Preset("openrlhf-reinforce-baseline", openrlhf_reinforce_baseline, "t", "OpenRLHF",
           "--advantage_estimator reinforce_baseline"),
    Preset("minimal-rl-raft", minimal_rl_raft, "t", "Minimal-RL (Xiong et al. 2025)", "adv_estimator=raft"),
    Preset("minimal-rl-reinforce-rej", minimal_rl_reinforce_rej, "t", "Minimal-RL (Xiong et al. 2025)",
           "adv_estimator=reinforce_rej"),
    Preset("grpo-biased-std", grpo_biased_std, "arcsin", "cookbook", "(r - mean) / (np.std(r) + eps)"),
])


def preset_parameters(name: str) -> dict[str, Any]:
    """The keyword parameters of a preset with their defaults.

    Parameters
    ----------
    name : str
        A key of :data:`PRESETS` (``"verl-grpo"``, ``"trl-grpo"``, ...).

    Returns
    -------
    dict
        Parameter name -> default (``inspect.Parameter.empty`` where required); ``M`` is not
        included.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid ones).
    """
    return PRESETS.parameters(name)


def get_preset(name: str, M: int, **params: Any) -> WeightScheme:
    """Build the preset ``name`` for ``M`` answers per prompt.

    ``M`` is TRL's ``num_generations``, verl's ``rollout.n``, OpenRLHF's ``n_samples_per_prompt``.

    Parameters
    ----------
    name : str
        A key of :data:`PRESETS` (``"verl-grpo"``, ...).
    M : int
        Answers per prompt, checked by the preset's builder.
    **params
        The preset's keyword parameters (:func:`preset_parameters` lists them).

    Returns
    -------
    WeightScheme
        The scheme the framework's setting induces.

    Raises
    ------
    ValueError
        For an unknown name or parameter (the message lists the valid ones), or a bad value.

    Examples
    --------
    >>> get_preset("verl-grpo", 8, norm_adv_by_std_in_grpo=False).params["norm_adv_by_std_in_grpo"]
    False
    """
    return PRESETS.build(name, M, **params)
