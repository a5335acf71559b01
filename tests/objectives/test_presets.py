"""Framework presets against numpy transcriptions of each framework's advantage code.

Every ``*_code`` function below re-writes, line by line, what the cited framework file does to a
flat batch of rewards (groups of ``G`` consecutive answers); nothing here calls the objectives
layer. Batch-level presets are checked on batches whose empirical distribution of reward vectors
is *exactly* the modelled one (each vector repeated in proportion to its probability), so the only
gap to the large-batch limit is the unbiased-std factor ``N/(N-1)`` of a batch of ``N`` answers.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlvrlens.objectives import h
from rlvrlens.objectives.presets import PRESETS, get_preset, preset_parameters

M = 4
ALL_BINARY = np.array(list(itertools.product((0.0, 1.0), repeat=M)))
REAL = np.array([[0.3, 1.7, -0.2, 0.9], [2.0, 2.0, 0.5, -1.0], [0.1, 0.1, 0.1, 0.1], [5.0, -3.0, 0.0, 1.0]])


# ---------------------------------------------------------------- transcriptions of the frameworks

def trl_grpo_code(rewards: np.ndarray, G: int, scale_rewards: str) -> np.ndarray:
    """trl/trainer/grpo_trainer.py (sum_then_normalize branch); torch.std is unbiased."""
    grouped = rewards.reshape(-1, G)
    mean_grouped = np.repeat(grouped.mean(axis=1), G)
    if scale_rewards in ("group", "none"):
        std_rewards = np.repeat(grouped.std(axis=1, ddof=1), G)
    else:
        std_rewards = np.full_like(rewards, rewards.std(ddof=1))
    advantages = rewards - mean_grouped
    if scale_rewards != "none":
        advantages = advantages / (std_rewards + 1e-4)
    return advantages


def trl_rloo_code(rewards: np.ndarray, G: int, normalize_advantages: bool) -> np.ndarray:
    """trl/trainer/rloo_trainer.py."""
    grouped = rewards.reshape(-1, G)
    grouped_sum = grouped.sum(axis=1, keepdims=True)
    baselines = ((grouped_sum - grouped) / (G - 1)).reshape(-1)
    advantages = rewards - baselines
    if normalize_advantages:
        advantages = (advantages - advantages.mean()) / (advantages.std(ddof=1) + 1e-4)
    return advantages


def _groups(rewards: np.ndarray, G: int):
    return [rewards[i:i + G] for i in range(0, len(rewards), G)]


def verl_grpo_code(rewards: np.ndarray, G: int, norm: bool, epsilon: float) -> np.ndarray:
    """verl compute_grpo_outcome_advantage."""
    out = []
    for g in _groups(rewards, G):
        mean, std = g.mean(), g.std(ddof=1)
        out.append((g - mean) / (std + epsilon) if norm else g - mean)
    return np.concatenate(out)


def verl_rloo_code(rewards: np.ndarray, G: int) -> np.ndarray:
    """verl compute_rloo_outcome_advantage (the n/(n-1) form)."""
    out = []
    for g in _groups(rewards, G):
        n = len(g)
        out.append(g * n / (n - 1) - g.mean() * n / (n - 1))
    return np.concatenate(out)


def verl_grpo_vectorized_code(rewards: np.ndarray, G: int, epsilon: float) -> np.ndarray:
    """verl 0.9.1 compute_grpo_vectorized_outcome_advantage with utils/groupwise.py group_mean_std(eps=0.0)."""
    g = np.repeat(np.arange(len(rewards) // G), G)
    count = np.bincount(g).astype(float)
    total, total2 = np.bincount(g, weights=rewards), np.bincount(g, weights=rewards**2)
    mean = total / count
    var = np.maximum((total2 - total**2 / count) / np.maximum(count - 1, 1), 0.0)
    std = np.sqrt(var)
    return (rewards - mean[g]) / (std[g] + epsilon)


def verl_rloo_vectorized_code(rewards: np.ndarray, G: int) -> np.ndarray:
    """verl 0.9.1 compute_rloo_vectorized_outcome_advantage."""
    inv = np.repeat(np.arange(len(rewards) // G), G)
    c = np.bincount(inv)[inv].astype(float)
    return (c * rewards - np.bincount(inv, weights=rewards)[inv]) / np.maximum(c - 1, 1) * (c > 1)


def verl_gpg_code(rewards: np.ndarray, G: int) -> np.ndarray:
    """verl compute_gpg_outcome_advantage (f_norm = 1)."""
    alpha = len(rewards) / max(np.count_nonzero(rewards), 1)
    return np.concatenate([alpha * (g - g.mean()) / 1.0 for g in _groups(rewards, G)])


def verl_grpo_passk_code(rewards: np.ndarray, G: int, norm: bool, epsilon: float) -> np.ndarray:
    """verl compute_grpo_passk_outcome_advantage."""
    out = []
    for g in _groups(rewards, G):
        adv = np.zeros_like(g)
        i_max = int(np.argmax(g))
        r_max, r_second = np.sort(g)[::-1][:2]
        advantage = r_max - r_second
        if norm:
            advantage = advantage / (g.std(ddof=1) + epsilon)
        adv[i_max] = advantage
        out.append(adv)
    return np.concatenate(out)


def verl_masked_whiten(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """verl/utils/torch_functional.py masked_whiten (unbiased masked variance)."""
    mean = (values * mask).sum() / mask.sum()
    var = (((values - mean) ** 2) * mask).sum() / mask.sum() * mask.sum() / (mask.sum() - 1)
    return (values - mean) / np.sqrt(var + 1e-8)


def verl_rpp_baseline_code(rewards: np.ndarray, G: int, tokens: int = 3) -> np.ndarray:
    """verl compute_reinforce_plus_plus_baseline_outcome_advantage, at token level (equal lengths)."""
    scores = np.concatenate([g - g.mean() for g in _groups(rewards, G)])
    token_scores = np.tile(scores[:, None], (1, tokens))
    mask = np.ones_like(token_scores)
    return (verl_masked_whiten(token_scores, mask) * mask)[:, 0]


def openrlhf_code(rewards: np.ndarray, G: int, estimator: str, no_std: bool = False,
                  tokens: int = 3) -> np.ndarray:
    """openrlhf/trainer/ppo_utils/experience_maker.py compute_advantages_and_returns."""
    r = rewards.reshape(-1, G)
    if estimator == "rloo":
        r = r - (r.sum(-1, keepdims=True) - r) / (G - 1)
    elif estimator in ("reinforce_baseline", "dr_grpo"):
        r = r - r.mean(-1, keepdims=True)
    elif estimator == "group_norm":
        r = (r - r.mean(-1, keepdims=True)) / (r.std(-1, ddof=1, keepdims=True) + 1e-9)
    adv = np.tile(r.reshape(-1)[:, None], (1, tokens))  # gamma = 1: every token holds the return
    if estimator in ("gae", "reinforce", "reinforce_baseline"):
        mean = adv.mean()
        rstd = 1.0 if no_std else 1.0 / np.sqrt(max(((adv - mean) ** 2).mean(), 1e-8))
        adv = (adv - mean) * rstd
    return adv[:, 0]


def minimal_rl_raft_code(rewards01: np.ndarray) -> np.ndarray:
    """Minimal-RL compute_raft_outcome_advantage with its ±1 rewards."""
    scores = 2 * rewards01 - 1
    max_val = scores.max()
    if max_val == -1:
        return np.zeros_like(scores)
    return np.where(scores == max_val, scores, 0.0)


def minimal_rl_rej_code(rewards01: np.ndarray, G: int) -> np.ndarray:
    """Minimal-RL compute_reinforce_rej_outcome_advantage with ±1 rewards."""
    out = []
    for g in _groups(2 * rewards01 - 1, G):
        out.append(g if g.std(ddof=1) > 0 else g - g)
    return np.concatenate(out)


def cookbook_biased_grpo(rewards: np.ndarray, G: int, eps: float) -> np.ndarray:
    g = rewards.reshape(-1, G)
    return ((g - g.mean(1, keepdims=True)) / (np.std(g, axis=1, keepdims=True) + eps)).reshape(-1)


# ---------------------------------------------------------------- group-level presets: exact

GROUP_CASES = [
    ("trl-grpo", {}, lambda r: trl_grpo_code(r, M, "group"), True),
    ("trl-grpo", {"scale_rewards": "none"}, lambda r: trl_grpo_code(r, M, "none"), True),
    ("trl-rloo", {}, lambda r: trl_rloo_code(r, M, False), True),
    ("verl-grpo", {}, lambda r: verl_grpo_code(r, M, True, 1e-6), True),
    ("verl-grpo", {"epsilon": 0.01}, lambda r: verl_grpo_code(r, M, True, 0.01), True),
    ("verl-grpo", {"norm_adv_by_std_in_grpo": False}, lambda r: verl_grpo_code(r, M, False, 1e-6), True),
    ("verl-rloo", {}, lambda r: verl_rloo_code(r, M), True),
    ("verl-grpo-vectorized", {}, lambda r: verl_grpo_vectorized_code(r, M, 1e-6), True),
    ("verl-rloo-vectorized", {}, lambda r: verl_rloo_vectorized_code(r, M), True),
    ("verl-grpo-passk", {}, lambda r: verl_grpo_passk_code(r, M, True, 1e-6), True),
    ("verl-grpo-passk", {"norm_adv_by_std_in_grpo": False},
     lambda r: verl_grpo_passk_code(r, M, False, 1e-6), True),
    ("openrlhf-group-norm", {}, lambda r: openrlhf_code(r, M, "group_norm"), True),
    ("openrlhf-dr-grpo", {}, lambda r: openrlhf_code(r, M, "dr_grpo"), True),
    ("openrlhf-rloo", {}, lambda r: openrlhf_code(r, M, "rloo"), True),
    ("openrlhf-reinforce-baseline", {"no_advantage_std_norm": True},
     lambda r: openrlhf_code(r, M, "reinforce_baseline", no_std=True), True),
    ("minimal-rl-reinforce-rej", {}, lambda r: minimal_rl_rej_code(r, M), False),
    ("grpo-biased-std", {}, lambda r: cookbook_biased_grpo(r, M, 1e-6), True),
    ("grpo-biased-std", {"eps": 0.1}, lambda r: cookbook_biased_grpo(r, M, 0.1), True),
]


@pytest.mark.parametrize("name, params, code, has_formula", GROUP_CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in GROUP_CASES])
def test_group_preset_matches_framework_code_on_every_binary_group(name, params, code, has_formula):
    scheme = get_preset(name, M, **params)
    for row in ALL_BINARY:
        np.testing.assert_allclose(scheme.weights(row), code(row), rtol=1e-12, atol=1e-12)
    if has_formula:
        np.testing.assert_allclose(scheme.weights(REAL), code(REAL.ravel()).reshape(REAL.shape),
                                   rtol=1e-12, atol=1e-12)


def test_group_presets_batch_of_groups_at_once():
    """A whole batch of groups through the framework code equals the preset row by row."""
    batch = ALL_BINARY.ravel()
    np.testing.assert_allclose(get_preset("trl-grpo", M).weights(ALL_BINARY).ravel(),
                               trl_grpo_code(batch, M, "group"), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(get_preset("verl-grpo", M).weights(ALL_BINARY).ravel(),
                               verl_grpo_code(batch, M, True, 1e-6), rtol=1e-12, atol=1e-12)


def test_minimal_rl_raft_is_reinforce_on_a_batch():
    scheme = get_preset("minimal-rl-raft", M)
    np.testing.assert_array_equal(scheme.weights(ALL_BINARY).ravel(), minimal_rl_raft_code(ALL_BINARY.ravel()))
    wrong = np.zeros((3, M))
    np.testing.assert_array_equal(scheme.weights(wrong).ravel(), minimal_rl_raft_code(wrong.ravel()))


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 12), st.data())
def test_trl_and_verl_grpo_any_group_size(G, data):
    rows = data.draw(st.lists(st.lists(st.sampled_from([0.0, 1.0]), min_size=G, max_size=G),
                              min_size=1, max_size=5))
    R = np.array(rows)
    np.testing.assert_allclose(get_preset("trl-grpo", G).weights(R).ravel(),
                               trl_grpo_code(R.ravel(), G, "group"), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(get_preset("verl-grpo", G).weights(R).ravel(),
                               verl_grpo_code(R.ravel(), G, True, 1e-6), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(get_preset("verl-grpo-passk", G).weights(R).ravel(),
                               verl_grpo_passk_code(R.ravel(), G, True, 1e-6), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- batch-level presets

def exact_batch(p_batch: tuple[float, ...], copies: int) -> np.ndarray:
    """A batch whose reward vectors occur exactly in proportion to their probabilities.

    Each prompt's vectors get integer multiplicities ``P(v | p) * 4^M`` (p in quarters), so all
    prompts weigh the same; the block is repeated ``copies`` times.
    """
    groups = []
    for p in p_batch:
        q = round(p * 4)
        assert abs(q / 4 - p) < 1e-15
        for v in ALL_BINARY:
            k = int(v.sum())
            mult = q**k * (4 - q) ** (M - k)
            groups.extend([v] * mult)
    return np.tile(np.array(groups), (copies, 1))


P_BATCH = (0.25, 0.5, 0.75, 0.25)
BATCH = exact_batch(P_BATCH, copies=20)
N = BATCH.size

BATCH_CASES = [
    ("trl-grpo", {"scale_rewards": "batch"}, lambda r: trl_grpo_code(r, M, "batch"), 1e-4),
    ("trl-rloo", {"normalize_advantages": True}, lambda r: trl_rloo_code(r, M, True), 1e-4),
    ("verl-gpg", {}, lambda r: verl_gpg_code(r, M), 1e-12),
    ("verl-reinforce-plus-plus-baseline", {}, lambda r: verl_rpp_baseline_code(r, M), 1e-4),
    ("openrlhf-reinforce-baseline", {}, lambda r: openrlhf_code(r, M, "reinforce_baseline"), 1e-12),
]


@pytest.mark.parametrize("name, params, code, rtol", BATCH_CASES, ids=[c[0] for c in BATCH_CASES])
def test_batch_preset_matches_framework_code_on_an_exactly_distributed_batch(name, params, code, rtol):
    """rtol 1e-4 where the framework's std is unbiased: the N/(N-1) factor is ~1e-5 here."""
    assert 1 / N < rtol or rtol == 1e-12
    scheme = get_preset(name, M, p_batch=P_BATCH, **params)
    np.testing.assert_allclose(scheme.weights(BATCH).ravel(), code(BATCH.ravel()), rtol=rtol, atol=1e-12)


