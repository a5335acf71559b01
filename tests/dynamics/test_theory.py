"""THEORY.md §2 facts: amplification, B(p*), its generalisation, global contraction, 2 delta*."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special

from rlvrlens.dynamics import (
    amplification,
    contraction_beta,
    fixed_points,
    grpo_success_map,
    mroueh_bound,
    parametric_bound,
    stability_beta,
    success_map,
)
from rlvrlens.objectives import SCHEMES, WeightScheme, dh, get_scheme, raft


def test_mroueh_bound_values():
    p = np.array([0.1, 0.5, 0.9, 0.99])
    eps = 1e-5
    v = p * (1 - p)
    expected = v * np.abs(2 * p - 1) / (2 * (v + eps) ** 1.5)
    np.testing.assert_allclose(mroueh_bound(p, eps), expected, rtol=1e-15)
    assert float(mroueh_bound(0.5, eps)) == 0.0
    # eps = 0: B = |2p-1| / (2 sqrt(p(1-p))), symmetric about 1/2
    np.testing.assert_allclose(mroueh_bound(p, 0.0), np.abs(2 * p - 1) / (2 * np.sqrt(v)), rtol=1e-14)
    assert float(mroueh_bound(0.2, 0.0)) == pytest.approx(float(mroueh_bound(0.8, 0.0)))


def test_stability_beta_generalises_mroueh():
    p = np.linspace(0.01, 0.99, 99)
    for eps in (1e-5, 1e-2):
        np.testing.assert_allclose(stability_beta(grpo_success_map(1.0, 0.3, eps), p), mroueh_bound(p, eps),
                                   rtol=1e-12, atol=1e-15)
    # for a scheme, p(1-p)|h''_M(p)| with h'' from finite differences of h'
    scheme = raft(6)
    h = 1e-6
    fd = (dh(scheme, p + h) - dh(scheme, p - h)) / (2 * h)
    np.testing.assert_allclose(stability_beta(scheme, p), p * (1 - p) * np.abs(fd), rtol=1e-6)
    np.testing.assert_allclose(stability_beta(success_map(scheme, 2.0, 0.4), p), stability_beta(scheme, p),
                               rtol=1e-12)


@pytest.mark.parametrize("beta, p_ref", [(1.0, 0.2), (5.0, 0.5), (3.0, 1e-3), (0.4, 1e-4), (0.8, 0.8)])
def test_local_bound_decides_fixed_point_type(beta, p_ref):
    """A fixed point p* of Mroueh's map is attracting iff beta > B(p*)."""
    for fp in fixed_points(grpo_success_map(beta, p_ref, 1e-5), find_reached=False):
        if 0 < fp.p < 1:
            assert (fp.kind == "attracting") == (beta > float(mroueh_bound(fp.p, 1e-5)))
            assert abs(fp.slope) == pytest.approx(float(mroueh_bound(fp.p, 1e-5)) / beta, rel=1e-9)


def _diff_expit(hi, lo):
    """expit(hi) - expit(lo) without cancellation (differences of 1 - expit above 0)."""
    return np.where(lo > 0, special.expit(-lo) - special.expit(-hi), special.expit(hi) - special.expit(lo))


def _fd_sup_slope(F, x):
    """sup_p |F'(p)| by central differences (F(p+) - F(p-))/(p+ - p-), both differences taken
    without cancellation; independent of the slope formula."""
    h = 1e-5
    dF = _diff_expit(F.step_logit(x + h), F.step_logit(x - h))
    dp = _diff_expit(x + h, x - h)
    return float(np.max(np.abs(dF / dp)))


@pytest.mark.parametrize("make", [lambda b: success_map(raft(8), b, 0.02),
                                  lambda b: grpo_success_map(b, 0.2, 1e-2),
                                  lambda b: grpo_success_map(b, 0.5, 1e-3)], ids=["raft8", "mroueh", "mroueh-2"])
def test_contraction_beta(make):
    beta_c = contraction_beta(make(1.0))
    assert beta_c > 0
    x = np.linspace(-12, 12, 48001)  # where F's change over the step is resolved
    assert _fd_sup_slope(make(beta_c * 1.01), x) < 1.0
    assert _fd_sup_slope(make(beta_c * 0.99), x) > 1.0


def test_contraction_for_every_beta():
    # RAFT, M = 4, p_ref = 0.3: F(1-F) is small wherever |g'| is large
    assert contraction_beta(success_map(raft(4), 1.0, 0.3)) == 0.0
    x = np.linspace(-12, 12, 24001)
    assert all(_fd_sup_slope(success_map(raft(4), b, 0.3), x) < 1 for b in (0.01, 0.3, 1.0, 3.0, 100.0))


def test_contraction_beta_refuses_unbounded_slope():
    with pytest.raises(ValueError, match="unbounded"):
        contraction_beta(grpo_success_map(1.0, 0.2, 0.0))


@settings(max_examples=20, deadline=None)
@given(name=st.sampled_from(sorted(SCHEMES)), M=st.integers(2, 20), beta=st.floats(0.05, 10.0),
       p_ref=st.floats(1e-4, 1 - 1e-4))
def test_amplification_holds_for_the_catalogue(name, M, beta, p_ref):
    scheme = get_scheme(name, M, **({"k": 2} if name in ("pass_at_k", "pkpo") else {}))
    result = amplification(success_map(scheme, beta, p_ref))
    assert result.holds and not result.violating and result.gap_min >= -1e-12


def test_amplification_fails_for_negative_c():
    # g = -1 everywhere: logit p* = logit p_ref - 1/beta
    scheme = WeightScheme(4, np.ones(4), np.zeros(4), name="negative")
    result = amplification(success_map(scheme, 2.0, 0.4))
    assert not result.holds and "fails" in result.message
    (fp,) = result.violating
    assert fp.logit == pytest.approx(np.log(0.4 / 0.6) - 0.5, rel=1e-12)
    # a sign-changing design: g = 1 - 2p; amplification only while p* < 1/2
    scheme = WeightScheme(2, np.zeros(2), np.array([1.0, -1.0]))
    assert amplification(success_map(scheme, 1.0, 0.2)).holds
    assert not amplification(success_map(scheme, 1.0, 0.8)).holds


def test_parametric_bound_on_perturbed_iterations():
    """Iterations whose success probability is off by at most delta_n per step (a TV perturbation)
    end within 2 delta* of the fixed point (a contracting map)."""
    F = success_map(raft(4), 3.0, 0.3)
    (fp,) = [fp for fp in fixed_points(F) if fp.reached]
    rng = np.random.default_rng(0)
    deltas = 0.2 * 0.5 ** np.arange(1, 40)
    bound = parametric_bound(deltas)
    assert bound == pytest.approx(0.4 * (1 - 0.5**39))
    p = np.full(500, fp.p)
    for d in deltas:
        p = np.clip(F(p) + rng.uniform(-d, d, p.size), 0.0, 1.0)
    for _ in range(200):
        p = F(p)
    assert np.all(np.abs(p - fp.p) <= bound)


@pytest.mark.parametrize("bad", [[-0.1], [0.6, 0.5], [float("nan")], 1.0])
def test_parametric_bound_bad_input(bad):
    with pytest.raises(ValueError, match="delta"):
        parametric_bound(bad)


def test_theory_bad_input():
    with pytest.raises(ValueError, match="p_star"):
        mroueh_bound(1.5)
    with pytest.raises(ValueError, match="eps"):
        mroueh_bound(0.3, -1.0)
    with pytest.raises(ValueError, match="p_star"):
        stability_beta(raft(3), float("nan"))
