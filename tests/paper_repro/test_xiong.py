"""The Xiong et al. ablation: the custom ±1 schemes against their textbook definitions, the fast
claims, the measurements behind the direction claims, and a tiny end-to-end run writing the figures."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from rlvrlens.paper_repro import PAPERS, PENDING, load  # noqa: E402
from rlvrlens.paper_repro import xiong  # noqa: E402
from rlvrlens.objectives import dh  # noqa: E402


def _textbook(R: np.ndarray, drop_wrong: bool, drop_right: bool) -> np.ndarray:
    """Reinforce with ±1 rewards, the advantage being the reward itself; a group whose answers are
    all wrong (all right) is removed, i.e. every answer in it gets weight 0 (Xiong et al. §3)."""
    Z = np.where(R == 1, 1.0, -1.0)
    if drop_wrong and R.sum() == 0:
        Z = np.zeros_like(Z)
    if drop_right and R.sum() == len(R):
        Z = np.zeros_like(Z)
    return Z


@pytest.mark.parametrize("M", [1, 2, 3, 5])
@pytest.mark.parametrize("build, drop_wrong, drop_right", [
    (xiong.reinforce_pm1, False, False),
    (xiong.reinforce_pm1_drop_wrong, True, False),
    (xiong.reinforce_pm1_drop_right, False, True),
    (xiong.VARIANT["reinforce_rej"].build, True, True),
])
def test_custom_schemes_match_the_textbook_weights(M, build, drop_wrong, drop_right) -> None:
    scheme = build(M)
    for R in itertools.product((0.0, 1.0), repeat=M):
        R = np.array(R)
        np.testing.assert_array_equal(scheme.weights(R), _textbook(R, drop_wrong, drop_right), err_msg=str(R))


def test_removals_step_sizes_by_monte_carlo() -> None:
    """h'_M(p) = E[(1/M) Σ Z_i (R_i − p)/(p(1−p))] for Bernoulli(p) rewards (Davis & Recht, Theorem 1),
    estimated from 200,000 groups with the textbook weights: within 5 standard errors of ``dh``."""
    rng = np.random.default_rng(0)
    M, p, n = 4, 0.3, 200_000
    R = (rng.random((n, M)) < p).astype(float)
    k = R.sum(1, keepdims=True)
    pm = 2 * R - 1
    for build, Z in ((xiong.reinforce_pm1_drop_wrong, np.where(k == 0, 0.0, pm)),
                     (xiong.reinforce_pm1_drop_right, np.where(k == M, 0.0, pm))):
        step = (Z * (R - p) / (p * (1 - p))).mean(1)
        se = step.std(ddof=1) / np.sqrt(n)
        assert abs(step.mean() - float(dh(build(M), p))) < 5 * se


def test_step_size_table_lists_every_variant_and_raft_pp_equals_raft() -> None:
    tab = xiong.step_size_table(8, ps=(0.1, 0.9))
    assert len(tab.rows) == len(xiong.VARIANTS)
    rows = {r[0]: r[1:] for r in tab.rows}
    assert rows[xiong.VARIANT["raft"].label] == rows[xiong.VARIANT["raft_pp"].label]  # mu is not in h
    assert rows[xiong.VARIANT["reinforce"].label] == pytest.approx((2.0, 2.0))


def test_registered_and_no_longer_pending() -> None:
    assert load("xiong") is xiong and "xiong" in PAPERS
    assert not any("Xiong" in title for title in PENDING)


@pytest.fixture(scope="module")
def fast_claims():
    return xiong.claims()


def test_fast_claims_pass_with_sources(fast_claims) -> None:
    assert len(fast_claims) >= 5
    for c in fast_claims:
        assert c.statement and c.source and c.error is None
        assert c.passed, f"{c.statement}: {c.measured} ({c.criterion})"
    assert [c.kind for c in fast_claims].count("independent") == 3


def test_evaluation_steps() -> None:
    assert xiong.evaluation_steps(xiong.Setting(steps=10, eval_steps=5)) == [0, 5, 10]
    assert xiong.evaluation_steps(xiong.Setting(steps=4, eval_steps=3)) == [0, 3, 4]


def _curves(success_by_step: list[float], entropy: list[float], tilt: float = 0.0) -> xiong.Curves:
    """Two identical seeds, three prompts starting at p_0 = base - 0.2, base, base + 0.2; ``tilt`` moves
    success after step 0 from the hardest prompt to the easiest (the mean is unchanged)."""
    n = len(success_by_step)
    success = np.array(success_by_step)[None, :, None] + np.array([[[-0.2, 0.0, 0.2]]] * 2)
    success[:, 1:, 0] -= tilt
    success[:, 1:, 2] += tilt
    return xiong.Curves(eval_steps=np.arange(n) * 5, success=success,
                        entropy=np.tile(np.array(entropy, float), (2, 1)), reward=np.zeros((2, len(entropy))),
                        zero_std=np.zeros((2, len(entropy))))


def test_measurements_on_synthetic_curves() -> None:
    cv = _curves([0.1, 0.2, 0.4, 0.5], [1.0] * 10 + [0.5] * 10 + [0.2] * 10)
    assert xiong.success_at(cv, 5) == pytest.approx(0.2)
    assert xiong.success_at(cv, 6) == pytest.approx(0.4)  # first evaluation at or after the step
    assert xiong.final_success(cv) == pytest.approx(0.45)
    assert xiong.entropy_drop(cv) == pytest.approx(0.8)
    assert xiong.mean_entropy(cv) == pytest.approx(1.7 / 3)
    assert xiong.seed_spread(cv) == 0.0  # identical seeds
    np.testing.assert_allclose(xiong.gain_by_initial_success(cv), [0.35, 0.35, np.nan])  # p_0 = 0.1, 0.3, 0.5
    three = xiong.Curves(np.arange(3), np.array([[[0.1, 0.5, 0.9], [0.2, 0.6, 0.9], [0.4, 0.6, 1.0]],
                                                 [[0.1, 0.5, 0.9], [0.2, 0.6, 0.9], [0.2, 0.6, 1.0]]]),
                         np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((2, 3)))
    np.testing.assert_allclose(xiong.gain_by_initial_success(three), [0.15, 0.1, 0.05])
    finals = [np.mean([0.2, 0.6, 0.9, 0.4, 0.6, 1.0]), np.mean([0.2, 0.6, 0.9, 0.2, 0.6, 1.0])]
    assert xiong.seed_spread(three) == pytest.approx(abs(finals[0] - finals[1]) / 2)  # se of two values


def test_direction_claims_pass_and_fail_on_constructed_curves() -> None:
    """Curves built to agree with the paper make every direction claim pass; swapping RAFT and GRPO's
    entropies makes the entropy claim fail (the checks can fail)."""
    flat, steep = [1.0] * 30, list(np.linspace(1.0, 0.2, 30))
    good = {"raft": _curves([0.3, 0.5, 0.55, 0.6], steep), "raft_pp": _curves([0.3, 0.5, 0.6, 0.6], steep),
            "reinforce01": _curves([0.3, 0.4, 0.4, 0.4], flat), "reinforce": _curves([0.3, 0.3, 0.3, 0.3], flat),
            "drop_wrong": _curves([0.3, 0.45, 0.5, 0.5], flat, tilt=0.3),
            "drop_right": _curves([0.3, 0.3, 0.35, 0.35], flat),
            "reinforce_rej": _curves([0.3, 0.45, 0.52, 0.52], flat), "grpo": _curves([0.3, 0.5, 0.55, 0.55], flat)}
    setting = xiong.Setting(steps=30, eval_steps=5)
    assert [c.statement for c in xiong.direction_claims(good, setting) if not c.passed] == []
    rising = list(np.linspace(1.0, 1.1, 30))
    bad = dict(good, raft_pp=_curves([0.3, 0.5, 0.5, 0.5], rising), grpo=_curves([0.3, 0.5, 0.55, 0.55], steep))
    verdicts = [c.verdict for c in xiong.direction_claims(bad, setting) if "entropy" in c.statement]
    assert verdicts and set(verdicts) == {"FAIL"}


def _with_seed_noise(cv: xiong.Curves, offsets) -> xiong.Curves:
    """``cv`` with seed ``k``'s success after step 0 moved by ``offsets[k]`` (one seed per offset)."""
    n = len(offsets)
    success = np.repeat(cv.success[:1], n, axis=0).copy()
    success[:, 1:] += np.asarray(offsets, float)[:, None, None]
    return xiong.Curves(cv.eval_steps, success, np.repeat(cv.entropy[:1], n, axis=0),
                        np.repeat(cv.reward[:1], n, axis=0), np.repeat(cv.zero_std[:1], n, axis=0))


