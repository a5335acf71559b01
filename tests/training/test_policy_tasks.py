"""Policies, tokenizer, tasks, verifiers, reward hooks and success probabilities."""

import json
import math
import time

import numpy as np
import pytest
import torch

from rlvrlens.training.policy import CausalLMPolicy, Rollout, TabularPolicy, top_p_filter
from rlvrlens.training.success import estimate_success, exact_success, wilson_interval
from rlvrlens.training.task import RewardError, RewardFunction, Task, numeric_match
from rlvrlens.training.tasks import addition, chain_sum, get_task, load_jsonl, modular_arithmetic
from rlvrlens.training.tokenizer import char_tokenizer


def test_char_tokenizer_round_trips_through_save_pretrained(tmp_path):
    from transformers import AutoTokenizer

    tok = char_tokenizer()
    tok.save_pretrained(tmp_path)
    tok2 = AutoTokenizer.from_pretrained(tmp_path)
    ids = tok("37+5%7=", add_special_tokens=False)["input_ids"]
    assert tok2("37+5%7=", add_special_tokens=False)["input_ids"] == ids == [tok.convert_tokens_to_ids(c) for c in "37+5%7="]
    assert tok2.decode(ids) == "37+5%7="
    with pytest.raises(ValueError, match="repeat"):
        char_tokenizer("aa")


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_batched_logprobs_equal_single_row_logprobs(tiny_policy_factory, arch):
    pol = tiny_policy_factory(arch=arch)
    g = torch.Generator().manual_seed(0)
    r = pol.sample(["12+3=", "7*8=", "1="], 2, generator=g, max_new_tokens=5)
    assert r.prompts == ["12+3="] * 2 + ["7*8="] * 2 + ["1="] * 2
    logp, ent = pol.token_logprobs(r)
    assert torch.isfinite(logp).all() and torch.isfinite(ent).all()
    for i in range(len(r)):
        one = Rollout([r.prompts[i]], r.completion_ids[i:i + 1], r.mask[i:i + 1], [r.texts[i]], r.finished[i:i + 1])
        assert pol.token_logprobs(one)[0].sum().item() == pytest.approx(logp[i].sum().item(), abs=1e-4)


def test_sampling_frequencies_match_teacher_forced_probabilities(tiny_policy_factory):
    pol = tiny_policy_factory(seed=1)
    g = torch.Generator().manual_seed(0)
    n = 4000
    r = pol.sample(["5+5="], n, generator=g, max_new_tokens=1)
    # probability of each first token from teacher forcing
    vocab = len(pol.tokenizer)
    toks = torch.arange(vocab)
    allr = Rollout(["5+5="] * vocab, toks[:, None], torch.ones(vocab, 1), [""] * vocab, torch.zeros(vocab, dtype=torch.bool))
    probs = pol.token_logprobs(allr)[0][:, 0].exp().detach()
    assert probs[pol.tokenizer.pad_token_id] == 0 and probs.sum().item() == pytest.approx(1, abs=1e-5)
    counts = torch.bincount(r.completion_ids[:, 0], minlength=vocab).float()
    chi2 = (((counts - n * probs) ** 2) / (n * probs).clamp(min=1e-12))[probs > 0].sum().item()
    assert chi2 < vocab + 5 * math.sqrt(2 * vocab)  # chi-square with ~vocab-2 dof, 5 sigma


def test_eos_stops_and_masks(tiny_policy_factory):
    pol = tiny_policy_factory()
    r = pol.encode(["1+1=", "9+9="], ["2", "18"])
    eos, pad = pol.tokenizer.eos_token_id, pol.tokenizer.pad_token_id
    assert r.completion_ids.tolist()[0][1] == eos and r.completion_ids.tolist()[0][2] == pad
    assert r.mask.tolist() == [[1, 1, 0], [1, 1, 1]]
    assert r.texts == ["2", "18"] and r.finished.all()


def test_top_p_filter_keeps_smallest_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = torch.isfinite(top_p_filter(logits, 0.75)).tolist()
    assert kept == [[True, True, False, False]]
    assert torch.isfinite(top_p_filter(logits, 0.1)).tolist() == [[True, False, False, False]]


def test_save_and_load_pretrained(tmp_path, tiny_policy_factory):
    pol = tiny_policy_factory()
    pol.save_pretrained(tmp_path)
    pol2 = CausalLMPolicy.from_pretrained(tmp_path)
    task = modular_arithmetic(4)
    assert torch.allclose(exact_success(pol, task), exact_success(pol2, task))
    with pytest.raises(ValueError, match="neither a known name"):
        CausalLMPolicy.from_pretrained(tmp_path / "nope")


