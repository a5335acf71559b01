"""The probes of a model, each against an independent computation: the success Jacobian of a
softmax (closed form), Adam's preconditioner after one step (1/|g|), the kernel (a hand product)
and the KL term's projection (finite differences of the exact KL along grad p)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlvrlens.forecast.coupled import predicted_change
from rlvrlens.forecast.probes import kernel, kl_projection, success_jacobian, unit_grad_p
from rlvrlens.objectives import dh, get_scheme
from rlvrlens.training.optim import adam_preconditioner
from rlvrlens.training.policy import CausalLMPolicy
from rlvrlens.training.tasks import EnumeratedTask, modular_arithmetic
from rlvrlens.validation.setups import tabular_setup


def test_jacobian_of_a_tabular_policy_is_the_softmax_formula_and_the_kernel_is_diagonal():
    pol, task, p_ref = tabular_setup([0.2, 0.6], copies=1)
    pol.requires_grad_(True)
    p, G = success_jacobian(pol, task)
    np.testing.assert_allclose(p, p_ref, rtol=1e-12)
    pi = pol.probabilities().detach().double().numpy()
    right = np.zeros_like(pi)
    right[:, 0] = 1
    want = np.zeros((2, pi.size))
    for x in range(2):
        want[x, x * 4:(x + 1) * 4] = pi[x] * (right[x] - p[x])  # d p / d logits of its own row
    np.testing.assert_allclose(G, want, atol=1e-12)
    K = kernel(G)
    assert abs(K[0, 1]) < 1e-15 and K[0, 0] > 0  # separate parameters: no coupling
    scheme = get_scheme("grpo", 4)
    np.testing.assert_allclose(predicted_change(K, scheme, p, 0.1), 0.1 / 2 * np.diag(K) * dh(scheme, p))


def test_kernel_with_a_preconditioner_is_the_weighted_gram_matrix_in_blocks():
    rng = np.random.default_rng(0)
    G, P = rng.normal(size=(3, 11)).astype(np.float32), rng.random(11)
    np.testing.assert_allclose(kernel(G, P, chunk=4), (G.astype(float) * P) @ G.T.astype(float), rtol=1e-10)


def test_adam_preconditioner_after_one_step_is_one_over_abs_gradient():
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))
    opt = torch.optim.Adam([w], lr=0.1, betas=(0.9, 0.99), eps=1e-8)
    (w * torch.tensor([0.5, -4.0, 2.0])).sum().backward()
    assert adam_preconditioner(opt, [w]) is None  # before the first step
    opt.step()
    np.testing.assert_allclose(adam_preconditioner(opt, [w]), 1 / (np.array([0.5, 4.0, 2.0]) + 1e-8), rtol=1e-6)


def test_kl_projection_is_the_directional_derivative_of_the_exact_kl():
    """C[x, y] = <grad p_x, grad KL_y>: against a central difference of KL_y along grad p_x (both
    directions of the KL); an error in which KL is differentiated would be off by far more."""
    torch.manual_seed(0)
    ref = CausalLMPolicy.from_config(n_layer=1, width=16, n_head=2, seed=0)
    task = modular_arithmetic(2, moduli=(3,), seed=1)
    task = type(task)(task.name, task.prompts, task.answers, max_new_tokens=2)
    pol = ref.clone(trainable=True)
    with torch.no_grad():
        for q in pol.parameters():
            q.add_(0.3 * torch.randn_like(q))
    p, G = success_jacobian(pol, task)
    enum = EnumeratedTask(pol, task)
    with torch.no_grad():
        rf, rs = enum.log_probs(ref)
    for direction in ("pi||ref", "ref||pi"):
        C = kl_projection(pol, ref, task, G, direction)
        for x in range(len(task)):
            _, norm, u = unit_grad_p(pol, task, x)
            eps = 1e-3
            vals = []
            for sign in (1, -1):
                other = pol.clone(trainable=False)
                with torch.no_grad():
                    for q, v in zip(other.parameters(), u):
                        q.add_(sign * eps * v)
                    f, s = enum.log_probs(other)
                    vals.append(enum.kl(f, s, rf, rs, direction).double().numpy())
            fd = (vals[0] - vals[1]) / (2 * eps) * norm
            np.testing.assert_allclose(C[x], fd, rtol=2e-2, atol=1e-6)
    assert np.abs(kl_projection(pol, ref, task, G, "pi||ref") - kl_projection(pol, ref, task, G, "ref||pi")).max() > 1e-4


def test_count_sketch_stack_is_each_vectors_sketch_and_keeps_inner_products():
    """stack() draws the buckets once for several vectors: each row equals the vector's own sketch (to
    1e-12), and across blocks (block = 1000 over 5,000 coordinates) the inner product is kept within
    the sketch's stated error (4 sqrt(2/k) |a||b| at k = 4096)."""
    from rlvrlens.forecast.probes import CountSketch

    sk = CountSketch(4096, seed=3, block=1000)
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(5000, generator=gen), torch.randn(5000, generator=gen)
    both = sk.stack([a, b])
    np.testing.assert_allclose(both[0], sk(a), atol=1e-12)
    np.testing.assert_allclose(both[1], sk(b), atol=1e-12)
    assert abs(both[0] @ both[1] - float(a @ b)) < 4 * np.sqrt(2 / 4096) * float(a.norm() * b.norm())
    assert abs(both[0] @ both[0] / float(a @ a) - 1) < 4 * np.sqrt(2 / 4096)
    with pytest.raises(ValueError, match="one length"):
        sk.stack([a, b[:10]])
