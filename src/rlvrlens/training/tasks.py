"""Verifiable tasks: prompts, reference answers, a verifier giving 0/1 rewards.

Built-in tasks are generated from a seed with graded difficulty, so that a lightly warm-started model
has success probabilities spread over (0, 1). A task whose verifier is exact match has an enumerable
accepted set (the answer followed by EOS), so its success probability can be computed exactly
(:func:`rlvrlens.training.success.exact_success`).
"""

from __future__ import annotations

import json
import math
import numbers
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from rlvrlens._validation import check_float, check_int

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


# --- built-in tasks ----------------------------------------------------------------------------

def modular_arithmetic(n: int = 32, *, seed: int = 0, moduli: Sequence[int] = (3, 5, 7, 11)) -> Task:
    """Prompts ``"a+b%m="`` with answer ``(a+b) mod m``; difficulty = index of ``m`` (more answers)."""
    n = check_int("n", n)
    rng = np.random.default_rng(seed)
    prompts, answers, level, seen = [], [], [], set()
    while len(prompts) < n:
        k = int(rng.integers(len(moduli)))
        m = int(moduli[k])
        a, b = (int(v) for v in rng.integers(0, 20, size=2))
        p = f"{a}+{b}%{m}="
        if p in seen:
            if len(seen) >= 400 * len(moduli):
                raise ValueError(f"n = {n} exceeds the number of distinct prompts")
            continue
        seen.add(p)
        prompts.append(p), answers.append(str((a + b) % m)), level.append(k)
    return Task("mod", tuple(prompts), tuple(answers), "exact", difficulty=tuple(level), max_new_tokens=4)


def addition(n: int = 32, *, seed: int = 0, max_digits: int = 2) -> Task:
    """Prompts ``"a+b="`` with ``a, b`` of 1..``max_digits`` digits; difficulty = number of digits."""
    n = check_int("n", n)
    max_digits = check_int("max_digits", max_digits, maximum=6)
    rng = np.random.default_rng(seed)
    prompts, answers, level, seen = [], [], [], set()
    attempts = 0
    while len(prompts) < n:
        attempts += 1
        if attempts > 100 * n:
            raise ValueError(f"n = {n} exceeds the number of distinct prompts for max_digits = {max_digits}")
        d = int(rng.integers(1, max_digits + 1))
        a, b = (int(v) for v in rng.integers(0, 10**d, size=2))
        p = f"{a}+{b}="
        if p in seen:
            continue
        seen.add(p)
        prompts.append(p), answers.append(str(a + b)), level.append(d)
    return Task("add", tuple(prompts), tuple(answers), "exact", difficulty=tuple(level),
                max_new_tokens=max_digits + 2)


def chain_sum(n: int = 32, *, seed: int = 0, max_terms: int = 4) -> Task:
    """Chain of thought: prompt ``"s352="``, worked solution ``"3,8,10"`` (running sums); only the
    number after the last comma is checked, so the accepted set is not enumerable."""
    n = check_int("n", n)
    max_terms = check_int("max_terms", max_terms, minimum=2, maximum=8)
    rng = np.random.default_rng(seed)
    prompts, answers, sols, level, seen = [], [], [], [], set()
    attempts = 0
    while len(prompts) < n:
        attempts += 1
        if attempts > 100 * n:
            raise ValueError(f"n = {n} exceeds the number of distinct prompts")
        k = int(rng.integers(2, max_terms + 1))
        digits = [int(v) for v in rng.integers(0, 10, size=k)]
        p = "s" + "".join(map(str, digits)) + "="
        if p in seen:
            continue
        seen.add(p)
        sums = np.cumsum(digits).tolist()
        prompts.append(p), answers.append(str(sums[-1])), sols.append(",".join(map(str, sums))), level.append(k)
    return Task("cot", tuple(prompts), tuple(answers), "final", tuple(sols), tuple(level),
                max_new_tokens=3 * max_terms + 1)


BUILTIN_TASKS: dict[str, Callable[..., Task]] = {"mod": modular_arithmetic, "add": addition, "cot": chain_sum}


def load_jsonl(path: str | Path, verifier: str = "exact", *, name: str | None = None,
               max_new_tokens: int | None = None) -> Task:
    """A task from a JSONL file with one ``{"prompt": ..., "answer": ...}`` object per line."""
    path = Path(path)
    prompts, answers = [], []
    with path.open() as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict) or not isinstance(row.get("prompt"), str) or not isinstance(row.get("answer"), str):
                raise ValueError(f"{path}:{lineno}: expected an object with string fields 'prompt' and 'answer'")
            prompts.append(row["prompt"]), answers.append(row["answer"])
    if not prompts:
        raise ValueError(f"{path}: no tasks found")
    longest = max(len(a) for a in answers) + 1
    return Task(name or path.stem, tuple(prompts), tuple(answers), verifier,
                max_new_tokens=max_new_tokens or longest)


def get_task(spec: str, *, n: int = 32, seed: int = 0, verifier: str = "exact") -> Task:
    """A built-in task by name (``mod``, ``add``, ``cot``), a reasoning-gym dataset or a JSONL file path.

    ``rg:NAME?key=value&...`` is a reasoning-gym dataset (:mod:`rlvrlens.training.reasoning_gym`;
    ``n`` and ``seed`` are the defaults of its ``size`` and ``seed``); it brings its own checker, so
    ``verifier`` must stay ``"exact"`` (the default) there.
    """
    if isinstance(spec, str) and spec.startswith("rg:"):
        if verifier != "exact":
            raise ValueError(f"verifier {verifier!r} cannot be used with {spec!r}: reasoning-gym tasks use "
                             "their own checker (choose how answers are read with format=answer|think|last-number)")
        from rlvrlens.training.reasoning_gym import rg_task_from_spec

        return rg_task_from_spec(spec, n=n, seed=seed)
    if spec in BUILTIN_TASKS:
        return BUILTIN_TASKS[spec](n, seed=seed)
    if spec.endswith(".jsonl") or Path(spec).is_file():
        return load_jsonl(spec, verifier)
    raise ValueError(f"task must be one of {sorted(BUILTIN_TASKS)}, rg:NAME (reasoning-gym) or a .jsonl file, "
                     f"got {spec!r}")
