"""The claims framework, and the fast claims of every reproduction (they must all pass)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from rlvrlens.paper_repro import PAPERS, load
from rlvrlens.paper_repro.claims import (
    KINDS, Claim, at_least, at_most, close, counted, estimated, seed_mean, seeded, summary, tally,
)


# -- the framework -----------------------------------------------------------------------------

@pytest.mark.parametrize(
    "claim, verdict",
    [
        (close("c", lambda: 1.0, expected=1.05, tolerance=0.1), "PASS"),
        (close("c", lambda: 1.0, expected=1.2, tolerance=0.1), "FAIL"),
        (at_most("m", lambda: 0.5, bound=0.5), "PASS"),
        (at_most("m", lambda: 0.51, bound=0.5), "FAIL"),
        (at_most("m", lambda: 0.51, bound=0.5, tolerance=0.02), "PASS"),
        (at_least("l", lambda: -1e-3, bound=0.0), "FAIL"),
        (at_least("l", lambda: -1e-3, bound=0.0, tolerance=1e-2), "PASS"),
        (at_most("nan never passes", lambda: math.nan, bound=math.inf), "FAIL"),
        (at_least("inf never passes", lambda: math.inf, bound=0.0), "FAIL"),
    ],
)
def test_relations(claim: Claim, verdict: str) -> None:
    assert claim.verdict == verdict
    assert claim.passed is (verdict == "PASS")


def test_a_measurement_that_raises_is_a_failing_claim_with_its_error() -> None:
    def boom() -> float:
        raise RuntimeError("no data")

    claim = at_most("broken", boom, bound=1.0)
    assert claim.verdict == "FAIL"
    assert math.isnan(claim.measured)
    assert claim.error == "RuntimeError: no data"
    record = claim.as_dict()
    assert record["verdict"] == "FAIL" and record["measured"] is None


def test_bad_construction_is_refused() -> None:
    with pytest.raises(ValueError, match="relation"):
        Claim("s", 1.0, 1.0, 0.0, relation="roughly")
    with pytest.raises(ValueError, match="tolerance"):
        Claim("s", 1.0, 1.0, -1.0)
    with pytest.raises(ValueError, match="kind"):
        Claim("s", 1.0, 1.0, kind="vibes")
    with pytest.raises(ValueError, match="noise"):
        Claim("s", 1.0, 1.0, noise=-1.0)
    with pytest.raises(ValueError, match="confidence"):
        seed_mean([1.0, 2.0], confidence=1.0)
    with pytest.raises(ValueError, match="at least one"):
        seed_mean([])


# -- the three-way verdict -----------------------------------------------------------------------

@pytest.mark.parametrize(
    "relation, measured, noise, verdict",
    [
        # at_least 0 with z = 2: the interval measured ± 2 noise
        ("at_least", 0.5, 0.2, "PASS"),          # [0.1, 0.9] ≥ 0
        ("at_least", 0.3, 0.2, "INCONCLUSIVE"),  # [-0.1, 0.7] straddles 0
        ("at_least", -0.5, 0.2, "FAIL"),         # [-0.9, -0.1] < 0
        ("at_most", -0.5, 0.2, "PASS"),
        ("at_most", 0.3, 0.2, "INCONCLUSIVE"),
        ("at_most", 0.5, 0.2, "FAIL"),
        # close to 0 within 1: the interval inside [-1, 1], overlapping it, or outside it
        ("close", 0.5, 0.2, "PASS"),
        ("close", 0.9, 0.2, "INCONCLUSIVE"),
        ("close", 1.5, 0.2, "FAIL"),
        ("close", -1.5, 0.2, "FAIL"),
        ("at_least", 0.5, math.nan, "INCONCLUSIVE"),  # noise unknown (one seed)
        ("at_least", math.nan, 0.2, "FAIL"),          # no measurement
    ],
)
def test_verdict_with_noise(relation: str, measured: float, noise: float, verdict: str) -> None:
    tol = 1.0 if relation == "close" else 0.0
    c = Claim("s", measured, 0.0, tol, relation, noise=noise, z=2.0)
    assert c.verdict == verdict
    assert c.passed is (verdict == "PASS") and c.failed is (verdict == "FAIL")


def test_zero_noise_is_the_exact_two_way_verdict() -> None:
    for m in (-1e-9, 0.0, 1e-9):
        exact = Claim("s", m, 0.0, relation="at_least")
        assert exact.verdict == Claim("s", m, 0.0, relation="at_least", noise=0.0, z=4.3).verdict
        assert exact.verdict in ("PASS", "FAIL")


def test_seed_mean_against_scipy_t_interval() -> None:
    from scipy import stats

    x = [0.3, 0.1, 0.25, 0.4, 0.05]
    m, se, z = seed_mean(x, confidence=0.9)
    lo, hi = stats.t.interval(0.9, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
    assert (m - z * se, m + z * se) == pytest.approx((lo, hi), rel=1e-12)
    assert seed_mean([0.7]) == (0.7, pytest.approx(math.nan, nan_ok=True), 0.0)


def test_seeded_claims_pass_fail_or_inconclusive_by_their_seed_noise() -> None:
    clear = seeded("a", lambda: [0.10, 0.12, 0.11, 0.09])
    assert clear.verdict == "PASS" and clear.kind == "paper" and clear.noise > 0
    noisy = seeded("b", lambda: [0.10, -0.08, 0.02])  # mean 0.013, se 0.052, t(2) = 4.3
    assert noisy.verdict == "INCONCLUSIVE"
    opposite = seeded("c", lambda: [-0.10, -0.12, -0.11])
    assert opposite.verdict == "FAIL"
    assert seeded("d", lambda: [0.5]).verdict == "INCONCLUSIVE"  # one seed: no noise estimate
    assert seeded("e", lambda: [0.01, 0.03, 0.02], relation="close", tolerance=0.05).verdict == "PASS"
    assert seeded("f", lambda: [0.04, 0.06, 0.05], relation="close", tolerance=0.05).verdict == "INCONCLUSIVE"
    broken = seeded("g", lambda: [])
    assert broken.verdict == "FAIL" and "at least one" in broken.error
    assert "se" in noisy.criterion and noisy.as_dict()["noise"] == pytest.approx(noisy.noise)


def test_summary_leaves_consistency_checks_out_and_tally_counts_every_kind() -> None:
    cs = [at_most("p", lambda: 0.0, bound=1.0, kind="paper"), at_most("i", lambda: 2.0, bound=1.0),
          at_most("c", lambda: 0.0, bound=1.0, kind="consistency"), seeded("s", lambda: [0.1, -0.1])]
    assert summary(cs) == (1, 3)
    t = tally(cs)
    assert set(t) == set(KINDS)
    assert t["paper"] == {"PASS": 1, "FAIL": 0, "INCONCLUSIVE": 1}
    assert t["independent"]["FAIL"] == 1 and t["consistency"]["PASS"] == 1


def test_a_stored_claim_is_reported_but_not_counted_as_a_pass() -> None:
    stored = at_most("re-read from a committed file", lambda: 0.0, bound=1.0, kind="stored")
    fresh = at_most("recomputed", lambda: 2.0, bound=1.0)
    assert stored.verdict == "PASS"
    assert summary([stored]) == (0, 0) and summary([stored, fresh]) == (0, 1)
    assert counted([stored, fresh]) == [fresh]
    assert tally([stored])["stored"] == {"PASS": 1, "FAIL": 0, "INCONCLUSIVE": 0}
    assert stored.as_dict()["kind"] == "stored"


@pytest.mark.parametrize("value, se, verdict", [
    (0.987, 0.0245, "INCONCLUSIVE"),  # the SmolLM2 ratio: 3% is finer than 1.96 se ~ 4.8% can resolve
    (0.987, 0.001, "PASS"),
    (1.2, 0.02, "FAIL"),
    (1.0, math.nan, "INCONCLUSIVE"),
])
def test_a_noisy_comparison_is_judged_with_its_standard_error(value: float, se: float, verdict: str) -> None:
    c = estimated("ratio within 3% of 1", lambda: (value, se), expected=1.0, tolerance=0.03)
    assert c.verdict == verdict
    assert c.z == pytest.approx(1.96, abs=1e-2)
    if math.isfinite(se):
        assert c.noise == se and "se =" in c.criterion


def test_estimated_reports_a_raising_measurement_and_a_negative_se() -> None:
    assert estimated("raises", lambda: 1 / 0, expected=0.0).error.startswith("ZeroDivisionError")
    assert estimated("negative se", lambda: (1.0, -1.0), expected=1.0).verdict == "FAIL"


def test_explanation_is_kept() -> None:
    c = at_most("gap", lambda: 2.0, bound=1.0, explanation="the flow has not arrived")
    assert c.explanation == "the flow has not arrived" and c.as_dict()["explanation"] == c.explanation


def test_criterion_text_and_summary() -> None:
    c = close("s", lambda: 2.0, expected=1.0, tolerance=0.5)
    assert c.criterion == "|x − 1| ≤ 0.5"
    assert at_most("s", lambda: 0.0, bound=1e-12).criterion == "x ≤ 1e-12"
    assert summary([c, at_most("s", lambda: 0.0, bound=1.0)]) == (1, 2)


def test_unknown_paper_is_refused() -> None:
    with pytest.raises(ValueError, match="davis_recht"):
        load("nobody_2031")


# -- the fast claims of every paper -------------------------------------------------------------

@pytest.fixture(scope="module", params=list(PAPERS))
def paper_claims(request) -> list[Claim]:
    return load(request.param).claims()


def test_every_fast_claim_passes(paper_claims: list[Claim]) -> None:
    assert paper_claims, "a reproduction must state claims"
    failing = [f"{c.statement}: x = {c.measured} ({c.criterion}) {c.error or ''}" for c in paper_claims
               if not c.passed]
    assert not failing, "\n".join(failing)


def test_claims_have_statements_and_sources(paper_claims: list[Claim]) -> None:
    for c in paper_claims:
        assert c.statement and c.source
        assert c.error is None
        assert c.kind in KINDS
        if c.kind == "paper":  # the paper's own result, cited by arXiv id
            assert "arXiv:" in c.source, c.source
    assert any(c.kind != "consistency" for c in paper_claims), "every reproduction states claims that can fail"


# -- the independent sides of the Davis & Recht checks are themselves right ----------------------

def test_grpo_definition_against_brute_force_enumeration() -> None:
    """h_M(t) = ∫_0^t h'_M with h'_M(p) = E[(1/M) Σ Z_i (R_i - p)/(p(1-p))], enumerating all 2^M
    reward vectors with GRPO's weights computed from numpy's std (Davis & Recht, Theorem 1)."""
    from rlvrlens.paper_repro.davis_recht import grpo_by_definition

    M, eps = 5, 1e-3
    R = ((np.arange(2**M)[:, None] >> np.arange(M)) & 1).astype(float)
    Z = (R - R.mean(1, keepdims=True)) / (R.std(1, ddof=1, keepdims=True) + eps)
    k = R.sum(1)

    def step(p: float) -> float:
        prob = p**k * (1 - p) ** (M - k)
        return float(np.sum(prob * (Z * (R - p) / (p * (1 - p))).mean(1)))

    for t in (0.05, 0.3, 0.77, 1.0):
        expected = integrate.quad(step, 1e-12, t - 1e-12 if t == 1.0 else t, epsabs=1e-12)[0]
        assert grpo_by_definition(M, np.array([t]), eps=eps)[0] == pytest.approx(expected, abs=1e-8)


def test_harmonic_numbers_exact_and_float() -> None:
    from fractions import Fraction

    import sympy

    from rlvrlens.paper_repro.davis_recht import harmonic

    assert harmonic(4) == pytest.approx(float(sum(Fraction(1, k) for k in range(1, 5))), rel=1e-15)
    assert harmonic(4, sympy.Symbol("t")) == sympy.Rational(25, 12)


def test_a_wrong_closed_form_is_caught() -> None:
    """The catalogue check can fail: a closed form off by t^2/100 is reported, not absorbed."""
    from dataclasses import replace

    from rlvrlens.paper_repro.davis_recht import CATALOGUE, closed_form_error

    raft_row = next(e for e in CATALOGUE if e.label.startswith("rejection"))
    wrong = replace(raft_row, closed=lambda M, t: raft_row.closed(M, t) + t**2 / 100)
    assert closed_form_error(wrong, 16) > 1e-3
    assert closed_form_error(raft_row, 16) < 1e-12


# -- Mroueh: the paper's closed forms used by the claims are themselves right -------------------

def test_mroueh_closed_forms_against_finite_differences_and_mpmath() -> None:
    import mpmath

    from rlvrlens.paper_repro.mroueh import dh_closed, h_closed, omega_closed

    p = np.array([0.03, 0.3, 0.5, 0.8, 0.97])
    step = 1e-6
    numeric = (h_closed(p + step, 0.7, 0.2) - h_closed(p - step, 0.7, 0.2)) / (2 * step)
    np.testing.assert_allclose(dh_closed(p, 0.7, 0.2), numeric, rtol=1e-6, atol=1e-9)
    wp, wm = omega_closed(p)
    for pi, a, b in zip(p, wp, wm):
        s = mpmath.sqrt(mpmath.mpf(pi) * (1 - mpmath.mpf(pi)) + mpmath.mpf("1e-5"))
        assert a == pytest.approx(float((1 - mpmath.mpf(pi)) / s), rel=1e-13)
        assert b == pytest.approx(float(mpmath.mpf(pi) / s), rel=1e-13)


def test_count_fixed_points_against_brute_force_roots() -> None:
    """The vectorised fixed-point count agrees with a dense scan of the paper's closed-form map."""
    from rlvrlens.paper_repro.mroueh import EPS, count_fixed_points

    betas, prefs = np.array([0.3, 1.0, 5.0]), np.array([1e-4, 0.2, 0.8])
    counts = count_fixed_points(betas, prefs)
    x = np.concatenate([np.linspace(-15, 80, 400_001), np.geomspace(80, 4e4, 20_000)])
    for i, b in enumerate(betas):
        for j, pr in enumerate(prefs):
            omega = (np.exp(-np.logaddexp(0, x) - np.logaddexp(0, -x)) + EPS) ** -0.5
            resid = np.log(pr / (1 - pr)) + omega / b - x
            assert counts[i, j] == np.count_nonzero(np.diff(np.sign(resid)) != 0), (b, pr)
    assert counts.max() >= 3  # the grid includes cases with several fixed points


def test_format_p_near_one() -> None:
    from rlvrlens.paper_repro.mroueh import format_p

    assert format_p(-2.0) == "0.1192"
    assert format_p(800.0) == "$1 - 10^{-347}$"
