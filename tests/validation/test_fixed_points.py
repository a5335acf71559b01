"""Fixed points on a transformer (validation.fixed_points): the expected update with the exact
sequence KL, and the sampled trainer with k2 on the sequence."""

from __future__ import annotations

import numpy as np
import pytest

from rlvrlens.dynamics import flow_target, success_map
from rlvrlens.objectives import get_scheme
from rlvrlens.training.policy import CausalLMPolicy
from rlvrlens.training.tasks import modular_arithmetic
from rlvrlens.validation.fixed_points import horizon, sampled_fixed_points, train_to_stationarity


def test_mean_field_training_moves_towards_the_prediction_and_horizon():
    pol = CausalLMPolicy.from_config(n_layer=1, width=32, n_head=2, seed=0)
    task = modular_arithmetic(3, moduli=(3,), seed=1)
    res = train_to_stationarity(pol, task, get_scheme("rloo", 4), 2.0, steps=15, lr=3e-3)
    gap0 = np.abs(np.log(res["history"][0] / (1 - res["history"][0])) - np.log(res["predicted"] / (1 - res["predicted"])))
    gap = np.abs(np.log(res["history"][-1] / (1 - res["history"][-1])) - np.log(res["predicted"] / (1 - res["predicted"])))
    assert np.all(res["history"][-1] > res["history"][0]) and gap.mean() < 0.9 * gap0.mean(), (gap, gap0)
    hist = np.array([[0.1], [0.3], [0.5], [0.5]])
    assert horizon(hist, np.array([0.5])) == 2 and horizon(hist[:2], np.array([0.5])) is None
    with pytest.raises(ValueError, match="kl must be one of"):
        train_to_stationarity(pol, task, get_scheme("rloo", 4), 2.0, kl="none", steps=1)


@pytest.mark.slow
def test_sampled_trainer_with_sequence_k2_settles_at_the_pi_ref_point_not_the_ref_pi_one(tiny_setup):
    """The sampled trainer itself (Adam lr 1e-3, GRPO M = 8, beta = 2, 1000 steps) with k2 on the
    sequence's log-ratio: each prompt within 0.1 logit of its KL(pi||pi_ref) flow target (measured
    0.02), and, where the KL(pi_ref||pi) (k3) point lies more than 0.3 logit from it, more than 0.2
    from that one."""
    setup = tiny_setup
    task = setup.task.subset(setup.prompts, name="v")
    scheme = get_scheme("grpo", 8)
    recs = sampled_fixed_points(setup.policy, task, scheme, 2.0, estimator="k2", steps=1000, lr=1e-3, eval_every=20)
    logit = lambda p: float(np.log(p / (1 - p)))  # noqa: E731
    separated = 0
    for r in recs:
        assert r["kl"] == "pi||ref" and abs(r["logit_gap"]) < 0.1, r
        reverse = flow_target(success_map(scheme, 2.0, r["p_ref"]), kl="ref||pi").p
        if abs(logit(reverse) - logit(r["predicted"])) > 0.3:  # where the two penalties' points differ
            separated += 1
            assert abs(logit(r["measured"]) - logit(reverse)) > 0.2, (r, reverse)
    assert separated >= 1
