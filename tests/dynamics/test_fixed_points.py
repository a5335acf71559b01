"""Fixed points, 2-cycles, attractors and the grid, against an independent dense scan + mpmath."""

from __future__ import annotations

from math import comb

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlvrlens.dynamics import (
    attractor,
    dr_grpo_success_map,
    fixed_point_grid,
    fixed_points,
    grpo_success_map,
    iterate,
    mirror_map,
    mixture_map,
    success_map,
    two_cycles,
)
from rlvrlens.objectives import WeightScheme, grpo, log_odds, raft

mpmath.mp.dps = 50


def omega_mp(x, eps):
    v = 1 / (2 + 2 * mpmath.cosh(x))  # p (1 - p) at p = sigmoid(x)
    return (v + eps) ** mpmath.mpf(-0.5)


def bernstein_mp(c, x):
    M = len(c)
    t = 1 / (1 + mpmath.exp(-x))
    q = 1 / (1 + mpmath.exp(x))
    return sum(mpmath.mpf(c[s]) * comb(M - 1, s) * t**s * q ** (M - 1 - s) for s in range(M))


def independent_fixed_points(gap_mp, beta, p_ref, lo, hi, n):
    """Sign scan of G(x) = logit p_ref + g(x)/beta - x on n points of [lo, hi] in mpmath-evaluated
    float64, each sign change refined by mpmath's bisection-secant solver at 50 digits."""
    x_ref = mpmath.log(mpmath.mpf(p_ref) / (1 - mpmath.mpf(p_ref)))

    def G(x):
        return x_ref + gap_mp(x) / beta - x

    xs = np.linspace(lo, hi, n)
    vals = np.array([float(G(mpmath.mpf(x))) for x in xs])
    roots = []
    for i in np.flatnonzero(np.sign(vals[:-1]) * np.sign(vals[1:]) < 0):
        roots.append(float(mpmath.findroot(G, (mpmath.mpf(xs[i]), mpmath.mpf(xs[i + 1])),
                                           solver="anderson")))
    return roots


CASES = [
    ("mroueh b=1 p=0.2", lambda: grpo_success_map(1.0, 0.2, 1e-5), lambda x: omega_mp(x, mpmath.mpf("1e-5")),
     (-5, 330)),
    ("mroueh b=3 p=1e-3", lambda: grpo_success_map(3.0, 1e-3, 1e-5), lambda x: omega_mp(x, mpmath.mpf("1e-5")),
     (-8, 110)),
    ("mroueh b=0.4 p=1e-4", lambda: grpo_success_map(0.4, 1e-4, 1e-5), lambda x: omega_mp(x, mpmath.mpf("1e-5")),
     (-10, 800)),
    ("grpo8 b=0.2 p=0.3", lambda: success_map(grpo(8, eps=0.0), 0.2, 0.3),
     lambda x: bernstein_mp(grpo(8, eps=0.0).c, x), (-2, 40)),
    ("raft4 b=0.5 p=0.05", lambda: success_map(raft(4), 0.5, 0.05), lambda x: bernstein_mp(raft(4).c, x), (-4, 10)),
]


@pytest.mark.parametrize("name, make, gap_mp, window", CASES, ids=[c[0] for c in CASES])
def test_fixed_points_agree_with_independent_scan(name, make, gap_mp, window):
    F = make()
    found = [fp for fp in fixed_points(F) if np.isfinite(fp.logit)]
    beta, p_ref = float(F.beta), float(F.p_ref)
    expected = independent_fixed_points(gap_mp, beta, p_ref, *window, 3001)
    assert len(found) == len(expected)
    for fp, x in zip(found, expected):
        assert fp.logit == pytest.approx(x, rel=1e-12, abs=1e-12)
        assert fp.one_minus_p == pytest.approx(float(1 / (1 + mpmath.exp(x))), rel=1e-10)


