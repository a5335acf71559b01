"""rlvrlens.training.runtime: the seeded generator and the thread limit the upper layers use."""

from __future__ import annotations

import pytest
import torch

from rlvrlens.training import limit_threads, seeded_generator


def test_the_same_seed_gives_the_same_draws_and_another_seed_others():
    a, b, c = (torch.rand(8, generator=seeded_generator(s)) for s in (5, 5, 6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.equal(a, torch.rand(8, generator=torch.Generator().manual_seed(5)))  # torch's own seeding


@pytest.mark.parametrize("seed,error", [(-1, ValueError), (2**64, ValueError), (1.5, TypeError), (True, TypeError)])
def test_a_bad_seed_is_refused(seed, error):
    with pytest.raises(error, match="seed"):
        seeded_generator(seed)


def test_limit_threads_lowers_never_raises_and_restores_even_after_an_error():
    before = torch.get_num_threads()
    with limit_threads(1) as used:
        assert used == 1 == torch.get_num_threads()
    assert torch.get_num_threads() == before
    with limit_threads(before + 5) as used:
        assert used == before == torch.get_num_threads()
    with pytest.raises(RuntimeError, match="boom"), limit_threads(1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="n must be"):
        with limit_threads(0):
            pass
