"""The trainer's own loop (callbacks, in-memory success history), ``clone(trainable=)`` and the
``Policy`` protocol the trainer depends on."""

import json

import numpy as np
import pytest
import torch

import rlvrlens.training as training
from rlvrlens.training import ExactKLPolicy, Policy, SavablePolicy, TabularPolicy, Task, TrainConfig, Trainer
from rlvrlens.training.success import exact_success


def tabular(p_right=(0.2, 0.6)):
    """Two prompts, answers yes/no; 'yes' is right with probability p_right."""
    prompts = ["a", "b"]
    logits = torch.tensor([[np.log(p / (1 - p)), 0.0] for p in p_right])
    return TabularPolicy(prompts, ["yes", "no"], logits), Task("yes", tuple(prompts), ("yes", "yes"))


CFG = dict(num_generations=4, prompts_per_step=2, steps=5, learning_rate=0.2, scheme="reinforce",
           max_grad_norm=0.0)


def test_callbacks_and_success_history_without_a_run_directory():
    policy, task = tabular()
    seen, exact = [], {}

    def record(trainer, metrics):
        seen.append(metrics)
        with torch.no_grad():
            exact[trainer.step] = exact_success(trainer.policy, task).tolist()

    tr = Trainer(TrainConfig(**CFG), policy=policy, task=task)
    with torch.no_grad():
        exact[0] = exact_success(policy, task).tolist()
    history = tr.train(callbacks=[record], success_at=[0, 2, 5, 99])
    assert seen == history and [m["step"] for m in seen] == [1, 2, 3, 4, 5]
    assert [h["step"] for h in tr.success_history] == [0, 2, 5]
    for h in tr.success_history:  # the history is the exact success at that step (independent evaluation)
        assert h["method"] == "exact" and np.allclose(h["p"], exact[h["step"]], rtol=1e-6)
    assert exact[5] != exact[0]  # the policy moved: the history is not a repeated value


def test_success_history_matches_the_log_and_is_not_duplicated(tmp_path):
    policy, task = tabular()
    with Trainer(TrainConfig(**CFG, eval_steps=2), tmp_path / "run", policy=policy, task=task) as tr:
        tr.train(steps=2, success_at=range(0, 6, 2))
        tr.train(success_at=range(0, 6, 2))  # step 2 was recorded by the first call
        logged = {r["step"]: r for r in map(json.loads, (tmp_path / "run" / "success.jsonl").read_text().splitlines())}
    assert [h["step"] for h in tr.success_history] == [0, 2, 4]
    assert all(h == logged[h["step"]] for h in tr.success_history)


def test_train_arguments_are_checked():
    policy, task = tabular()
    tr = Trainer(TrainConfig(**CFG), policy=policy, task=task)
    with pytest.raises(ValueError, match="success_at"):
        tr.train(success_at=[-1])
    with pytest.raises(TypeError, match="callbacks"):
        tr.train(callbacks=[42])
    with pytest.raises(ValueError, match="steps"):
        tr.train(steps=-1)


def test_clone_trainable_and_frozen(tiny_policy_factory):
    lm = tiny_policy_factory()
    tab, _ = tabular()
    for pol in (lm, tab):
        frozen, live = pol.clone(), pol.clone(trainable=True)
        assert not any(p.requires_grad for p in frozen.parameters())
        assert all(p.requires_grad for p in live.parameters())
        with torch.no_grad():
            for p in live.parameters():
                p.add_(1.0)  # a deep copy: the original does not move
        assert all(torch.equal(a, b) for a, b in zip(pol.parameters(), frozen.parameters()))
        assert not any(torch.equal(a, b) for a, b in zip(pol.parameters(), live.parameters()))
    assert not lm.clone(trainable=True).model.training  # eval mode: sampling and scoring agree (no dropout)


def test_a_trainable_clone_trains(tiny_policy_factory):
    base, task = tabular()
    tr = Trainer(TrainConfig(**CFG), policy=base.clone(trainable=True), task=task)
    before = tr.policy.logits.detach().clone()
    tr.train()
    assert not torch.equal(before, tr.policy.logits.detach()) and torch.equal(before, base.logits.detach())


def test_policies_satisfy_the_protocols(tiny_policy_factory):
    lm, (tab, _) = tiny_policy_factory(), tabular()
    assert isinstance(lm, Policy) and isinstance(tab, Policy)
    assert isinstance(tab, ExactKLPolicy) and not isinstance(lm, ExactKLPolicy)
    assert isinstance(lm, SavablePolicy) and not isinstance(tab, SavablePolicy)
    with pytest.raises(TypeError, match="Policy"):
        Trainer(TrainConfig(**CFG), policy=object(), task=tabular()[1])
    with pytest.raises(ValueError, match="sequence_kl"):
        Trainer(TrainConfig(**CFG, beta=0.1, kl_estimator="exact"), policy=lm, task=tabular()[1])