def test_fixed_point_near_one_is_resolved():
    """Mroueh: with eps > 0, p = 1 is only approximately fixed; the true fixed point has
    1 - p* ~ 1e-137 and is found in logit space."""
    fps = fixed_points(grpo_success_map(1.0, 0.2, 1e-5))
    top = fps[-1]
    assert top.p == 1.0 and 0 < top.one_minus_p < 1e-130 and top.kind == "attracting"
    assert [fp.kind for fp in fps] == ["attracting", "repelling", "attracting"]
    assert [fp.reached for fp in fps] == [True, False, False]


def test_slopes_and_types_are_consistent():
    for F in (grpo_success_map(1.0, 0.2, 1e-5), success_map(raft(6), 0.3, 0.1), success_map(grpo(16), 0.5, 0.4)):
        for fp in fixed_points(F):
            if not np.isfinite(fp.logit):
                continue
            h = 1e-6 * (1 + abs(fp.logit))
            fd = (F.step_logit(fp.logit + h) - F.step_logit(fp.logit - h)) / (2 * h)
            assert fp.slope == pytest.approx(float(fd), rel=1e-5, abs=1e-9)
            assert fp.kind == ("attracting" if abs(fp.slope) < 1 else "repelling")


def test_dr_grpo_fixed_point():
    for beta, p_ref in [(1.0, 0.2), (0.05, 0.5), (10.0, 1e-5)]:
        (fp,) = fixed_points(dr_grpo_success_map(beta, p_ref))
        assert fp.logit == pytest.approx(np.log(p_ref / (1 - p_ref)) + 1 / beta, rel=1e-13, abs=1e-13)
        assert fp.slope == 0.0 and fp.kind == "attracting" and fp.reached


def test_mixture_fixed_points_are_those_of_beta_alpha():
    base = success_map(log_odds(5), 0.6, 0.3)
    for alpha in (0.3, 0.8):
        mix = fixed_points(mixture_map(base, alpha))
        ref = fixed_points(base.with_params(beta=0.6 * alpha))
        interior = [fp for fp in mix if np.isfinite(fp.logit)]
        assert [fp.logit for fp in interior] == pytest.approx([fp.logit for fp in ref], rel=1e-12)
        for a, b in zip(interior, ref):
            assert a.slope == pytest.approx((1 - alpha) + alpha * b.slope, rel=1e-9)
        ends = [fp for fp in mix if not np.isfinite(fp.logit)]
        assert [fp.p for fp in ends] == [0.0, 1.0] and all(fp.kind == "repelling" for fp in ends)


def test_mirror_fixed_points():
    # c = (1, -1): h'(p) = 1 - 2p vanishes at 1/2; mirror slope there 1 - 1/(2 beta)
    scheme = WeightScheme(2, np.zeros(2), np.array([1.0, -1.0]))
    fps = fixed_points(mirror_map(success_map(scheme, 1.0, 0.5)))
    assert [fp.p for fp in fps] == pytest.approx([0.0, 0.5, 1.0], abs=1e-14)
    assert fps[1].slope == pytest.approx(0.5) and fps[1].kind == "attracting" and fps[1].reached
    assert fps[0].slope == pytest.approx(np.e) and fps[2].slope == pytest.approx(np.e)
    # GRPO mirror: no interior fixed point, p_n increases to 1
    fps = fixed_points(mirror_map(grpo_success_map(1.0, 0.3, 1e-5)))
    assert [fp.p for fp in fps] == [0.0, 1.0]
    assert fps[1].reached and fps[1].kind == "attracting" and fps[0].kind == "repelling"


def test_endpoint_fixed_points():
    (fp,) = fixed_points(grpo_success_map(1.0, 0.0))
    assert fp.p == 0.0 and fp.reached
    (fp,) = fixed_points(success_map(raft(3), 1.0, 1.0))
    assert fp.p == 1.0 and fp.reached
    # eps = 0: Omega unbounded, p = 1 is an exact (super-attracting) fixed point
    fps = fixed_points(grpo_success_map(1.0, 0.2, 0.0))
    assert fps[-1].p == 1.0 and fps[-1].logit == np.inf and fps[-1].kind == "attracting"


