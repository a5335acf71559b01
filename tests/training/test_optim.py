"""The trainer owns its optimiser, schedule and reference (issue 20): each option against an
independent computation of the step it should take, and snapshot/restore against an uninterrupted run."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from transformers import get_constant_schedule_with_warmup, get_linear_schedule_with_warmup

from rlvrlens.training.config import TrainConfig
from rlvrlens.training.optim import lr_factor
from rlvrlens.training.policy import TabularPolicy
from rlvrlens.training.task import Task
from rlvrlens.training.trainer import Trainer

TASK = Task("t", ("x", "y"), ("a", "b"))
BASE = dict(num_generations=4, prompts_per_step=2, scheme="rloo", max_grad_norm=0.0, learning_rate=0.3, steps=5)


def _policy():
    return TabularPolicy(["x", "y"], ["a", "b", "c"], torch.tensor([[0.3, 0.0, -0.2], [0.0, 0.5, 0.1]]))


def _steps(trainer, n):
    """``n`` steps; per step the logits before it and the gradient the optimiser was given."""
    out, step = [], trainer.optimizer.step

    def keep(*a, **k):
        out.append((trainer.policy.logits.detach().clone(), trainer.policy.logits.grad.detach().clone()))
        return step(*a, **k)

    trainer.optimizer.step = keep
    trainer.train(n)
    return out


def test_sgd_is_plain_gradient_descent_with_its_weight_decay():
    tr = Trainer(TrainConfig(**BASE, optim="sgd", weight_decay=0.1), policy=_policy(), task=TASK)
    seen = _steps(tr, 3)
    after = [th for th, _ in seen[1:]] + [tr.policy.logits.detach()]
    for (theta, g), nxt in zip(seen, after):
        assert g.abs().max() > 0
        torch.testing.assert_close(nxt, theta - 0.3 * (g + 0.1 * theta), rtol=0, atol=1e-6)


@pytest.mark.parametrize("optim", ["adamw", "adam"])
def test_adam_steps_follow_kingma_ba_with_decoupled_or_l2_decay(optim):
    """Adam's bias-corrected moments by hand (Kingma & Ba 2015); AdamW decays the weights apart from
    the gradient (Loshchilov & Hutter 2019), Adam adds the decay to the gradient: the two differ."""
    b1, b2, eps, wd, lr = 0.8, 0.95, 1e-6, 0.05, 0.3
    tr = Trainer(TrainConfig(**BASE, optim=optim, adam_beta1=b1, adam_beta2=b2, adam_epsilon=eps, weight_decay=wd),
                 policy=_policy(), task=TASK)
    seen = _steps(tr, 3)
    m = v = torch.zeros_like(seen[0][0])
    theta = seen[0][0].clone()
    for t, (_, g) in enumerate(seen, 1):
        if optim == "adam":
            g = g + wd * theta
        else:
            theta = theta * (1 - lr * wd)
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        theta = theta - lr * (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps)
    torch.testing.assert_close(tr.policy.logits.detach(), theta, rtol=0, atol=1e-5)


@pytest.mark.parametrize("kind,warmup", [("linear", 0), ("linear", 2), ("constant", 3)])
def test_schedule_is_hugging_faces(kind, warmup):
    """The logged learning rate of every step against transformers' own schedules (what TRL uses)."""
    tr = Trainer(TrainConfig(**{**BASE, "steps": 6}, optim="sgd", lr_scheduler_type=kind, warmup_steps=warmup),
                 policy=_policy(), task=TASK)
    logged = [m["learning_rate"] for m in tr.train()]
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.3)
    hf = (get_linear_schedule_with_warmup(opt, warmup, 6) if kind == "linear"
          else get_constant_schedule_with_warmup(opt, warmup))
    want = []
    for _ in range(6):
        want.append(opt.param_groups[0]["lr"])
        opt.step()
        hf.step()
    np.testing.assert_allclose(logged, want, rtol=1e-12)
    assert len(set(np.round(logged, 12))) > 1


def test_schedule_survives_a_checkpoint(tmp_path):
    cfg = TrainConfig(**{**BASE, "steps": 6}, optim="sgd", lr_scheduler_type="linear", save_steps=3, eval_steps=3)
    whole = Trainer(cfg, policy=_policy(), task=TASK).train()
    with Trainer(cfg.__class__(**{**cfg.to_dict(), "steps": 3}), tmp_path, policy=_policy(), task=TASK) as tr:
        first = tr.train()
    with Trainer(cfg, tmp_path, policy=_policy(), task=TASK, resume=True) as tr:
        rest = tr.train()
    # the schedule's horizon is config.steps: the short run decays over 3 steps, so only the resumed
    # part is compared with the whole run (its scheduler state came back from the checkpoint)
    assert [m["learning_rate"] for m in rest] == pytest.approx([0.3 * lr_factor(cfg, s) for s in range(3, 6)])
    assert [m["learning_rate"] for m in whole][3:] == pytest.approx([m["learning_rate"] for m in rest])
    assert len(first) == 3


def test_snapshot_and_restore_repeat_a_step_exactly_or_with_new_samples():
    tr = Trainer(TrainConfig(**BASE, optim="adamw"), policy=_policy(), task=TASK)
    tr.train(1)
    state = tr.snapshot()
    tr.train(2)
    after, rng_after = tr.policy.logits.detach().clone(), copy.deepcopy(tr.rng.bit_generator.state)
    tr.restore(state)
    assert tr.step == 1
    tr.train(2)
    assert torch.equal(tr.policy.logits.detach(), after)  # parameters, Adam's moments and RNG all restored
    tr.restore(state, rng=False)
    tr.train(2)
    assert not torch.equal(tr.policy.logits.detach(), after)  # new samples
    assert tr.rng.bit_generator.state != rng_after
    with pytest.raises(TypeError, match="snapshot"):
        tr.restore({"step": 0})


def test_reference_through_the_constructor_and_its_exact_kl():
    """``ref=`` is the penalty's pi_ref: the logged exact KL is KL(pi || ref) computed by hand."""
    ref = TabularPolicy(["x", "y"], ["a", "b", "c"], torch.tensor([[1.0, -1.0, 0.0], [0.0, 0.0, 2.0]]))
    pol = _policy()
    cfg = TrainConfig(**BASE, beta=0.5, kl_estimator="exact")
    tr = Trainer(cfg, policy=pol, task=TASK, ref=ref)
    p, q = torch.softmax(pol.logits.detach(), -1), torch.softmax(ref.logits, -1)
    want = float((p * (p.log() - q.log())).sum(-1).mean())
    assert tr.rl_step()["kl"] == pytest.approx(want, rel=1e-6) and want > 0.1
    with pytest.raises(ValueError, match="beta > 0"):
        Trainer(TrainConfig(**BASE), policy=_policy(), task=TASK, ref=ref)
    with pytest.raises(TypeError, match="ref must satisfy"):
        Trainer(cfg, policy=_policy(), task=TASK, ref=object())


@pytest.mark.parametrize("field,value,match", [
    ("optim", "rmsprop", "optim must be one of adamw, adam, sgd"),
    ("lr_scheduler_type", "cosine", "lr_scheduler_type must be one of constant, linear"),
    ("adam_epsilon", 0.0, "adam_epsilon"),
    ("warmup_steps", -1, "warmup_steps"),
])
def test_bad_optimiser_options_name_the_field(field, value, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**{field: value})
    assert TrainConfig(optim="adamw_torch").optim == "adamw"  # Hugging Face's name is accepted
