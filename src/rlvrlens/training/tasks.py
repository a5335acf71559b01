"""Tasks to train on: built-in generators, JSONL files, reasoning-gym datasets (``get_task``), and
:class:`EnumeratedTask`, a task's two-token completion space enumerated for a policy.

Built-in tasks are generated from a seed with graded difficulty, so that a lightly warm-started model
has success probabilities spread over (0, 1). The :class:`~rlvrlens.training.task.Task` they return
is defined in :mod:`rlvrlens.training.task`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from rlvrlens.core.budget import MAX_PROMPTS
from rlvrlens.core.checks import check_int
from rlvrlens.core.kl import PI_REF, REF_PI, check_treatment
from rlvrlens.core.records import load_json
from rlvrlens.training.reasoning_gym import rg_task_from_spec
from rlvrlens.training.task import PREFILL, RewardError, RewardFunction, Task

__all__ = ["BUILTIN_TASKS", "EnumeratedTask", "PREFILL", "RewardError", "RewardFunction", "Task", "addition",
           "chain_sum", "get_task", "load_jsonl", "modular_arithmetic"]


# --- built-in tasks ----------------------------------------------------------------------------

def modular_arithmetic(n: int = 32, *, seed: int = 0, moduli: Sequence[int] = (3, 5, 7, 11)) -> Task:
    """Prompts ``"a+b%m="`` with answer ``(a+b) mod m``; difficulty = index of ``m`` (more answers).

    ``a`` and ``b`` are drawn from ``0..19``; prompts are distinct.

    Parameters
    ----------
    n : int, default 32
        Number of prompts, ``1 <= n <= 10**5``.
    seed : int, default 0
        Seed of the draws.
    moduli : sequence of int, default (3, 5, 7, 11)
        The moduli ``m`` to draw from.

    Returns
    -------
    Task
        An exact-match task named ``"mod"`` with ``max_new_tokens = 4``.

    Raises
    ------
    ValueError
        If ``n`` is out of range or exceeds the number of distinct prompts.

    Examples
    --------
    >>> t = modular_arithmetic(3, moduli=(3,))
    >>> all(int(a) == (int(p.split("+")[0]) + int(p.split("+")[1].split("%")[0])) % 3
    ...     for p, a in zip(t.prompts, t.answers))
    True
    """
    n = check_int("n", n, maximum=MAX_PROMPTS)
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
    """Prompts ``"a+b="`` with ``a, b`` of 1..``max_digits`` digits; difficulty = number of digits.

    Parameters
    ----------
    n : int, default 32
        Number of distinct prompts, ``1 <= n <= 10**5``.
    seed : int, default 0
        Seed of the draws.
    max_digits : int, default 2
        Most digits of ``a`` and ``b``, ``1 <= max_digits <= 6``.

    Returns
    -------
    Task
        An exact-match task named ``"add"`` with ``max_new_tokens = max_digits + 2``.

    Raises
    ------
    ValueError
        If ``n`` or ``max_digits`` is out of range, or ``n`` exceeds the number of distinct prompts
        found in ``100 n`` draws.

    Examples
    --------
    >>> t = addition(3, seed=1)
    >>> all(str(sum(map(int, p[:-1].split("+")))) == a for p, a in zip(t.prompts, t.answers))
    True
    """
    n = check_int("n", n, maximum=MAX_PROMPTS)
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
    """Chain of thought: prompt ``"s352="``, worked solution ``"3,8,10"`` (running sums).

    Only the number after the last comma is checked, so the accepted set is not enumerable.

    Parameters
    ----------
    n : int, default 32
        Number of distinct prompts, ``1 <= n <= 10**5``.
    seed : int, default 0
        Seed of the draws.
    max_terms : int, default 4
        Most digits summed, ``2 <= max_terms <= 8`` (difficulty = number of digits).

    Returns
    -------
    Task
        A ``"final"``-verifier task named ``"cot"`` with the running sums as solutions and
        ``max_new_tokens = 3 max_terms + 1``.

    Raises
    ------
    ValueError
        If ``n`` or ``max_terms`` is out of range, or ``n`` exceeds the number of distinct prompts
        found in ``100 n`` draws.
    """
    n = check_int("n", n, maximum=MAX_PROMPTS)
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
    """A task from a JSONL file with one ``{"prompt": ..., "answer": ...}`` object per line.

    Parameters
    ----------
    path : str or Path
        The JSONL file (blank lines are skipped).
    verifier : str, default "exact"
        The task's verifier.
    name : str, optional
        The task's name; default the file's stem.
    max_new_tokens : int, optional
        Completion length; default the longest answer plus one.

    Returns
    -------
    Task
        The task.

    Raises
    ------
    ValueError
        For a line that is not JSON or not an object with string ``prompt`` and ``answer``, more
        than ``10**5`` lines, or an empty file.
    """
    path = Path(path)
    prompts, answers = [], []
    with path.open() as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = load_json(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict) or not isinstance(row.get("prompt"), str) or not isinstance(row.get("answer"), str):
                raise ValueError(f"{path}:{lineno}: expected an object with string fields 'prompt' and 'answer'")
            if len(prompts) == MAX_PROMPTS:
                raise ValueError(f"{path}: more than {MAX_PROMPTS} tasks; a task file holds at most {MAX_PROMPTS}")
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

    Parameters
    ----------
    spec : str
        ``"mod"``, ``"add"``, ``"cot"``, ``"rg:NAME?..."``, or the path of a ``.jsonl`` file.
    n : int, default 32
        Number of prompts (built-in and reasoning-gym tasks).
    seed : int, default 0
        Seed (built-in and reasoning-gym tasks).
    verifier : str, default "exact"
        Verifier of a JSONL task (ignored by built-in tasks; must be ``"exact"`` for ``rg:``).

    Returns
    -------
    Task
        The task.

    Raises
    ------
    ValueError
        For an unknown spec, a non-default ``verifier`` with ``rg:``, or an error of the task's
        builder.

    Examples
    --------
    >>> get_task("add", n=3).name
    'add'
    """
    if isinstance(spec, str) and spec.startswith("rg:"):
        if verifier != "exact":
            raise ValueError(f"verifier {verifier!r} cannot be used with {spec!r}: reasoning-gym tasks use "
                             "their own checker (choose how answers are read with format=answer|think|last-number)")
        return rg_task_from_spec(spec, n=n, seed=seed)
    if spec in BUILTIN_TASKS:
        return BUILTIN_TASKS[spec](n, seed=seed)
    if spec.endswith(".jsonl") or Path(spec).is_file():
        return load_jsonl(spec, verifier)
    raise ValueError(f"task must be one of {sorted(BUILTIN_TASKS)}, rg:NAME (reasoning-gym) or a .jsonl file, "
                     f"got {spec!r}")


