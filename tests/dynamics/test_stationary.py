"""Stationary points of gradient training per KL estimator, flow targets and the mean-field ODE,
against independent computations: mpmath root-finding on the Bernstein form of h'_M, brute-force
gradient ascent on an explicit softmax policy with finite-difference gradients, and exact
enumeration of the sampled estimators' expected gradients."""

from __future__ import annotations

import itertools
from math import comb

import mpmath
import numpy as np
import pytest
from scipy import special

from rlvrlens.dynamics import (
    attractor, flow, flow_target, grpo_success_map, kl_reward_map, map_stationary_points, mixture_map,
    softmax_flow, stationary_points, success_map,
)
from rlvrlens.objectives import from_rs, get_scheme, h

mpmath.mp.dps = 40

SCHEMES = [("grpo", {}), ("rloo", {}), ("raft", {}), ("reinforce_rej", {}), ("dr_grpo", {}),
           ("grpo", {"std": "population", "eps": 1e-5, "eps_inside_sqrt": True})]


def dh_mp(c, p):
    M = len(c)
    return sum(mpmath.mpf(float(c[s])) * comb(M - 1, s) * p**s * (1 - p) ** (M - 1 - s) for s in range(M))


def mp_roots(fn, lo=-30.0, hi=30.0, n=1200):
    """All sign changes of fn(sigmoid(x)) on a grid of x, refined by mpmath's bisection (anderson)."""
    xs = [mpmath.mpf(lo) + (hi - lo) * k / n for k in range(n + 1)]
    vals = [fn(1 / (1 + mpmath.exp(-x))) for x in xs]
    out = []
    for a, b, fa, fb in zip(xs, xs[1:], vals, vals[1:]):
        if fa * fb < 0:
            x = mpmath.findroot(lambda x: fn(1 / (1 + mpmath.exp(-x))), (a, b), solver="anderson")
            out.append(float(1 / (1 + mpmath.exp(-x))))
    return out


@pytest.mark.parametrize("name, params", SCHEMES)
@pytest.mark.parametrize("beta, p_ref", [(1.0, 0.05), (1.0, 0.3), (0.3, 0.6), (4.0, 0.01)])
def test_forward_and_reverse_points_match_mpmath(name, params, beta, p_ref):
    scheme = get_scheme(name, 6 if name == "raft" else 4, **params)
    c = scheme.c
    fwd = lambda p: mpmath.log(p / (1 - p)) - mpmath.log(mpmath.mpf(p_ref) / (1 - mpmath.mpf(p_ref))) - dh_mp(c, p) / beta
    rev = lambda p: p * (1 - p) * dh_mp(c, p) - beta * (p - mpmath.mpf(p_ref))
    for kl, fn in (("pi||ref", fwd), ("ref||pi", rev)):
        ours = [s.p for s in stationary_points(scheme, beta, p_ref, kl)]
        want = mp_roots(fn)
        assert len(ours) == len(want), (kl, ours, want)
        np.testing.assert_allclose(ours, want, rtol=1e-9, atol=1e-12)


def test_issue_numbers_for_the_tabular_validation_setup():
    """Issue 14: GRPO, M = 4 (sample std), beta = 1: forward 0.1818/0.6364/0.8651, reverse (k3)
    0.3816/0.6284/0.8161 at p_ref = 0.05/0.3/0.6 (training measured 0.3831/0.6345/0.8143)."""
    scheme = get_scheme("grpo", 4)
    fwd = [flow_target(success_map(scheme, 1.0, pr)).p for pr in (0.05, 0.3, 0.6)]
    rev = [flow_target(success_map(scheme, 1.0, pr), "ref||pi").p for pr in (0.05, 0.3, 0.6)]
    np.testing.assert_allclose(fwd, [0.1818, 0.6364, 0.8651], atol=5e-5)
    np.testing.assert_allclose(rev, [0.3816, 0.6284, 0.8161], atol=5e-5)


# -- brute force: an explicit softmax policy, finite-difference gradient ascent -------------------------

def h_explicit(scheme, t):
    """h_M(t) = E[K_X]/M, X ~ Bin(M, t), K_k = sum_{s<k} c_s (Davis & Recht 2025), written out."""
    M, c = scheme.M, scheme.c
    K = np.concatenate([[0.0], np.cumsum(c)])
    t = np.asarray(t, dtype=float)[..., None]
    k = np.arange(M + 1)
    binom = np.array([comb(M, j) for j in k], dtype=float)
    return (K * binom * t**k * (1 - t) ** (M - k)).sum(-1) / M


