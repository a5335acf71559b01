"""WeightScheme, catalogue constructors, builders and the registry: behaviour and bad input."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlvrlens.objectives import (
    SCHEMES, WeightScheme, dr_grpo, from_group_fn, from_rs, get_scheme, grpo, log_odds, pass_at_k,
    raft, reinforce, reinforce_rej, rloo, split_c,
)

FORMULA_SCHEMES = [
    reinforce(5), rloo(5), dr_grpo(5), grpo(5), grpo(5, eps=0.0, std="population"),
    grpo(5, eps=0.3, eps_inside_sqrt=True), grpo(5, eps=1e-8, std="population", eps_inside_sqrt=True),
]


@pytest.mark.parametrize("scheme", FORMULA_SCHEMES, ids=repr)
def test_formula_and_table_agree_on_every_binary_group(scheme):
    R = np.array(list(itertools.product((0.0, 1.0), repeat=scheme.M)))
    np.testing.assert_allclose(scheme.formula(R), scheme.weights(R), rtol=1e-13, atol=1e-13)


def test_real_valued_rewards_use_the_formula():
    R = np.array([[0.5, 2.0, -1.0, 0.0]])
    np.testing.assert_allclose(grpo(4, eps=0.0).weights(R), (R - R.mean()) / R.std(ddof=1))
    np.testing.assert_allclose(rloo(4).weights(R), R - (R.sum() - R) / 3)
    with pytest.raises(ValueError, match="rewards must be 0/1 for scheme 'raft'"):
        raft(4).weights(R)


@settings(max_examples=60, deadline=None)
@given(M=st.integers(1, 7), batch=st.integers(1, 5), seed=st.integers(0, 2**31 - 1))
def test_vectorised_weights_equal_per_group_loop(M, batch, seed):
    rng = np.random.default_rng(seed)
    scheme = from_rs(M, lambda r, s: float(rng.normal()) + r * s)
    R = rng.integers(0, 2, size=(batch, 3, M)).astype(float)
    Z = scheme.weights(R)
    for idx in np.ndindex(batch, 3):
        row = R[idx]
        for i in range(M):
            s = int(row.sum() - row[i])
            assert Z[idx][i] == (scheme.b[s] if row[i] == 1 else scheme.a[s])


@pytest.mark.parametrize("shape", [(), (3,), (2, 5)])
def test_wrong_reward_shape_is_refused(shape):
    with pytest.raises(ValueError, match=r"rewards must have shape \(\.\.\., M\) with M = 4"):
        grpo(4).weights(np.zeros(shape))


def test_nonfinite_rewards_refused():
    with pytest.raises(ValueError, match="rewards must be finite"):
        reinforce(2).weights([1.0, np.nan])


def test_scheme_is_immutable_and_validated():
    s = rloo(3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.M = 4
    with pytest.raises(ValueError):
        s.a[0] = 1.0
    with pytest.raises(ValueError, match="M must be an integer >= 1"):
        WeightScheme(0, [], [])
    with pytest.raises(ValueError, match="a must be finite"):
        WeightScheme(2, [0.0, np.nan], [1.0, 1.0])
    with pytest.raises(ValueError, match=r"b must have shape \(2,\)"):
        WeightScheme(2, [0.0, 0.0], [1.0])
    assert s == rloo(3) and s != rloo(4) and hash(s) == hash(rloo(3))


@pytest.mark.parametrize("call, match", [
    (lambda: reinforce(0), "M must be an integer >= 1"),
    (lambda: rloo(1), "M must be an integer >= 2"),
    (lambda: grpo(4, eps=-1e-3), r"eps must be in \[0.0, inf\)"),
    (lambda: grpo(4, eps=float("nan")), "eps must be finite"),
    (lambda: grpo(4, std="unbiased"), "std must be one of"),
    (lambda: grpo(1), "M must be >= 2 for std='sample'"),
    (lambda: pass_at_k(4, 5), "k must be an integer >= 1 and <= 4"),
    (lambda: reinforce_rej(4, "pm2"), "reward_scale must be"),
    (lambda: raft(2.5), "M must be an integer"),
    (lambda: split_c(np.ones(3), "left"), "split must be one of"),
])
def test_bad_parameters_named(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_rloo_is_centred_split_of_constant_c():
    a, b = split_c(np.ones(6), "centred")
    np.testing.assert_allclose(a, rloo(6).a)
    np.testing.assert_allclose(b, rloo(6).b)


def test_tables_match_theory_catalogue():
    M = 6
    s = np.arange(M)
    np.testing.assert_allclose(raft(M).b, M / (s + 1))
    np.testing.assert_allclose(log_odds(M).a, -M / (M - s))
    np.testing.assert_allclose(dr_grpo(M).b, 1 - (s + 1) / M)
    rej = reinforce_rej(M, "pm1")
    assert rej.a.tolist() == [0, -1, -1, -1, -1, -1] and rej.b.tolist() == [1, 1, 1, 1, 1, 0]
    c = pass_at_k(M, 2).c
    np.testing.assert_allclose(c, [2 * math.comb(M - 2, j) / math.comb(M - 1, j) for j in range(M)])
    # population GRPO with k right answers: sigma_k = sqrt(k(M-k))/M
    g = grpo(M, eps=0.0, std="population")
    assert g.b[0] == pytest.approx((1 - 1 / M) / (math.sqrt(M - 1) / M))


def test_from_group_fn_accepts_equivariant_and_rejects_positional():
    def grpo_like(R):
        sd = R.std()
        return (R - R.mean()) / (sd + 0.1)

    built = from_group_fn(5, grpo_like)
    np.testing.assert_allclose(built.c, grpo(5, eps=0.1, std="population").c)
    big = from_group_fn(14, grpo_like)  # sampled check path
    np.testing.assert_allclose(big.b, grpo(14, eps=0.1, std="population").b)
    with pytest.raises(ValueError, match=r"depend only on \(R_i, S_i\)"):
        from_group_fn(4, lambda R: R * np.arange(4))
    with pytest.raises(ValueError, match=r"depend only on \(R_i, S_i\)"):
        from_group_fn(14, lambda R: R * (np.arange(14) == 0))
    with pytest.raises(ValueError, match=r"fn\(rewards\) must have shape \(3,\)"):
        from_group_fn(3, lambda R: R[:2])


def test_registry_lookup_and_errors():
    assert set(SCHEMES) >= {"reinforce", "rloo", "dr_grpo", "grpo", "raft", "reinforce_rej", "log_odds", "pass_at_k"}
    assert get_scheme("grpo", 8, eps=0.0, std="population") == grpo(8, eps=0.0, std="population")
    assert get_scheme("pass_at_k", 8, k=3) == pass_at_k(8, 3)
    with pytest.raises(ValueError, match="unknown scheme 'ppo'; valid schemes: reinforce, rloo"):
        get_scheme("ppo", 8)
    with pytest.raises(ValueError, match="does not take parameter"):
        get_scheme("raft", 8, eps=0.1)


def test_describe_round_trips():
    d = grpo(4, eps=0.5).describe()
    assert d["name"] == "grpo" and d["params"]["eps"] == 0.5
    np.testing.assert_allclose(np.array(d["b"]) - np.array(d["a"]), d["c"])
