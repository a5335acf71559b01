"""Loss pieces on hand-computed cases."""

import math

import numpy as np
import pytest
import torch

from rlvrlens.objectives import get_scheme
from rlvrlens.training.losses import aggregate, clipped_policy_loss, group_weights, kl_estimate, masked_mean, masked_sum

V = torch.tensor([[1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 30.0, 40.0]])
MASK = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])


def test_masked_sum_and_mean():
    assert masked_sum(V, MASK).item() == 16.0
    assert masked_sum(V, MASK, dim=-1).tolist() == [6.0, 10.0]
    assert masked_mean(V, MASK).item() == 4.0  # 16 / 4 tokens
    assert masked_mean(V, MASK, dim=-1).tolist() == [2.0, 10.0]


def test_aggregation_modes():
    assert aggregate(V, MASK, "seq-mean-token-mean").item() == pytest.approx((2.0 + 10.0) / 2)
    assert aggregate(V, MASK, "token-mean").item() == pytest.approx(16 / 4)
    assert aggregate(V, MASK, "seq-sum-constant").item() == pytest.approx(16 / (2 * 4))
    assert aggregate(V, MASK, "seq-sum-constant", constant=8).item() == pytest.approx(16 / 16)
    with pytest.raises(ValueError, match="mode"):
        aggregate(V, MASK, "mean")
    with pytest.raises(ValueError, match="constant"):
        aggregate(V, MASK, "seq-sum-constant", constant=0.0)


@pytest.mark.parametrize(
    "ratio, adv, loss, low, high, grad",
    [
        # A > 0: clipped above 1 + eps_high = 1.3, not below
        (1.5, 2.0, -1.3 * 2.0, 0, 1, 0.0),
        (1.1, 2.0, -1.1 * 2.0, 0, 0, -2.0 * 1.1),
        (0.5, 2.0, -0.5 * 2.0, 0, 0, -2.0 * 0.5),  # min picks the unclipped (smaller) term
        # A < 0: clipped below 1 - eps_low = 0.8, not above
        (0.5, -2.0, 0.8 * 2.0, 1, 0, 0.0),
        (0.9, -2.0, 0.9 * 2.0, 0, 0, 2.0 * 0.9),
        (1.5, -2.0, 1.5 * 2.0, 0, 0, 2.0 * 1.5),  # unclipped (more pessimistic) term
    ],
)
def test_clipped_policy_loss_each_side(ratio, adv, loss, low, high, grad):
    old = torch.tensor([[0.0]])
    logp = torch.tensor([[math.log(ratio)]], requires_grad=True)
    out = clipped_policy_loss(logp, old, torch.tensor([adv]), eps_low=0.2, eps_high=0.3)
    assert out.loss.item() == pytest.approx(loss)
    assert out.clipped_low.item() == low and out.clipped_high.item() == high
    out.loss.sum().backward()
    # d loss / d logp = -A * rho where unclipped, 0 where clipped
    assert logp.grad.item() == pytest.approx(grad)


def test_clipped_loss_at_ratio_one_is_reinforce_and_old_logp_not_differentiated():
    logp = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    old = logp.detach().clone().requires_grad_(True)
    out = clipped_policy_loss(logp, old, torch.tensor([[0.5, -0.25]]))
    out.loss.sum().backward()
    assert logp.grad.tolist() == [[-0.5, 0.25]]
    assert old.grad is None
    with pytest.raises(ValueError, match="eps_low"):
        clipped_policy_loss(logp, old, torch.tensor([1.0]), eps_low=1.5)


def test_kl_estimators_match_their_definitions():
    logp = torch.log(torch.tensor([0.5, 0.2, 0.9]))
    ref = torch.log(torch.tensor([0.25, 0.4, 0.9]))
    r = torch.exp(ref - logp)  # pi_ref / pi
    assert torch.allclose(kl_estimate(logp, ref, "k1"), torch.log(1 / r))
    assert torch.allclose(kl_estimate(logp, ref, "k2"), 0.5 * torch.log(r) ** 2)
    assert torch.allclose(kl_estimate(logp, ref, "k3"), r - 1 - torch.log(r))
    assert (kl_estimate(logp, ref, "k3") >= 0).all()
    with pytest.raises(ValueError, match="kind"):
        kl_estimate(logp, ref, "k4")