def test_a_comparison_of_runs_is_judged_in_units_of_its_seed_noise() -> None:
    """GRPO − Reinforce(±1) = 0.05 on average over 3 seeds: PASS when the per-seed differences are tight,
    INCONCLUSIVE when their noise (se 0.1, t(2) = 4.3) covers 0, FAIL when the effect is reversed beyond
    the noise, INCONCLUSIVE with one seed. The smallest effect a 3-seed comparison can confirm is
    t(2)·se = 4.3·se (e.g. 0.043 for per-seed differences with standard deviation 0.017)."""
    flat = [1.0] * 30
    setting = xiong.Setting(steps=30, eval_steps=5)
    base = {k: _curves([0.3, 0.3, 0.3, 0.3], flat) for k in xiong.VARIANT}

    def verdict(grpo_offsets, seeds=3) -> str:
        curves = {k: _with_seed_noise(cv, [0.0] * seeds) for k, cv in base.items()}
        curves["grpo"] = _with_seed_noise(base["grpo"], grpo_offsets)
        (claim,) = [c for c in xiong.direction_claims(curves, setting) if c.statement.startswith("GRPO beats")]
        return claim.verdict

    assert verdict([0.04, 0.05, 0.06]) == "PASS"
    assert verdict([0.05 - 0.17, 0.05, 0.05 + 0.17]) == "INCONCLUSIVE"
    assert verdict([-0.04, -0.05, -0.06]) == "FAIL"
    assert verdict([0.05], seeds=1) == "INCONCLUSIVE"


