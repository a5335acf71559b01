"""h, dh, d2h against independent computations: 2^M enumeration of the textbook weights, quadrature,
closed forms (THEORY.md §1), mpmath at high precision, and the M -> infinity limits."""

from __future__ import annotations

import itertools
from math import comb

import mpmath
import numpy as np
import pytest
from scipy import integrate, special

from rlvrlens.objectives import (
    d2h, dh, dh_logit, dr_grpo, from_rs, grpo, h, limit, log_odds, pass_at_k, raft, reinforce,
    reinforce_rej, rloo,
)

# ---- textbook definitions of each scheme, written from the papers, as functions of a whole group ----


def _grpo_textbook(R, eps, ddof, inside):
    mean = R.mean()
    var = R.var(ddof=ddof)
    den = np.sqrt(var + eps) if inside else np.sqrt(var) + eps
    return np.zeros_like(R) if den == 0 else (R - mean) / den


def _raft_textbook(R):
    n_right = R.sum()
    return np.zeros_like(R) if n_right == 0 else len(R) * R / n_right


def _rej_textbook(R, scale):
    if R.min() == R.max():
        return np.zeros_like(R)
    return R if scale == "01" else 2 * R - 1


def _log_odds_textbook(R):
    M, right = len(R), R.sum()
    wrong = M - right
    return np.where(R == 1, M / max(right, 1), -M / max(wrong, 1))


CASES = {
    "reinforce": (reinforce, lambda R: R.copy()),
    "rloo": (rloo, lambda R: R - (R.sum() - R) / (len(R) - 1)),
    "dr_grpo": (dr_grpo, lambda R: R - R.mean()),
    "grpo_sample": (lambda M: grpo(M, eps=1e-3), lambda R: _grpo_textbook(R, 1e-3, 1, False)),
    "grpo_population_eps0": (lambda M: grpo(M, eps=0.0, std="population"),
                             lambda R: _grpo_textbook(R, 0.0, 0, False)),
    "grpo_inside": (lambda M: grpo(M, eps=1e-2, std="population", eps_inside_sqrt=True),
                    lambda R: _grpo_textbook(R, 1e-2, 0, True)),
    "raft": (raft, _raft_textbook),
    "reinforce_rej_01": (reinforce_rej, lambda R: _rej_textbook(R, "01")),
    "reinforce_rej_pm1": (lambda M: reinforce_rej(M, "pm1"), lambda R: _rej_textbook(R, "pm1")),
    "log_odds": (log_odds, _log_odds_textbook),
}
MIN_M = {"rloo": 2, "grpo_sample": 2}


def enumerated_dh(textbook, M: int, p: float) -> float:
    """E[(1/M) sum_i Z_i d/dp log P(R_i)] over all 2^M groups, with the Bernoulli score (R-p)/(p(1-p))."""
    total = 0.0
    for bits in itertools.product((0.0, 1.0), repeat=M):
        R = np.array(bits)
        k = R.sum()
        prob = p**k * (1 - p) ** (M - k)
        Z = textbook(R)
        total += prob * np.mean(Z * (R - p) / (p * (1 - p)))
    return total


@pytest.mark.parametrize("case, M", [(case, M) for case in sorted(CASES) for M in (1, 2, 3, 5, 8, 10)
                                     if M >= MIN_M.get(case, 1)])
