"""Fixtures shared across the suite (one per pytest-xdist worker)."""

import pytest
import torch


@pytest.fixture(scope="session")
def tiny_setup():
    """The ``tiny`` validation size's warm-started transformer (modular arithmetic, exact p) and its
    chosen prompts, built once per worker: tests clone ``setup.policy`` before training it."""
    from rlvrlens.validation.setups import lm_setup
    from rlvrlens.validation.sizes import get_size

    torch.manual_seed(0)
    return lm_setup(get_size("tiny"))