def test_direction_claims_are_paper_or_independent_with_sources() -> None:
    flat = [1.0] * 30
    curves = {k: _curves([0.3, 0.3, 0.3, 0.3], flat) for k in xiong.VARIANT}
    cs = xiong.direction_claims(curves, xiong.Setting(steps=30, eval_steps=5))
    assert {c.kind for c in cs} == {"paper", "independent"}
    assert all("arXiv:" in c.source for c in cs)
    assert all(c.kind == "independent" for c in cs if c.statement.startswith("Theory"))


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="variants"):
        xiong.Setting(variants=("ppo",))
    with pytest.raises(ValueError, match="seeds"):
        xiong.Setting(seeds=())
    with pytest.raises(ValueError, match="steps"):
        xiong.Setting(steps=0)


def test_run_on_a_tiny_setting_writes_figures_tables_and_claims(tmp_path: Path, fast_claims) -> None:
    setting = xiong.Setting(n_prompts=8, M=4, prompts_per_step=2, steps=4, eval_steps=2, warm_start_steps=5,
                            seeds=(0,))
    rep = xiong.run(tmp_path, setting)
    assert [f.name for f in rep.figures] == ["success", "entropy", "gain_by_difficulty"]
    for fig in rep.figures:
        for f in fig.files:
            assert f.is_file() and f.stat().st_size > 1000
    assert not (tmp_path / "runs").exists()  # the runs stay in memory
    assert len(rep.claims) == len(fast_claims) + 10
    assert all(c.source for c in rep.claims)
    directions = rep.claims[len(fast_claims):]
    assert {c.verdict for c in directions} == {"INCONCLUSIVE"}  # one seed: no noise estimate, no verdict
    assert rep.notes and [t.name for t in rep.tables][-1] == "printed_table1" and len(rep.tables) == 3
    # the direction claims that test a printed relation cite the printed numbers
    assert sum("Table 1 (average)" in c.explanation for c in directions) == 3
