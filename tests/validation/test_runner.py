"""The validation's sizes, and one end-to-end run of the tiny size through the command line."""

from __future__ import annotations

import json

import pytest
import torch

from rlvrlens.validation.sizes import get_size


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
                     "sampled_fixed_points", "first_order", "first_order_projected", "first_order_limit",
                     "forecast_run", "small_beta_horizon"}
    report = (tmp_path / "report.md").read_text()
    assert "| verdict |" in report and "agrees" in report
    # the theory's central claims hold on the tiny preset
    exp1 = [r for r in records if r["experiment"] == "expected_step" and r["groups"] == 64]
    assert all(r["rel_error"] < 4 * r["clt_rel_error"] for r in exp1)
    assert all(abs(r["z_projected"]) < 4.5 and 0 < r["detectable_rel_error"] < 1 for r in exp1)
    assert "coupled kernel model" in report and "logit RMS" in report
    fp = [r for r in records if r["experiment"] == "fixed_points" and r["beta"] >= 2.0]
    assert all(abs(r["logit_gap"]) < 0.15 for r in fp)
