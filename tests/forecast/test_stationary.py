"""The joint stationary point of prompts sharing parameters: the Fisher coupling against the
pseudo-inverse of the Fisher matrix built by hand, and the joint equations against each prompt's own."""

from __future__ import annotations

import numpy as np
import pytest

from rlvrlens.forecast.probes import flat_grad
from rlvrlens.forecast.stationary import fisher_coupling, joint_stationary_points
from rlvrlens.objectives import dh, get_scheme
from rlvrlens.training.policy import CausalLMPolicy, trainable_parameters
from rlvrlens.training.tasks import EnumeratedTask, modular_arithmetic
from rlvrlens.training.tokenizer import char_tokenizer, chars_for_task


def _small(width: int, seed: int = 0):
    task = modular_arithmetic(2, moduli=(3,), seed=1)
    task = type(task)(task.name, task.prompts, task.answers, max_new_tokens=2)
    tok = char_tokenizer(chars_for_task(task))
    return CausalLMPolicy.from_config(n_layer=1, width=width, n_head=2, seed=seed, tokenizer=tok), task


def _explicit_coupling(pol, task):
    """Q = G F^+ G^T with F = sum_x sum_seq pi(seq) s s^T built row by row and numpy's pinv."""
    params = trainable_parameters(pol)
    enum = EnumeratedTask(pol, task)
    first, second = enum.log_probs(pol)
    scores, weights = [], []
    for f, s in zip(first, second):
        for a in range(enum.V):
            if a == enum.pad:
                continue
            seqs = [f[a]] if a == enum.eos else [f[a] + s[a, b] for b in range(enum.V) if b != enum.pad]
            for lp in seqs:
                scores.append(flat_grad(lp, params, retain_graph=True))
                weights.append(float(lp.detach().exp()))
    S, w = np.array(scores), np.array(weights)
    F = (S * w[:, None]).T @ S
    p_t = enum.success(first, second)
    G = np.stack([flat_grad(p_t[x], params, retain_graph=True) for x in range(len(task))])
    return p_t.detach().numpy(), G @ np.linalg.pinv(F, rcond=1e-10, hermitian=True) @ G.T


def test_coupling_is_grad_p_through_the_pseudo_inverse_fisher():
    """A against <grad p_x, F^+ grad p_y>/(p q) with F built explicitly and inverted with numpy's pinv
    (independent of the completion-space projection; a missing pi weight or a wrong normalisation is
    off by far more than 1e-4). D^-1/2 Q D^-1/2 is the projection of the prompts' reward indicators on
    the scores' span, so its eigenvalues lie in [0, 1]. Measured: width 2 (452 parameters) A_xx about
    0.015, width 8 (2,384) 0.06-0.12, width 16 (6,304) about 0.3, width 48 (37,344) about 0.87: a
    wider model moves each prompt more freely; the test asserts the growth from 2 to 8 (three-fold or
    more; width 16's explicit 6,304-square pseudo-inverse took most of this suite's time)."""
    diag = {}
    for width in (2, 8):
        pol, task = _small(width)
        p, A, rank = fisher_coupling(pol, task)
        p_t, Q = _explicit_coupling(pol, task)
        np.testing.assert_allclose(p, p_t, rtol=1e-5)
        np.testing.assert_allclose(A, Q / (p * (1 - p))[:, None], atol=1e-4)
        d = 1 / np.sqrt(p * (1 - p))
        eig = np.linalg.eigvalsh(d[:, None] * (Q + Q.T) / 2 * d[None, :])
        assert eig.min() > -1e-8 and eig.max() < 1 + 1e-8, (width, eig)
        assert 0 < rank <= sum(q.numel() for q in trainable_parameters(pol))
        diag[width] = np.diag(A)
    assert np.all(diag[8] > 3 * diag[2]), diag


def test_joint_equations_reduce_to_each_prompts_own_and_move_with_the_coupling():
    """With A = I the joint point is each prompt's own (the tabular equation, checked by its residual);
    a coupling that halves A_xx moves the point towards p_ref as the linear response says."""
    scheme, p_ref = get_scheme("grpo", 4), np.array([0.1, 0.6])
    own = joint_stationary_points(scheme, 2.0, p_ref, np.eye(2))
    x, xr = np.log(own / (1 - own)), np.log(p_ref / (1 - p_ref))
    np.testing.assert_allclose(x - xr, dh(scheme, own) / 2.0, atol=1e-10)
    half = joint_stationary_points(scheme, 2.0, p_ref, 0.5 * np.eye(2))
    assert np.all(half < own) and np.all(half > p_ref)
    rev = joint_stationary_points(scheme, 2.0, p_ref, np.eye(2), "ref||pi")
    np.testing.assert_allclose((rev - p_ref) / (rev * (1 - rev)), dh(scheme, rev) / 2.0, atol=1e-10)
    with pytest.raises(ValueError, match="use kl='pi"):
        joint_stationary_points(scheme, 2.0, p_ref, np.eye(2), "forward")


@pytest.mark.slow
def test_joint_point_is_measured_where_each_prompts_own_is_not():
    """A narrow transformer (width 2: A_xx about 0.015, so the prompts cannot move freely) trained by
    the expected update with the exact sequence KL, both treatments, beta 1 and 4: the measured point is
    within 0.15 logit of the joint (Fisher) prediction, while each prompt's own point misses by more
    than 0.3 logit in every case and by more than 1 logit at beta = 1 (measured: joint within 0.08,
    own 0.37 to 7.2). A joint prediction that ignored A would be the own one and fail."""
    from rlvrlens.validation.fixed_points import joint_stationary
    from rlvrlens.validation.verdicts import joint_stationary_rows

    pol, task = _small(2)
    recs = joint_stationary(pol, task, get_scheme("grpo", 4), (1.0, 4.0), steps=400, lr=0.03)
    assert len(recs) == 2 * 2 * len(task)
    for r in recs:
        assert abs(r["logit_gap_joint"]) < 0.15, r
        assert abs(r["logit_gap_own"]) > (1.0 if r["beta"] == 1.0 else 0.3), r
        assert r["coupling_diagonal"] < 0.1
    assert all(row["verdict"] == "agrees" for row in joint_stationary_rows(recs))


def test_fisher_coupling_refuses_before_allocating_beyond_the_machines_memory(monkeypatch):
    """A machine of 1 MiB: the coupling names what it would need and allocates nothing (the check comes
    before the score matrix); the estimate is the scores' float32 plus two float64 Gram-sized arrays."""
    import rlvrlens.forecast.stationary as st

    from rlvrlens.forecast.stationary import fisher_memory

    assert fisher_memory(10, 100) == 4 * 10 * 100 + 16 * 100
    monkeypatch.setattr(st, "device_memory", lambda device: 2**20)
    pol, task = _small(2)
    with pytest.raises(MemoryError, match=r"fisher_coupling needs about .* GiB .* completions x 452 parameters"):
        fisher_coupling(pol, task)
