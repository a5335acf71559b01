"""``rlvrlens.explain`` and the ``explain`` / ``presets`` subcommands.

Independent checks: the zero-variance fraction by enumerating all 2^M reward vectors; the
difficulty weight by a finite difference of ``h`` and by a closed form for REINFORCE; the limit
comparison by GRPO's known arcsine limit at large M; the KL section by Dr. GRPO's closed-form fixed
point, by the fixed-point equation itself and by iterating the map by hand with ``h'_M``.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlvrlens.cli import main
from rlvrlens.commands.explain import demo, parse_params
from rlvrlens.dynamics import Outcome
from rlvrlens.explain import DEFAULT_SPREAD, difficulty_weight, explain
from rlvrlens.objectives import frac_reward_zero_std
from rlvrlens.objectives import PRESETS, dh, get_preset, h, raft


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 10), st.floats(0.0, 1.0))
def test_zero_std_fraction_by_enumeration(M, p):
    vectors = np.array(list(itertools.product((0, 1), repeat=M)))
    k = vectors.sum(axis=1)
    prob = p**k * (1 - p) ** (M - k)
    zero_var = vectors.std(axis=1) == 0
    assert float(frac_reward_zero_std(p, M)) == pytest.approx(float(prob[zero_var].sum()), abs=1e-12)


def test_default_spread_gives_two_over_m_plus_one():
    # E[p^M + (1-p)^M] = 2/(M+1) for uniform p; the midpoint rule is within 1e-4 at M = 8
    r = explain("verl-grpo", 8)
    assert r.frac_zero_std == pytest.approx(2 / 9, abs=1e-4)
    r = explain("verl-grpo", 8, p_ref=[0.5, 0.5])
    assert r.frac_zero_std == pytest.approx(2 * 0.5**8)


def test_difficulty_weight_is_a_normalised_derivative():
    s = get_preset("trl-grpo", 6)
    p = np.linspace(0.05, 0.95, 7)
    step = 1e-6
    fd = (h(s, p + step) - h(s, p - step)) / (2 * step) / float(h(s, 1.0))
    np.testing.assert_allclose(difficulty_weight(s, p), fd, rtol=1e-6)
    # averages to 1 over [0, 1] (trapezoid on a fine grid)
    t = np.linspace(0, 1, 4001)
    w = difficulty_weight(s, t)
    assert float(np.sum((w[1:] + w[:-1]) / 2 * np.diff(t))) == pytest.approx(1.0, abs=1e-6)
    # uniform for RLOO-type presets
    np.testing.assert_allclose(difficulty_weight(get_preset("verl-rloo", 6), p), 1.0, atol=1e-12)


def test_std_normalisation_favours_extreme_difficulties():
    r = explain("openrlhf-group-norm", 16)
    w = dict(zip(r.table_p, r.table_weight))
    assert w[0.01] > w[0.25] > w[0.5] and w[0.99] > w[0.75] > w[0.5]


def test_grpo_limit_gap_shrinks_with_M():
    gaps = [explain("verl-grpo", M).limit_gap for M in (4, 64, 1024)]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 0.02
    assert explain("verl-rloo", 8).limit_gap < 1e-12


def test_every_preset_explains_and_serialises():
    for name in PRESETS:
        r = explain(name, 8)
        d = json.loads(json.dumps(r.to_dict()))
        assert d["preset"] == name and d["M"] == 8
        assert np.isfinite(d["zero_std"]["frac_reward_zero_std"])
        assert len(d["difficulty_weight"]["weight"]) == len(d["objective"]["t"])


def test_batch_preset_uses_the_spread_unless_p_batch_given():
    r = explain("openrlhf-reinforce-baseline", 8, p_ref=[0.2, 0.4])
    assert r.scheme.params["p_batch"] == (0.2, 0.4) and r.notes
    r2 = explain("openrlhf-reinforce-baseline", 8, p_ref=[0.2, 0.4], params={"p_batch": 0.9})
    assert r2.scheme.params["p_batch"] == (0.9,) and not r2.notes


def test_explain_accepts_a_weight_scheme_with_log_limit():
    r = explain(raft(16))
    assert r.normalisation == "shift" and 0 < r.limit_gap < 1


@pytest.mark.parametrize("kwargs, err, match", [
    ({"preset": "nope", "M": 8}, ValueError, "valid presets: trl-grpo"),
    ({"preset": "trl-grpo", "M": 8, "params": {"eps": 1}}, ValueError, "it takes: scale_rewards"),
    ({"preset": "trl-grpo"}, ValueError, "M \\(num_generations\\) is required"),
    ({"preset": "trl-grpo", "M": 8, "p_ref": [0.5, 1.2]}, ValueError, "p_ref must lie in"),
    ({"preset": "trl-grpo", "M": 8, "p_ref": []}, ValueError, "at least one"),
    ({"preset": "trl-grpo", "M": 8, "beta": 0.0}, ValueError, "beta must be in"),
    ({"preset": "trl-grpo", "M": 8, "beta": -1.0}, ValueError, "beta must be in"),
])
def test_explain_bad_input(kwargs, err, match):
    with pytest.raises(err, match=match):
        explain(**kwargs)


# ---------------------------------------------------------------- command line

def test_cli_explain_text_compare_and_figure(capsys, tmp_path):
    assert main(["explain", "--preset", "trl-grpo", "--num-generations", "8",
                 "--compare", "openrlhf-dr-grpo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "A: trl-grpo" in out and "B: openrlhf-dr-grpo" in out
    assert "frac_reward_zero_std = 0.2222" in out
    pngs = list(tmp_path.glob("explain_trl-grpo_vs_openrlhf-dr-grpo_M8.png"))
    assert pngs and pngs[0].stat().st_size > 10_000


def test_cli_explain_json_matches_python(capsys, tmp_path):
    pfile = tmp_path / "p.txt"
    pfile.write_text("# my prompts\n0.1\n0.2, 0.9\n")
    assert main(["explain", "--preset", "trl-grpo", "--M", "4", "--param", "scale_rewards=batch",
                 "--p-ref-file", str(pfile), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    ref = explain("trl-grpo", 4, p_ref=[0.1, 0.2, 0.9], params={"scale_rewards": "batch"}).to_dict()
    assert data["params"]["p_batch"] == [0.1, 0.2, 0.9]
    np.testing.assert_allclose(data["a"], ref["a"])
    assert data["zero_std"]["frac_reward_zero_std"] == pytest.approx(ref["zero_std"]["frac_reward_zero_std"])


def test_cli_presets_lists_all(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in PRESETS)
    assert main(["presets", "--json"]) == 0
    assert {r["name"] for r in json.loads(capsys.readouterr().out)} == set(PRESETS)


@pytest.mark.parametrize("argv, match", [
    (["--preset", "trl-grpoo", "--M", "8"], "valid presets: trl-grpo"),
    (["--preset", "trl-grpo", "--M", "8", "--param", "scale_rewards"], "KEY=VALUE"),
    (["--preset", "trl-grpo", "--M", "8", "--param", "scale_rewards=global"], "scale_rewards must be one of"),
    (["--preset", "trl-grpo", "--M", "8", "--p-ref-file", "/nonexistent/p.txt"], "cannot read"),
    (["--preset", "trl-grpo", "--M", "8", "--compare-param", "x=1"], "needs --compare"),
    (["--preset", "trl-grpo", "--M", "8", "--beta", "0"], "beta must be in"),
])
def test_cli_bad_input_is_one_line(capsys, argv, match):
    assert main(["explain", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and match in err


def test_parse_params():
    assert parse_params(["a=true", "b=3", "c=0.5", "d=x", "e=0.1,0.2"]) == {
        "a": True, "b": 3, "c": 0.5, "d": "x", "e": (0.1, 0.2)}


def test_demo_writes_a_figure(tmp_path, capsys):
    demo(tmp_path)
    assert list(tmp_path.glob("explain_*.png"))
    assert "TRL GRPO" in capsys.readouterr().out


def test_default_spread_is_uniform_midpoints():
    assert DEFAULT_SPREAD.min() > 0 and DEFAULT_SPREAD.max() < 1
    assert DEFAULT_SPREAD.mean() == pytest.approx(0.5)


# ---------------------------------------------------------------- the KL section (beta)

def _logit(p):
    return np.log(p) - np.log1p(-p)


def test_dr_grpo_fixed_point_is_closed_form():
    # h' = (M-1)/M constant: logit p* = logit p_ref + (M-1)/(M beta), reached in one step
    beta, M = 0.5, 8
    r = explain("openrlhf-dr-grpo", M, beta=beta, p_ref=[0.1, 0.5, 0.8])
    expected = 1 / (1 + np.exp(-(_logit(np.array([0.1, 0.5, 0.8])) + (M - 1) / (M * beta))))
    np.testing.assert_allclose(r.kl.p_star, expected, rtol=1e-10)
    np.testing.assert_allclose(r.kl.spread_p_star, expected, rtol=1e-8)
    assert r.kl.outcome == (Outcome.FIXED_POINT,) * 3 and list(r.kl.n_fixed_points) == [1, 1, 1]


def test_grpo_fixed_points_solve_the_fixed_point_equation():
    s = get_preset("trl-grpo", 16)
    r = explain("trl-grpo", 16, beta=0.5, p_ref=[0.05, 0.3, 0.7])
    for p_ref, p_star, one_minus in zip(r.kl.p_ref, r.kl.p_star, r.kl.one_minus_p_star):
        x_star = np.log(p_star) - np.log(one_minus)
        assert x_star == pytest.approx(_logit(p_ref) + float(dh(s, p_star)) / 0.5, rel=1e-7, abs=1e-7)
    assert (np.abs(r.kl.multiplier) < 1).all()
    assert (r.kl.p_star > r.kl.p_ref).all()  # success amplification: h' > 0


def test_a_cycle_is_reported_and_is_a_true_two_cycle():
    beta, p_ref = 1.0, 0.001
    s = get_preset("trl-grpo", 64)
    r = explain("trl-grpo", 64, beta=beta, p_ref=[p_ref])
    assert r.kl.outcome == (Outcome.TWO_CYCLE,) and np.isnan(r.kl.p_star[0]) and r.kl.spread_kind[0] == Outcome.TWO_CYCLE
    lo, hi = r.kl.orbit[0]

    def F(p):
        x = _logit(p_ref) + float(dh(s, p)) / beta
        return 1 / (1 + np.exp(-x))

    assert F(lo) == pytest.approx(hi, rel=1e-6) and F(hi) == pytest.approx(lo, rel=1e-6)
    assert abs(F(lo) - lo) > 0.1


def test_kl_section_in_json_and_text(capsys, tmp_path):
    assert main(["explain", "--preset", "verl-grpo", "--M", "8", "--beta", "0.2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kl"]["beta"] == 0.2 and len(data["kl"]["p_star"]) == len(data["kl"]["p_ref"])
    assert data["kl"]["spread"]["frac_converge"] == pytest.approx(1.0)
    assert main(["explain", "--preset", "trl-grpo", "--M", "64", "--beta", "1", "--compare", "verl-rloo",
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "4. With a KL penalty" in out and "% cycle" in out
    assert list(tmp_path.glob("explain_trl-grpo_vs_verl-rloo_M64.png"))


# -- --kl-estimator with a preset (section 5) ------------------------------------------------------
def test_preset_with_kl_estimator_solves_each_estimators_equation(capsys):
    """Section 5 against independent brentq solves on h'_M (first root above p_ref): k2/exact
    logit p = logit p_ref + h'(p)/beta, k3 p(1-p) h'(p) = beta (p - p_ref), k1 p = 1, reward
    logit p = logit p_ref + 1/beta for the affine Dr. GRPO and unresolved for std-normalised GRPO;
    the default (no estimator) has no section 5."""
    import json

    from scipy.optimize import brentq
    from scipy.special import logit

    from rlvrlens.cli import main
    from rlvrlens.objectives import dh, get_preset

    beta, rows = 0.3, (0.05, 0.3, 0.8)

    def first_root(fn, lo):
        grid = np.linspace(lo + 1e-9, 1 - 1e-9, 20001)
        vals = fn(grid)
        k = int(np.argmax(np.sign(vals[1:]) != np.sign(vals[:-1])))
        return brentq(fn, grid[k], grid[k + 1], xtol=1e-14)

    for name in ("trl-grpo", "openrlhf-dr-grpo"):
        scheme = get_preset(name, 6)
        g = lambda p: np.asarray(dh(scheme, p), dtype=float)  # noqa: E731
        for kl in ("exact", "k2", "k3", "k1", "reward"):
            got = explain(name, 6, beta=beta, p_ref=rows, kl_estimator=kl).flow.p_star
            for p_ref, value in zip(rows, got):
                if kl in ("exact", "k2"):
                    want = first_root(lambda p: logit(p_ref) + g(p) / beta - logit(p), p_ref)
                elif kl == "k3":
                    want = first_root(lambda p: p * (1 - p) * g(p) - beta * (p - p_ref), p_ref)
                elif kl == "k1":
                    want = 1.0
                elif name == "openrlhf-dr-grpo":
                    want = 1 / (1 + np.exp(-(logit(p_ref) + 1 / beta)))
                else:
                    assert np.isnan(value)
                    continue
                assert abs(value - want) < 1e-7, (name, kl, p_ref, value, want)
    assert explain("trl-grpo", 6, beta=0.3).flow is None
    assert main(["explain", "--preset", "trl-grpo", "--num-generations", "6", "--beta", "0.3",
                 "--kl-estimator", "k2", "--compare", "openrlhf-dr-grpo", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["flow"]["kl_estimator"] for d in data["reports"]] == ["k2", "k2"]


@pytest.mark.parametrize("kwargs,match", [
    ({"kl_estimator": "k3"}, "needs beta"),
    ({"beta": 0.1, "kl_estimator": "k9"}, "kl_estimator must be one of"),
])
def test_kl_estimator_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        explain("trl-grpo", 4, **kwargs)


def test_cli_kl_estimator_errors(tmp_path, capsys):
    from rlvrlens.cli import main

    assert main(["explain", "--preset", "trl-grpo", "--num-generations", "4", "--kl-estimator", "k3"]) == 2
    assert "--kl-estimator needs --beta" in capsys.readouterr().err
    (tmp_path / "t.yaml").write_text("num_generations: 8\nbeta: 0.5\n")
    assert main(["explain", "--trl-config", str(tmp_path / "t.yaml"), "--kl-estimator", "k3"]) == 2
    assert "--kl-estimator is read from the config file" in capsys.readouterr().err
