"""``scheme_advantages`` and ``group_records``: pure numpy, run with or without TRL installed."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlvrlens.objectives import design, grpo, log_odds, rloo
from rlvrlens.training.trl_adapter import group_records, scheme_advantages

binary_batches = st.integers(2, 6).flatmap(
    lambda M: st.tuples(st.just(M), st.lists(st.lists(st.sampled_from([0.0, 1.0]), min_size=M, max_size=M),
                                             min_size=1, max_size=5)))


@settings(max_examples=60, deadline=None)
@given(binary_batches)
def test_rloo_matches_leave_one_out_baseline(batch):
    M, groups = batch
    R = np.array(groups)
    expected = R - (R.sum(axis=1, keepdims=True) - R) / (M - 1)  # R_i - mean of the others
    np.testing.assert_allclose(scheme_advantages(rloo(M), R.ravel(), M), expected.ravel(), atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(binary_batches)
def test_grpo_matches_group_standardisation(batch):
    M, groups = batch
    R = np.array(groups)
    std = R.std(axis=1, ddof=1, keepdims=True)
    expected = (R - R.mean(axis=1, keepdims=True)) / (std + 1e-4)  # TRL's own formula, eps = 1e-4
    np.testing.assert_allclose(scheme_advantages(grpo(M, eps=1e-4), R.ravel(), M), expected.ravel(),
                               atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(binary_batches)
def test_log_odds_matches_its_definition(batch):
    M, groups = batch
    R = np.array(groups)
    right = R.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.where(R == 1, M / right, -M / (M - right))  # M R/#right - M (1-R)/#wrong
    np.testing.assert_allclose(scheme_advantages(log_odds(M), R.ravel(), M), expected.ravel(), atol=1e-12)


def test_groups_are_consecutive_blocks():
    # two groups with swapped contents give swapped weights: the layout is (G, M), not (M, G)
    Z = scheme_advantages(rloo(3), [1, 1, 0, 0, 0, 1], 3)
    np.testing.assert_allclose(Z, [0.5, 0.5, -1.0, -0.5, -0.5, 1.0])


def test_designed_scheme_is_accepted():
    scheme = design("log(t/(1-t))", 4).scheme
    Z = scheme_advantages(scheme, [1, 0, 0, 0], 4)
    np.testing.assert_allclose(Z, [scheme.b[0], scheme.a[1], scheme.a[1], scheme.a[1]])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(scheme=rloo(4), rewards=[0.0] * 8, num_generations=2), "num_generations must equal"),
        (dict(scheme=rloo(4), rewards=[0.0] * 6, num_generations=4), "multiple of M"),
        (dict(scheme=rloo(2), rewards=[[0.0, 1.0]], num_generations=2), "flat array"),
        (dict(scheme=rloo(2), rewards=[np.nan, 1.0], num_generations=2), "returned None"),
        (dict(scheme=log_odds(2), rewards=[0.5, 1.0], num_generations=2), "must be 0/1"),
        (dict(scheme=rloo(2), rewards=[np.inf, 1.0], num_generations=2), "finite"),
    ],
)
def test_bad_input_is_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        scheme_advantages(**kwargs)


def test_non_scheme_is_refused():
    with pytest.raises(TypeError, match="scheme"):
        scheme_advantages("grpo", [0.0, 1.0], 2)


def test_real_rewards_use_the_formula_where_there_is_one():
    np.testing.assert_allclose(scheme_advantages(rloo(2), [0.5, 0.25], 2), [0.25, -0.25])


def test_group_records_one_per_group():
    records = group_records(5, "eval", ["x"] * 3 + ["y"] * 3, [1, 1, 0, 0, 0, 0], 3)
    assert [(r["prompt_id"], r["n"], r["p_hat"], r["step"], r["split"]) for r in records] == [
        ("x", 3, 2 / 3, 5, "eval"), ("y", 3, 0.0, 5, "eval")]
    with pytest.raises(ValueError, match="mixes prompts"):
        group_records(0, "train", ["x", "y"], [1, 0], 2)
    with pytest.raises(ValueError, match="one entry per reward"):
        group_records(0, "train", ["x"], [1, 0], 2)