def test_new_names_are_exported():
    for name in ("Policy", "ExactKLPolicy", "SavablePolicy", "Callback", "MACHINE_METRICS", "RunLock",
                 "RunDirError", "tempered_logprobs", "estimate_step_memory", "EnumeratedTask"):
        assert name in training.__all__ and getattr(training, name) is not None


def test_warm_start_of_a_given_model_is_applied_or_recorded_as_none(tmp_path, tiny_policy_factory):
    """--model: no warm start unless asked, and the recorded config says 0; asked, it is applied."""
    tiny_policy_factory(seed=5).save_pretrained(tmp_path / "m")
    saved = torch.cat([p.flatten() for p in tiny_policy_factory(seed=5).parameters()])
    common = dict(task="mod", n_prompts=4, num_generations=2, prompts_per_step=2, steps=0, model=str(tmp_path / "m"))
    plain = Trainer(TrainConfig(**common))
    assert plain.config.warm_start_steps == 0
    assert torch.equal(torch.cat([p.detach().flatten() for p in plain.policy.parameters()]), saved)
    warmed = Trainer(TrainConfig(**common, warm_start_steps=3), tmp_path / "run")
    assert json.loads((tmp_path / "run" / "config.json").read_text())["warm_start_steps"] == 3
    assert not torch.equal(torch.cat([p.detach().flatten() for p in warmed.policy.parameters()]), saved)
    assert TrainConfig().warm_start_steps == 60  # a fresh model keeps its warm start


def test_evaluation_uses_the_runs_completion_length(tiny_policy_factory):
    """``--max-new-tokens`` shorter than the task's: the logged exact p is the probability of an
    accepted completion within the run's limit, not within the task's own (they differ by the
    stop token's probability, which a wrong wiring would miss)."""
    from rlvrlens.training import get_task, success_probabilities

    task = get_task("mod", n=4)
    tr = Trainer(TrainConfig(task="mod", n_prompts=4, max_new_tokens=1, warm_start_steps=0, steps=1),
                 policy=tiny_policy_factory(), task=task)
    assert tr.max_new_tokens == 1 < task.max_new_tokens
    logged = np.array(tr.evaluate()["p"])
    with torch.no_grad():
        own = np.array(success_probabilities(tr.policy, task, max_new_tokens=1)["p"])
        task_length = np.array(success_probabilities(tr.policy, task)["p"])
    np.testing.assert_allclose(logged, own, rtol=1e-6)
    assert np.max(np.abs(task_length - own)) > 1e-3


def test_chat_template_option_needs_a_model_and_reaches_the_cli():
    from rlvrlens.commands.training import register
    import argparse

    with pytest.raises(ValueError, match="chat_template applies to a pretrained model"):
        TrainConfig(chat_template=False)
    with pytest.raises(TypeError, match="chat_template must be"):
        TrainConfig(model="m", chat_template="yes")
    assert TrainConfig(model="m", chat_template=False).chat_template is False
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["train", "--out", "x", "--no-chat-template"])
    assert args.chat_template is False


@pytest.mark.parametrize("optim", ["adamw", "sgd"])
def test_a_diverged_run_stops_in_one_line(tiny_policy_factory, optim):
    """A step that makes the weights or logits overflow stops the run naming the parameters to lower
    (the old code failed in torch.multinomial with a traceback, or logged null success). NSR pushes
    every wrong answer down, so a fresh model gets a gradient."""
    trainer = Trainer(TrainConfig(num_generations=4, prompts_per_step=2, steps=3, learning_rate=1e30, scheme="nsr",
                                  optim=optim, max_grad_norm=0.0),
                      policy=tiny_policy_factory(), task=training.get_task("mod", n=4))
    with pytest.raises(ValueError, match="NaN.*the run diverged.*learning_rate") as info:
        trainer.train(success_at=[1, 2, 3])
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("field,value", [("temperature", 1e-320), ("learning_rate", 1e308), ("epsilon_high", 1e308),
                                         ("adam_epsilon", 1e-320), ("top_p", 1e-320), ("beta", 1e-320),
                                         ("weight_decay", 1e39), ("warm_start_lr", 1e-320)])
def test_config_floats_are_normal_float32(field, value):
    """The model computes in float32: a value that overflows it or vanishes in it is refused by name."""
    with pytest.raises(ValueError, match=f"^{field} must be 0 or between 1.18e-38 and 3.4e\\+38"):
        TrainConfig(**{field: value})
