"""The trainer is right for real models (issue 13 item 4) and the bugs of issue 12, each checked
against an independent computation."""

import copy

import numpy as np
import pytest
import torch

from rlvrlens.training import TabularPolicy, Task, TrainConfig, Trainer
from rlvrlens.training.success import exact_success, success_probabilities
from rlvrlens.training.tasks import RewardFunction, get_task

TASK = dict(task="mod", n_prompts=4, warm_start_steps=0)


def capture(trainer):
    """Record the rollout each step samples and the gradient the optimizer is given."""
    rollouts, grads = [], []
    sample, step = trainer.policy.sample, trainer.optimizer.step

    def sample_and_keep(*args, **kwargs):
        r = sample(*args, **kwargs)
        rollouts.append(copy.copy(r))
        return r

    def step_and_keep(*args, **kwargs):
        grads.append([p.grad.detach().clone() for p in trainer.policy.parameters()])
        return step(*args, **kwargs)

    trainer.policy.sample = sample_and_keep
    trainer.optimizer.step = step_and_keep
    return rollouts, grads


def plain_logp(model, tokenizer, prompt, completion_ids, temperature):
    """log pi_T(y|x) summed over the completion, by one plain forward pass of prompt + completion."""
    ids = torch.tensor([tokenizer(prompt, add_special_tokens=False)["input_ids"] + completion_ids])
    logits = model(input_ids=ids).logits[0, -len(completion_ids) - 1:-1].float()
    logits[:, tokenizer.pad_token_id] = float("-inf")
    logp = torch.log_softmax(logits / temperature, dim=-1)
    return logp[torch.arange(len(completion_ids)), torch.tensor(completion_ids)].sum()


@pytest.mark.parametrize("fused", [True, False])
def test_update_uses_the_tempered_distribution(tiny_policy_factory, fused):
    """The gradient the optimizer gets at temperature T = 0.5 is -(1/(B C)) sum_i Z_i grad log pi_T(y_i|x),
    with pi_T the softmax of logits / T, computed here by plain forward passes. Before the fix the
    trainer used log pi_1 (a different gradient: the check fails by far more than its 1e-4 tolerance)."""
    policy = tiny_policy_factory(seed=3)
    start = copy.deepcopy(policy.model)
    cfg = TrainConfig(**TASK, num_generations=4, prompts_per_step=2, temperature=0.5, max_new_tokens=4,
                      loss_aggregation="seq-sum-constant", aggregation_constant=1.0, max_grad_norm=0.0,
                      scheme="reinforce", gradient_accumulation_steps=1 if fused else 2)
    prompts = get_task("mod", n=4).prompts
    even = RewardFunction(lambda prompt, completion, answer: float(sum(map(ord, completion)) % 2 == 0), timeout=None)
    task = Task("even", prompts, ("",) * 4, verifier="custom", reward_fn=even, max_new_tokens=4)
    tr = Trainer(cfg, policy=policy, task=task)
    rollouts, grads = capture(tr)
    tr.rl_step()
    r = rollouts[0]
    Z = torch.as_tensor(task.rewards(r.prompts, r.texts))  # REINFORCE: Z = r
    assert 0 < Z.sum() < len(r)  # a gradient that is not zero
    loss = 0.0
    for i in range(len(r)):
        n = int(r.mask[i].sum())
        loss = loss - Z[i] * plain_logp(start, policy.tokenizer, r.prompts[i], r.completion_ids[i, :n].tolist(), 0.5)
    loss = loss / len(r)
    loss.backward()
    for got, p in zip(grads[0], start.parameters()):
        assert torch.allclose(got, p.grad, atol=1e-4 * p.grad.abs().max().item() + 1e-7)


