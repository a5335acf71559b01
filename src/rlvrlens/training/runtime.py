"""torch run-time settings the layers above need without importing torch themselves.

The layer contract (``tests/test_layers.py``) keeps torch inside :mod:`rlvrlens.training` and
:mod:`rlvrlens.validation`; the commands and the reproductions get a seeded random generator and a
bounded number of CPU threads through these functions instead (and the memory a device has).

Examples
--------
>>> a = seeded_generator(3)
>>> b = seeded_generator(3)
>>> import torch
>>> bool(torch.equal(torch.rand(4, generator=a), torch.rand(4, generator=b)))
True
>>> before = torch.get_num_threads()
>>> with limit_threads(1):
...     torch.get_num_threads()
1
>>> torch.get_num_threads() == before
True
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import torch

from rlvrlens.core.checks import check_int


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed``: the same seed, the same draws.

    Parameters
    ----------
    seed : int
        The seed, in ``[0, 2**64)``.

    Returns
    -------
    torch.Generator
        A new CPU generator.

    Raises
    ------
    ValueError
        If ``seed`` is out of range.

    Examples
    --------
    >>> torch.rand(2, generator=seeded_generator(1)).tolist() == torch.rand(2, generator=seeded_generator(1)).tolist()
    True
    """
    seed = check_int("seed", seed, minimum=0, maximum=2**64 - 1)
    return torch.Generator().manual_seed(seed)


def device_memory(device: torch.device) -> int:
    """Bytes of memory of ``device``: a CUDA device's total, or the machine's physical memory."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


@contextmanager
def limit_threads(n: int) -> Iterator[int]:
    """Run the block with at most ``n`` (>= 1) intra-op CPU threads; restore the old count after.

    Small models gain nothing from many threads, and on a shared CPU the threads thrash. The count
    is ``min(n, torch.get_num_threads())`` (never raised) and is yielded.

    Parameters
    ----------
    n : int
        Most threads, ``>= 1``.

    Yields
    ------
    int
        The thread count used inside the block.

    Raises
    ------
    ValueError
        If ``n < 1``.

    Examples
    --------
    >>> with limit_threads(1) as used:
    ...     used
    1
    """
    check_int("n", n, minimum=1)
    before = torch.get_num_threads()
    used = min(n, before)
    torch.set_num_threads(used)
    try:
        yield used
    finally:
        torch.set_num_threads(before)