def _objective(theta, theta_ref, right, scheme, beta, kl):
    """h_M(p) - beta * penalty for a batch of logit vectors (rows), written out explicitly."""
    logp = theta - special.logsumexp(theta, axis=-1, keepdims=True)
    logq = theta_ref - special.logsumexp(theta_ref)
    p = np.clip(np.exp(logp)[:, right].sum(-1), 0, 1)
    pen = {"pi||ref": (np.exp(logp) * (logp - logq)).sum(-1),
           "ref||pi": (np.exp(logq) * (logq - logp)).sum(-1),
           "none": 0.0}[kl]
    return h_explicit(scheme, p) - beta * pen


def _ascend(theta_ref, right, scheme, beta, kl, lr=1.0, iters=40000, eps=1e-6):
    theta = theta_ref.copy()
    A = theta.size
    E = np.eye(A) * eps
    for _ in range(iters):
        batch = np.concatenate([theta + E, theta - E])
        J = _objective(batch, theta_ref, right, scheme, beta, kl)
        grad = (J[:A] - J[A:]) / (2 * eps)
        theta += lr * grad
        if np.abs(grad).max() < 1e-9:  # central differences are exact to ~1e-10
            break
    pi = np.exp(theta - special.logsumexp(theta))
    return pi, float(pi[right].sum())


@pytest.mark.parametrize("name, kl, beta", [("grpo", "pi||ref", 1.0), ("grpo", "ref||pi", 1.0),
                                            ("raft", "pi||ref", 0.5), ("raft", "ref||pi", 0.5),
                                            ("reinforce_rej", "ref||pi", 2.0), ("rloo", "pi||ref", 0.7)])
def test_gradient_ascent_on_a_softmax_stops_at_the_flow_target(name, kl, beta):
    """Five answers (two right, three wrong) with unequal reference probabilities: the ascent's
    limit is the flow target, and (both KLs) pi/pi_ref is constant within each class."""
    scheme = get_scheme(name, 4)
    ref = np.array([0.05, 0.10, 0.40, 0.25, 0.20])
    right = np.array([True, True, False, False, False])
    pi, p = _ascend(np.log(ref), right, scheme, beta, kl)
    target = flow_target(success_map(scheme, beta, ref[right].sum()), kl)
    assert abs(special.logit(p) - target.logit) < 1e-6, (p, target)
    ratio = pi / ref
    np.testing.assert_allclose(ratio[right], ratio[right][0], rtol=1e-6)
    np.testing.assert_allclose(ratio[~right], ratio[~right][0], rtol=1e-6)


def test_no_penalty_has_no_interior_point_while_h_prime_is_positive():
    grpo4 = get_scheme("grpo", 4)
    points = stationary_points(grpo4, 1.0, 0.3, "none")
    assert [(s.p, s.stable) for s in points] == [(0.0, False), (1.0, True)]
    assert flow_target(success_map(grpo4, 1.0, 0.3), "none").p == 1.0
    # a scheme whose h' = 1 - 2p changes sign: one interior point at 1/2, stable (h'' < 0)
    tilt = from_rs(3, lambda r, s: (1.0 - s) if r else 0.0)
    pts = stationary_points(tilt, 1.0, 0.3, "none")
    inner = [s for s in pts if 0 < s.p < 1]
    assert len(inner) == 1 and abs(inner[0].p - 0.5) < 1e-12 and inner[0].stable
    _, p = _ascend(np.log([0.3, 0.7]), np.array([True, False]), tilt, 0.0, "none")
    assert abs(p - 0.5) < 1e-6


# -- the sampled KL estimators' expected gradients, by exact enumeration ---------------------------------

