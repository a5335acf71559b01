"""Fixed points on a transformer (validation.fixed_points): the expected update with the exact
sequence KL, and the sampled trainer with k2 on the sequence."""

from __future__ import annotations

import numpy as np
import pytest

from rlvrlens.dynamics import flow_target, success_map
from rlvrlens.forecast.coupled import predicted_change
from rlvrlens.forecast.probes import kernel, success_jacobian
from rlvrlens.objectives import get_scheme
from rlvrlens.training.policy import CausalLMPolicy
from rlvrlens.training.tasks import modular_arithmetic
from rlvrlens.validation.fixed_points import horizon, sampled_fixed_points, train_to_stationarity


def test_expected_update_first_step_is_the_kernel_prediction_and_the_horizon():
    """One SGD step of the expected update from pi_ref (the KL's gradient is zero there) changes p by
    (lr/N) K h'(p) to first order, K from the probes' exact Jacobian: within 2% at this step (a step of
    the wrong scheme, or of K's diagonal only, is off by far more). The horizon is the first step
    after which every prompt stays within tolerance of its prediction."""
    pol = CausalLMPolicy.from_config(n_layer=1, width=32, n_head=2, seed=0)
    task = modular_arithmetic(3, moduli=(3,), seed=1)
    scheme, lr = get_scheme("rloo", 4), 0.2
    res = train_to_stationarity(pol, task, scheme, 2.0, steps=1, optim="sgd", lr=lr)
    p0, G = success_jacobian(pol.clone(trainable=True), task)
    K = kernel(G)
    want = predicted_change(K, scheme, p0, lr)
    got = res["history"][1] - res["history"][0]
    np.testing.assert_allclose(got, want, rtol=0.02)
    for wrong in (predicted_change(np.diag(np.diag(K)), scheme, p0, lr), predicted_change(K, get_scheme("raft", 4), p0, lr)):
        assert np.abs(got - wrong).max() > 0.1 * np.abs(want).max()
    hist = np.array([[0.1], [0.3], [0.5], [0.5]])
    assert horizon(hist, np.array([0.5])) == 2 and horizon(hist[:2], np.array([0.5])) is None
    with pytest.raises(ValueError, match="kl must be one of"):
        train_to_stationarity(pol, task, scheme, 2.0, kl="none", steps=1)


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
