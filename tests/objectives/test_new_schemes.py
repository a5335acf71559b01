"""The 2025-26 schemes: weights from the authors' own formulas, h_M against closed forms, DAPO dynamic
sampling by simulation, and the moments of the weights by enumeration (issue 15 §1-2)."""

from __future__ import annotations

import itertools
from math import comb

import numpy as np
import pytest
import sympy

from rlvrlens.objectives import (
    PRESETS, SCHEMES, Registry, dh, dr_grpo, dynamic_sampling, dynamic_sampling_dh, f_grpo, get_preset,
    get_scheme, gpg, grpo, h_exact, kept_fraction, maxrl, mean_weight, nsr, pass_at_k, pkpo, raft,
    reinforce, rloo, second_moment, t_symbol, w_reinforce, weight_variance, zero_weight_probability,
)

t = t_symbol()


def vectors(M: int):
    return [np.array(v, dtype=float) for v in itertools.product((0, 1), repeat=M)]


def harmonic_truncation(T: int):
    return sum((1 - (1 - t) ** k) / sympy.Integer(k) for k in range(1, T + 1))


# ---- MaxRL (Tajwar et al. 2026, arXiv:2602.02710) -------------------------------------------------
# Authors' estimator for T = N samples: (1/K) sum_{i right} grad log pi(y_i), 0 when K = 0. For T < M
# the scheme is its average over the T-subsets of the group. In this package's convention the step is
# (1/M) sum_i Z_i grad log pi(y_i), so Z_i = M * (coefficient of grad log pi(y_i)).

def maxrl_by_subsets(R: np.ndarray, T: int) -> np.ndarray:
    M = R.size
    Z = np.zeros(M)
    subsets = list(itertools.combinations(range(M), T))
    for I in subsets:
        K = sum(R[j] for j in I)
        for i in I:
            if R[i] == 1:
                Z[i] += 1.0 / K
    return M * Z / len(subsets)


@pytest.mark.parametrize("T", [1, 2, 3, 5])
def test_maxrl_weights_are_the_subset_average_of_the_authors_estimator(T):
    s = maxrl(5, T=T)
    for R in vectors(5):
        np.testing.assert_allclose(s.weights(R), maxrl_by_subsets(R, T), rtol=1e-13, atol=1e-15)


