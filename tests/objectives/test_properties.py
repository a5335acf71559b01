"""Hypothesis properties of h_M for random schemes."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rlvrlens.objectives import WeightScheme, dh, h

Ms = st.integers(1, 60)


coeff = st.floats(-50, 50, allow_nan=False, allow_infinity=False)


@st.composite
def schemes(draw, nonneg=False):
    M = draw(Ms)
    a = draw(arrays(float, M, elements=coeff))
    c = draw(arrays(float, M, elements=st.floats(0, 50) if nonneg else coeff))
    return WeightScheme(M, a, a + c)


@settings(max_examples=80, deadline=None)
@given(schemes())
def test_h_vanishes_at_zero_and_equals_mean_c_at_one(s):
    assert h(s, 0.0) == 0.0
    assert np.isclose(h(s, 1.0), s.c.sum() / s.M, rtol=1e-12, atol=1e-12 * (np.abs(s.c).sum() + 1))


@settings(max_examples=80, deadline=None)
@given(schemes(nonneg=True))
def test_monotone_when_c_nonnegative(s):
    t = np.linspace(0, 1, 201)
    v = h(s, t)
    assert np.all(np.diff(v) >= -1e-12 * max(1.0, np.abs(v).max()))
    assert np.all(dh(s, t) >= 0)


@st.composite
def scheme_pairs(draw):
    """Two schemes of the same (drawn) M: every example is tested, none is skipped."""
    M = draw(Ms)
    a1, a2 = draw(arrays(float, M, elements=coeff)), draw(arrays(float, M, elements=coeff))
    c1, c2 = draw(arrays(float, M, elements=coeff)), draw(arrays(float, M, elements=coeff))
    return WeightScheme(M, a1, a1 + c1), WeightScheme(M, a2, a2 + c2)


@settings(max_examples=60, deadline=None)
@given(scheme_pairs(), st.floats(-3, 3))
def test_linear_in_c(pair, lam):
    s1, s2 = pair
    comb = WeightScheme(s1.M, s1.a + lam * s2.a, s1.b + lam * s2.b)
    t = np.linspace(0, 1, 17)
    scale = np.abs(h(s1, t)).max() + abs(lam) * np.abs(h(s2, t)).max() + 1
    np.testing.assert_allclose(h(comb, t), h(s1, t) + lam * h(s2, t), atol=1e-11 * scale)


@settings(max_examples=60, deadline=None)
@given(schemes())
def test_dh_is_derivative_of_h(s):
    t = np.linspace(0.05, 0.95, 13)
    step = 1e-5
    fd = (h(s, t + step) - h(s, t - step)) / (2 * step)
    scale = np.abs(s.c).max() + 1
    np.testing.assert_allclose(dh(s, t), fd, atol=1e-5 * scale * s.M)
