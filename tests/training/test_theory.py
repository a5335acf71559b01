"""The theory on real policies.

1. Central identity (Davis & Recht 2025, Theorem; THEORY.md §1): on a tiny transformer and an
   exact-probability task, E[(1/M) sum_i Z_i grad log pi(y_i|x)] = h'_M(p) grad p, per prompt.
2. The tabular policy with the exact KL-regularised update follows the map
   logit p_n = logit p_ref + h'_M(p_{n-1}) / beta (THEORY.md §2, generalised), and gradient steps
   of the trainer converge to its fixed point.
The reference values come from rlvrlens.objectives.dh and autograd / scipy root finding only.
"""

import numpy as np
import pytest
import torch
from scipy import optimize, special

from rlvrlens.objectives import dh, get_scheme
from rlvrlens.training.config import TrainConfig
from rlvrlens.training.losses import group_weights
from rlvrlens.training.policy import CausalLMPolicy, TabularPolicy
from rlvrlens.training.sft import warm_start
from rlvrlens.training.success import exact_success
from rlvrlens.training.tabular import kl_regularised_step
from rlvrlens.training.tasks import Task, modular_arithmetic
from rlvrlens.training.trainer import Trainer


def _flat_grad(scalar, params):
    grads = torch.autograd.grad(scalar, params, allow_unused=True, retain_graph=True)
    return torch.cat([(g if g is not None else torch.zeros_like(q)).flatten() for g, q in zip(grads, params)]).double()


@pytest.mark.slow
def test_central_identity_on_a_tiny_transformer():
    """Monte-Carlo tolerance: the update is averaged over B = 16 independent batches of n = 96 groups
    (M = 4). With E_b the batch means and SE their standard error, we require along the exact
    direction u = target/|target| a t-statistic |(<mean, u> - |target|)/SE_u| < 4.5 (15 dof:
    P ~ 5e-4), a squared error |mean - target|^2 below 25 tr(Cov(E_b))/B (CLT scale), and cosine > 0.9.
    A wrong target (h'_M off by a factor 2) is rejected by the same statistic."""
    base = modular_arithmetic(6, moduli=(3,), seed=1)
    pol = CausalLMPolicy.from_config(n_layer=2, width=64, seed=0)
    warm_start(pol, base, fraction=1.0, steps=15, lr=3e-3)
    # The identity holds for any verifier. Accept four completions, each likely under this policy
    # ("1", the empty answer, "11", "2"), so that grad p = sum_{y in C} pi(y) grad log pi(y) is not
    # parallel to one sequence's score and the Monte-Carlo estimate is noisy in every direction.
    task = Task("accept-four", base.prompts, ("1||11|2",) * len(base), "oneof")
    params = list(pol.parameters())
    p_all = exact_success(pol, task).detach().numpy()
    prompts = np.argsort(np.abs(p_all - 0.5))[:2]
    assert np.all((p_all[prompts] > 0.1) & (p_all[prompts] < 0.9))
    M, B, n = 4, 16, 96
    schemes = [get_scheme("reinforce", M), get_scheme("grpo", M), get_scheme("raft", M)]
    gen = torch.Generator().manual_seed(0)
    for i in prompts:
        p = exact_success(pol, task, [i])[0]
        grad_p = _flat_grad(p, params)
        batches = {s.name: [] for s in schemes}
        for _ in range(B):
            r = pol.sample([task.prompts[i]] * n, M, generator=gen, max_new_tokens=3)
            R = task.rewards(r.prompts, r.texts).reshape(n, M)
            logp = pol.token_logprobs(r)[0].sum(-1)
            for s in schemes:
                Z = group_weights(s, R).reshape(-1).to(logp.dtype)
                batches[s.name].append(_flat_grad((Z * logp).sum() / (n * M), params))
        for s in schemes:
            E = torch.stack(batches[s.name])
            mean = E.mean(0)
            target = float(dh(s, p.item())) * grad_p
            u = target / target.norm()
            se_u = (E @ u).std() / B**0.5
            t_stat = ((mean @ u) - target.norm()) / se_u
            assert abs(t_stat) < 4.5, (s.name, i, float(t_stat))
            assert (mean - target).norm() ** 2 < 25 * E.var(0).sum() / B
            assert float(mean @ target / (mean.norm() * target.norm())) > 0.9
            wrong = 0.5 * target  # a factor-2 error in h'_M is rejected by the same statistic
            assert abs(((mean @ u) - wrong @ u) / se_u) > 4.5


def _tabular_setup(p_ref, n_wrong=3):
    """Prompts with one right answer 'a' and n_wrong wrong ones; pi_ref gives 'a' probability p_ref."""
    prompts = [f"q{k}" for k in range(len(p_ref))]
    answers = ["a"] + [f"w{j}" for j in range(n_wrong)]
    p_ref = np.asarray(p_ref, dtype=float)
    logits = np.zeros((len(prompts), len(answers)))
    logits[:, 0] = np.log(p_ref / (1 - p_ref) * n_wrong)  # wrong answers share 1 - p_ref equally
    task = Task("tab", tuple(prompts), ("a",) * len(prompts))
    return TabularPolicy(prompts, answers, torch.tensor(logits, dtype=torch.float64)), task


@pytest.mark.parametrize("name, params, beta", [("grpo", {"std": "population"}, 0.5), ("raft", {}, 1.0),
                                               ("reinforce_rej", {}, 0.2), ("dr_grpo", {}, 0.3)])
def test_exact_kl_update_reproduces_the_map(name, params, beta):
    M = 8
    scheme = get_scheme(name, M, **params)
    p_ref = np.array([1e-3, 0.2, 0.5, 0.8])
    pol, task = _tabular_setup(p_ref)
    ref = pol.clone()
    p = p_ref.copy()
    for _ in range(12):
        kl_regularised_step(pol, ref, task, scheme, beta)
        p = special.expit(special.logit(p_ref) + dh(scheme, p) / beta)  # the map, written independently
        got = exact_success(pol, task).detach().numpy()
        np.testing.assert_allclose(special.logit(got), special.logit(p), rtol=1e-9, atol=1e-9)


@pytest.mark.slow
def test_gradient_steps_converge_to_the_fixed_point():
    """Sampled groups (M = 8, GRPO), exact sequence KL, AdamW: the time-averaged success of the last
    steps sits at the predicted fixed point p*: logit p* = logit p_ref + h'_M(p*)/beta."""
    M, beta, p_ref = 8, 2.0, 0.3
    scheme = get_scheme("grpo", M)
    g = lambda x: special.logit(x) - special.logit(p_ref) - dh(scheme, x) / beta
    p_star = optimize.brentq(g, p_ref, 1 - 1e-9)
    assert 0.4 < p_star < 0.6  # far from p_ref: the test can fail
    pol, task = _tabular_setup([p_ref] * 16)
    cfg = TrainConfig(num_generations=M, prompts_per_step=16, steps=400, beta=beta, kl_estimator="exact",
                      learning_rate=0.05, max_grad_norm=0.0, loss_aggregation="token-mean", eval_steps=1000)
    tr = Trainer(cfg, None, policy=pol, task=task, scheme=scheme)
    tail = []
    for step in range(400):
        tr.rl_step()
        if step >= 250:
            tail.append(exact_success(pol, task).detach().numpy().mean())
    assert abs(special.logit(np.mean(tail)) - special.logit(p_star)) < 0.05, (np.mean(tail), p_star)