def test_tabular_policy_interface_and_exact_kl():
    pol = TabularPolicy(["x", "y"], ["a", "b", "c"], torch.log(torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]])))
    r = pol.encode(["x", "y"], ["c", "a"])
    assert pol.token_logprobs(r)[0].exp().squeeze(-1).tolist() == pytest.approx([0.5, 0.6])
    ref = TabularPolicy(["x", "y"], ["a", "b", "c"])
    kl = pol.sequence_kl(ref, ["x"]).item()
    assert kl == pytest.approx(sum(q * math.log(q * 3) for q in (0.2, 0.3, 0.5)))
    g = torch.Generator().manual_seed(0)
    s = pol.sample(["x"], 5000, generator=g)
    freq = np.bincount(s.completion_ids[:, 0].numpy(), minlength=3) / 5000
    assert np.allclose(freq, [0.2, 0.3, 0.5], atol=0.03)
    with pytest.raises(ValueError, match="answer set"):
        pol.encode(["x"], ["zzz"])
    task = Task("t", ("x", "y"), ("c", "a"))
    assert exact_success(pol, task).tolist() == pytest.approx([0.5, 0.6])


def test_builtin_tasks_are_seeded_and_verifiable():
    assert modular_arithmetic(10, seed=3) == modular_arithmetic(10, seed=3)
    assert modular_arithmetic(10, seed=3).prompts != modular_arithmetic(10, seed=4).prompts
    t = addition(20, seed=1, max_digits=3)
    for p, a in zip(t.prompts, t.answers):
        x, y = p[:-1].split("+")
        assert int(a) == int(x) + int(y)
    m = modular_arithmetic(20)
    for p, a in zip(m.prompts, m.answers):
        lhs, mod = p[:-1].split("%")
        x, y = lhs.split("+")
        assert int(a) == (int(x) + int(y)) % int(mod)
    c = chain_sum(10)
    assert not c.enumerable and c.accepted(0) is None
    assert c.rewards([c.prompts[0]], [c.solutions[0]]).tolist() == [1.0]
    assert c.rewards([c.prompts[0]], ["1,2," + c.answers[0]]).tolist() == [1.0]  # only the final number counts
    assert numeric_match("07", "7") and numeric_match(" 7.0", "7") and not numeric_match("x", "7")
    with pytest.raises(ValueError, match="task must be one of"):
        get_task("nonsense")


def test_jsonl_task(tmp_path):
    f = tmp_path / "t.jsonl"
    f.write_text(json.dumps({"prompt": "2+2=", "answer": "4"}) + "\n" + json.dumps({"prompt": "3+3=", "answer": "6"}) + "\n")
    t = load_jsonl(f, "numeric")
    assert t.rewards(["2+2=", "3+3="], ["4.0", "5"]).tolist() == [1.0, 0.0]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        load_jsonl(bad)


def test_reward_hook_errors_are_reported():
    def raises(p, c, a):
        raise RuntimeError("boom")

    def slow(p, c, a):
        time.sleep(1.0)
        return 1

    cases = [(raises, "raised RuntimeError: boom"), (slow, "timed out"), (lambda p, c, a: float("nan"), "non-finite"),
             (lambda p, c, a: 0.5, "not a 0/1"), (lambda p, c, a: "1", "not a number")]
    for fn, msg in cases:
        task = Task("t", ("x",), ("y",), "custom", reward_fn=RewardFunction(fn, timeout=0.2))
        with pytest.raises(RewardError, match=msg):
            task.rewards(["x"], ["y"])
    ok = Task("t", ("x",), ("y",), "custom", reward_fn=RewardFunction(lambda p, c, a: c == a))
    assert ok.rewards(["x", "x"], ["y", "z"]).tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="reward_fn"):
        Task("t", ("x",), ("y",), "custom")


