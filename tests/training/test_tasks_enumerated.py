"""EnumeratedTask: a task's two-token completion space, against brute-force sums over every sequence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlvrlens.training.policy import CausalLMPolicy
from rlvrlens.training.success import exact_success
from rlvrlens.training.tasks import EnumeratedTask, modular_arithmetic


@pytest.fixture(scope="module")
def lm():
    pol = CausalLMPolicy.from_config(n_layer=1, width=32, n_head=2, seed=0)
    task = modular_arithmetic(3, moduli=(3,), seed=1)
    return pol, task


def test_enumerated_completion_space_sums_to_one_and_gives_the_exact_success(lm):
    pol, task = lm
    enum = EnumeratedTask(pol, task)
    with torch.no_grad():
        first, second = enum.log_probs(pol)
        p = enum.success(first, second)
    np.testing.assert_allclose(p.numpy(), exact_success(pol, task).detach().numpy(), rtol=1e-5)
    for f, s in zip(first, second):  # pi(EOS) + sum_{y1 != EOS} pi(y1) sum_{y2} pi(y2|y1) = 1
        f, s = f.double().exp(), s.double().exp()
        mass = f[enum.eos] + sum(f[v] * s[v].sum() for v in range(enum.V) if v not in (enum.eos, enum.pad))
        assert abs(float(mass) - 1) < 1e-5


def test_enumerated_kl_is_the_brute_force_sum_over_sequences(lm):
    pol, task = lm
    other = pol.clone(trainable=True)
    with torch.no_grad():
        for q in other.parameters():
            q.add_(0.05 * torch.randn_like(q))
    enum = EnumeratedTask(pol, task)
    with torch.no_grad():
        f, s = enum.log_probs(other)
        rf, rs = enum.log_probs(pol)
        fwd = enum.kl(f, s, rf, rs, "pi||ref").double().numpy()
        rev = enum.kl(f, s, rf, rs, "ref||pi").double().numpy()
    for x in range(len(task)):
        seqs = [(np.exp(f[x][enum.eos].item()), np.exp(rf[x][enum.eos].item()))]
        for a in range(enum.V):
            if a in (enum.eos, enum.pad):
                continue
            for b in range(enum.V):
                if b == enum.pad:
                    continue
                seqs.append((np.exp(f[x][a].item() + s[x][a, b].item()), np.exp(rf[x][a].item() + rs[x][a, b].item())))
        P, Q = np.array(seqs).T
        np.testing.assert_allclose(fwd[x], np.sum(P * np.log(P / Q)), rtol=1e-4)
        np.testing.assert_allclose(rev[x], np.sum(Q * np.log(Q / P)), rtol=1e-4)
        assert fwd[x] > 1e-5 and abs(fwd[x] - rev[x]) > 1e-7


def test_enumerated_task_refuses_multi_token_answers_and_old_direction_names(lm):
    pol, task = lm
    with pytest.raises(ValueError, match="must be one token"):
        EnumeratedTask(pol, type(task)("t", ("1+1=",), ("12",)))
    enum = EnumeratedTask(pol, task)
    with torch.no_grad():
        f, s = enum.log_probs(pol)
    with pytest.raises(ValueError, match="use kl='pi\\|\\|ref'"):
        enum.kl(f, s, f, s, "forward")
