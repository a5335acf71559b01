"""Benchmark: the 1000 x 1000 grid of attracting fixed points, vectorised vs a naive per-point solver.

Run: ``python benchmarks/bench_dynamics.py [--n 1000] [--subset 200]``.

The vectorised :func:`rlvrlens.dynamics.fixed_point_grid` handles the whole ``beta x p_ref`` grid at
once. The naive baseline does, for ONE point at a time with scalar calls: iterate the map from
``p_ref`` in a Python loop until it repeats (period 1 or 2, same tolerances), then polish a fixed
point with scipy's ``brentq`` on ``G(x) = F(x) - x``. It is timed on a random subset of grid points
(seeded) and extrapolated per point to the full grid (stated in the output). Agreement is checked on
that subset: the same kind (fixed point / 2-cycle / unresolved) and the same ``logit p*``.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from scipy import optimize

from rlvrlens.dynamics import SuccessMap, fixed_point_grid, grpo_success_map, success_map
from rlvrlens.objectives import grpo


def naive_point(F: SuccessMap, max_steps: int = 2000, tol: float = 1e-9) -> tuple[int, float]:
    """(kind, logit p*) for one scalar map: 1 fixed point, 2 two-cycle, 0 unresolved."""
    x = float(F.logit_ref)
    for _ in range(max_steps):
        x1 = float(F.step_logit(x))
        x2 = float(F.step_logit(x1))
        scale = tol * (1.0 + abs(x))
        if abs(x1 - x) <= scale:
            def G(z: float) -> float:
                return float(F.step_logit(z)) - z

            width = 1e-6 * (1.0 + abs(x1))
            a, b = x1 - width, x1 + width
            while G(a) * G(b) > 0:
                width *= 4
                a, b = x1 - width, x1 + width
            root = optimize.brentq(G, a, b, xtol=1e-14, rtol=1e-15)
            return (1, root) if abs(float(F.logit_slope(root))) < 1 else (0, np.nan)
        if abs(x2 - x) <= scale and abs(x1 - x) > 1e-6 * (1.0 + abs(x)):
            return 2, np.nan
        x = x2
    return 0, np.nan


def bench(name: str, F: SuccessMap, n: int, subset: int, seed: int = 0) -> None:
    betas = np.geomspace(0.05, 20.0, n)
    p_refs = np.geomspace(1e-4, 0.95, n)
    t0 = time.perf_counter()
    grid = fixed_point_grid(F, betas, p_refs)
    t_vec = time.perf_counter() - t0

    rng = np.random.default_rng(seed)
    pts = rng.choice(n * n, size=subset, replace=False)
    t0 = time.perf_counter()
    naive = [naive_point(F.with_params(beta=betas[k // n], p_ref=p_refs[k % n])) for k in pts]
    t_naive = (time.perf_counter() - t0) / subset * n * n

    kinds = np.array([k for k, _ in naive])
    logits = np.array([x for _, x in naive])
    g_kind = grid.kind.ravel()[pts]
    g_logit = grid.logit.ravel()[pts]
    both = (kinds == 1) & (g_kind == 1)
    rel = np.abs(g_logit[both] - logits[both]) / (1.0 + np.abs(logits[both]))
    counts = np.bincount(grid.kind.ravel(), minlength=3)
    print(f"{name}: {n}x{n} grid, kinds: {counts[1]} fixed points, {counts[2]} 2-cycles, {counts[0]} unresolved")
    print(f"  vectorised fixed_point_grid: {t_vec:8.2f} s")
    print(f"  naive per-point (brentq), extrapolated from {subset} random points: {t_naive:8.1f} s")
    print(f"  speed-up: {t_naive / t_vec:8.1f}x  (target >= 50x)")
    print(f"  agreement on the subset: kind {np.mean(kinds == g_kind):.4f}, "
          f"max |d logit p*|/(1+|logit p*|) = {rel.max() if rel.size else float('nan'):.2e} over {both.sum()} points")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="grid side")
    parser.add_argument("--subset", type=int, default=200, help="points timed for the naive solver")
    args = parser.parse_args([] if argv is None else argv)
    bench("population GRPO (Mroueh), eps=1e-5", grpo_success_map(1.0, 0.5, 1e-5), args.n, args.subset)
    bench("GRPO scheme, M=16", success_map(grpo(16), 1.0, 0.5), args.n, args.subset)


if __name__ == "__main__":
    main(sys.argv[1:])