def test_scores_ratios_and_kl_use_the_tempered_logits(tiny_policy_factory):
    """Sampling's own scores, teacher forcing and an independent forward all give log pi_T; and
    the first-step KL to pi_ref (same temperature) is 0."""
    policy = tiny_policy_factory(seed=1)
    g = torch.Generator().manual_seed(0)
    r = policy.sample(["3+4="], 6, generator=g, temperature=0.5, max_new_tokens=3, with_grad=True)
    tf, _ = policy.token_logprobs(r, temperature=0.5)
    for i in range(len(r)):
        n = int(r.mask[i].sum())
        want = plain_logp(policy.model, policy.tokenizer, r.prompts[i], r.completion_ids[i, :n].tolist(), 0.5)
        assert torch.allclose(r.logp[i].sum(), want, atol=1e-5) and torch.allclose(tf[i].sum(), want, atol=1e-5)
    untempered, _ = policy.token_logprobs(r)
    assert (untempered - tf).abs().max() > 0.1  # temperature 1 would be a different distribution
    tr = Trainer(TrainConfig(**TASK, temperature=0.5, beta=0.1, num_iterations=2, num_generations=4,
                             prompts_per_step=2), policy=policy)
    assert abs(tr.rl_step()["kl"]) < 1e-6


def test_top_p_scores_are_the_renormalised_nucleus():
    """A tabular policy sampled at T = 0.5, top_p = 0.7: the empirical frequencies of 40000 draws
    match exp(token_logprobs) within 4 standard errors (about 0.01); temperature-1 scores are off by > 0.1."""
    logits = torch.tensor([[2.0, 1.0, 0.5, 0.0]])
    pol = TabularPolicy(["x"], ["a", "b", "c", "d"], logits)
    N = 40000
    r = pol.sample(["x"], N, generator=torch.Generator().manual_seed(0), temperature=0.5, top_p=0.7)
    freq = torch.bincount(r.completion_ids[:, 0], minlength=4).double() / N
    enc = pol.encode(["x"] * 4, ["a", "b", "c", "d"])
    p = pol.token_logprobs(enc, temperature=0.5, top_p=0.7)[0][:, 0].exp().double()
    q = torch.softmax(logits[0] / 0.5, -1).double()  # independent: sort, keep mass-before < top_p, renormalise
    order = torch.argsort(q, descending=True)
    keep = torch.zeros(4, dtype=torch.bool)
    keep[order[(q[order].cumsum(0) - q[order]) < 0.7]] = True
    nucleus = torch.where(keep, q, torch.zeros_like(q)) / q[keep].sum()
    se = torch.sqrt(nucleus * (1 - nucleus) / N)
    assert torch.all((freq - nucleus).abs() <= 4 * se + 1e-12)
    assert torch.allclose(p[keep], nucleus[keep], atol=1e-6)
    assert (pol.token_logprobs(enc)[0][:, 0].exp() - freq).abs().max() > 0.1
    sampled = pol.sample(["x"], 8, generator=torch.Generator().manual_seed(1), temperature=0.5, top_p=0.7,
                         with_grad=True)
    assert torch.isfinite(sampled.logp).all()


def test_seq_sum_constant_divides_by_max_new_tokens(tiny_policy_factory):
    """TRL's dr_grpo: sum / (B * max_completion_length), not the batch's padded length (here 3 of 8)."""
    policy = tiny_policy_factory()
    task = Task("t", ("1+1=", "2+2="), ("2", "4"), max_new_tokens=8)
    tr = Trainer(TrainConfig(**TASK, loss_aggregation="seq-sum-constant", num_generations=2, prompts_per_step=2),
                 policy=policy, task=task)
    rollout = policy.encode(["1+1=", "2+2="], ["1", "22"])  # 2 and 3 tokens with EOS
    Z = torch.tensor([1.0, -0.5])
    loss, _, _ = tr._loss(rollout, None, Z, None, float(rollout.mask.sum()))
    assert loss.item() == pytest.approx(-(1.0 * 2 - 0.5 * 3) / (2 * 8))  # at ratio 1 the token loss is -Z
    tr.config.aggregation_constant = 1.0
    assert tr._loss(rollout, None, Z, None, 5.0)[0].item() == pytest.approx(-(2 - 1.5) / 2)


