"""Issue 6: the validation experiments on the tiny preset. The pieces are checked against what the
theory and an independent computation say; the end-to-end run checks the files and verdicts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rlvrlens.objectives import dh, get_scheme
from rlvrlens.validation.experiments import (
    PromptSample, _coefficients, expected_step, get_size, tabular_setup, trajectories,
)


def test_coefficients_reproduce_the_per_answer_sum():
    """C_g @ J equals (1/M) sum_i Z_gi J[which_gi] computed answer by answer."""
    rng = np.random.default_rng(0)
    G, M, U, D = 5, 4, 3, 7
    which = rng.integers(0, U, size=(G, M))
    rewards = (which == 0).astype(float)  # completion 0 is the right one
    J = rng.normal(size=(U, D))
    sample = PromptSample(0, 0.3, rng.normal(size=D), rewards, which, J)
    scheme = get_scheme("grpo", M)
    C = _coefficients(sample, scheme)
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
    raft_mean = _coefficients(sample, schemes["raft"]).mean(0) @ J
    wrong = float(dh(schemes["reinforce"], p)) * p * (1 - p)
    assert abs(raft_mean[0] - wrong) / wrong > 10 * recs[-1]["clt_rel_error"]


def test_tabular_trajectories_exact_step_is_the_map_and_sgd_is_the_ode():
    recs = trajectories(get_size("tiny"))
    exact = [r for r in recs if r["source"] == "tabular-exact"]
    sgd = [r for r in recs if r["source"] == "tabular-sgd"]
    assert exact and all(r["logit_rms"] < 1e-8 for r in exact)
    assert sgd and all(r["logit_rms"] < 0.15 for r in sgd)
    # the ODE is not the map: iterating the map per step would be far off (the comparison can fail)
    assert all("steps_per_iteration" not in r for r in recs)


def test_tabular_setup_has_the_requested_reference():
    pol, task, p_ref = tabular_setup([0.1, 0.7], copies=2)
    from rlvrlens.training.success import exact_success
    np.testing.assert_allclose(exact_success(pol, task).detach().numpy(), p_ref, rtol=1e-12)


def test_sizes_and_errors():
    assert get_size("gpu").device == "cuda"
    with pytest.raises(ValueError, match="unknown validation preset 'huge'; valid: tiny, cpu, demo, gpu, smollm2-cpu, smollm2-gpu"):
        get_size("huge")


@pytest.mark.slow
def test_validate_end_to_end_tiny(tmp_path, capsys):
    from rlvrlens.cli import main

    torch.manual_seed(0)
    assert main(["validate", "--preset", "tiny", "--out", str(tmp_path)]) == 0
    for name in ("measurements.jsonl", "report.md", "expected_step.png", "relative_speed.png",
                 "fixed_points.png", "trajectories.png", "coupling.png", "coupling_one_step.png",
                 "lm_fixed_points.png", "sampled_fixed_points.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    records = [json.loads(line) for line in (tmp_path / "measurements.jsonl").read_text().splitlines()]
    kinds = {r["experiment"] for r in records}
    assert kinds == {"expected_step", "relative_speed", "fixed_points", "fixed_point_ablation", "trajectory",
                     "two_cycle", "coupling_one_step", "coupling_trajectory", "lm_fixed_points",
                     "sampled_fixed_points"}
    report = (tmp_path / "report.md").read_text()
    assert "| verdict |" in report and "agrees" in report
    # the theory's central claims hold on the tiny preset
    exp1 = [r for r in records if r["experiment"] == "expected_step" and r["groups"] == 64]
    assert all(r["rel_error"] < 4 * r["clt_rel_error"] for r in exp1)
    assert all(abs(r["z_projected"]) < 4.5 and 0 < r["detectable_rel_error"] < 1 for r in exp1)
    assert "coupled kernel model" in report and "logit RMS" in report
    fp = [r for r in records if r["experiment"] == "fixed_points" and r["beta"] >= 2.0]
    assert all(abs(r["logit_gap"]) < 0.15 for r in fp)
