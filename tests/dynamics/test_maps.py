"""Success maps against independent computations: the closed-form optimal policy over a finite
response set, mpmath near p = 1, finite differences, and bad input."""

from __future__ import annotations

from math import comb

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from rlvrlens.dynamics import (
    dr_grpo_success_map,
    grpo_success_map,
    iterate,
    mirror_map,
    mixture_map,
    success_map,
)
from rlvrlens.objectives import WeightScheme, dr_grpo, grpo, log_odds, raft, reinforce_rej, rloo

SCHEMES = [grpo(8), grpo(5, eps=0.1, std="population", eps_inside_sqrt=True), raft(4), rloo(6),
           log_odds(5), dr_grpo(3), reinforce_rej(4, "pm1")]

# five responses, the first two right
RIGHT = np.array([True, True, False, False, False])
PI_REF = np.array([0.05, 0.15, 0.3, 0.2, 0.3])


def expected_weights(scheme: WeightScheme, p: float) -> tuple[float, float]:
    """E[b_S], E[a_S] with S ~ Bin(M-1, p), by direct summation (exact binomial coefficients)."""
    M = scheme.M
    pmf = [comb(M - 1, s) * p**s * (1 - p) ** (M - 1 - s) for s in range(M)]
    return float(np.dot(pmf, scheme.b)), float(np.dot(pmf, scheme.a))


def softmax_policy(log_weights: np.ndarray) -> np.ndarray:
    w = np.exp(log_weights - log_weights.max())
    return w / w.sum()


def tilted(pi_ref: np.ndarray, p: float) -> np.ndarray:
    """pi_ref reweighted so that P(right) = p, keeping the ratios inside each outcome."""
    q = pi_ref.copy()
    q[RIGHT] *= p / pi_ref[RIGHT].sum()
    q[~RIGHT] *= (1 - p) / pi_ref[~RIGHT].sum()
    return q


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: repr(s))
@pytest.mark.parametrize("beta", [0.3, 2.0])
def test_closed_form_policy_reproduces_one_step(scheme, beta):
    p_ref = PI_REF[RIGHT].sum()
    F = success_map(scheme, beta, p_ref)
    for p_prev in (0.03, 0.4, 0.93):
        a_right, a_wrong = expected_weights(scheme, p_prev)
        advantage = np.where(RIGHT, a_right, a_wrong)
        pi_new = softmax_policy(np.log(PI_REF) + advantage / beta)
        assert float(F(p_prev)) == pytest.approx(pi_new[RIGHT].sum(), rel=1e-12)


def test_closed_form_is_the_kl_regularised_maximiser():
    """softmax(log pi_ref + A/beta) maximises E_pi[A] - beta KL(pi || pi_ref) (checked numerically)."""
    beta, scheme = 0.7, grpo(8)
    a_right, a_wrong = expected_weights(scheme, 0.3)
    A = np.where(RIGHT, a_right, a_wrong)

    def neg_objective(z):
        pi = softmax_policy(z)
        return -(pi @ A - beta * np.sum(pi * np.log(pi / PI_REF)))

    best = minimize(neg_objective, np.zeros(5), method="BFGS", options={"gtol": 1e-10})
    pi_opt = softmax_policy(best.x)
    F = success_map(scheme, beta, PI_REF[RIGHT].sum())
    assert pi_opt[RIGHT].sum() == pytest.approx(float(F(0.3)), abs=1e-6)


def test_population_grpo_from_omega_plus_and_minus():
    """Mroueh's advantages omega+ = (1-p)/sqrt(v+eps) (right), -omega- = -p/sqrt(v+eps) (wrong)."""
    eps, beta = 1e-3, 0.5
    F = grpo_success_map(beta, PI_REF[RIGHT].sum(), eps)
    for p in (0.01, 0.5, 0.97):
        root = np.sqrt(p * (1 - p) + eps)
        A = np.where(RIGHT, (1 - p) / root, -p / root)
        pi_new = softmax_policy(np.log(PI_REF) + A / beta)
        assert float(F(p)) == pytest.approx(pi_new[RIGHT].sum(), rel=1e-12)


@pytest.mark.parametrize("alpha", [0.25, 0.6])
def test_mixture_from_the_two_kl_closed_form(alpha):
    """pi_n ∝ pi_ref^alpha pi_{n-1}^(1-alpha) exp(A/beta), directly over five responses."""
    scheme, beta = raft(4), 0.8
    F = mixture_map(success_map(scheme, beta, PI_REF[RIGHT].sum()), alpha)
    for p_prev in (0.1, 0.6):
        a_right, a_wrong = expected_weights(scheme, p_prev)
        A = np.where(RIGHT, a_right, a_wrong)
        log_pi = alpha * np.log(PI_REF) + (1 - alpha) * np.log(tilted(PI_REF, p_prev)) + A / beta
        assert float(F(p_prev)) == pytest.approx(softmax_policy(log_pi)[RIGHT].sum(), rel=1e-12)