def test_maxrl_mean_baseline_is_p_normalisation():
    """T = M with the group-mean baseline: M R_i/K - 1 (= (r - mean)/mean), 0 for an all-wrong group."""
    s = maxrl(5, baseline="mean")
    for R in vectors(5):
        K = R.sum()
        expected = np.zeros(5) if K == 0 else 5 * R / K - 1
        np.testing.assert_allclose(s.weights(R), expected, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("M, T", [(4, 1), (4, 4), (6, 2), (6, 5), (7, 7)])
def test_maxrl_h_is_the_maclaurin_truncation(M, T):
    assert sympy.expand(h_exact(maxrl(M, T=T)).as_expr() - harmonic_truncation(T)) == 0


def test_maxrl_full_order_is_raft_and_mean_baseline_drops_one_order():
    np.testing.assert_array_equal(maxrl(9).c, raft(9).c)
    for M in (3, 6):
        assert sympy.expand(h_exact(maxrl(M, baseline="mean")).as_expr() - harmonic_truncation(M - 1)) == 0
    with pytest.raises(ValueError, match="T must be an integer >= 1 and <= 4"):
        maxrl(4, T=5)
    with pytest.raises(ValueError, match="baseline must be one of"):
        maxrl(4, baseline="loo")


# ---- PKPO (Walder & Karkhanis 2025, arXiv:2505.15201, eqs. 19, 29, 33) -----------------------------
# Transcribed from the definitions by sums over k-subsets of binary rewards g.

def s_eq19(g: np.ndarray, k: int) -> np.ndarray:
    n = g.size
    out = np.zeros(n)
    for I in itertools.combinations(range(n), k):
        for i in I:
            out[i] += max(g[j] for j in I)
    return out / comb(n, k)


def s_eq29(g: np.ndarray, k: int) -> np.ndarray:
    n = g.size
    out = s_eq19(g, k)
    for i in range(n):
        others = np.delete(g, i)
        out[i] -= s_eq19(others, k).sum() / (n - 1)
    return out


def s_eq33(g: np.ndarray, k: int) -> np.ndarray:
    n = g.size
    out = np.zeros(n)
    for I in itertools.combinations(range(n), k):
        for i in I:
            rest = [g[j] for j in I if j != i]
            out[i] += max(g[j] for j in I) - (max(rest) if rest else 0.0)
    return out / comb(n, k)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
@pytest.mark.parametrize("baseline, formula", [("none", s_eq19), ("loo", s_eq29), ("loo-1", s_eq33)])
def test_pkpo_weights_match_the_papers_equations(k, baseline, formula):
    M = 5
    if baseline == "loo" and k == M:
        with pytest.raises(ValueError, match="needs k < M"):
            pkpo(M, k, baseline)
        return
    s = pkpo(M, k, baseline)
    for R in vectors(M):
        np.testing.assert_allclose(s.weights(R), M * formula(R, k), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("k", [1, 3, 6])
def test_pkpo_estimators_share_h_but_not_variance(k):
    M = 7
    closed = 1 - (1 - t) ** k
    schemes = [pkpo(M, k, b) for b in ("none", "loo", "loo-1")]
    for s in schemes:
        assert sympy.expand(h_exact(s).as_expr() - closed) == 0
    np.testing.assert_allclose(schemes[2].c, pass_at_k(M, k).c, rtol=1e-13)
    if k > 1:  # k = 1: every baseline is REINFORCE-like; otherwise the second moments differ
        p = np.array([0.1, 0.5, 0.9])
        m2 = [second_moment(s, p) for s in schemes]
        assert np.all(m2[2] < m2[0]) and np.all(m2[1] < m2[0])


# ---- W-REINFORCE / NSR (Zhu et al. 2025, arXiv:2506.01347, §5) --------------------------------------
# L = lam * L_PSR + L_NSR with rewards r in {+1, -1}: the gradient is lam * sum_{r=+1} grad log pi
# - sum_{r=-1} grad log pi, i.e. Z = lam * [r = +1] + r * [r = -1].

@pytest.mark.parametrize("lam", [0.0, 0.1, 1.0])
def test_w_reinforce_matches_the_weighted_objective(lam):
    M = 4
    s = w_reinforce(M, lam) if lam else nsr(M)
    for R in vectors(M):
        r = 2 * R - 1
        expected = lam * (r == 1) + r * (r == -1)
        np.testing.assert_allclose(s.weights(R), expected)
    assert sympy.expand(h_exact(s).as_expr() - sympy.nsimplify(1 + lam) * t) == 0


# ---- F-GRPO (Plyusov et al. 2026, arXiv:2602.06717, §4) ----------------------------------------------

@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0])
def test_f_grpo_is_focal_times_grpo(gamma):
    M, eps = 5, 1e-6
    s = f_grpo(M, gamma=gamma, eps=eps)
    for R in vectors(M):
        mu = R.mean()
        adv = (R - mu) / (R.std(ddof=1) + eps)
        np.testing.assert_allclose(s.weights(R), (1 - mu) ** gamma * adv, rtol=1e-12, atol=1e-14)
    # real-valued rewards use the same formula
    R = np.array([0.2, 0.9, 0.4, 0.0, 1.0])
    mu = R.mean()
    np.testing.assert_allclose(s.weights(R), (1 - mu) ** gamma * (R - mu) / (R.std(ddof=1) + eps))


# ---- GPG (Chu et al. 2025, eq. 7; TRL GPGTrainer) -----------------------------------------------------

def test_gpg_is_group_mean_advantage_over_the_informative_fraction():
    M, p = 6, 0.3
    kappa = 1 - p**M - (1 - p) ** M  # large-batch fraction of groups whose rewards are not all equal
    s = gpg(M, p)
    for R in vectors(M):
        np.testing.assert_allclose(s.weights(R), (R - R.mean()) / kappa, atol=1e-15)
    np.testing.assert_allclose(dh(s, [0.2, 0.7]), (M - 1) / M / kappa)
    assert get_preset("trl-gpg", M, p_batch=p) == type(s)(M, s.a, s.b, name="trl-gpg", params={"p_batch": (p,)})


# ---- DAPO dynamic sampling ------------------------------------------------------------------------------

def simulate_dynamic_sampling(scheme, p_types, batches, B, rng):
    """Refill until B groups whose rewards are not all equal; per prompt type, the batch's step
    sum_{kept groups of that type} (1/B) (1/M) sum_i Z_i (R_i - p)/(p(1-p)) (the score of a Bernoulli
    logit), averaged over batches, with its standard error."""
    M = scheme.M
    steps = np.zeros((batches, len(p_types)))
    for b in range(batches):
        kept = 0
        while kept < B:
            a = rng.integers(len(p_types))
            p = p_types[a]
            R = (rng.random(M) < p).astype(float)
            if R.min() == R.max():
                continue
            kept += 1
            steps[b, a] += np.mean(scheme.weights(R) * (R - p) / (p * (1 - p))) / B
    return steps.mean(axis=0), steps.std(axis=0, ddof=1) / np.sqrt(batches)