def test_dh_equals_expected_step_by_enumeration(case, M):
    ctor, textbook = CASES[case]
    scheme = ctor(M)
    ps = np.array([0.03, 0.3, 0.5, 0.77, 0.99])
    expected = np.array([enumerated_dh(textbook, M, p) for p in ps])
    np.testing.assert_allclose(dh(scheme, ps), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", sorted(CASES))
def test_h_is_integral_of_enumerated_dh(case):
    ctor, textbook = CASES[case]
    M = 6
    scheme = ctor(M)
    for t in (0.2, 0.6, 1.0):
        ref, _ = integrate.quad(lambda p: enumerated_dh(textbook, M, p), 1e-12, t, epsabs=1e-12)
        assert float(h(scheme, t)) == pytest.approx(ref, rel=1e-8, abs=1e-10)


def harmonic(M):
    return float(sum(1.0 / k for k in range(1, M + 1)))


CLOSED_FORMS = {
    "reinforce": (reinforce, lambda M, t: t),
    "rloo": (rloo, lambda M, t: t),
    "dr_grpo": (dr_grpo, lambda M, t: (M - 1) * t / M),
    "raft": (raft, lambda M, t: sum((1 - (1 - t) ** k) / k for k in range(1, M + 1))),
    "log_odds": (log_odds, lambda M, t: harmonic(M) + sum((t**k - (1 - t) ** k) / k for k in range(1, M + 1))),
    "reinforce_rej": (reinforce_rej, lambda M, t: t - t**M / M),
    "pass_at_3": (lambda M: pass_at_k(M, 3), lambda M, t: 1 - (1 - t) ** 3),
    "pass_at_3_centred": (lambda M: pass_at_k(M, 3, split="centred"), lambda M, t: 1 - (1 - t) ** 3),
}


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
@pytest.mark.parametrize("M", [3, 7, 40])
def test_closed_forms_of_theory_table(name, M):
    ctor, closed = CLOSED_FORMS[name]
    t = np.linspace(0, 1, 41)
    np.testing.assert_allclose(h(ctor(M), t), closed(M, t), rtol=1e-12, atol=1e-13)


def test_grpo_M2_is_linear_and_h0_is_zero():
    """With M = 2, every GRPO variant has constant c, so h is the line c t (Davis & Recht Fig. 3)."""
    t = np.linspace(0, 1, 11)
    for s in (grpo(2, eps=1e-8), grpo(2, eps=0.1, std="population", eps_inside_sqrt=True)):
        vals = h(s, t)
        np.testing.assert_allclose(vals / vals[-1], t, atol=1e-14)
    for ctor, _ in CASES.values():
        assert float(h(ctor(5), 0.0)) == 0.0


# ---- high precision references at large M ----

def _mp_raft_dh(M, t):
    """E[M/(S+1)], S ~ Bin(M-1, t) = (1 - (1-t)^M)/t (closed form of the binomial sum)."""
    t = mpmath.mpf(t)
    return (1 - (1 - t) ** M) / t


def _mp_raft_h(M, t):
    """H_M - sum_{k<=M} (1-t)^k/k, the tail summed with the Lerch transcendent."""
    t = mpmath.mpf(t)
    q = 1 - t
    partial = -mpmath.log(t) - q ** (M + 1) * mpmath.lerchphi(q, 1, M + 1)
    return mpmath.harmonic(M) - partial


@pytest.mark.parametrize("M", [10, 10**4, 10**6])
def test_raft_matches_mpmath_to_1e12(M):
    mpmath.mp.dps = 40
    ts = [1e-9, 1e-4, 0.013, 0.37, 0.5, 0.81, 0.999999]
    got_dh = dh(raft(M), ts)
    got_h = h(raft(M), ts)
    for t, g1, g2 in zip(ts, got_dh, got_h):
        assert g1 == pytest.approx(float(_mp_raft_dh(M, t)), rel=1e-12)
        assert g2 == pytest.approx(float(_mp_raft_h(M, t)), rel=1e-12)


def test_grpo_matches_mpmath_betainc_sum():
    """The definition h = (1/M) sum c_s I_t(s+1, M-s), summed at 40 digits, M = 500."""
    mpmath.mp.dps = 40
    M = 500
    scheme = grpo(M, eps=1e-8)
    c = [mpmath.mpf(float(x)) for x in scheme.c]
    for t in (0.001, 0.2, 0.5, 0.93):
        tm = mpmath.mpf(t)
        ref_h = sum(c[s] * mpmath.betainc(s + 1, M - s, 0, tm, regularized=True) for s in range(M)) / M
        ref_dh = sum(c[s] * comb(M - 1, s) * tm**s * (1 - tm) ** (M - 1 - s) for s in range(M))
        assert float(h(scheme, t)) == pytest.approx(float(ref_h), rel=1e-12)
        assert float(dh(scheme, t)) == pytest.approx(float(ref_dh), rel=1e-12)


def test_d2h_matches_finite_differences_and_closed_form():
    scheme = grpo(12, eps=1e-3)
    t = np.linspace(0.05, 0.95, 19)
    step = 1e-6
    fd = (dh(scheme, t + step) - dh(scheme, t - step)) / (2 * step)
    np.testing.assert_allclose(d2h(scheme, t), fd, rtol=1e-6, atol=1e-6)
    # reinforce_rej: h' = 1 - t^(M-1), so h'' = -(M-1) t^(M-2)
    np.testing.assert_allclose(d2h(reinforce_rej(7), t), -6 * t**5, rtol=1e-12)
    assert np.all(d2h(reinforce(1), t) == 0)


def test_dh_logit_resolves_points_near_one():
    """Near t = 1 the Bernstein polynomial of log-odds is M/(1-t) to first order; 1-t = e^-x."""
    M = 16
    x = np.array([50.0, 300.0, 700.0])
    got = dh_logit(log_odds(M), x)
    q = special.expit(-x)  # 1 - t
    # closed forms of the two sums, E[M/(S+1)] + E[M/(M-S)], written stably in q
    expected = (1 - q**M) / (1 - q) - np.expm1(M * np.log1p(-q)) / q
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # and in the middle it agrees with dh
    np.testing.assert_allclose(dh_logit(grpo(9), [0.0, -1.5]), dh(grpo(9), special.expit([0.0, -1.5])), rtol=1e-13)


# ---- M -> infinity limits ----

def test_grpo_normalised_tends_to_arcsine_with_rate():
    t = np.linspace(0, 1, 401)
    target = limit("arcsin", t) / np.pi
    Ms = np.array([16, 64, 256, 1024])
    errs = []
    for M in Ms:
        s = grpo(int(M), eps=1e-8)
        errs.append(np.max(np.abs(h(s, t) / h(s, 1.0) - target)))
    errs = np.array(errs)
    assert np.all(np.diff(errs) < 0)
    rate = np.polyfit(np.log(Ms), np.log(errs), 1)[0]
    assert -1.0 < rate < -0.3  # observed ~M^-1/2 (the arcsine's square-root singularity at 0 and 1)


def test_raft_minus_harmonic_tends_to_log():
    t = np.array([0.05, 0.3, 0.7])
    errs = []
    for M in (8, 32, 128):
        err = h(raft(M), t) - harmonic(M) - np.log(t)
        # the error is exactly sum_{k>M} (1-t)^k / k (as -log t = sum_k (1-t)^k/k): geometric in M
        k = np.arange(M + 1, M + 4000)[:, None]
        np.testing.assert_allclose(err, np.sum((1 - t) ** k / k, axis=0), rtol=1e-9, atol=1e-13)
        errs.append(np.max(np.abs(err)))
    assert errs[0] > errs[1] > errs[2] and errs[2] < 1e-3


def test_log_odds_tends_to_logit():
    t = np.array([0.1, 0.5, 0.9])
    for M in (64, 512):
        diff = h(log_odds(M), t) - limit("logit", t)
        assert np.ptp(diff) < 2 * (1 - 0.1) ** M + 1e-12  # constant offset H_M up to (1-t)^M terms


def test_linear_in_c_and_custom_scheme():
    s1 = from_rs(6, lambda r, s: r * (1 + s) - (1 - r) * 0.5)
    s2 = grpo(6)
    both = from_rs(6, lambda r, s: (s1.b[s] + s2.b[s]) if r else (s1.a[s] + s2.a[s]))
    t = np.linspace(0, 1, 9)
    np.testing.assert_allclose(h(both, t), h(s1, t) + h(s2, t), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("bad", [-0.1, 1.5, np.nan, [0.2, 2.0]])
def test_t_outside_unit_interval_is_refused(bad):
    with pytest.raises(ValueError, match="t must"):
        h(raft(3), bad)
    with pytest.raises(ValueError, match="t must"):
        dh(raft(3), bad)


def test_scheme_type_checked():
    with pytest.raises(TypeError, match="scheme"):
        h("grpo", 0.5)


def test_subnormal_probabilities_use_first_order_expansion():
    """u ~ 5e-309 (logit -709.5) made scipy's pmf overflow; E = c_0 + (M-1) u (c_1 - c_0) there."""
    x = np.array([-709.5, -745.0, -300.0, 0.0])
    got = dh_logit(raft(4), x)
    u = special.expit(x)
    expected = 4.0 + 3 * u * (2.0 - 4.0)  # c = 4/(s+1): c_0 = 4, c_1 = 2
    np.testing.assert_allclose(got[:3], expected[:3], rtol=1e-15)
    assert got[3] == pytest.approx(float(dh(raft(4), 0.5)), rel=1e-14)
    assert float(h(raft(4), 1e-300)) == pytest.approx(4e-300, rel=1e-12)