def test_batch_presets_depend_only_on_the_spread_and_a_number_means_all_prompts_alike():
    a = get_preset("trl-grpo", M, scale_rewards="batch", p_batch=0.3)
    b = get_preset("trl-grpo", M, scale_rewards="batch", p_batch=[0.3, 0.3, 0.3])
    np.testing.assert_allclose(a.c, b.c)
    # the raw-reward std needs only the mean of p; the centred one needs E[p(1-p)]
    c = get_preset("trl-grpo", M, scale_rewards="batch", p_batch=[0.1, 0.5])
    np.testing.assert_allclose(a.c, c.c)
    d = get_preset("openrlhf-reinforce-baseline", M, p_batch=0.3)
    e = get_preset("openrlhf-reinforce-baseline", M, p_batch=[0.1, 0.5])
    assert not np.allclose(d.c, e.c)


# ---------------------------------------------------------------- what the presets optimise

def test_passk_preset_objective_is_pass_at_M():
    s = get_preset("verl-grpo-passk", 6)
    t = np.linspace(0, 1, 11)
    b0 = 1 / (1 / np.sqrt(6) + 1e-6)
    np.testing.assert_allclose(h(s, t), b0 * (1 - (1 - t) ** 6) / 6, rtol=1e-12, atol=1e-15)