def test_exact_success_matches_sampling_and_wilson_interval(tiny_policy_factory):
    from rlvrlens.training.sft import warm_start

    pol = tiny_policy_factory()
    task = modular_arithmetic(4, moduli=(3,))
    warm_start(pol, task, fraction=1.0, steps=15, lr=3e-3)
    p = exact_success(pol, task).detach().numpy()
    assert ((p > 0.02) & (p < 0.98)).any()
    est = estimate_success(pol, task, 400, generator=torch.Generator().manual_seed(0))
    assert np.all(np.abs(est.p - p) < 4 * np.sqrt(p * (1 - p) / 400) + 1e-3)
    lo, hi = wilson_interval(np.array([0, 5, 10]), 10)
    assert lo[0] == 0 and hi[2] == pytest.approx(1)
    assert (lo[1], hi[1]) == pytest.approx((0.2366, 0.7634), abs=1e-4)  # Wilson 5/10, 95% (textbook value)
    with pytest.raises(ValueError, match="enumerable"):
        exact_success(pol, chain_sum(3))


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_shared_prompt_prefix_gives_the_same_logprobs_and_gradients(tiny_policy_factory, arch):
    pol = tiny_policy_factory(arch=arch)
    r = pol.sample(["12+3=", "7*8=", "1="], 3, generator=torch.Generator().manual_seed(0), max_new_tokens=4)
    results = []
    for share in (True, False):
        pol.share_prompt_prefix = share
        pol.model.zero_grad()
        logp, ent = pol.token_logprobs(r)
        (logp.sum() + 0.1 * ent.sum()).backward()
        grad = torch.cat([p.grad.flatten() for p in pol.parameters() if p.grad is not None])
        results.append((logp.detach(), ent.detach(), grad))
    assert torch.allclose(results[0][0], results[1][0], atol=1e-5)
    assert torch.allclose(results[0][1], results[1][1], atol=1e-5)
    assert ((results[0][2] - results[1][2]).norm() / results[1][2].norm()).item() < 1e-5


def test_logprobs_recorded_while_sampling_equal_teacher_forcing(tiny_policy_factory):
    """The fused on-policy path: same samples (same seed), same log-probs and gradients as scoring later."""
    pol = tiny_policy_factory(seed=2)
    prompts = ["12+3=", "7*8=", "1="]
    fused = pol.sample(prompts, 3, generator=torch.Generator().manual_seed(5), max_new_tokens=4,
                       temperature=0.7, with_grad=True)
    plain = pol.sample(prompts, 3, generator=torch.Generator().manual_seed(5), max_new_tokens=4, temperature=0.7)
    assert torch.equal(fused.completion_ids, plain.completion_ids) and plain.logp is None
    grads = []
    for logp, ent in [(fused.logp, fused.entropy), pol.token_logprobs(plain, temperature=0.7)]:
        pol.model.zero_grad()
        (logp.sum() + 0.1 * ent.sum()).backward()
        grads.append(torch.cat([p.grad.flatten() for p in pol.parameters() if p.grad is not None]))
    ref_logp, ref_ent = pol.token_logprobs(plain, temperature=0.7)
    assert torch.allclose(fused.logp, ref_logp, atol=1e-5) and torch.allclose(fused.entropy, ref_ent, atol=1e-5)
    assert ((grads[0] - grads[1]).norm() / grads[1].norm()).item() < 1e-5


def test_oneof_verifier_is_enumerable():
    pol = TabularPolicy(["x"], ["a", "b", "c"], torch.log(torch.tensor([[0.2, 0.3, 0.5]])))
    task = Task("t", ("x",), ("a|c",), "oneof")
    assert task.accepted(0) == ["a", "c"] and task.enumerable
    assert task.rewards(["x"] * 3, ["a", "b", "c"]).tolist() == [1.0, 0.0, 1.0]
    assert exact_success(pol, task).item() == pytest.approx(0.7)


def test_scoring_after_sampling_equals_differentiating_the_decoding_loop(tiny_policy_factory):
    """``differentiate_sampling`` False (sample, then teacher forcing) and True (the decode itself)
    give the same tokens, log-probabilities (of the tempered nucleus) and gradients (to float32 rounding)."""
    out = []
    for fused in (True, False):
        pol = tiny_policy_factory(seed=2, arch="llama")
        pol.differentiate_sampling = fused
        r = pol.sample(["12+3=", "7*8="], 3, generator=torch.Generator().manual_seed(5), max_new_tokens=5,
                       temperature=0.7, top_p=0.9, with_grad=True)
        (r.logp.sum() + 0.1 * r.entropy.sum()).backward()
        out.append((r.completion_ids, r.logp.detach(), r.entropy.detach(),
                    torch.cat([p.grad.flatten() for p in pol.parameters()])))
    (ids1, lp1, en1, g1), (ids2, lp2, en2, g2) = out
    assert torch.equal(ids1, ids2)
    assert torch.allclose(lp1, lp2, atol=1e-5) and torch.allclose(en1, en2, atol=1e-5)
    assert torch.allclose(g1, g2, atol=1e-4, rtol=1e-4) and g1.abs().max() > 1e-3