def test_mirror_from_the_previous_policy():
    scheme, beta = rloo(4), 1.5
    F = mirror_map(success_map(scheme, beta, 0.5))
    for p_prev in (0.02, 0.5, 0.9):
        a_right, a_wrong = expected_weights(scheme, p_prev)
        A = np.where(RIGHT, a_right, a_wrong)
        pi_new = softmax_policy(np.log(tilted(PI_REF, p_prev)) + A / beta)
        assert float(F(p_prev)) == pytest.approx(pi_new[RIGHT].sum(), rel=1e-12)


def test_mirror_increases_to_one():
    tr = iterate(mirror_map(grpo_success_map(1.0, 0.3, 1e-5)), 0.01, 200)
    assert np.all(np.diff(tr.logit) > 0)
    assert tr.final == 1.0 and tr.logit[-1] > 200


def test_logit_space_exact_near_one():
    """At p = 1 - 1e-250 the map uses h'_M there (mpmath, 60 digits), not h'_M(1)."""
    scheme, beta, p_ref = grpo(4, eps=0.0), 1.0, 0.3
    x = 250 * np.log(10.0)
    F = success_map(scheme, beta, p_ref)
    mpmath.mp.dps = 60
    t = 1 - mpmath.mpf(10) ** -250
    c = [mpmath.mpf(v) for v in scheme.c]
    dh = sum(c[s] * mpmath.binomial(3, s) * t**s * (1 - t) ** (3 - s) for s in range(4))
    expected = mpmath.log(mpmath.mpf(p_ref) / (1 - mpmath.mpf(p_ref))) + dh / beta
    assert float(F.step_logit(x)) == pytest.approx(float(expected), rel=1e-14)
    G = grpo_success_map(beta, p_ref, 1e-30)
    omega = (t * (1 - t) + mpmath.mpf(1e-30)) ** -0.5
    assert float(G.step_logit(x)) == pytest.approx(float(expected - dh + omega), rel=1e-13)


@pytest.mark.parametrize("make", [
    lambda: success_map(grpo(8), 0.7, 0.2),
    lambda: success_map(raft(5), 2.0, 0.4),
    lambda: grpo_success_map(0.9, 0.1, 1e-3),
    lambda: mixture_map(success_map(log_odds(4), 1.2, 0.3), 0.4),
], ids=["grpo", "raft", "mroueh", "mixture"])
def test_derivative_matches_finite_differences(make):
    F = make()
    p = np.array([0.02, 0.2, 0.5, 0.8, 0.97])
    h = 1e-6
    fd = (F(p + h) - F(p - h)) / (2 * h)
    np.testing.assert_allclose(F.derivative(p), fd, rtol=1e-6, atol=1e-8)
    x = np.log(p / (1 - p))
    fd_logit = (F.step_logit(x + h) - F.step_logit(x - h)) / (2 * h)
    np.testing.assert_allclose(F.logit_slope(x), fd_logit, rtol=1e-6, atol=1e-8)


def test_mroueh_derivative_formula():
    """THEORY.md §2: h'(p) = -h(1-h)(1-2p) / (2 beta (p(1-p)+eps)^{3/2})."""
    beta, eps = 0.4, 1e-4
    F = grpo_success_map(beta, 0.3, eps)
    p = np.linspace(0.01, 0.99, 50)
    y = F.step_logit(np.log(p / (1 - p)))
    h_1mh = 1 / (2 + 2 * np.cosh(y))  # h (1 - h) without cancellation where h is near 1
    expected = -h_1mh * (1 - 2 * p) / (2 * beta * (p * (1 - p) + eps) ** 1.5)
    np.testing.assert_allclose(F.derivative(p), expected, rtol=1e-10, atol=1e-14)


def test_minimum_at_one_half():
    F = grpo_success_map(0.5, 0.2, 1e-5)
    p = np.linspace(1e-4, 1 - 1e-4, 20001)
    assert np.all(F(p) >= float(F(0.5)) - 1e-15)
    assert abs(float(F.derivative(0.5))) < 1e-15


def test_dr_grpo_one_step():
    for beta, p_ref in [(1.0, 0.2), (0.1, 0.9), (5.0, 1e-6)]:
        tr = iterate(dr_grpo_success_map(beta, p_ref), [0.0001, 0.5, 0.9999], 3)
        np.testing.assert_allclose(tr.logit[1:], np.log(p_ref / (1 - p_ref)) + 1 / beta, rtol=1e-14)
        M = 8
        tr = iterate(success_map(dr_grpo(M), beta, p_ref), 0.37, 1)
        assert float(tr.logit[1]) == pytest.approx(np.log(p_ref / (1 - p_ref)) + (M - 1) / (M * beta), rel=1e-13)


