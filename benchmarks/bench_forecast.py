"""Benchmark: the kernel of many prompts, sketched one prompt at a time vs the dense Jacobian.

Run: ``python benchmarks/bench_forecast.py [--prompts 64] [--model tiny|smollm2-135m] [--sketch 65536]``.

:func:`rlvrlens.forecast.forecast.logit_kernel` computes one prompt's ``grad p`` at a time and keeps a
:class:`~rlvrlens.forecast.probes.CountSketch` of it (``k`` float64 numbers) instead of the row (``n``
float32 numbers: 538 MB on SmolLM2-135M, so 8 rows take 4.3 GB and 64 rows 34 GB). The baseline
is the dense path (:func:`rlvrlens.forecast.probes.success_jacobian` then
:func:`~rlvrlens.forecast.probes.kernel`), run where it fits (``--dense-limit`` GB of rows). Printed:
seconds and the peak resident-memory growth per prompt of each, their ratio, and the sketch's
distortion against the dense kernel where both ran (largest entry error over ``sqrt(K_xx K_yy)``, the
stated standard deviation ``sqrt(2/k)``). Memory is the process's peak RSS (``ru_maxrss``), so the
sketched path runs first.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from rlvrlens.forecast.forecast import logit_kernel
from rlvrlens.forecast.probes import kernel, success_jacobian
from rlvrlens.training.policy import CausalLMPolicy, trainable_parameters
from rlvrlens.training.tasks import get_task


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny", help="'tiny' (a 2-layer transformer built from a config) or a "
                    "model name/path (smollm2-135m)")
    ap.add_argument("--task", default=None, help="task spec (default: 'mod' for tiny, SmolLM2's arithmetic task)")
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--sketch", type=int, default=1 << 16)
    ap.add_argument("--dense-limit", type=float, default=4.0, help="run the dense baseline up to this many GB of rows")
    args = ap.parse_args()
    if args.model == "tiny":
        pol = CausalLMPolicy.from_config(n_layer=2, width=64, n_head=2, seed=0)
        spec = args.task or "mod"
    else:
        from rlvrlens.training.showcase import SMOLLM2_TASK

        pol = CausalLMPolicy.from_pretrained(args.model)
        spec = args.task or SMOLLM2_TASK
    task = get_task(spec, n=args.prompts, seed=0)
    n = sum(q.numel() for q in trainable_parameters(pol))
    N = len(task)
    print(f"{args.model}: {n:,} parameters, {N} prompts; a dense row is {n * 4 / 1e6:.0f} MB (float32), "
          f"a sketch {args.sketch * 8 / 1e6:.2f} MB (k = {args.sketch})")
    base = _rss_gb()
    t0 = time.perf_counter()
    _, Ls = logit_kernel(pol, task, sketch=args.sketch)
    t_sk = time.perf_counter() - t0
    mem_sk = _rss_gb() - base
    print(f"sketched: {t_sk / N:.2f} s per prompt, {t_sk:.1f} s in all; peak RSS growth {mem_sk:.2f} GB "
          f"({mem_sk / N * 1e3:.0f} MB per prompt)")
    dense_gb = N * n * 8 / 2**30  # success_jacobian's rows are float64
    if dense_gb > args.dense_limit:
        print(f"dense: not run ({dense_gb:.1f} GB of rows > --dense-limit {args.dense_limit:g} GB); the sketch is "
              f"{n * 8 / (args.sketch * 8):.0f}x smaller per row")
        return
    mid = _rss_gb()
    t0 = time.perf_counter()
    p, G = success_jacobian(pol, task)
    L = kernel(G / (p * (1 - p))[:, None])
    t_dense = time.perf_counter() - t0
    mem_dense = max(_rss_gb() - mid, 0.0)
    d = np.sqrt(np.diag(L))
    err = np.abs(Ls - L) / np.outer(d, d)
    print(f"dense: {t_dense / N:.2f} s per prompt, {t_dense:.1f} s in all; peak RSS growth {mem_dense:.2f} GB "
          f"beyond the sketched run's peak")
    print(f"ratio: sketched/dense time {t_sk / t_dense:.2f}; rows' memory {dense_gb * 1e3 / N:.1f} MB vs "
          f"{args.sketch * 8 / 1e6:.2f} MB per prompt")
    print(f"distortion: largest |Ls - L| / sqrt(Lxx Lyy) = {err.max():.4f} (stated sd sqrt(2/k) = "
          f"{np.sqrt(2 / args.sketch):.4f}); diagonal within {np.abs(np.diag(Ls) / np.diag(L) - 1).max():.2%}")


if __name__ == "__main__":
    main()
