"""The forecast against independent computations: the softmax ODE (a two-answer tabular policy, where
the logit gradient is constant and the model exact to first order), Adam simulated directly, runs of
the trainer itself averaged over seeds, and the sketched kernel against the exact one."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy import special

from rlvrlens.dynamics import softmax_flow
from rlvrlens.forecast.adam import adam_gain
from rlvrlens.forecast.forecast import forecast, probe
from rlvrlens.forecast.probes import CountSketch, kernel, success_jacobian
from rlvrlens.objectives import get_scheme
from rlvrlens.training.config import TrainConfig
from rlvrlens.training.policy import CausalLMPolicy, TabularPolicy
from rlvrlens.training.task import Task
from rlvrlens.training.tasks import modular_arithmetic
from rlvrlens.training.trainer import Trainer

LOGITS = torch.tensor([[0.0, 1.0], [-1.5, 0.0], [0.5, 0.0]], dtype=torch.float64)
TASK = Task("two", ("x", "y", "z"), ("a", "a", "a"))


def _config(**kw):
    base = dict(num_generations=4, prompts_per_step=3, scheme="rloo", loss_aggregation="seq-sum-constant",
                aggregation_constant=1.0, max_grad_norm=0.0, steps=40, eval_steps=10**6, save_steps=10**6)
    return TrainConfig(**{**base, **kw})


def _policy():
    return TabularPolicy(["x", "y", "z"], ["a", "b"], LOGITS.clone()).clone(trainable=True)


@pytest.mark.parametrize("beta,estimator", [(0.0, "k2"), (0.5, "exact")])
def test_sgd_forecast_is_the_softmax_ode_for_two_answers(beta, estimator):
    """Two answers per prompt: x = theta_a - theta_b, grad x = (1, -1) is constant and logit p is
    linear in theta, so the kernel is exact, the noise has no curvature and the forecast's Euler steps
    are the ODE's (rloo: h' = 1; with the exact KL(pi||pi_ref)) to O(lr)."""
    cfg = _config(optim="sgd", learning_rate=0.05, beta=beta, kl_estimator=estimator)
    f = forecast(_policy(), TASK, cfg, batches=3)
    right = np.array([[True, False]] * 3)
    ode = softmax_flow(LOGITS.numpy(), right, get_scheme("rloo", 4), beta if beta else 1.0, 40,
                       kl="pi||ref" if beta else "none", rate=0.05 / 3)
    np.testing.assert_allclose(f.p, ode, atol=2e-3)
    assert np.abs(f.p[-1] - f.p[0]).min() > 0.02  # the prompts move: the comparison is not between constants
    assert np.abs(f.probe.diffusion).max() < 1e-6  # logit p is linear in the logits: no curvature
    np.testing.assert_allclose(np.diag(f.probe.L), 2.0, rtol=1e-12)


def test_forecast_is_the_mean_of_runs_of_the_trainer():
    """AdamW (lr 0.02, momentum, linear decay) on the two-answer tabular policy: the mean over 24 seeds
    of the trainer's exact p is within 4 standard errors plus 0.03 of the forecast at every tenth step
    (measured: within 0.024, about 10% of the move; the coordinates here are signal-dominated, signal
    fraction 0.8, where Adam's v follows the shrinking mean gradient while the model freezes it at
    the probe's), and the band covers most single runs."""
    cfg = _config(optim="adamw", learning_rate=0.02, lr_scheduler_type="linear", num_generations=8)
    f = forecast(_policy(), TASK, cfg, batches=16)
    runs = []
    for seed in range(24):
        tr = Trainer(TrainConfig(**{**cfg.to_dict(), "seed": seed}), policy=_policy(), task=TASK)
        tr.train(success_at=range(0, 41, 10))
        runs.append([h["p"] for h in tr.success_history])
    runs = np.array(runs)  # (seeds, 5, prompts)
    mean, se = runs.mean(0), runs.std(0, ddof=1) / np.sqrt(len(runs))
    np.testing.assert_array_less(np.abs(mean - f.p[::10]), 4 * se + 0.03)
    assert np.abs(mean[-1] - mean[0]).min() > 0.1  # every prompt moves
    inside = ((runs >= f.low[::10]) & (runs <= f.high[::10])).mean()
    assert inside > 0.8, inside


def test_adams_small_signal_gain_against_adam_itself():
    """Adam run directly on many coordinates with a small mean (mu = 0.05 sigma): the mean step over
    mu/sigma is c(t) within 3 standard errors, and c(1) is sqrt(2/pi) exactly."""
    assert adam_gain([1])[0] == pytest.approx(np.sqrt(2 / np.pi), rel=1e-12)
    rng = np.random.default_rng(1)
    n, mu = 400_000, 0.05
    opt_m = np.zeros(n)
    opt_v = np.zeros(n)
    for t in range(1, 6):
        g = mu + rng.standard_normal(n)
        opt_m = 0.9 * opt_m + 0.1 * g
        opt_v = 0.999 * opt_v + 0.001 * g * g
        step = (opt_m / (1 - 0.9**t)) / np.sqrt(opt_v / (1 - 0.999**t))
        assert abs(step.mean() / mu - adam_gain([t])[0]) < 3 * step.std() / np.sqrt(n) / mu, t


def test_sketched_kernel_is_within_its_stated_distortion():
    """The CountSketch kernel against the exact one on a transformer's success gradients: every entry
    within 5 times sqrt(2/k) |g_x| |g_y| (the stated standard deviation bound), the diagonal within
    3% at k = 2^14; a sketch of size 16 is far off (the check can fail)."""
    pol = CausalLMPolicy.from_config(n_layer=1, width=32, n_head=2, seed=0)
    task = modular_arithmetic(4, moduli=(3, 5), seed=2)
    _, G = success_jacobian(pol, task)
    K = kernel(G)
    norms = np.sqrt(np.diag(K))
    for k, ok in ((2**14, True), (16, False)):
        sk = CountSketch(k, seed=3)
        Ks = kernel(np.stack([sk(torch.as_tensor(row)) for row in G]))
        bound = 5 * np.sqrt(2 / k) * np.outer(norms, norms)
        assert bool(np.all(np.abs(Ks - K) <= bound)) is True or not ok
        if ok:
            np.testing.assert_allclose(np.diag(Ks), np.diag(K), rtol=0.03)
        else:
            assert np.abs(Ks - K).max() > 0.05 * np.abs(K).max()


def test_probe_refuses_what_it_does_not_model_and_names_it():
    with pytest.raises(ValueError, match="temperature 1 without top-p"):
        probe(_policy(), TASK, _config(temperature=0.7))
    with pytest.raises(ValueError, match="batches must be >= 2"):
        probe(_policy(), TASK, _config(), batches=1)
    notes = probe(_policy(), TASK, _config(num_iterations=2, optim="adamw", max_grad_norm=1.0), batches=2).notes
    assert any("num_iterations = 2" in n for n in notes) and any("max_grad_norm" in n for n in notes)


def test_logit_kernel_one_row_at_a_time_is_the_dense_kernel():
    """logit_kernel (a prompt's gradient at a time, what a 135M-parameter model needs) against
    kernel(G / pq, P) from the dense Jacobian: to 1e-6 relative exactly, within 3% on the diagonal
    sketched at k = 2^14; a preconditioner left out would be off by its spread (P from 0.5 to 2)."""
    from rlvrlens.forecast.forecast import logit_kernel

    pol = CausalLMPolicy.from_config(n_layer=1, width=32, n_head=2, seed=0)
    task = modular_arithmetic(4, moduli=(3, 5), seed=2)
    p, G = success_jacobian(pol, task)
    P = np.random.default_rng(0).uniform(0.5, 2.0, G.shape[1])
    want = kernel(G / (p * (1 - p))[:, None], P)
    p2, L = logit_kernel(pol, task, P)
    np.testing.assert_allclose(p2, p, rtol=1e-6)
    np.testing.assert_allclose(L, want, rtol=1e-5, atol=1e-6 * np.abs(want).max())
    _, Ls = logit_kernel(pol, task, P, sketch=2**14)
    np.testing.assert_allclose(np.diag(Ls), np.diag(want), rtol=0.03)
    _, L1 = logit_kernel(pol, task)
    assert np.abs(L1 - want).max() > 0.05 * np.abs(want).max()


def test_probe_warns_when_a_prompt_may_miss_every_batch():
    """One prompt of three a step: from 2 batches a prompt is missed with probability (2/3)^2 = 44%
    (Adam's v is then 0 on its logits: its kernel entry is ~1/eps^2 larger); from 16, 0.15%: no note."""
    cfg = _config(optim="adamw", prompts_per_step=1)
    few = probe(_policy(), TASK, cfg, batches=2)
    assert any("probability 44%" in n for n in few.notes), few.notes
    assert not any("probe's 16 batches" in n for n in probe(_policy(), TASK, cfg, batches=16).notes)


def test_grouped_jackknife_and_kept_gradients_bounded_by_memory(monkeypatch):
    """With room for 3 jackknife rows and 2 kept gradients (of 6 parameters), 6 batches give 3 groups
    (batch j in group j mod 3): each L_jackknife[k] against the kernel computed here from the recorded
    gradients with group k left out, and the full L equal to the uncapped probe's (to 1e-12)."""
    import rlvrlens.forecast.forecast as F

    cfg = _config(optim="adamw", prompts_per_step=2)
    free = probe(_policy(), TASK, cfg, batches=6, seed=4)
    assert free.L_jackknife.shape == (6, 3, 3)  # small models: leave-one-out
    seen = []
    original = Trainer.stochastic_gradient

    def recording(self):
        gradient, stat = original(self)
        seen.append(gradient.clone())
        return gradient, stat

    monkeypatch.setattr(Trainer, "stochastic_gradient", recording)
    monkeypatch.setattr(F, "KEPT_BYTES", 2 * 6 * 4)
    monkeypatch.setattr(F, "JACKKNIFE_BYTES", 3 * 6 * 4)
    capped = probe(_policy(), TASK, cfg, batches=6, seed=4)
    assert capped.L_jackknife.shape == (3, 3, 3)
    np.testing.assert_allclose(capped.L, free.L, rtol=1e-12)
    g = torch.stack(seen).double()
    p, G = success_jacobian(_policy(), TASK)
    grad_logit = G / (p * (1 - p))[:, None]
    for k in range(3):
        v = (g[[j for j in range(6) if j % 3 != k]] ** 2).mean(0)
        P = (1.0 / (v.sqrt() + cfg.adam_epsilon)).numpy()
        np.testing.assert_allclose(capped.L_jackknife[k], kernel(grad_logit, P), rtol=1e-5)
    assert np.abs(capped.L_jackknife - capped.L).max() > 1e-3 * np.abs(capped.L).max()  # the groups differ
    P = (1.0 / ((g**2).mean(0).sqrt() + cfg.adam_epsilon)).numpy()  # the noise: over the 2 kept gradients
    want = np.std(grad_logit @ (P * g[:2].numpy()).T, axis=1, ddof=1)
    np.testing.assert_allclose(capped.noise, want, rtol=1e-4)
    mean = g.mean(0)  # the signal fraction: over all 6
    spread = float(((g - mean) ** 2).sum()) / 5
    np.testing.assert_allclose(capped.signal_fraction, (float(mean @ mean) - spread / 6) / float((g**2).mean(0).sum()),
                               rtol=1e-5)


def _small_adamw(lr: float, optim: str = "adamw") -> TrainConfig:
    return TrainConfig(num_generations=4, prompts_per_step=2, steps=4, learning_rate=lr, optim=optim,
                       loss_aggregation="dapo", max_grad_norm=0.0, seed=0, warm_start_steps=0,
                       eval_steps=10**6, save_steps=10**6)


@pytest.mark.parametrize("optim,lr,tolerance", [("sgd", 1e-3, 0.02), ("adamw", 1e-6, 0.3)])
def test_propagate_moves_the_parameters_as_the_kernel_predicts(tiny_setup, optim, lr, tolerance):
    """Four small steps, p re-measured after each: the propagated path equals the frozen one to
    first order (the parameter move P grad(sum a_y x_y) changes x by L a). SGD within 2% of the
    move (measured 0.1%); AdamW within 30% (measured 21%: the move is bounded per coordinate by
    Adam's largest step, lr, where the probe's v is small, which the kernel does not know), while
    the same move without the preconditioner misses by more than half. The policy is left as it was."""
    from rlvrlens.forecast.forecast import integrate, propagate

    pol = tiny_setup.policy.clone(trainable=True)
    task = tiny_setup.task
    cfg = _small_adamw(lr, optim)
    scheme = get_scheme("grpo", 4)
    pr = probe(pol, task, cfg, scheme=scheme, batches=4)
    before = [q.detach().clone() for q in pol.parameters()]
    moved = special.logit(propagate(pol, task, pr, cfg, scheme, 4, 1))
    frozen = special.logit(integrate(pr, cfg, scheme, 4))
    change = np.abs(frozen[4] - frozen[0]).max()
    miss = np.abs(moved[4] - frozen[4]).max() / change
    assert change > 0 and miss < tolerance, (moved, frozen)
    assert all(torch.equal(a, b) for a, b in zip(before, pol.parameters()))
    if optim == "adamw":
        plain = replace(pr, precond=torch.ones_like(pr.precond))  # a move that forgot P
        wrong = special.logit(propagate(pol, task, plain, cfg, scheme, 4, 1))
        assert np.abs(wrong[4] - frozen[4]).max() > 0.5 * change


def test_propagate_refuses_bad_segments(tiny_setup):
    from rlvrlens.forecast.forecast import propagate

    pol, task, scheme = tiny_setup.policy, tiny_setup.task, get_scheme("grpo", 4)
    cfg = _small_adamw(1e-4)
    pr = probe(pol, task, cfg, scheme=scheme, batches=2)
    with pytest.raises(ValueError, match="every must be an integer"):
        propagate(pol, task, pr, cfg, scheme, 4, 0)
    with pytest.raises(ValueError, match="kernel_every must be a multiple of every"):
        propagate(pol, task, pr, cfg, scheme, 4, 2, kernel_every=3)
    with pytest.raises(ValueError, match="no preconditioner"):
        propagate(pol, task, replace(pr, precond=None), cfg, scheme, 4, 2)