def test_two_cycle_is_a_true_period_two_orbit():
    F = grpo_success_map(3.0, 1e-3, 1e-5)
    (cyc,) = two_cycles(F)
    a, b = cyc.logits
    assert float(F.step_logit(a)) == pytest.approx(b, rel=1e-12)
    assert float(F.step_logit(b)) == pytest.approx(a, rel=1e-12)
    # independent: the tail of a long plain iteration alternates between the two points
    tail = iterate(F, float(F.p_ref), 3000).logit[-4:]
    assert sorted(tail[-2:]) == pytest.approx([a, b], rel=1e-9)
    settled = attractor(F)
    assert settled.kind == "cycle" and settled.period == 2
    assert settled.logits.tolist() == pytest.approx([a, b], rel=1e-9)
    assert settled.multiplier == pytest.approx(cyc.multiplier, rel=1e-6) and abs(cyc.multiplier) < 1
    # no fixed point is reached: fixed_points marks none
    assert not any(fp.reached for fp in fixed_points(F))


def test_attractor_reports_longer_cycles_and_unresolved_orbits():
    settled = attractor(grpo_success_map(10.0, 1e-8, 1e-5))
    assert settled.kind == "cycle" and settled.period == 4
    orbit = settled.logits
    F = grpo_success_map(10.0, 1e-8, 1e-5)
    images = F.step_logit(orbit)
    assert sorted(images) == pytest.approx(sorted(orbit), rel=1e-8)
    chaotic = attractor(grpo_success_map(5.0, 1e-4, 1e-5), 0.1, max_steps=3000)
    assert chaotic.kind == "unresolved" and not chaotic.converged and chaotic.period == 0


@pytest.mark.parametrize("make", [lambda: grpo_success_map(1.0, 0.5, 1e-5), lambda: success_map(grpo(8), 1.0, 0.5),
                                  lambda: mixture_map(success_map(raft(4), 1.0, 0.5), 0.5)],
                         ids=["mroueh", "grpo8", "raft-mixture"])
def test_grid_agrees_with_per_point_analysis(make):
    F = make()
    betas = np.geomspace(0.05, 20.0, 6)
    p_refs = np.geomspace(1e-5, 0.95, 5)
    grid = fixed_point_grid(F, betas, p_refs)
    assert grid.logit.shape == (6, 5)
    for i, b in enumerate(betas):
        for j, r in enumerate(p_refs):
            G = F.with_params(beta=b, p_ref=r)
            settled = attractor(G, max_steps=3000)
            if grid.kind[i, j] == 1:
                assert settled.kind == "fixed_point"
                assert grid.logit[i, j] == pytest.approx(float(settled.logits[0]), rel=1e-9, abs=1e-9)
                fps = fixed_points(G, find_reached=False)
                nearest = min(fps, key=lambda fp: abs(fp.logit - grid.logit[i, j]))
                assert nearest.logit == pytest.approx(grid.logit[i, j], rel=1e-10, abs=1e-12)
                assert grid.slope[i, j] == pytest.approx(nearest.slope, rel=1e-8, abs=1e-12)
            elif grid.kind[i, j] == 2:
                assert settled.kind == "cycle" and settled.period % 2 == 0
                assert np.isnan(grid.logit[i, j])
            else:
                assert settled.kind != "fixed_point" or abs(settled.multiplier) > 0.99
    assert (grid.kind == 1).any()


def test_grid_bad_input():
    F = grpo_success_map(1.0, 0.5)
    with pytest.raises(ValueError, match="p_refs"):
        fixed_point_grid(F, [1.0], [0.0, 0.5])
    with pytest.raises(ValueError, match="beta"):
        fixed_point_grid(F, [0.0], [0.5])
    with pytest.raises(ValueError, match="alpha"):
        fixed_point_grid(mirror_map(F), [1.0], [0.5])
    with pytest.raises(ValueError, match="single"):
        fixed_points(grpo_success_map([1.0, 2.0], 0.5))


