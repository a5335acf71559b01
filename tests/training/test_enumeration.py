"""Exact success under a subword tokenizer, against an independent brute-force expansion of the
sampling tree, and the refusal of tasks the tokenizer cannot encode (issue 11 item 4)."""

import itertools

import pytest
import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from rlvrlens.training.enumeration import (NotEnumerable, accepted_sequences, check_task_encodable,
                                           tokenizations, unencodable_characters)
from rlvrlens.training.policy import CausalLMPolicy
from rlvrlens.training.success import exact_success, success_probabilities
from rlvrlens.training.tasks import Task

#: A vocabulary where "abab" has a known number of tokenisations: a, b, ab, ba, aba.
PIECES = ("a", "b", "ab", "ba", "aba", "c")


def subword_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {"<pad>": 0, "<eos>": 1, "<unk>": 2, **{p: 3 + i for i, p in enumerate(PIECES)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")


def brute_force_tokenizations(text, max_tokens):
    """Every product of pieces, by itertools (independent of the trie search)."""
    out = set()
    for n in range(1, max_tokens + 1):
        for combo in itertools.product(PIECES, repeat=n):
            if "".join(combo) == text:
                out.add(combo)
    return out


@pytest.mark.parametrize("text,limit,expected", [("abab", 4, 6), ("abab", 3, 5), ("abab", 2, 2), ("ab", 2, 2),
                                                 ("aba", 3, 4), ("c", 1, 1), ("abc", 3, 2)])
def test_tokenizations_have_the_known_multiplicity(text, limit, expected):
    tok = subword_tokenizer()
    found = tokenizations(tok, text, limit)
    pieces = {tuple(tok.convert_ids_to_tokens(list(s))) for s in found}
    assert len(found) == len(pieces) == expected
    assert pieces == brute_force_tokenizations(text, limit)


def test_accepted_sequences_end_with_the_stop_token_unless_cut_at_the_limit():
    tok = subword_tokenizer()
    seqs = accepted_sequences(tok, ["ab"], 2)
    eos = tok.eos_token_id
    assert sorted(seqs) == sorted([(tok.convert_tokens_to_ids("ab"), eos),
                                   (tok.convert_tokens_to_ids("a"), tok.convert_tokens_to_ids("b"))])
    with pytest.raises(NotEnumerable, match="more than 3"):
        accepted_sequences(tok, ["abab"], 4, limit=3)


def sampling_tree_probability(policy, prompt, accepted, max_new_tokens):
    """P(text in accepted) by expanding every path of the sampler (next-token distributions, one
    step at a time, batched), independent of the enumeration: leaves end with EOS or at the limit."""
    tok = policy.tokenizer
    eos, pad = tok.eos_token_id, tok.pad_token_id
    total, frontier = 0.0, [((), 1.0)]
    for t in range(max_new_tokens):
        prefixes = [seq for seq, _ in frontier]
        ids, attn = policy._encode_prompts([prompt] * len(prefixes))
        if t:
            ids = torch.cat([ids, torch.tensor(prefixes)], dim=1)
            attn = torch.cat([attn, torch.ones(len(prefixes), t, dtype=attn.dtype)], dim=1)
        with torch.no_grad():
            logits = policy.model(input_ids=ids, attention_mask=attn).logits[:, -1, :].double()
        logits[:, pad] = float("-inf")
        probs = torch.softmax(logits, dim=-1)
        nxt = []
        for (seq, p), row in zip(frontier, probs.tolist()):
            for v, q in enumerate(row):
                if q == 0.0:
                    continue
                if v == eos:
                    total += p * q * (tok.decode(list(seq)) in accepted)
                elif t == max_new_tokens - 1:
                    total += p * q * (tok.decode(list(seq + (v,))) in accepted)
                else:
                    nxt.append((seq + (v,), p * q))
        frontier = nxt
    return total


@pytest.mark.parametrize("max_new_tokens", [3, 5])
def test_exact_success_matches_the_full_sampling_tree(max_new_tokens):
    """A random tiny model over the constructed vocabulary (9 tokens, 8 emittable): the enumeration
    must equal the sum over all 8^T sampler paths; one tokenisation alone is 1-2 orders smaller."""
    tok = subword_tokenizer()
    pol = CausalLMPolicy.from_config("llama", n_layer=1, width=16, n_head=2, seed=3, tokenizer=tok)
    with torch.no_grad():  # spread the logits so that tokenisations differ in probability
        pol.model.lm_head.weight.mul_(20)
    task = Task("sub", ("ab", "ba"), ("abab|ab", "aba"), "oneof", max_new_tokens=max_new_tokens)
    with torch.no_grad():
        exact = exact_success(pol, task).double()
    for i, prompt in enumerate(task.prompts):
        tree = sampling_tree_probability(pol, prompt, task.accepted(i), max_new_tokens)
        assert float(exact[i]) == pytest.approx(tree, rel=1e-5, abs=1e-9)
    # the old single-tokenisation sum misses mass (the tolerance above would catch it)
    with torch.no_grad():
        one = torch.exp(pol.token_logprobs(pol.encode(["ba"], ["aba"]))[0].sum(-1)).double()
    assert float(exact[1] - one[0]) > 1e-3 * float(exact[1])


def test_exact_success_gradient_is_that_of_the_sum_over_tokenisations():
    tok = subword_tokenizer()
    pol = CausalLMPolicy.from_config("gpt2", n_layer=1, width=16, n_head=2, seed=1, tokenizer=tok)
    task = Task("sub", ("ab",), ("ab",), "exact", max_new_tokens=3)
    p = exact_success(pol, task)[0]
    (g,) = torch.autograd.grad(p, [pol.model.lm_head.weight])
    seqs = accepted_sequences(tok, ["ab"], 3)
    manual = 0
    for seq in seqs:
        r = pol.rollout_from_tokens(["ab"], torch.tensor([list(seq)]))
        manual = manual + torch.exp(pol.token_logprobs(r)[0].sum())
    (g2,) = torch.autograd.grad(manual, [pol.model.lm_head.weight])
    assert len(seqs) == 2 and torch.allclose(g, g2, atol=1e-7) and g.abs().max() > 0


def test_unencodable_task_is_refused_naming_the_characters(tiny_policy_factory):
    pol = tiny_policy_factory()
    assert unencodable_characters(pol.tokenizer, "is 12 odd?") == []
    assert unencodable_characters(pol.tokenizer, "Yes") == ["Y"]
    task = Task("yn", ("is 3 odd?", "is 4 odd?"), ("Yes", "no"), "exact")
    with pytest.raises(ValueError, match=r"cannot encode: 'Y' \(in answer 0\)"):
        check_task_encodable(pol, task)
    with pytest.raises(ValueError, match="'Y'"):
        success_probabilities(pol, task)
    with pytest.raises(ValueError, match=r"'Q' \(in prompt 0\)"):
        check_task_encodable(pol, Task("q", ("Q?",), ("1",), "exact"))
    check_task_encodable(pol, Task("ok", ("is 3 odd?",), ("yes",), "exact"))  # fine


def test_success_probabilities_falls_back_to_an_estimate_and_says_why(tiny_policy_factory, monkeypatch):
    import rlvrlens.training.enumeration as en

    pol = tiny_policy_factory()
    task = Task("t", ("1+1=",), ("2",), "exact", max_new_tokens=3)
    assert success_probabilities(pol, task)["method"] == "exact"
    monkeypatch.setattr(en, "MAX_SEQUENCES", 0)
    monkeypatch.setattr(en.accepted_sequences, "__kwdefaults__", {"limit": 0})
    monkeypatch.setattr(en.exact_success_tokens, "__kwdefaults__", {"batch_size": 256, "limit": 0})
    out = success_probabilities(pol, task, K=8, generator=torch.Generator().manual_seed(0))
    assert out["method"] == "estimate(K=8)" and "more than 0" in out["why"] and len(out["low"]) == 1