def test_dapo_counts_tokens_over_the_whole_batch(tiny_policy_factory):
    """dapo: sum over a micro-batch / tokens of the whole batch; bnpo: per micro-batch mean."""
    policy = tiny_policy_factory()
    task = Task("t", ("1+1=", "2+2="), ("2", "4"), max_new_tokens=8)
    rollout = policy.encode(["1+1=", "2+2="], ["1", "2222"])  # 2 and 5 tokens
    Z = torch.tensor([1.0, 1.0])
    for mode, want in [("dapo", -2 / 7), ("bnpo", -1.0), ("token-mean", -1.0)]:
        tr = Trainer(TrainConfig(**TASK, loss_aggregation=mode, num_generations=2, prompts_per_step=2),
                     policy=policy, task=task)
        first = rollout.select([0])
        assert tr._loss(first, None, Z[:1], None, float(rollout.mask.sum()))[0].item() == pytest.approx(want)
    assert TrainConfig(loss_aggregation="token-mean").loss_aggregation == "bnpo"
    assert TrainConfig(loss_aggregation="dr_grpo").loss_aggregation == "seq-sum-constant"


def test_adam_beta2_is_the_hugging_face_default():
    policy = TabularPolicy(["x"], ["a", "b"])
    tr = Trainer(TrainConfig(num_generations=2, prompts_per_step=1), policy=policy, task=Task("t", ("x",), ("a",)))
    assert TrainConfig().adam_beta2 == 0.999 and tr.optimizer.param_groups[0]["betas"] == (0.9, 0.999)


def test_kl_in_reward_uses_the_chosen_estimator_and_refuses_exact():
    """KL in the reward (REINFORCE++): the update is REINFORCE's with the shaped reward
    r_i - beta * k(log rho_i) of each sampled answer, k the chosen estimator. The gradient the
    optimiser gets is checked against that formula written out for the tabular softmax,
    -(1/M) sum_i Z_i (e_{y_i} - pi), for k1, k2 and k3 (a wrong or a missing estimator gives another
    gradient: before the fix k2/k3 silently used k1, and 'exact' applied no KL at all)."""
    with pytest.raises(ValueError, match="kl_in_reward"):
        TrainConfig(beta=0.1, kl_estimator="exact", kl_in_reward=True)
    ref_logits, logits = torch.tensor([[0.5, 0.0, -0.5]]), torch.tensor([[1.5, -1.0, 0.2]])
    estimators = {"k1": lambda r: r, "k2": lambda r: 0.5 * r**2, "k3": lambda r: torch.exp(-r) - 1 + r}
    for kind in estimators:
        pol = TabularPolicy(["x"], ["a", "b", "c"], ref_logits.clone())
        cfg = TrainConfig(num_generations=8, prompts_per_step=1, beta=1.0, kl_estimator=kind, kl_in_reward=True,
                          scheme="reinforce", learning_rate=0.5, max_grad_norm=0.0, steps=1)
        tr = Trainer(cfg, policy=pol, task=Task("t", ("x",), ("a",)))
        with torch.no_grad():
            pol.logits.copy_(logits)  # away from pi_ref (the trainer's copy of the start)
        rollouts, seen = capture(tr)
        tr.rl_step()
        y = rollouts[0].completion_ids[:, 0]
        pi = torch.softmax(logits, -1)[0]
        log_rho = torch.log_softmax(logits, -1)[0, y] - torch.log_softmax(ref_logits, -1)[0, y]
        score = torch.nn.functional.one_hot(y, 3).float() - pi
        grads = {name: -(((y == 0).float() - est(log_rho))[:, None] * score).mean(0) for name, est in estimators.items()}
        torch.testing.assert_close(seen[0][0][0], grads[kind], rtol=1e-5, atol=1e-6)
        for other in set(estimators) - {kind}:  # the same samples with another estimator: detectably different
            assert (grads[other] - grads[kind]).abs().max() > 1e-3, (kind, other)


