"""Tiny, offline TRL set-up: a char-level tokenizer, a 2-layer GPT-2 and an arithmetic prompt set.

TRL is an optional extra: every fixture imports it lazily, and each test module starts with
``pytest.importorskip("trl")`` so that the core suite skips these tests when TRL is absent.
"""

import pytest

CHARS = "0123456789+= "


def build_tokenizer():
    """A char-level ``PreTrainedTokenizerFast`` over digits, ``+``, ``=`` and space, with pad and EOS."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<eos>": 1, "<unk>": 2, **{c: i + 3 for i, c in enumerate(CHARS)}}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    core.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>"
    )


def build_model(vocab_size: int, seed: int = 0):
    """A 2-layer, width-64 GPT-2 with random weights (nothing is downloaded)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=vocab_size, n_positions=32, n_embd=64, n_layer=2, n_head=2,
                        bos_token_id=1, eos_token_id=1, pad_token_id=0)
    return GPT2LMHeadModel(config)


def build_prompts():
    """16 prompts ``a+b=`` with the answer ``(a+b) mod 10`` and an id column."""
    from datasets import Dataset

    rows = [{"prompt": f"{a}+{b}=", "answer": str((a + b) % 10), "prompt_id": f"q{a}{b}"}
            for a in range(4) for b in range(4)]
    return Dataset.from_list(rows)


@pytest.fixture(scope="session")
def tokenizer():
    return build_tokenizer()


@pytest.fixture()
def make_model(tokenizer):
    return lambda seed=0: build_model(len(tokenizer), seed)


@pytest.fixture(scope="session")
def prompts():
    return build_prompts()


@pytest.fixture()
def grpo_config(tmp_path):
    def make(**overrides):
        from trl import GRPOConfig

        kwargs = dict(output_dir=str(tmp_path / "out"), max_steps=2, per_device_train_batch_size=8,
                      num_generations=4, max_completion_length=4, use_vllm=False, report_to="none",
                      bf16=False, use_cpu=True, logging_steps=1, save_strategy="no",
                      learning_rate=1e-3, seed=0, disable_tqdm=True)
        kwargs.update(overrides)
        return GRPOConfig(**kwargs)

    return make


class RewardLog:
    """A 0/1 reward (the answer digit occurs in the completion) that remembers each call's outputs."""

    __name__ = "contains_answer"

    def __init__(self):
        self.calls = []  # (prompt_ids, rewards) per call, in call order

    def __call__(self, completions, answer, prompt_id, **kwargs):
        rewards = [float(a in c) for c, a in zip(completions, answer)]
        self.calls.append((list(prompt_id), rewards))
        return rewards


@pytest.fixture()
def reward_log():
    return RewardLog()