def test_rloo_presets_have_h_equal_t():
    t = np.linspace(0, 1, 11)
    for name in ("trl-rloo", "verl-rloo", "openrlhf-rloo", "minimal-rl-raft"):
        np.testing.assert_allclose(h(get_preset(name, 5), t), t, atol=1e-14)


def test_every_preset_builds_and_names_itself():
    for name, preset in PRESETS.items():
        params = {"p_batch": 0.4} if "p_batch" in preset_parameters(name) and name in (
            "verl-gpg", "verl-reinforce-plus-plus-baseline", "openrlhf-reinforce-baseline", "trl-gpg", "verl-dapo") else {}
        s = get_preset(name, 8, **params)
        assert s.name == name and s.M == 8
        assert preset.summary and preset.framework and preset.config


# ---------------------------------------------------------------- bad input

def test_unknown_preset_lists_valid_ones_on_one_line():
    with pytest.raises(ValueError) as exc:
        get_preset("trl-grpoo", 8)
    msg = str(exc.value)
    assert "\n" not in msg and "trl-grpo" in msg and "openrlhf-rloo" in msg


def test_unknown_parameter_lists_the_valid_ones():
    with pytest.raises(ValueError, match=re.escape("it takes: scale_rewards, p_batch")):
        get_preset("trl-grpo", 8, eps=1e-3)
    with pytest.raises(ValueError, match="none besides M"):
        get_preset("verl-rloo", 8, epsilon=1.0)