@settings(max_examples=25, deadline=None)
@given(c=st.lists(st.floats(0.01, 5.0), min_size=1, max_size=10),
       beta=st.floats(0.05, 20.0), p_ref=st.floats(1e-6, 1 - 1e-6))
def test_property_fixed_points_are_roots_above_p_ref(c, beta, p_ref):
    F = success_map(WeightScheme(len(c), np.zeros(len(c)), np.array(c)), beta, p_ref)
    fps = fixed_points(F)
    assert fps, "a map of [0, 1] with bounded g has a fixed point"
    x_ref = np.log(p_ref / (1 - p_ref))
    for fp in fps:
        assert fp.logit > x_ref  # amplification
        assert float(F.step_logit(fp.logit)) == pytest.approx(fp.logit, rel=1e-10, abs=1e-10)
    reached = [fp for fp in fps if fp.reached]
    assert len(reached) <= 1 and all(fp.kind != "repelling" for fp in reached)


def _neutral_case(c, p_star, beta):
    """A scheme with h' = c0 (1-p) + c1 p and p_ref chosen so that p_star is a fixed point."""
    scheme = WeightScheme(2, np.zeros(2), np.array(c, dtype=float))
    g = c[0] * (1 - p_star) + c[1] * p_star
    x_ref = np.log(p_star / (1 - p_star)) - g / beta
    return success_map(scheme, beta, 1 / (1 + np.exp(-x_ref)))


def test_neutral_flip_point():
    # h' = 2(1-p): slope -2 p(1-p)/beta = -1 at p* = 3/4 when beta = 3/8
    fps = fixed_points(_neutral_case([2.0, 0.0], 0.75, 0.375), find_reached=False)
    (fp,) = fps
    assert fp.p == pytest.approx(0.75, rel=1e-13) and fp.kind == "neutral"
    assert fp.slope == pytest.approx(-1.0, abs=1e-12)


@pytest.mark.parametrize("p_star", [0.6, 0.7, 0.8])
def test_tangent_fixed_point_is_found(p_star):
    """h' = 2p: slope 2 p(1-p)/beta = 1 at p* when beta = 2 p*(1-p*): G(x) = F(x) - x touches zero
    without changing sign (a double root), found from the minima of |G|, to ~sqrt(machine eps)."""
    F = _neutral_case([0.0, 2.0], p_star, 2 * p_star * (1 - p_star))
    fps = fixed_points(F, find_reached=False)
    assert len(fps) == 2 and fps[0].kind == "attracting"
    assert fps[1].kind == "neutral" and fps[1].p == pytest.approx(p_star, abs=1e-7)


def test_grid_with_unbounded_gap_reaches_p_one():
    """eps = 0: Omega is unbounded, orbits can reach p = 1 exactly (logit inf), a super-attracting
    fixed point; the grid agrees with attractor point by point."""
    F = grpo_success_map(1.0, 0.5, 0.0)
    betas, p_refs = [0.05, 0.5, 1.0, 5.0, 50.0], [1e-4, 0.2, 0.8]
    grid = fixed_point_grid(F, betas, p_refs)
    assert np.all(grid.kind == 1)
    for i, b in enumerate(betas):
        for j, r in enumerate(p_refs):
            (x,) = attractor(F.with_params(beta=b, p_ref=r)).logits
            assert grid.logit[i, j] == x if np.isinf(x) else grid.logit[i, j] == pytest.approx(x, rel=1e-9)
    assert np.isinf(grid.logit[0]).all() and grid.p[0].tolist() == [1.0, 1.0, 1.0]


def test_tiny_beta_fixed_point_far_beyond_float_resolution():
    """beta = 1e-8: p* = 1 - exp(-3e10); there p(1-p) underflows, Omega = eps^{-1/2} exactly, so
    logit p* = logit p_ref + eps^{-1/2}/beta in closed form."""
    (fp,) = fixed_points(grpo_success_map(1e-8, 0.2, 1e-5))
    assert fp.logit == pytest.approx(np.log(0.25) + 1e8 / np.sqrt(1e-5), rel=1e-14)
    assert fp.kind == "attracting" and fp.reached and fp.p == 1.0
    grid = fixed_point_grid(grpo_success_map(1.0, 0.2), [1e-8], [0.2])
    assert grid.logit[0, 0] == pytest.approx(fp.logit, rel=1e-14)


