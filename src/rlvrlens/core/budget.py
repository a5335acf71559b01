"""Bounds on the sizes a user may ask for, checked before anything is allocated.

Each bound is stated once here and enforced where the size enters the package, so that every
command and every public function gets it; a request above it is refused in one line naming the
parameter and the largest value allowed (exit status 2 on the command line), at once and before
any large array exists:

* :func:`check_group_size`: the group size ``M`` of every scheme, preset, design, success map and
  configuration, at most :data:`MAX_GROUP_SIZE` (the range ``h_M`` is tested on; ``explain``, the
  costliest command per ``M``, takes about 20 s there);
* :data:`MAX_PROMPTS`: the prompts of a task (a built-in one's ``n``, a reasoning-gym ``size``,
  the lines of a JSONL task; reasoning-gym makes about 1500 prompts a second);
* :data:`MAX_STEPS`: the steps of an iteration a user asks for (``iterate --n``; about 40 s at
  ``M = 8``, one step costing about 0.4 ms);
* :func:`check_cells`: an array sized by the product of several parameters (a trajectory: steps
  times starts; a list of success probabilities; a batch of sampled completions), at most
  :data:`MAX_CELLS` float64 cells.

A training step's memory is estimated against the device's by the trainer
(:func:`rlvrlens.training.trainer.estimate_step_memory`).

Examples
--------
>>> check_group_size(16)
16
>>> check_group_size(10**9)
Traceback (most recent call last):
...
ValueError: M must be an integer >= 1 and <= 1000000, got 1000000000
>>> check_cells(3 * 10**8, parameter="n", value=10**8, what="the trajectory (n + 1 steps x 3 starts)")
Traceback (most recent call last):
...
ValueError: n = 100000000 is too large: the trajectory (n + 1 steps x 3 starts) would take 2.24 GB, more than the 1 GB a command may allocate; lower n
"""

from __future__ import annotations

from rlvrlens.core.checks import check_int

#: Largest group size M (answers per prompt) anywhere in the package.
MAX_GROUP_SIZE = 10**6
#: Most prompts of a task.
MAX_PROMPTS = 10**5
#: Most steps of an iteration of a success map.
MAX_STEPS = 10**5
#: Largest number of float64 cells of one array sized from several parameters (1 GiB).
MAX_CELLS = 2**27


def format_bytes(n: float) -> str:
    """``n`` bytes as a short human-readable size (binary units).

    >>> format_bytes(3 * 2**30), format_bytes(512)
    ('3 GB', '512 B')
    """
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1024 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def check_group_size(M: object, *, name: str = "M", minimum: int = 1) -> int:
    """``M`` as an int in ``[minimum, MAX_GROUP_SIZE]``, or a one-line error naming ``name``."""
    return check_int(name, M, minimum=minimum, maximum=MAX_GROUP_SIZE)


def check_cells(cells: int, *, parameter: str, value: object, what: str) -> None:
    """Refuse an array of ``cells`` float64 values above :data:`MAX_CELLS`, naming the ``parameter``
    (with its ``value``) that sized it and ``what`` the array is."""
    if cells > MAX_CELLS:
        raise ValueError(f"{parameter} = {value} is too large: {what} would take {format_bytes(8 * cells)}, more "
                         f"than the {format_bytes(8 * MAX_CELLS)} a command may allocate; lower {parameter}")