@pytest.mark.parametrize("name, M_, params, err, match", [
    ("trl-grpo", 8, {"scale_rewards": "global"}, ValueError, "scale_rewards must be one of"),
    ("trl-grpo", 8, {"scale_rewards": "batch"}, ValueError, "give p_batch"),
    ("trl-grpo", 8, {"p_batch": 0.5}, ValueError, "only to scale_rewards='batch'"),
    ("trl-grpo", 8, {"scale_rewards": "batch", "p_batch": 1.5}, ValueError, "p_batch must lie in"),
    ("trl-grpo", 1, {}, ValueError, "M must be an integer >= 2"),
    ("trl-grpo", 8.0, {}, TypeError, "M must be an integer"),
    ("verl-grpo", 8, {"epsilon": -1.0}, ValueError, "epsilon must be in"),
    ("verl-grpo", 8, {"norm_adv_by_std_in_grpo": "yes"}, TypeError, "must be a bool"),
    ("verl-gpg", 8, {"p_batch": 0.0}, ValueError, "positive mean"),
    ("verl-gpg", 8, {"p_batch": []}, ValueError, "at least one"),
    ("trl-rloo", 8, {"p_batch": 0.5}, ValueError, "only to normalize_advantages=True"),
    ("openrlhf-reinforce-baseline", 8, {}, ValueError, "give p_batch"),
    ("grpo-biased-std", 8, {"eps": float("nan")}, ValueError, "eps must be finite"),
])
def test_bad_parameters_name_the_parameter(name, M_, params, err, match):
    with pytest.raises(err, match=match):
        get_preset(name, M_, **params)