@pytest.mark.parametrize("beta", [0.01, 0.2, 0.4, 0.8, 1.0, 5.0])
@pytest.mark.parametrize("p_ref", [1e-4, 0.2, 0.5, 0.8])
def test_all_fixed_points_on_mroueh_fig5_grid(beta, p_ref):
    """Mroueh's Fig. 5 parameters: an independent numpy sign scan of
    G(x) = logit p_ref + (1/(2 + 2 cosh x) + eps)^(-1/2)/beta - x on 2e6 points of the interval that
    must contain every fixed point, [x_ref + Omega(1/2)/beta, x_ref + eps^(-1/2)/beta], finds as
    many fixed points as fixed_points, at the same places (to the scan's resolution)."""
    eps = 1e-5
    x_ref = np.log(p_ref / (1 - p_ref))
    lo, hi = x_ref + (0.25 + eps) ** -0.5 / beta, x_ref + eps**-0.5 / beta
    x = np.linspace(lo - 1e-3, hi + 1e-3, 2_000_001)
    with np.errstate(over="ignore"):
        G = x_ref + (1 / (2 + 2 * np.cosh(x)) + eps) ** -0.5 / beta - x
    i = np.flatnonzero(np.sign(G[:-1]) * np.sign(G[1:]) < 0)
    scan = x[i] - G[i] * (x[i + 1] - x[i]) / (G[i + 1] - G[i])
    found = [fp.logit for fp in fixed_points(grpo_success_map(beta, p_ref, eps), find_reached=False)]
    assert len(found) == len(scan)
    np.testing.assert_allclose(found, scan, atol=2 * (x[1] - x[0]))


@settings(max_examples=25, deadline=None, derandomize=True)
@given(c=st.lists(st.floats(-3.0, 5.0), min_size=1, max_size=8),
       beta=st.floats(0.1, 10.0), p_ref=st.floats(1e-3, 1 - 1e-3))
def test_property_all_fixed_points_of_random_schemes(c, beta, p_ref):
    """Schemes with any sign of c: an independent numpy scan of the Bernstein form on 1e5 points of
    [x_ref + min c/beta, x_ref + max c/beta] sees the same fixed points (when no two are closer
    than 10 scan steps, where counting by sign changes is unreliable for both)."""
    M = len(c)
    x_ref = np.log(p_ref / (1 - p_ref))
    x = np.linspace(x_ref + min(c) / beta - 1e-3, x_ref + max(c) / beta + 1e-3, 100_001)
    p, q = 1 / (1 + np.exp(-x)), 1 / (1 + np.exp(x))
    dh = sum(c[s] * comb(M - 1, s) * p**s * q ** (M - 1 - s) for s in range(M))
    G = x_ref + dh / beta - x
    i = np.flatnonzero(np.sign(G[:-1]) * np.sign(G[1:]) < 0)
    scan = np.sort(np.concatenate([x[G == 0], x[i] - G[i] * (x[i + 1] - x[i]) / (G[i + 1] - G[i])]))
    step = x[1] - x[0]
    if scan.size > 1 and np.min(np.diff(scan)) < 10 * step:
        return
    F = success_map(WeightScheme(M, np.zeros(M), np.array(c)), beta, p_ref)
    found = [fp.logit for fp in fixed_points(F, find_reached=False) if fp.kind != "neutral"]
    assert len(found) == len(scan)
    np.testing.assert_allclose(found, scan, atol=2 * step)