def test_exact_kl_as_a_loss_term():
    """kl_estimator 'exact' adds beta * KL(pi || pi_ref) to the loss: with every answer wrong,
    REINFORCE's weights are 0 and the gradient is beta * grad KL, checked against autograd of the formula."""
    pol = TabularPolicy(["x"], ["a", "b"], torch.tensor([[1.0, 0.0]]))
    cfg = TrainConfig(num_generations=2, prompts_per_step=1, beta=0.7, kl_estimator="exact", scheme="reinforce",
                      learning_rate=0.1, max_grad_norm=0.0)
    tr = Trainer(cfg, policy=pol, task=Task("t", ("x",), ("z",)))  # "z" is not an answer: rewards 0
    with torch.no_grad():
        pol.logits.copy_(torch.tensor([[2.0, -1.0]]))  # away from pi_ref = softmax([1, 0])
    _, grads = capture(tr)
    assert tr.rl_step()["kl"] > 0
    logits = torch.tensor([[2.0, -1.0]], requires_grad=True)
    p, q = torch.softmax(logits, -1), torch.softmax(torch.tensor([[1.0, 0.0]]), -1)
    (0.7 * (p * (p.log() - q.log())).sum()).backward()
    assert torch.allclose(grads[0][0], logits.grad, atol=1e-6) and logits.grad.abs().max() > 0.01


def test_memory_figure_per_step(tiny_policy_factory):
    """memory/peak_rss_mb is the process's peak resident set size in MiB when the step ends: between
    getrusage's reading before the step and after it (bytes, KiB or the current RSS would fall outside)."""
    import resource

    tr = Trainer(TrainConfig(**TASK, num_generations=2, prompts_per_step=2), policy=tiny_policy_factory())
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    m = tr.rl_step()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert before <= m["memory/peak_rss_mb"] <= after


def test_bf16_autocast_on_cpu_and_fp16_refused(tiny_policy_factory):
    base = TrainConfig(**TASK, num_generations=4, prompts_per_step=2, max_grad_norm=0.0, seed=2)
    a = Trainer(base, policy=tiny_policy_factory(seed=2))
    b = Trainer(TrainConfig(**{**base.to_dict(), "precision": "bf16"}), policy=tiny_policy_factory(seed=2))
    ma, mb = a.rl_step(), b.rl_step()
    assert np.isfinite(mb["loss"]) and np.isfinite(mb["grad_norm"])
    assert mb["entropy"] != ma["entropy"]  # bf16 logits: the autocast is in effect
    assert abs(mb["entropy"] - ma["entropy"]) < 0.05 * ma["entropy"]
    with pytest.raises(ValueError, match="fp16"):
        Trainer(TrainConfig(**{**base.to_dict(), "precision": "fp16"}), policy=tiny_policy_factory())


def test_gradient_checkpointing_recomputes_and_gives_the_same_update(tiny_policy_factory):
    """Same parameters after a step; and each micro-batch's layers run once more in the backward pass."""
    cfg = dict(TASK, num_generations=4, prompts_per_step=2, gradient_accumulation_steps=2, max_grad_norm=0.0)
    params, calls = [], []
    for ckpt in (False, True):
        policy = tiny_policy_factory(seed=4)
        policy.share_prompt_prefix = False  # the same forward passes as with checkpointing
        tr = Trainer(TrainConfig(**cfg, gradient_checkpointing=ckpt), policy=policy)
        count = [0]
        # a pre-hook: the recomputation stops early, once the tensors the backward needs are back
        tr.policy.model.transformer.h[0].mlp.register_forward_pre_hook(lambda *a: count.__setitem__(0, count[0] + 1))
        tr.rl_step()
        params.append(torch.cat([p.detach().flatten() for p in tr.policy.parameters()]))
        calls.append(count[0])
    assert torch.allclose(params[0], params[1], atol=1e-6)
    assert calls[1] - calls[0] == 2  # one recomputation per micro-batch
    with pytest.raises(ValueError, match="CausalLMPolicy"):
        Trainer(TrainConfig(num_generations=2, prompts_per_step=1, gradient_checkpointing=True),
                policy=TabularPolicy(["x"], ["a", "b"]), task=Task("t", ("x",), ("a",)))


