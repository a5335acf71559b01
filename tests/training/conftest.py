import pytest
import torch

from rlvrlens.training.policy import CausalLMPolicy


torch.set_num_threads(1)  # the test machine's cores are shared


@pytest.fixture(scope="session")
def tiny_policy_factory():
    """Fresh tiny GPT-2 policies (2 layers, width 64) with the char tokenizer."""
    def make(seed=0, arch="gpt2"):
        return CausalLMPolicy.from_config(arch, n_layer=2, width=64, seed=seed)

    return make