def test_k1_k3_unbiased_for_exact_kl():
    # exact expectation over a categorical: sum_y pi(y) k(y) = KL(pi || ref) for k1 and k3
    pi = torch.tensor([0.1, 0.6, 0.3])
    ref = torch.tensor([0.3, 0.3, 0.4])
    kl = (pi * torch.log(pi / ref)).sum()
    for kind in ("k1", "k3"):
        assert (pi * kl_estimate(pi.log(), ref.log(), kind)).sum().item() == pytest.approx(kl.item(), rel=1e-6)


def test_group_weights_is_the_scheme_table():
    R = np.array([[1, 0, 0, 1], [0, 0, 0, 0]])
    g = get_scheme("grpo", 4)
    Z = group_weights(g, torch.tensor(R))
    # sample std of [1,0,0,1] = sqrt(1/3); (1 - 0.5)/(sqrt(1/3) + 1e-6)
    assert Z[0, 0].item() == pytest.approx(0.5 / (math.sqrt(1 / 3) + 1e-6), rel=1e-6)
    assert Z[1].tolist() == [0, 0, 0, 0]
    raft = group_weights(get_scheme("raft", 4), R)
    assert raft[0].tolist() == [2.0, 0.0, 0.0, 2.0]
    with pytest.raises(TypeError, match="scheme"):
        group_weights("grpo", R)


from hypothesis import given, settings
from hypothesis import strategies as st

finite = st.floats(-3, 3, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(log_ratio=finite, adv=st.floats(-5, 5, allow_nan=False), eps_low=st.floats(0, 0.9), eps_high=st.floats(0, 2))
def test_clipped_loss_property(log_ratio, adv, eps_low, eps_high):
    """Value equals the PPO formula computed in numpy; the gradient vanishes exactly where a clip flag is set."""
    logp = torch.tensor([[log_ratio]], dtype=torch.float64, requires_grad=True)
    out = clipped_policy_loss(logp, torch.zeros(1, 1, dtype=torch.float64), torch.tensor([adv], dtype=torch.float64),
                              eps_low, eps_high)
    rho = np.exp(log_ratio)
    want = -min(rho * adv, np.clip(rho, 1 - eps_low, 1 + eps_high) * adv)
    assert out.loss.item() == pytest.approx(want, rel=1e-9, abs=1e-12)
    out.loss.sum().backward()
    if out.clipped_low.item() or out.clipped_high.item():
        assert logp.grad.item() == 0.0
    elif adv != 0:
        assert logp.grad.item() == pytest.approx(-adv * rho, rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(finite, min_size=4, max_size=4), min_size=1, max_size=5))
def test_aggregations_agree_on_full_masks(rows):
    v = torch.tensor(rows, dtype=torch.float64)
    m = torch.ones_like(v)
    plain = v.mean().item()
    for mode in ("seq-mean-token-mean", "token-mean", "seq-sum-constant"):
        assert aggregate(v, m, mode).item() == pytest.approx(plain, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(finite, finite)
def test_k3_nonnegative_and_close_to_k2_for_small_ratios(a, b):
    logp, ref = torch.tensor([a], dtype=torch.float64), torch.tensor([b], dtype=torch.float64)
    assert kl_estimate(logp, ref, "k3").item() >= 0
    small = torch.tensor([a * 1e-3], dtype=torch.float64)
    k2, k3 = kl_estimate(small, ref * 1e-3, "k2").item(), kl_estimate(small, ref * 1e-3, "k3").item()
    assert k3 == pytest.approx(k2, rel=1e-2, abs=1e-14)
