"""Objectives benchmarks, each a ratio against a baseline measured in the same run.

1. h_M at M = 10^4 on 10^4 points: rlvrlens.objectives.h against the naive definition. The naive
   baseline evaluates ``(1/M) sum_s c_s betainc(s+1, M-s, t)`` (one vectorised scipy call over all s
   per point), timed on a random subset of the points and scaled to the full set. Targets (issue 2):
   ratio >= 30x, max relative difference <= 1e-12.
2. The exact Bernstein conversion of a polynomial target (issue 11, item 6): ``design`` against the
   previous sympy implementation (kept below as the baseline), at a moderate M where the baseline
   takes seconds, plus the new path alone at M = 4000 (where the old one took over 200 s).
"""

from __future__ import annotations

import time
from math import comb

import numpy as np
from scipy import special

from rlvrlens.objectives import design, grpo, h, raft

M = 10_000
N_POINTS = 10_000
N_NAIVE = 400
DESIGN_TARGET = "1 - (1-t)**3 + t**5/5"
DESIGN_M = 400


def naive_h(c: np.ndarray, t: np.ndarray) -> np.ndarray:
    M = c.size
    s = np.arange(M)
    return np.array([np.sum(c * special.betainc(s + 1, M - s, ti)) / M for ti in t])


def sympy_bernstein(expr, M: int) -> list:
    """The previous implementation: sympy power-to-Bernstein conversion, O(M^2) sympy additions."""
    import sympy

    t = sympy.Symbol("t")
    d_expr = sympy.expand(sympy.diff(expr, t))
    poly = sympy.Poly(d_expr, t)
    power = [poly.coeff_monomial(t**j) for j in range(M)]
    return [sympy.Add(*[sympy.Rational(comb(s, j), comb(M - 1, j)) * power[j] for j in range(s + 1)])
            for s in range(M)]


def bench_h() -> None:
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0, 1, N_POINTS))
    for scheme in (grpo(M, eps=1e-8), raft(M)):
        h(scheme, t[:10])  # warm-up
        start = time.perf_counter()
        fast = h(scheme, t)
        t_fast = time.perf_counter() - start
        subset = rng.choice(N_POINTS, N_NAIVE, replace=False)
        start = time.perf_counter()
        slow = naive_h(scheme.c, t[subset])
        t_naive = (time.perf_counter() - start) * N_POINTS / N_NAIVE
        rel = np.max(np.abs(fast[subset] - slow) / np.abs(slow))
        print(f"{scheme!r}: h on {N_POINTS} points: {t_fast:.3f} s; naive betainc sum: "
              f"{t_naive:.1f} s (timed on {N_NAIVE} points, scaled); ratio {t_naive / t_fast:.0f}x "
              f"(target >= 30x); max rel. difference {rel:.2e} (target <= 1e-12)")


def bench_design() -> None:
    from rlvrlens.objectives import parse_target
    from rlvrlens.objectives.design import exact_bernstein

    expr = parse_target(DESIGN_TARGET)
    design(DESIGN_TARGET, 8)  # warm-up (imports)
    start = time.perf_counter()
    new = design(DESIGN_TARGET, DESIGN_M)
    t_new = time.perf_counter() - start
    start = time.perf_counter()
    old = sympy_bernstein(expr, DESIGN_M)
    t_old = time.perf_counter() - start
    start = time.perf_counter()
    c_fast, exact = exact_bernstein(expr, DESIGN_M)
    exact_values = exact()
    t_conv = time.perf_counter() - start
    worst = max(abs(float(o) - x) for o, x in zip(old, new.scheme.c))
    assert all(o == e for o, e in zip(old, exact_values)), "exact coefficients differ from the sympy baseline"
    print(f"design({DESIGN_TARGET!r}, M={DESIGN_M}) exact: {t_new:.3f} s in all; previous sympy conversion "
          f"alone: {t_old:.2f} s; ratio {t_old / t_new:.0f}x (conversion against conversion, with the sympy "
          f"values built: {t_old / t_conv:.0f}x); identical exact coefficients; max |c_new - c_old| = {worst:.1e}")
    start = time.perf_counter()
    big = design(DESIGN_TARGET, 4000)
    print(f"design({DESIGN_TARGET!r}, M=4000) exact={big.exact}: {time.perf_counter() - start:.2f} s "
          "(issue 11: over 200 s before)")


def main() -> None:
    bench_design()
    bench_h()


if __name__ == "__main__":
    main()
