"""The finite-sample iteration: unbiased gaps, reproducibility, and where its mean tracks the map."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest

from rlvrlens.dynamics import iterate, sample_gap, simulate, success_map
from rlvrlens.objectives import grpo, raft, rloo


def bernstein(c, p):
    M = len(c)
    return sum(c[s] * comb(M - 1, s) * p**s * (1 - p) ** (M - 1 - s) for s in range(M))


@pytest.mark.parametrize("scheme", [raft(4), grpo(8), rloo(5)], ids=lambda s: s.name)
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_importance_gap_is_unbiased(scheme, p):
    """Monte Carlo, 2e5 groups: |mean - h'_M(p)| <= 5 standard errors."""
    gaps = sample_gap(scheme, np.full(200_000, p), np.random.default_rng(1))
    se = gaps.std() / np.sqrt(gaps.size)
    assert abs(gaps.mean() - bernstein(scheme.c, p)) <= 5 * se


def test_group_mean_gap_is_biased_for_raft():
    """Mean weight of the right answers minus that of the wrong ones: for RAFT E[M/K; K >= 1],
    not h'_M(p) = (1 - (1-p)^M)/p (exact sum below); the difference is far beyond the MC error."""
    M, p = 4, 0.1
    gaps = sample_gap(raft(M), np.full(200_000, p), np.random.default_rng(2), estimator="group_mean")
    exact_group_mean = sum(comb(M, k) * p**k * (1 - p) ** (M - k) * M / k for k in range(1, M + 1))
    se = gaps.std() / np.sqrt(gaps.size)
    assert abs(gaps.mean() - exact_group_mean) <= 5 * se
    assert abs(gaps.mean() - (1 - (1 - p) ** M) / p) > 100 * se


def test_sampling_in_logit_space_near_one():
    """p = 1 - 1e-200 (given as q): no wrong answer is drawn, so with RAFT every group is all right,
    A_right = M b_{M-1}/(M p) = 1, A_wrong = 0. With q = 0.2 RAFT's gap is K (M/K)/(M p) = 1/p when
    K >= 1 right answers are drawn and 0 when K = 0, so its mean is (1 - q^M)/p (5 standard errors)."""
    rng = np.random.default_rng(3)
    q = np.full(1000, 1e-200)
    np.testing.assert_allclose(sample_gap(raft(4), 1.0 - q, rng, q=q), 1.0, rtol=1e-15)
    n = 100_000
    gaps = sample_gap(raft(4), np.full(n, 0.8), rng, q=np.full(n, 0.2))
    assert gaps.mean() == pytest.approx((1 - 0.2**4) / 0.8, abs=5 * gaps.std() / np.sqrt(n) + 1e-12)


def test_seed_reproducible():
    a = simulate(grpo(8), 0.5, [0.1, 0.4, 0.7], 10, seed=7)
    b = simulate(grpo(8), 0.5, [0.1, 0.4, 0.7], 10, seed=7)
    c = simulate(grpo(8), 0.5, [0.1, 0.4, 0.7], 10, seed=8)
    np.testing.assert_array_equal(a.p, b.p)
    assert not np.array_equal(a.p, c.p)
    assert a.p.shape == (11, 3) and a.gap.shape == (10, 3) and a.quantiles().shape == (3, 11)


def _tracking_error(scheme, beta, p_ref=0.3, n_prompts=4000, n_steps=15):
    sim = simulate(scheme, beta, p_ref, n_steps, n_prompts=n_prompts, seed=11)
    det = iterate(success_map(scheme, beta, p_ref), p_ref, n_steps)
    se = sim.p.std(axis=1) / np.sqrt(n_prompts)
    return np.abs(sim.mean() - det.p), se


def test_mean_tracks_the_map_when_beta_is_large():
    """beta = 20: the per-step logit noise std(gap)/beta is small, so the Jensen gap
    E[sigmoid(x_ref + gap/beta)] - sigmoid(x_ref + E[gap]/beta) is O(Var(gap)/beta^2): the simulated
    mean stays within 5 standard errors + 0.002 of the deterministic trajectory."""
    err, se = _tracking_error(rloo(8), 20.0)
    assert np.all(err <= 5 * se + 2e-3)


def test_mean_does_not_track_the_map_when_beta_is_small():
    """beta = 0.3: the noise in the logit is several units, the map's nonlinearity dominates and
    the simulated mean departs from the deterministic trajectory by far more than its error."""
    err, se = _tracking_error(rloo(8), 0.3)
    assert err[1:].max() > 0.1 and err[1:].max() > 20 * se[1:].max()


def test_simulate_bad_input():
    with pytest.raises(ValueError, match="beta"):
        simulate(rloo(4), 0.0, 0.3, 5)
    with pytest.raises(ValueError, match="p_ref"):
        simulate(rloo(4), 1.0, 1.0, 5)
    with pytest.raises(ValueError, match="p_ref"):
        simulate(rloo(4), 1.0, float("nan"), 5)
    with pytest.raises(ValueError, match="estimator"):
        simulate(rloo(4), 1.0, 0.3, 5, estimator="other")
    with pytest.raises(TypeError, match="scheme"):
        simulate("rloo", 1.0, 0.3, 5)
    with pytest.raises(ValueError, match="n_prompts"):
        simulate(rloo(4), 1.0, [0.2, 0.3], 5, n_prompts=3)
    with pytest.raises(ValueError, match="n_steps"):
        simulate(rloo(4), 1.0, 0.3, -1)