def test_vectorised_over_beta_pref_and_p0():
    betas = np.array([0.5, 1.0, 3.0])[:, None, None]
    p_refs = np.array([0.1, 0.6])[None, :, None]
    p0 = np.array([0.05, 0.5, 0.95, 0.999])
    tr = iterate(grpo_success_map(betas, p_refs, 1e-5), p0, 7)
    assert tr.p.shape == (8, 3, 2, 4)
    for i, b in enumerate(betas.ravel()):
        for j, r in enumerate(p_refs.ravel()):
            single = iterate(grpo_success_map(float(b), float(r), 1e-5), p0, 7)
            np.testing.assert_array_equal(tr.logit[:, i, j], single.logit)


def test_absorbing_endpoints():
    for F in (success_map(raft(4), 1.0, 0.0), grpo_success_map(1.0, 0.0, 0.0)):
        np.testing.assert_array_equal(F([0.0, 0.3, 1.0]), 0.0)
    np.testing.assert_array_equal(success_map(raft(4), 1.0, 1.0)([0.0, 0.3, 1.0]), 1.0)
    mirror = mirror_map(grpo_success_map(1.0, 0.3, 0.0))
    np.testing.assert_array_equal(mirror([0.0, 1.0]), [0.0, 1.0])
    mix = mixture_map(success_map(rloo(3), 1.0, 0.3), 0.5)
    np.testing.assert_array_equal(mix([0.0, 1.0]), [0.0, 1.0])
    # eps = 0: Omega(1) = inf, so p = 1 maps to 1 and nothing is NaN
    assert float(grpo_success_map(1.0, 0.3, 0.0)(1.0)) == 1.0


@pytest.mark.parametrize("call, match", [
    (lambda: grpo_success_map(0.0, 0.2), "beta"),
    (lambda: grpo_success_map(-1.0, 0.2), "beta"),
    (lambda: grpo_success_map(float("nan"), 0.2), "beta"),
    (lambda: grpo_success_map(np.inf, 0.2), "beta"),
    (lambda: grpo_success_map(1.0, 1.2), "p_ref"),
    (lambda: grpo_success_map(1.0, -0.1), "p_ref"),
    (lambda: grpo_success_map(1.0, float("nan")), "p_ref"),
    (lambda: grpo_success_map(1.0, 0.2, -1e-5), "eps"),
    (lambda: grpo_success_map(1.0, 0.2, float("nan")), "eps"),
    (lambda: mixture_map(grpo_success_map(1.0, 0.2), 1.5), "alpha"),
    (lambda: success_map(grpo(4), 1.0, [0.2, 1.1]), "p_ref"),
    (lambda: grpo_success_map(1.0, 0.2)(1.5), "p"),
    (lambda: grpo_success_map(1.0, 0.2)(float("nan")), "p"),
    (lambda: grpo_success_map(1.0, 0.2).step_logit(float("nan")), "x"),
    (lambda: iterate(grpo_success_map(1.0, 0.2), 0.1, -1), "n"),
])
def test_bad_input_value_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_input_type_errors():
    with pytest.raises(TypeError, match="scheme"):
        success_map("grpo", 1.0, 0.2)
    with pytest.raises(TypeError, match="map"):
        iterate("not a map", 0.1, 3)
    with pytest.raises(TypeError, match="beta"):
        grpo_success_map("one", 0.2)


@settings(max_examples=40, deadline=None)
@given(c=st.lists(st.floats(0.0, 5.0), min_size=1, max_size=12),
       beta=st.floats(0.05, 20.0), p_ref=st.floats(1e-6, 1 - 1e-6), p=st.floats(0.0, 1.0))
def test_property_one_step_is_amplifying_and_exact(c, beta, p_ref, p):
    """For c >= 0: logit F(p) - logit p_ref = h'_M(p)/beta in [min c, max c]/beta."""
    scheme = WeightScheme(len(c), np.zeros(len(c)), np.array(c))
    F = success_map(scheme, beta, p_ref)
    x_ref = np.log(p_ref / (1 - p_ref))
    y = float(F.step_logit(np.log(p / (1 - p)) if 0 < p < 1 else (np.inf if p == 1 else -np.inf)))
    tol = 1e-9 * (1 + abs(x_ref))
    assert min(c) / beta - tol <= y - x_ref <= max(c) / beta + tol
    if p not in (0.0, 1.0):
        M = len(c)
        direct = sum(c[s] * comb(M - 1, s) * p**s * (1 - p) ** (M - 1 - s) for s in range(M))
        assert y - x_ref == pytest.approx(direct / beta, rel=1e-9, abs=1e-12)
