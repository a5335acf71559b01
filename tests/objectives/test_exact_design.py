"""Exact (sympy) objectives and designed weights."""

from __future__ import annotations

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from rlvrlens.objectives import (
    design, dh, dh_exact, from_rs, grpo, h, h_exact, log_odds, pass_at_k, raft, reinforce_rej, rloo,
    t_symbol,
)

t = t_symbol()


@pytest.mark.parametrize("scheme", [raft(7), log_odds(5), rloo(6), reinforce_rej(5, "pm1"), pass_at_k(9, 4),
                                    grpo(6, eps=1e-3), grpo(5, eps=0.0, std="population"),
                                    grpo(7, eps=0.01, eps_inside_sqrt=True)], ids=repr)
def test_symbolic_equals_numeric(scheme):
    hx, dx = h_exact(scheme), dh_exact(scheme)
    for x in (sympy.Rational(1, 7), sympy.Rational(1, 2), sympy.Rational(9, 10), sympy.Integer(1)):
        assert float(hx.eval(x)) == pytest.approx(float(h(scheme, float(x))), rel=1e-12, abs=1e-14)
        assert float(dx.eval(x)) == pytest.approx(float(dh(scheme, float(x))), rel=1e-12, abs=1e-14)
    assert hx.eval(0) == 0


def test_rational_schemes_have_rational_coefficients():
    assert h_exact(raft(4)).as_expr() == sympy.expand(sum((1 - (1 - t) ** k) / sympy.Integer(k) for k in range(1, 5)))
    assert all(c.is_Rational for c in h_exact(pass_at_k(8, 3)).all_coeffs())
    assert h_exact(pass_at_k(8, 3)).as_expr() == sympy.expand(1 - (1 - t) ** 3)


def test_grpo_eps0_is_algebraic_and_exact():
    """Population GRPO with eps = 0 at M = 4: c_0 = b_0 = (3/4)/(sqrt(3)/4) = sqrt(3)."""
    c0 = dh_exact(grpo(4, eps=0.0, std="population")).eval(0)
    assert sympy.simplify(c0 - sympy.sqrt(3)) == 0
    big = h_exact(grpo(64, eps=0.0))  # practical at M = 64
    assert big.degree() <= 64
    assert float(big.eval(sympy.Rational(1, 3))) == pytest.approx(float(h(grpo(64, eps=0.0), 1 / 3)), rel=1e-12)


def test_exact_of_float_scheme_reads_decimals():
    s = from_rs(2, lambda r, s: 0.1 if r else 0.0)
    assert dh_exact(s).as_expr() == sympy.Rational(1, 10)


def test_exact_refuses_huge_M():
    with pytest.raises(ValueError, match="M must be <= 256"):
        h_exact(raft(300))


# ---- design ----

@pytest.mark.parametrize("target", ["t**3 + 2*t", "1 - (1-t)**4", "t**2/2 + 5"])
def test_polynomial_target_is_exact(target):
    r = design(target, 6)
    assert r.exact and r.error == 0.0
    expr = sympy.sympify(target, locals={"t": t})
    assert sympy.expand(h_exact(r.scheme).as_expr() - (expr - expr.subs(t, 0))) == 0


def test_polynomial_of_too_high_degree_is_approximated():
    r = design("t**6", 4)
    assert not r.exact and r.error > 0


def test_pass_at_k_is_recovered_by_design():
    r = design("1 - (1-t)**3", 8)
    np.testing.assert_allclose(r.scheme.c, pass_at_k(8, 3).c, rtol=1e-13)


@pytest.mark.parametrize("target", ["log(t)", "log(t/(1-t))", "2*asin(sqrt(t))"])
def test_singular_targets_error_is_measured_and_shrinks(target):
    expr = sympy.sympify(target, locals={"t": t})
    fn = sympy.lambdify(t, expr, "numpy")
    errors = []
    for M in (16, 64, 256):
        r = design(target, M, interval=(0.05, 0.95))
        grid = np.linspace(0.05, 0.95, 3001)
        d = h(r.scheme, grid) - fn(grid)
        independent = 0.5 * (d.max() - d.min())
        assert r.error == pytest.approx(independent, rel=1e-2)
        assert not r.exact
        errors.append(r.error)
    assert errors[0] > errors[1] > errors[2]


def test_callable_target_with_derivative_and_custom_split():
    r = design(lambda x: np.log1p(x), 10, derivative=lambda x: 1 / (1 + x), split=lambda c: -0.5 * c)
    np.testing.assert_allclose(r.scheme.a, -0.5 * r.scheme.c)
    assert r.error < 1e-2
    with pytest.raises(TypeError, match="derivative must be given"):
        design(lambda x: x, 4)


def test_centred_split_of_linear_target_is_rloo():
    r = design("t", 5, split="centred")
    assert r.scheme.a.tolist() == pytest.approx(rloo(5).a.tolist())
    assert r.scheme.b.tolist() == pytest.approx(rloo(5).b.tolist())


@pytest.mark.parametrize("target, match", [
    ("-t", "non-decreasing"),
    ("sin(6*t)", "non-decreasing"),
    ("1/(t - 1/2)", "finite"),
    ("t +* 2", "cannot parse"),
    ("t*x", "unknown name 'x'"),
])
def test_bad_targets_are_refused(target, match):
    with pytest.raises(ValueError, match=match):
        design(target, 8)


def test_bad_design_arguments():
    with pytest.raises(ValueError, match="M must be"):
        design("t", 0)
    with pytest.raises(ValueError, match="nodes must be one of"):
        design("log(t)", 4, nodes="random")
    with pytest.raises(ValueError, match="interval"):
        design("log(t)", 4, interval=(0.5, 0.2))


@settings(max_examples=30, deadline=None)
@given(coeffs=st.lists(st.integers(0, 5), min_size=1, max_size=5), extra=st.integers(0, 3))
def test_design_round_trip_for_random_monotone_polynomials(coeffs, extra):
    """h' = sum_j coeffs_j t^j with non-negative coefficients is monotone; design is exact."""
    target = sum(sympy.Integer(cj) * t ** (j + 1) / (j + 1) for j, cj in enumerate(coeffs))
    M = len(coeffs) + extra
    r = design(target, M)
    assert r.exact
    grid = np.linspace(0, 1, 7)
    np.testing.assert_allclose(h(r.scheme, grid), sympy.lambdify(t, target, "numpy")(grid) * np.ones(7),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("split", ["right", "centred"])
def test_exact_split_matches_numeric_split_and_keeps_h_exact(split):
    from rlvrlens.objectives import split_c, split_c_exact

    c = [sympy.Rational(3, 2), sympy.Integer(0), sympy.Rational(1, 3), sympy.Integer(2)]
    a, b = split_c_exact(c, split)
    a_num, b_num = split_c(np.array([float(x) for x in c]), split)
    np.testing.assert_allclose([float(x) for x in a], a_num, rtol=1e-15)
    np.testing.assert_allclose([float(x) for x in b], b_num, rtol=1e-15)
    assert all(sympy.simplify(bs - as_ - cs) == 0 for as_, bs, cs in zip(a, b, c))
    r = design("t**3 + t", 5, split=split)
    assert sympy.expand(h_exact(r.scheme).as_expr() - (t**3 + t)) == 0
    with pytest.raises(ValueError, match="split must be one of"):
        split_c_exact(c, "left")