def test_estimators_expected_gradients_are_forward_reverse_and_zero():
    """E_{y~pi}[grad k(y)] with the sample y held fixed (finite differences in theta): k2 -> grad
    KL(pi||pi_ref), k3 -> grad KL(pi_ref||pi), k1 -> 0 (THEORY.md §4)."""
    rng = np.random.default_rng(3)
    theta, theta_ref = rng.normal(size=5), rng.normal(size=5)
    eps = 1e-6

    def logpi(t):
        return t - special.logsumexp(t)

    def est(t, y, kind):
        lr = logpi(t)[y] - logpi(theta_ref)[y]  # log rho(y)
        return {"k1": lr, "k2": 0.5 * lr**2, "k3": np.exp(-lr) - 1 + lr}[kind]

    def fd(f):
        return np.array([(f(theta + eps * e) - f(theta - eps * e)) / (2 * eps) for e in np.eye(5)])

    pi = np.exp(logpi(theta))
    expected = {kind: sum(pi[y] * fd(lambda t: est(t, y, kind)) for y in range(5)) for kind in ("k1", "k2", "k3")}
    fwd = fd(lambda t: (np.exp(logpi(t)) * (logpi(t) - logpi(theta_ref))).sum())
    rev = fd(lambda t: (np.exp(logpi(theta_ref)) * (logpi(theta_ref) - logpi(t))).sum())
    np.testing.assert_allclose(expected["k2"], fwd, atol=1e-8)
    np.testing.assert_allclose(expected["k3"], rev, atol=1e-8)
    np.testing.assert_allclose(expected["k1"], 0.0, atol=1e-8)
    assert np.abs(fwd - rev).max() > 0.05  # the two penalties differ here: the check can fail


# -- KL in the reward: enumerate every group outcome ------------------------------------------------------

def _reward_field(theta, theta_ref, right, scheme, beta):
    """Exact E[(1/M) sum_i Z_i grad log pi(y_i)] with Z = scheme.weights(r - beta log rho), summed
    over all A^M group outcomes."""
    A, M = theta.size, scheme.M
    pi = np.exp(theta - special.logsumexp(theta))
    log_rho = (theta - special.logsumexp(theta)) - (theta_ref - special.logsumexp(theta_ref))
    ys = np.array(list(itertools.product(range(A), repeat=M)))  # (A^M, M)
    prob = np.prod(pi[ys], axis=1)
    Z = scheme.weights(right[ys].astype(float) - beta * log_rho[ys])  # (A^M, M)
    counts = np.stack([(Z * (ys == j)).sum(1) for j in range(A)], axis=1)  # sum_i Z_i e_{y_i}
    score = counts - Z.sum(1, keepdims=True) * pi
    return (prob[:, None] * score).sum(0) / M


@pytest.mark.parametrize("name", ["rloo", "dr_grpo", "reinforce"])
def test_kl_in_reward_for_affine_schemes_stops_at_logit_p_ref_plus_one_over_beta(name):
    scheme = get_scheme(name, 3)
    ref = np.array([0.1, 0.2, 0.7])
    right = np.array([True, False, False])
    beta = 0.8
    theta = np.log(ref)
    for _ in range(4000):
        step = _reward_field(theta, np.log(ref), right, scheme, beta)
        theta += 2.0 * step
        if np.abs(step).max() < 1e-12:
            break
    p = np.exp(theta - special.logsumexp(theta))[0]
    pts = stationary_points(scheme, beta, 0.1, "reward")
    assert len(pts) == 1 and pts[0].stable
    assert abs(special.logit(p) - pts[0].logit) < 1e-6
    assert abs(pts[0].logit - (special.logit(0.1) + 1 / beta)) < 1e-9


def test_kl_in_reward_is_refused_where_it_is_not_a_function_of_p():
    with pytest.raises(ValueError, match="affine in real rewards"):
        stationary_points(get_scheme("grpo", 4), 1.0, 0.3, "reward")
    # and indeed for GRPO two references with the same p_ref give different expected updates' zeros
    scheme = get_scheme("grpo", 3)
    right = np.array([True, False, False])
    ends = []
    for ref in (np.array([0.2, 0.4, 0.4]), np.array([0.2, 0.75, 0.05])):
        theta = np.log(ref)
        for _ in range(1500):
            theta += 1.0 * _reward_field(theta, np.log(ref), right, scheme, 1.0)
        ends.append(np.exp(theta - special.logsumexp(theta))[0])
    assert abs(special.logit(ends[0]) - special.logit(ends[1])) > 0.02, ends


# -- flow: the ODE, its target and stability ---------------------------------------------------------------

