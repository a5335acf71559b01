"""h_M at M = 10^4 on 10^4 points: rlvrlens.objectives.h against the naive definition.

The naive baseline evaluates the definition ``(1/M) sum_s c_s betainc(s+1, M-s, t)`` (one vectorised
scipy call over all s per point). It is timed on a random subset of the points and its time per point
scaled to the full set (stated in the output); both are measured in this run, on the same machine.
Targets (issue 2): ratio >= 30x, max relative difference <= 1e-12.
"""

from __future__ import annotations

import time

import numpy as np
from scipy import special

from rlvrlens.objectives import grpo, h, raft

M = 10_000
N_POINTS = 10_000
N_NAIVE = 400


def naive_h(c: np.ndarray, t: np.ndarray) -> np.ndarray:
    M = c.size
    s = np.arange(M)
    return np.array([np.sum(c * special.betainc(s + 1, M - s, ti)) / M for ti in t])


def main() -> None:
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


if __name__ == "__main__":
    main()