# -- one outcome vocabulary, grid counting in dynamics (issue 12 item 4) -------------------------
def test_outcome_codes_and_labels():
    from rlvrlens.dynamics import Outcome

    assert [Outcome.of_period(k) for k in range(5)] == [Outcome.UNRESOLVED, Outcome.FIXED_POINT,
                                                        Outcome.TWO_CYCLE, Outcome.LONGER_CYCLE,
                                                        Outcome.LONGER_CYCLE]
    assert [int(o) for o in Outcome] == [0, 1, 2, 3]
    assert str(Outcome.TWO_CYCLE) == "2-cycle" and Outcome.LONGER_CYCLE.is_cycle
    with pytest.raises(ValueError, match="period"):
        Outcome.of_period(-1)


def test_attractor_outcome_matches_period_and_legacy_kind():
    from rlvrlens.dynamics import Outcome

    cases = [(grpo_success_map(1.0, 0.2, 1e-5), Outcome.FIXED_POINT, "fixed_point"),
             (grpo_success_map(3.0, 1e-3, 1e-5), Outcome.TWO_CYCLE, "cycle")]
    for F, outcome, legacy in cases:
        a = attractor(F)
        assert a.outcome == outcome and a.kind == legacy and Outcome.of_period(a.period) == outcome


def test_grid_kind_uses_outcome_codes():
    from rlvrlens.dynamics import Outcome

    grid = fixed_point_grid(grpo_success_map(1.0, 0.5, 1e-5), [1.0, 3.0], [0.2, 1e-3])
    assert grid.outcome(0, 0) == Outcome.FIXED_POINT and grid.outcome(1, 1) == Outcome.TWO_CYCLE
    assert set(np.unique(grid.kind)) <= {int(o) for o in Outcome}


@pytest.mark.parametrize("make,several", [(lambda: grpo_success_map(1.0, 0.5, 1e-5), True),
                                          (lambda: success_map(grpo(8), 1.0, 0.5), False)], ids=["mroueh", "grpo8"])
def test_count_fixed_points_agrees_with_fixed_points(make, several):
    """The vectorised count equals the number of interior fixed points the per-map scan finds
    (independent root finding with brentq and the touching-root search); a miscount by one fails."""
    from rlvrlens.dynamics import count_fixed_points

    F = make()
    betas, p_refs = np.array([0.3, 1.0, 4.0]), np.array([1e-3, 0.05, 0.25, 0.7])
    counts = count_fixed_points(F, betas, p_refs)
    for i, b in enumerate(betas):
        for j, r in enumerate(p_refs):
            fps = [fp for fp in fixed_points(F.with_params(beta=b, p_ref=r), find_reached=False)
                   if np.isfinite(fp.logit)]
            assert counts[i, j] == len(fps), (b, r)
    assert (counts >= 3).any() == several  # Mroueh's map has the case that matters: several fixed points


def test_count_fixed_points_bad_input():
    from rlvrlens.dynamics import count_fixed_points

    with pytest.raises(ValueError, match="p_refs"):
        count_fixed_points(grpo_success_map(1.0, 0.5), [1.0], [0.0])
    with pytest.raises(ValueError, match="alpha"):
        count_fixed_points(mirror_map(grpo_success_map(1.0, 0.5)), [1.0], [0.5])
    with pytest.raises(TypeError, match="SuccessMap"):
        count_fixed_points("grpo", [1.0], [0.5])


def test_tabulated_map_interpolates_within_its_bound():
    """Linear interpolation of g on a 0.005 grid: error <= h^2/8 max|g''(x)| (x = logit); measured
    against the exact map at off-node points (the bound fails if the table were off by a node)."""
    F = success_map(grpo(8), 1.0, 0.3)
    T = F.tabulated()
    x = np.linspace(-20, 20, 4001) + 0.0013
    err = np.abs(T.step_logit(x) - F.step_logit(x))
    d = 1e-3
    g2 = np.abs(F.gap(x + d) - 2 * F.gap(x) + F.gap(x - d)) / d**2
    assert np.all(err <= 0.005**2 / 8 * (g2.max() * 1.01) + 1e-14)
    assert float(err.max()) > 0  # interpolated, not the exact g