class EnumeratedTask:
    """A task's two-token completion space for one policy: exact success and exact sequence KL.

    The task's accepted answers must be single tokens followed by EOS, and completions are bounded
    to two tokens: the space is ``{EOS} ∪ {(y1, y2): y1 != EOS}`` (a second token other than EOS is
    a completion cut at ``max_new_tokens = 2``, as the sampler makes it) with
    ``pi(y1, y2) = pi(y1) pi(y2 | y1)``. :meth:`log_probs` gives every probability in two forward
    passes per prompt (:meth:`~rlvrlens.training.policy.CausalLMPolicy.two_token_logprobs`), so
    ``p_x`` and both KLs are exact and differentiable:

        KL(pi||pi_ref) = KL_1 + sum_{y1 != EOS} pi(y1) KL(pi(.|y1) || pi_ref(.|y1)),

    and the same with the roles swapped for ``KL(pi_ref||pi)``.

    Parameters
    ----------
    policy : CausalLMPolicy
        Supplies the tokenizer (the answers' token ids, EOS, pad).
    task : Task
        An enumerable task whose accepted answers are one token each.
    """

    def __init__(self, policy, task: Task) -> None:
        tok = policy.tokenizer
        self.task = task
        self.eos, self.pad = tok.eos_token_id, tok.pad_token_id
        self.V = len(tok)
        if not task.enumerable:
            raise ValueError(f"task {task.name!r} has no enumerable accepted set (verifier {task.verifier!r})")
        answers = []
        for i in range(len(task)):
            ids = [tok(a, add_special_tokens=False)["input_ids"] for a in task.accepted(i)]
            if any(len(a) != 1 for a in ids):
                raise ValueError(f"prompt {task.prompts[i]!r}: every accepted answer must be one token")
            answers.append(sorted({a[0] for a in ids}))
        self.answers = answers

    def log_probs(self, policy) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per prompt, ``log pi(y1)`` of shape ``(V,)`` and ``log pi(y2 | y1)`` of shape ``(V, V)``
        (pad excluded: -inf, as the policy scores it)."""
        return policy.two_token_logprobs(self.task.prompts)

    def success(self, first, second) -> torch.Tensor:
        """``p_x = sum_{a in C(x)} pi(a) pi(EOS | a)``."""
        return torch.stack([sum(torch.exp(f[a] + s[a, self.eos]) for a in ans)
                            for f, s, ans in zip(first, second, self.answers)])

    def kl(self, first, second, ref_first, ref_second, direction: str = PI_REF) -> torch.Tensor:
        """Exact sequence KL per prompt: ``KL(pi||pi_ref)`` (``direction="pi||ref"``) or
        ``KL(pi_ref||pi)`` (``"ref||pi"``)."""
        check_treatment(direction, (PI_REF, REF_PI))
        valid = torch.ones(self.V, dtype=torch.bool)
        valid[self.pad] = False  # never emitted (log-probability -inf): left out, not multiplied by 0
        go_on = valid.clone()
        go_on[self.eos] = False
        out = []
        for f, s, rf, rs in zip(first, second, ref_first, ref_second):
            a1, a2, b1, b2 = (f, s, rf, rs) if direction == PI_REF else (rf, rs, f, s)
            k1 = (torch.exp(a1[valid]) * (a1[valid] - b1[valid])).sum()
            c2, d2 = a2[go_on][:, valid], b2[go_on][:, valid]
            k2 = (torch.exp(c2) * (c2 - d2)).sum(-1)
            out.append(k1 + (torch.exp(a1[go_on]) * k2).sum())
        return torch.stack(out)