@pytest.mark.parametrize("kl", ["pi||ref", "ref||pi", "none"])
def test_one_dimensional_flow_is_the_symmetric_softmax_flow(kl):
    """One right and n = 3 equally likely wrong answers: the 1-D ODE with rate lr (1 + 1/3) / N is the
    exact logit flow of the softmax (derived independently in the two functions)."""
    scheme = get_scheme("grpo", 4)
    p_ref = np.array([0.05, 0.3, 0.6])
    logits = np.zeros((3, 4))
    logits[:, 0] = np.log(p_ref / (1 - p_ref) * 3)
    right = np.zeros((3, 4), bool)
    right[:, 0] = True
    lr, N, beta = 0.05, 3, 1.0
    exact = softmax_flow(logits, right, scheme, beta, 300, kl=kl, rate=lr / N)
    reduced = flow(success_map(scheme, beta, p_ref), 300, kl=kl, rate=lr * (1 + 1 / 3) / N).p
    np.testing.assert_allclose(reduced, exact, rtol=1e-7, atol=1e-9)


def test_small_step_gradient_ascent_follows_the_softmax_flow():
    """Plain small-step gradient ascent (finite differences) for 200 steps vs the ODE: O(lr) apart."""
    scheme = get_scheme("raft", 4)
    ref = np.array([0.05, 0.10, 0.40, 0.25, 0.20])
    right = np.array([True, True, False, False, False])
    lr, beta = 0.02, 0.5
    theta, path = np.log(ref), []
    E = np.eye(5) * 1e-6
    for _ in range(200):
        path.append(np.exp(theta - special.logsumexp(theta))[right].sum())
        J = _objective(np.concatenate([theta + E, theta - E]), np.log(ref), right, scheme, beta, "pi||ref")
        theta = theta + lr * (J[:5] - J[5:]) / 2e-6
    ode = softmax_flow(np.log(ref)[None], right[None], scheme, beta, 199, rate=lr)[:, 0]
    err = np.abs(special.logit(np.array(path)) - special.logit(ode)).max()
    assert err < 0.01, err


def test_flow_target_in_a_two_cycle_regime_is_the_fixed_point():
    """Mroueh's population map (beta = 2, p_ref = 3e-3) has a 2-cycle from p_ref; its fixed point
    has slope < -1 (unstable for the map) and is where the flow goes."""
    F = grpo_success_map(2.0, 3e-3)
    assert attractor(F).kind == "cycle"
    s = flow_target(F)
    assert s.stable and float(F.logit_slope(s.logit)) < -1
    end = flow(F, 20000, rate=0.5).logit[-1]
    assert abs(float(end) - s.logit) < 1e-6


def test_forward_stability_is_slope_below_one_and_perturbations_confirm_it():
    F = grpo_success_map(1.0, 0.2)
    pts = map_stationary_points(F, "pi||ref")
    assert [s.stable for s in pts] == [True, False, True]
    for s in pts:
        assert s.stable == (float(F.logit_slope(s.logit)) < 1)
    lo, mid = pts[0], pts[1]
    for start, want in ((mid.logit - 1e-3, lo.logit), (lo.logit + 0.5, lo.logit)):
        end = flow(F, 5000, rate=1.0, p0=special.expit(start)).logit[-1]
        assert abs(float(end) - want) < 1e-5
    away = flow(F, 200, rate=1.0, p0=special.expit(mid.logit + 1e-3)).logit[-1]
    assert float(away) > mid.logit + 0.5  # the unstable point repels


def test_reward_map_and_errors():
    F = kl_reward_map(get_scheme("dr_grpo", 4), 0.5, 0.5)
    assert abs(flow_target(F).logit - 2.0) < 1e-9
    with pytest.raises(ValueError, match="kl must be one of"):
        stationary_points(get_scheme("grpo", 4), 1.0, 0.3, "k3")
    with pytest.raises(ValueError, match="alpha = 1"):
        flow_target(mixture_map(grpo_success_map(1.0, 0.3), 0.5))
    with pytest.raises(ValueError, match="open interval"):
        map_stationary_points(grpo_success_map(1.0, 0.0))
    with pytest.raises(ValueError, match="needs the scheme"):
        flow_target(grpo_success_map(1.0, 0.3), "reward")
    with pytest.raises(TypeError, match="SuccessMap"):
        flow_target(get_scheme("grpo", 4))
    with pytest.raises(ValueError, match="steps must be"):
        flow(grpo_success_map(1.0, 0.3), [3.0, 1.0])


def test_explicit_h_used_by_the_brute_force_is_the_package_h():
    t = np.linspace(0, 1, 11)
    for name, params in SCHEMES:
        scheme = get_scheme(name, 5, **params)
        np.testing.assert_allclose(h_explicit(scheme, t), h(scheme, t), atol=1e-12)
