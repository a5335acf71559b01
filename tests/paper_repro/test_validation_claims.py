"""The validation reproduction's claims built from records (no training): every gap row of the verdict
table is a claim that can FAIL, with its explanation; no beta is left out of the fixed-point claims; every
trajectory run, Adam included, is a claim."""

from __future__ import annotations

from rlvrlens.paper_repro.validation import fixed_point_claims, row_claims, trajectory_claims
from rlvrlens.validation import verdicts


def _fp(beta: float, gap: float) -> dict:
    return {"experiment": "fixed_points", "scheme": "grpo", "M": 4, "beta": beta, "p_ref": 0.2, "predicted": 0.9,
            "attractor": "fixed point", "measured": 0.8, "measured_sd": 0.01, "logit_gap": gap}


def _horizon(gap_ode: float, gap_stationary: float) -> dict:
    return {"experiment": "small_beta_horizon", "scheme": "grpo", "M": 4, "beta": 0.2, "p_ref": 0.2, "lr": 2.0,
            "steps": 3000, "marks": [300, 1000, 3000], "stationary": 0.999, "measured": [0.9, 0.95, 0.97],
            "ode": [0.9, 0.95, 0.97], "logit_gap_ode": gap_ode, "logit_gap_stationary": gap_stationary}


def test_small_beta_fixed_points_are_a_claim_that_fails_with_the_horizon_as_explanation() -> None:
    fp = [_fp(1.0, 0.05), _fp(4.0, -0.1), _fp(0.2, -4.6), _fp(0.2, -1.2)]
    claims = fixed_point_claims(fp, [_horizon(0.1, -4.5), _horizon(-0.2, -8.0)])
    large = next(c for c in claims if "beta >= 1" in c.statement)
    small = next(c for c in claims if "< 1)" in c.statement)
    ode = next(c for c in claims if "mean-field ODE" in c.statement)
    assert large.verdict == "PASS"
    assert small.verdict == "FAIL" and small.measured == 4.6
    assert "3c" in small.explanation and "has not arrived" in small.explanation and "4.5 to 8.0" in small.explanation
    assert ode.verdict == "PASS" and ode.measured == 0.2
    assert sum(c.verdict == "FAIL" for c in claims) == 1


def test_without_the_horizon_experiment_the_small_beta_claim_still_fails_and_says_so() -> None:
    claims = fixed_point_claims([_fp(0.2, 3.0)], [])
    assert [c.verdict for c in claims] == ["FAIL"] and "did not run" in claims[0].explanation


def test_every_trajectory_run_is_a_claim_adam_included() -> None:
    base = {"experiment": "coupling_trajectory", "steps": 20, "refresh": 5, "prompts": 4, "logit_rms_uncoupled": 3.0}
    traj = [dict(base, run="SGD", optimizer="sgd", logit_rms_coupled=0.05, logit_rms_diagonal=0.3),
            dict(base, run="SGD", optimizer="sgd", logit_rms_coupled=0.05, logit_rms_diagonal=0.3),
            dict(base, run="Adam", optimizer="adam", refresh=1, logit_rms_coupled=10.7, logit_rms_diagonal=3.6)]
    claims = trajectory_claims(traj)
    assert [c.verdict for c in claims] == ["PASS", "FAIL"]
    assert claims[1].measured == 10.7 and "3.600" in claims[1].explanation and "Adam" in claims[1].statement
    # the thresholds are the verdict table's: the rows and the claims agree
    rows = verdicts.trajectory_rows(traj)
    assert [r["verdict"] == "agrees" for r in rows] == [c.passed for c in claims]


def test_a_gap_row_of_an_experiment_without_its_own_claim_becomes_a_failing_claim() -> None:
    rows = [{"experiment": "7. first order", "case": "mod: step 0.01", "gap": "+4.1 SE", "verdict": "gap"},
            {"experiment": "7. first order", "case": "mod: zero step", "gap": "+0.3 SE", "verdict": "agrees"},
            {"experiment": "8. forecast from step 0", "case": "run", "gap": "logit RMS 0.1", "verdict": "agrees"},
            {"experiment": "6c. joint stationary points", "case": "b", "gap": "?", "verdict": "inconclusive"},
            {"experiment": "3. estimator", "case": "k3 KL (pi_ref), beta=1", "gap": "logit 1", "verdict": "gap"},
            {"experiment": "3. estimator", "case": "mu = 4, beta=1", "gap": "logit 0.9", "verdict": "gap"},
            {"experiment": "3. fixed points (tabular)", "case": "grpo, beta=0.2", "gap": "logit -4.6",
             "verdict": "gap"}]
    claims = {c.statement.split("'")[1]: c for c in row_claims(rows)}
    # the fixed points and k3 have claims of their own (fixed_point_claims, run's k3 claim): not repeated here
    assert set(claims) == {"7. first order", "8. forecast from step 0", "6c. joint stationary points",
                           "3. estimator"}
    assert claims["7. first order"].verdict == "FAIL" and "step 0.01" in claims["7. first order"].explanation
    assert "second-order" in claims["7. first order"].explanation
    assert claims["8. forecast from step 0"].verdict == "PASS" and not claims["8. forecast from step 0"].explanation
    assert claims["6c. joint stationary points"].verdict == "INCONCLUSIVE"
    est = claims["3. estimator"]
    assert est.verdict == "FAIL" and est.measured == 1.0 and "mu = 4" in est.explanation


def test_row_claims_follow_the_real_row_builders() -> None:
    recs = [{"experiment": "first_order", "family": "mod", "target": 0.01, "lr": 0.1, "prompts": 4, "repeats": 8,
             "ratio": 1.5, "ratio_se": 0.05}]
    rows = verdicts.first_order_rows(recs, "7. first order")
    assert rows[0]["verdict"] == "gap"
    (claim,) = row_claims(rows)
    assert claim.failed and claim.kind == "independent"