def test_success_follows_the_model_dtype(tiny_policy_factory):
    """A float64 model (a non-default dtype; the device path itself is checked where CUDA exists):
    the result is on the model's device and equals the float32 model's to float32 accuracy."""
    task = get_task("mod", n=4)
    p32 = exact_success(tiny_policy_factory(), task)
    pol = tiny_policy_factory()
    pol.model.double()
    p64 = exact_success(pol, task)
    assert p64.device == pol.device and p64.is_floating_point()
    assert torch.allclose(p64.float(), p32, rtol=1e-4)
    assert np.allclose(success_probabilities(pol, task)["p"], p64.detach().numpy())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_device_path(tiny_policy_factory):
    task = get_task("mod", n=4)
    pol = tiny_policy_factory()
    pol.model.to("cuda")
    p = exact_success(pol, task)
    assert p.device.type == "cuda"
    assert np.allclose(success_probabilities(pol, task)["p"], p.detach().cpu().numpy())
    for precision in ("fp32", "bf16", "fp16"):
        tr = Trainer(TrainConfig(**TASK, num_generations=4, prompts_per_step=2, device="cuda", precision=precision,
                                 beta=0.04, steps=2), policy=tiny_policy_factory())
        hist = tr.train(success_at=[0, 2])
        assert all(np.isfinite(h["loss"]) and h["memory/max_allocated_mb"] > 0 for h in hist)
        assert len(tr.success_history) == 2


@pytest.mark.parametrize("mode", ["seq-sum-constant", "seq-mean-token-mean"])
def test_which_aggregation_keeps_the_policy_gradient_identity(tiny_policy_factory, mode):
    """E[update] = h'(p) grad p needs each sequence's score weighed by a constant. Enumerating every
    completion of at most 2 tokens (lengths 1 and 2), the trainer's loss with weights Z(y) = 1{y in C},
    C the completions that end with EOS,
    (the right-answer part of any scheme) has expected gradient -grad p / max_new_tokens under
    seq-sum-constant (to 1e-5 relative), while GRPO's per-sequence token mean weighs each by 1/|y|
    and leaves the direction of grad p (cosine 0.983 on this seed; the test asks < 0.999)."""
    policy = tiny_policy_factory(seed=6)
    tok = policy.tokenizer
    eos, pad = tok.eos_token_id, tok.pad_token_id
    vocab = [t for t in range(len(tok)) if t not in (eos, pad)]
    rows = [[eos, pad]] + [[a, eos] for a in vocab] + [[a, b] for a in vocab for b in vocab]
    prompt = "3+4="
    rollout = policy.rollout_from_tokens([prompt] * len(rows), torch.tensor(rows))
    right = torch.tensor([eos in r for r in rows])  # C: the completions that end (lengths 1 and 2, similar mass)
    logp_seq = policy.token_logprobs(rollout)[0].sum(-1)
    probs = logp_seq.exp()
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-5)  # the enumeration is complete
    policy.model.zero_grad()
    probs[right].sum().backward()
    grad_p = torch.cat([p.grad.flatten() for p in policy.parameters()])
    policy.model.zero_grad()
    task = Task("t", (prompt,), ("",), max_new_tokens=2)
    tr = Trainer(TrainConfig(loss_aggregation=mode, num_generations=2, prompts_per_step=1, max_new_tokens=2),
                 policy=policy, task=task)
    Z = len(rows) * probs.detach() * right  # batch mean of Z_i * (.) = expectation over y ~ pi
    loss, _, _ = tr._loss(rollout, None, Z, None, float(rollout.mask.sum()))
    loss.backward()
    update = -torch.cat([p.grad.flatten() for p in policy.parameters()])
    cos = torch.dot(update, grad_p) / (update.norm() * grad_p.norm())
    if mode == "seq-sum-constant":
        assert torch.allclose(update, grad_p / 2, rtol=1e-5, atol=1e-5 * grad_p.abs().max().item())
    else:
        assert cos < 0.999
