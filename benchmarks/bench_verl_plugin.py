"""The verl plugin's estimator against verl's own group estimators, in one run (needs verl: ``.venv-verl``).

Configuration: 512 prompts x 16 responses = 8192 rows of 1024 response tokens (float32 rewards, the
outcome on the last valid token, random lengths), uids as verl draws them, rows shuffled; CPU, one
torch thread. Timed: verl's ``grpo`` (its loop over rows), ``grpo_vectorized`` and ``rloo_vectorized``
and the plugin's ``rlvrlens`` with the scheme ``grpo`` (the same weights), a designed log-odds scheme,
and ``grpo`` with per-group records written (``record_dir``); each called directly as verl's
``compute_advantage`` calls it, median and fastest of 7 calls after one warm-up. Reported next to each:
the largest difference from verl's ``grpo``/``rloo_vectorized`` advantages where the weights coincide.

Run: ``.venv-verl/bin/python -m benchmarks bench_verl_plugin``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid

import numpy as np

try:  # verl lives in .venv-verl only: without it this benchmark says so and stops
    import torch
    from omegaconf import OmegaConf
    from verl.trainer.ppo import core_algos

    from rlvrlens.training.verl_plugin import ESTIMATOR
except ImportError as err:
    MISSING: ImportError | None = err
else:
    MISSING = None

PROMPTS, N, LENGTH, CALLS = 512, 16, 1024, 7


def batch(seed: int = 0):
    rng = np.random.default_rng(seed)
    uid = np.repeat(np.array([str(uuid.uuid4()) for _ in range(PROMPTS)], dtype=object), N)
    p = np.repeat(rng.uniform(size=PROMPTS), N)
    lengths = torch.as_tensor(rng.integers(1, LENGTH + 1, size=PROMPTS * N))
    mask = (torch.arange(LENGTH) < lengths[:, None]).float()
    rewards = torch.zeros(PROMPTS * N, LENGTH)
    rewards[torch.arange(PROMPTS * N), lengths - 1] = torch.as_tensor((rng.uniform(size=p.size) < p), dtype=torch.float32)
    order = rng.permutation(PROMPTS * N)
    return rewards[order], mask[order], uid[order]


def timed(fn, **kwargs):
    fn(**kwargs)
    times, out = [], None
    for _ in range(CALLS):
        start = time.perf_counter()
        out, _ = fn(**kwargs)
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), out


def main() -> None:
    if MISSING is not None:
        print(f"verl is not installed ({MISSING}); run in .venv-verl (make setup-verl)")
        return
    torch.set_num_threads(1)
    rewards, mask, uid = batch()
    common = {"token_level_rewards": rewards, "response_mask": mask, "index": uid}
    plugin = core_algos.get_adv_estimator_fn(ESTIMATOR)

    def config(**block):
        return OmegaConf.create({"adv_estimator": ESTIMATOR, "rlvrlens": block})

    with tempfile.TemporaryDirectory() as records:
        runs = {
            "verl grpo": (core_algos.compute_grpo_outcome_advantage, {}),
            "verl grpo_vectorized": (core_algos.get_adv_estimator_fn("grpo_vectorized"), {"config": None}),
            "verl rloo_vectorized": (core_algos.get_adv_estimator_fn("rloo_vectorized"), {"config": None}),
            "rlvrlens scheme: grpo": (plugin, {"config": config(scheme="grpo")}),
            "rlvrlens scheme: rloo": (plugin, {"config": config(scheme="rloo")}),
            "rlvrlens target: log-odds (minimax)": (plugin, {"config": config(
                target="log(t/(1-t))", design={"method": "minimax", "max_weight": 20, "interval": [0.05, 0.95]})}),
            "rlvrlens scheme: grpo + records": (plugin, {"config": config(scheme="grpo", record_dir=records)}),
        }
        results = {name: timed(fn, **common, **extra) for name, (fn, extra) in runs.items()}
    reference = {"grpo": results["verl grpo"][2], "rloo": results["verl rloo_vectorized"][2]}
    print(f"{PROMPTS} prompts x {N} responses x {LENGTH} tokens, CPU, 1 thread; median (fastest) of {CALLS} calls")
    for name, (median, fastest, out) in results.items():
        same = next((k for k in reference if name.endswith(f": {k}")), None)
        agree = f"  max |diff| vs verl {same}: {float((out - reference[same]).abs().max()):.2e}" if same else ""
        print(f"  {name:38s} {1e3 * median:8.1f} ms ({1e3 * fastest:.1f}){agree}")


if __name__ == "__main__":
    main()
