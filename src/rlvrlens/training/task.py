"""A verifiable task: prompts, reference answers, and a verifier giving 0/1 rewards.

A task whose verifier is exact match (or one-of) has an enumerable accepted set (each answer
followed by EOS), so its success probability can be computed exactly
(:func:`rlvrlens.training.success.exact_success`). The tasks themselves (built-in generators,
JSONL files, reasoning-gym datasets) are made in :mod:`rlvrlens.training.tasks`. Imports no torch.
"""

from __future__ import annotations

import math
import numbers
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from rlvrlens.core.checks import check_float, check_int

#: Separates a prompt's user message from an assistant prefill: ``"What is 2+3?<|prefill|>2 + 3 ="``
#: (:meth:`rlvrlens.training.policy.CausalLMPolicy.format_prompt` renders it).
PREFILL = "<|prefill|>"

#: ``verifier(completion, answer) -> bool``.
Verifier = Callable[[str, str], bool]


class RewardError(ValueError):
    """A reward function raised, timed out, or returned something that is not a 0/1 reward."""


def exact_match(completion: str, answer: str) -> bool:
    """Right iff the completion is exactly the answer (the accepted set is ``{answer}``)."""
    return completion == answer


def _number(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def numeric_match(completion: str, answer: str) -> bool:
    """Right iff both parse as the same number (``"07"``, ``"7.0"`` and ``" 7"`` all match ``"7"``)."""
    got, want = _number(completion), _number(answer)
    return got is not None and want is not None and abs(got - want) <= 1e-9 * max(1.0, abs(want))


def final_number_match(completion: str, answer: str) -> bool:
    """Chain-of-thought style: right iff the number after the last ``,`` equals the answer."""
    return numeric_match(completion.rsplit(",", 1)[-1], answer)


def one_of(completion: str, answer: str) -> bool:
    """Right iff the completion is exactly one of the ``|``-separated alternatives in ``answer``."""
    return completion in answer.split("|")


VERIFIERS: dict[str, Verifier] = {"exact": exact_match, "oneof": one_of, "numeric": numeric_match,
                                  "final": final_number_match}
#: Verifiers whose accepted set is finite and listed by :meth:`Task.accepted`.
ENUMERABLE = ("exact", "oneof")


@dataclass(frozen=True)
class Task:
    """A list of prompts with their answers and a verifier.

    Attributes
    ----------
    name : str
    prompts, answers : tuple of str
        Prompt ``i`` is answered right by ``answers[i]``; prompts are unique.
    verifier : str
        A key of :data:`VERIFIERS` (``"exact"``, ``"oneof"`` with ``|``-separated alternatives,
        ``"numeric"``, ``"final"``), or ``"custom"`` with ``reward_fn`` set.
    solutions : tuple of str
        Supervised targets for the warm start (default: the answers; a worked chain for ``cot``).
    difficulty : tuple of int
        A difficulty level per prompt (for plots; 0 where unknown).
    max_new_tokens : int
        Enough new tokens for every solution plus EOS.
    reward_fn : RewardFunction, optional
        The hook used when ``verifier == "custom"``.
    """

    name: str
    prompts: tuple[str, ...]
    answers: tuple[str, ...]
    verifier: str = "exact"
    solutions: tuple[str, ...] = ()
    difficulty: tuple[int, ...] = ()
    max_new_tokens: int = 8
    reward_fn: "RewardFunction | None" = None
    _index: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.prompts or len(self.prompts) != len(self.answers):
            raise ValueError("prompts and answers must be non-empty and of the same length")
        if len(set(self.prompts)) != len(self.prompts):
            raise ValueError("prompts must be unique")
        if self.verifier == "custom":
            if self.reward_fn is None:
                raise ValueError("verifier 'custom' needs reward_fn")
        elif self.verifier not in VERIFIERS:
            raise ValueError(f"verifier must be one of {sorted(VERIFIERS) + ['custom']}, got {self.verifier!r}")
        object.__setattr__(self, "prompts", tuple(self.prompts))
        object.__setattr__(self, "answers", tuple(self.answers))
        object.__setattr__(self, "solutions", tuple(self.solutions) or self.answers)
        object.__setattr__(self, "difficulty", tuple(self.difficulty) or (0,) * len(self.prompts))
        check_int("max_new_tokens", self.max_new_tokens)
        self._index.update({p: i for i, p in enumerate(self.prompts)})

    def __len__(self) -> int:
        return len(self.prompts)

    def index(self, prompt: str) -> int:
        try:
            return self._index[prompt]
        except KeyError:
            raise ValueError(f"prompt {prompt!r} is not in task {self.name!r}") from None

    def rewards(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        """0/1 rewards of ``completions[k]`` for ``prompts[k]``."""
        if len(prompts) != len(completions):
            raise ValueError("prompts and completions must have the same length")
        out = np.empty(len(prompts))
        for k, (p, c) in enumerate(zip(prompts, completions)):
            answer = self.answers[self.index(p)]
            if self.verifier == "custom":
                out[k] = self.reward_fn(p, c, answer)
            else:
                out[k] = float(VERIFIERS[self.verifier](c, answer))
        return out

    def accepted(self, i: int) -> list[str] | None:
        """The accepted completions of prompt ``i`` if enumerable (exact / one-of match), else ``None``."""
        if self.verifier == "exact":
            return [self.answers[i]]
        if self.verifier == "oneof":
            return list(dict.fromkeys(self.answers[i].split("|")))
        return None

    @property
    def enumerable(self) -> bool:
        return self.verifier in ENUMERABLE

    def subset(self, indices: Sequence[int], name: str | None = None) -> "Task":
        idx = list(indices)
        return Task(name or self.name, tuple(self.prompts[i] for i in idx), tuple(self.answers[i] for i in idx),
                    self.verifier, tuple(self.solutions[i] for i in idx), tuple(self.difficulty[i] for i in idx),
                    self.max_new_tokens, self.reward_fn)


class RewardFunction:
    """Wrap a Python reward hook ``fn(prompt, completion, answer) -> 0 or 1`` with checks.

    Exceptions, calls longer than ``timeout`` seconds, and values that are not finite or (when
    ``binary``) not 0/1 raise :class:`RewardError` naming the prompt and completion; they never
    silently become rewards.
    """

    def __init__(self, fn: Callable[[str, str, str], float], *, timeout: float | None = 5.0, binary: bool = True):
        if not callable(fn):
            raise TypeError(f"reward function must be callable, got {fn!r}")
        self.fn = fn
        self.timeout = None if timeout is None else check_float("timeout", timeout, low=0.0, low_open=True)
        self.binary = binary
        self._pool = ThreadPoolExecutor(max_workers=1) if self.timeout is not None else None

    def __call__(self, prompt: str, completion: str, answer: str) -> float:
        where = f"reward function on prompt {prompt!r}, completion {completion!r}"
        try:
            if self._pool is None:
                value = self.fn(prompt, completion, answer)
            else:
                value = self._pool.submit(self.fn, prompt, completion, answer).result(timeout=self.timeout)
        except FutureTimeout:
            self._pool = ThreadPoolExecutor(max_workers=1)  # the stuck call keeps its own thread
            raise RewardError(f"{where} timed out after {self.timeout} s") from None
        except Exception as exc:  # noqa: BLE001 - reported, never turned into a reward
            raise RewardError(f"{where} raised {type(exc).__name__}: {exc}") from exc
        if isinstance(value, bool):
            value = float(value)
        if not isinstance(value, numbers.Real):
            raise RewardError(f"{where} returned {value!r}, not a number")
        value = float(value)
        if not math.isfinite(value):
            raise RewardError(f"{where} returned a non-finite value {value}")
        if self.binary and value not in (0.0, 1.0):
            raise RewardError(f"{where} returned {value}, not a 0/1 reward")
        return value
