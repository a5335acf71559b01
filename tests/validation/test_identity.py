"""The identity experiments' statistics (validation.identity) on samples with a known law."""

from __future__ import annotations

import numpy as np

from rlvrlens.objectives import dh, get_scheme
from rlvrlens.validation.identity import PromptSample, expected_step, sample_coefficients


def test_coefficients_reproduce_the_per_answer_sum():
    """C_g @ J equals (1/M) sum_i Z_gi J[which_gi] computed answer by answer."""
    rng = np.random.default_rng(0)
    G, M, U, D = 5, 4, 3, 7
    which = rng.integers(0, U, size=(G, M))
    rewards = (which == 0).astype(float)  # completion 0 is the right one
    J = rng.normal(size=(U, D))
    sample = PromptSample(0, 0.3, rng.normal(size=D), rewards, which, J)
    scheme = get_scheme("grpo", M)
    C = sample_coefficients(sample, scheme)
    Z = scheme.weights(rewards)
    direct = np.array([sum(Z[g, i] * J[which[g, i]] for i in range(M)) / M for g in range(G)])
    np.testing.assert_allclose(C @ J, direct, rtol=1e-12)


def test_expected_step_error_shrinks_and_detects_a_wrong_target():
    """Synthetic sample with a known law: one right completion (score +(1-p)) and one wrong (-p) in
    a 1-D parameter with dp/dtheta = p(1-p): the Bernoulli model. The estimate's error must sit at
    the CLT scale and shrink with G."""
    rng = np.random.default_rng(1)
    p, M, G = 0.3, 4, 20000
    rewards = (rng.random((G, M)) < p).astype(float)
    which = (1 - rewards).astype(int)  # 0 = right, 1 = wrong
    J = np.array([[1 - p], [-p]])  # d/dtheta log pi for a logit parameter
    sample = PromptSample(0, p, np.array([p * (1 - p)]), rewards, which, J)
    schemes = {"reinforce": get_scheme("reinforce", M), "raft": get_scheme("raft", M)}
    recs = expected_step([sample], schemes, (200, 20000))
    for r in recs:
        assert r["rel_error"] < 4 * r["clt_rel_error"], r
    small = [r["clt_rel_error"] for r in recs if r["groups"] == 200]
    large = [r["clt_rel_error"] for r in recs if r["groups"] == 20000]
    np.testing.assert_allclose(np.array(large) / np.array(small), 0.1, rtol=0.15)  # 1/sqrt(100)
    # the raft update measured against reinforce's h' would be far off: the check can fail
    raft_mean = sample_coefficients(sample, schemes["raft"]).mean(0) @ J
    wrong = float(dh(schemes["reinforce"], p)) * p * (1 - p)
    assert abs(raft_mean[0] - wrong) / wrong > 10 * recs[-1]["clt_rel_error"]