@pytest.mark.parametrize("base", [reinforce(4), grpo(4, eps=0.0), raft(4)], ids=repr)
def test_dynamic_sampling_expected_step_by_simulation(base):
    """Two prompt types drawn with probability 1/2: the per-type step is (1/2) h'_0(p)/kappa.
    The tolerance is 5 standard errors (about 0.02 here): a missing 1/kappa (a 20-40% change) or a
    kept all-right/all-wrong weight would be detected."""
    rng = np.random.default_rng(0)
    p_types = np.array([0.25, 0.8])
    mean, se = simulate_dynamic_sampling(base, p_types, batches=1500, B=8, rng=rng)
    predicted = 0.5 * dh(dynamic_sampling(base, p_types), p_types)
    assert np.all(np.abs(mean - predicted) < 5 * se + 1e-12), (mean, predicted, se)


def test_dynamic_sampling_changes_shape_only_for_schemes_weighting_uniform_groups():
    p = np.linspace(0.05, 0.95, 7)
    kappa = kept_fraction(6, 0.4)
    for zero_on_uniform in (rloo(6), dr_grpo(6), grpo(6, eps=0.0)):
        np.testing.assert_allclose(dh(dynamic_sampling(zero_on_uniform, 0.4), p), dh(zero_on_uniform, p) / kappa,
                                   rtol=1e-12)
    ratio = dh(dynamic_sampling(reinforce(6), 0.4), p) / dh(reinforce(6), p)
    assert np.ptp(ratio) > 0.1  # REINFORCE: the shape changes
    # the homogeneous batch: h'_0(p) / q(p), by exact enumeration of the conditional expectation
    M = 4
    for pv in (0.2, 0.6):
        num = 0.0
        for R in vectors(M):
            if R.min() == R.max():
                continue
            prob = pv ** R.sum() * (1 - pv) ** (M - R.sum())
            num += prob * np.mean(reinforce(M).weights(R) * (R - pv) / (pv * (1 - pv)))
        assert dynamic_sampling_dh(reinforce(M), pv) == pytest.approx(num / kept_fraction(M, pv), rel=1e-12)


# ---- moments of the weights by 2^M enumeration ---------------------------------------------------------

@pytest.mark.parametrize("scheme", [grpo(5), raft(5), pkpo(5, 2, "none"), maxrl(5, baseline="mean"),
                                    w_reinforce(5), f_grpo(5, gamma=2.0)], ids=repr)
def test_moments_and_silent_groups_by_enumeration(scheme):
    M = scheme.M
    for p in (0.0, 0.15, 0.5, 0.9, 1.0):
        m1 = m2 = p0 = 0.0
        for R in vectors(M):
            prob = p ** R.sum() * (1 - p) ** (M - R.sum())
            Z = scheme.weights(R)
            m1 += prob * Z.mean()
            m2 += prob * np.mean(Z**2)
            p0 += prob * bool(np.all(Z == 0))
        assert float(mean_weight(scheme, p)) == pytest.approx(m1, rel=1e-12, abs=1e-14)
        assert float(second_moment(scheme, p)) == pytest.approx(m2, rel=1e-12, abs=1e-14)
        assert float(weight_variance(scheme, p)) == pytest.approx(max(m2 - m1**2, 0.0), rel=1e-10, abs=1e-12)
        assert float(zero_weight_probability(scheme, p)) == pytest.approx(p0, rel=1e-12, abs=1e-15)


# ---- one registry ----------------------------------------------------------------------------------------

def test_schemes_and_presets_share_one_registry_and_one_refusal():
    assert isinstance(SCHEMES, Registry) and isinstance(PRESETS, Registry)
    messages = []
    for get, name in ((get_scheme, "raft"), (get_preset, "verl-rloo")):
        with pytest.raises(ValueError) as info:
            get(name, 4, bogus=1)
        messages.append(str(info.value).replace(name, "NAME").replace("scheme", "KIND").replace("preset", "KIND"))
    assert messages[0] == messages[1] == "KIND 'NAME' does not take parameter(s) bogus; it takes: none besides M"
    for get, kind in ((get_scheme, "scheme"), (get_preset, "preset")):
        with pytest.raises(ValueError, match=f"unknown {kind} 'nope'; valid {kind}s: "):
            get("nope", 4)


REQUIRED = {"pass_at_k": {"k": 2}, "pkpo": {"k": 2}}


@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_declared_limit_is_the_built_schemes_limit(name):
    entry = SCHEMES[name]
    assert entry(8, **REQUIRED.get(name, {})).limit == entry.limit
    assert entry.summary and "\n" not in entry.summary


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_declared_preset_limit(name):
    from rlvrlens.objectives.presets import MissingPBatch

    entry = PRESETS[name]
    try:
        built = entry(8)
    except MissingPBatch:
        built = entry(8, p_batch=0.5)
    assert built.limit == entry.limit
