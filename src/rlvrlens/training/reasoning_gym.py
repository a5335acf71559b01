"""reasoning-gym datasets as :class:`~rlvrlens.training.tasks.Task` objects (``--task rg:NAME``).

`reasoning-gym <https://github.com/open-thought/reasoning-gym>`_ (``pip install reasoning-gym``)
generates procedural tasks offline, each with its own checker ``score_answer(answer, entry)`` in
[0, 1] (partial credit, e.g. 0.01 for a parseable wrong answer). Rewards here stay 0/1: a completion
is right iff the checker gives at least ``threshold`` (default 1) to the answer extracted from it.

Task specification (a string, as on the command line)::

    rg:NAME[?key=value&key=value...]

``NAME`` is a reasoning-gym dataset (``basic_arithmetic``, ``chain_sum``, ``gsm_symbolic``, ...).
Keys this module reads (all optional):

``size``, ``seed``
    Number of prompts and the dataset seed (default: the trainer's ``n_prompts`` / ``task_seed``).
``format``
    How the answer is given and extracted:

    - ``answer`` (default): the completion is the answer alone, optionally after one space (the
      prompt's prefill ends where BPE tokenizers attach a space to the next word), then the stop
      token. For datasets that check by exact match (reasoning-gym's default checker) the accepted
      set is ``{answer, " " + answer}``, so the success probability is computed exactly
      (:func:`rlvrlens.training.enumeration.exact_success`);
    - ``think``: free reasoning, then ``Answer: ...``; the text after the last ``Answer:`` (up to
      the end of its line, a final ``.`` dropped) is checked. Not enumerable: p is estimated;
    - ``last-number``: the last number in the completion is checked. Not enumerable.
``prefill``
    Text that starts the assistant's turn (after the chat template), with ``{field}`` replaced by
    the entry's metadata field (``{expression}`` for ``basic_arithmetic``; plain names only, see
    :func:`fill_prefill`). Default: none.
``instruction``
    Appended to the question (default: per format, e.g. "Reply with only the answer.").
``threshold``
    The checker score counted as right (default 1.0).
``max_new_tokens``
    Default: answer length + 4 for ``answer``, 48 otherwise.

Every other key is passed to the dataset's config (``min_terms=2&max_terms=2&max_digits=1``). Values
are parsed as int, float, ``true``/``false``, or a comma-separated tuple (``operators=+,-``). The same
from Python: :func:`rg_task` with keyword arguments.

Examples
--------
>>> task = rg_task("basic_arithmetic", size=4, seed=0, min_terms=2, max_terms=2, max_digits=1,
...                allow_parentheses=False, operators=("+", "-"), prefill="{expression} =")
>>> task.prompts[1].replace(PREFILL, " | "), task.accepted(1)
('Calculate 4 - 1. Reply with only the answer. | 4 - 1 =', ['3', ' 3'])
>>> task.rewards([task.prompts[1]] * 3, [" 3", "3", "3."]).tolist()
[1.0, 1.0, 0.0]
"""

from __future__ import annotations

import re
import string
from typing import Any

from rlvrlens.training.task import PREFILL, RewardFunction, Task

__all__ = ["FORMATS", "SMOLLM2_TASK", "rg_task", "parse_rg_spec", "extract_answer", "fill_prefill"]

#: The reasoning-gym task whose success probabilities SmolLM2-135M-Instruct spreads over (0, 1)
#: (measured on 12 prompts: 0.005 to 0.68 at temperature 1): 2 one-digit terms, + and -, no
#: parentheses, the expression prefilled so that the model's next words are the answer.
SMOLLM2_TASK = ("rg:basic_arithmetic?min_terms=2&max_terms=2&max_digits=1&allow_parentheses=false"
                "&operators=+,-&prefill={expression} =")

#: Answer formats: how a completion's answer is extracted.
FORMATS = ("answer", "think", "last-number")
_INSTRUCTIONS = {
    "answer": "Reply with only the answer.",
    "think": "Think step by step, then give the final answer on its own line as 'Answer: ...'.",
    "last-number": "",
}
_OWN_KEYS = ("size", "seed", "format", "prefill", "instruction", "threshold", "max_new_tokens")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_INSTALL = "python -m pip install reasoning-gym"


def _parse_value(text: str) -> Any:
    if "," in text:
        return tuple(_parse_value(t) for t in text.split(",") if t != "")
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_rg_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"rg:NAME?k=v&k=v"`` -> ``(NAME, {k: v})`` with values parsed (see the module doc).

    Examples
    --------
    >>> parse_rg_spec("rg:basic_arithmetic?max_terms=2&operators=+,-&format=answer")
    ('basic_arithmetic', {'max_terms': 2, 'operators': ('+', '-'), 'format': 'answer'})
    """
    if not spec.startswith("rg:"):
        raise ValueError(f"a reasoning-gym task starts with 'rg:', got {spec!r}")
    name, _, query = spec[3:].partition("?")
    if not name:
        raise ValueError(f"task {spec!r} names no reasoning-gym dataset (rg:NAME)")
    options: dict[str, Any] = {}
    for part in filter(None, query.split("&")):
        key, eq, value = part.partition("=")
        if not eq or not key:
            raise ValueError(f"task {spec!r}: option {part!r} is not key=value")
        if key in options:
            raise ValueError(f"task {spec!r}: option {key!r} given twice")
        options[key] = value if key in ("prefill", "instruction") else _parse_value(value)
    return name, options


def fill_prefill(prefill: str, metadata: dict[str, Any]) -> str:
    """``prefill`` with each ``{field}`` replaced by the entry's metadata field (``{{``, ``}}``: braces).

    Only plain field names are allowed: no attributes, indices, conversions or format specs (with
    ``str.format`` they would reach into Python objects, e.g. ``{expression.__class__}``).

    Examples
    --------
    >>> fill_prefill("{expression} = {{x}}", {"expression": "4 - 1"})
    '4 - 1 = {x}'
    >>> fill_prefill("{expression.__class__}", {"expression": "4 - 1"})
    Traceback (most recent call last):
    ...
    ValueError: prefill '{expression.__class__}': '{expression.__class__}' is not a plain {field}; the fields are: expression
    """
    fields = ", ".join(sorted(map(str, metadata)))
    try:
        parts = list(string.Formatter().parse(prefill))
    except ValueError as exc:
        raise ValueError(f"prefill {prefill!r}: {exc} (write {{{{ and }}}} for literal braces)") from None
    out = []
    for literal, name, spec, conversion in parts:
        out.append(literal)
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            whole = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            raise ValueError(f"prefill {prefill!r}: {whole!r} is not a plain {{field}}; the fields are: {fields}")
        if name not in metadata:
            raise ValueError(f"prefill {prefill!r}: the entry's metadata has no field {name!r}; the fields are: {fields}")
        out.append(str(metadata[name]))
    return "".join(out)


def extract_answer(completion: str, fmt: str) -> str | None:
    """The answer a completion gives under answer format ``fmt`` (``None``: it gives none).

    Examples
    --------
    >>> extract_answer(" 12", "answer"), extract_answer("so 3+4=7.\\nAnswer: 7.", "think")
    ('12', '7')
    >>> extract_answer("3 + 4 = 7, then 7 + 1 = 8", "last-number"), extract_answer("none", "last-number")
    ('8', None)
    """
    if fmt == "answer":
        return completion[1:] if completion.startswith(" ") else completion
    if fmt == "think":
        at = completion.lower().rfind("answer:")
        if at < 0:
            return None
        line = completion[at + len("answer:"):].split("\n", 1)[0].strip()
        return line[:-1].rstrip() if line.endswith(".") else line
    if fmt == "last-number":
        found = _NUMBER.findall(completion)
        return found[-1] if found else None
    raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")


def _import_rg():
    try:
        import reasoning_gym
    except ImportError:
        from rlvrlens.training.models import MissingDependencyError

        raise MissingDependencyError(f"reasoning-gym tasks need the package 'reasoning-gym', which is not installed; "
                                     f"install it with: {_INSTALL}") from None
    return reasoning_gym


class _Checker:
    """``(prompt, completion, answer) -> 0/1``: the dataset's checker on the extracted answer, thresholded."""

    def __init__(self, dataset, entries: dict[str, dict], fmt: str, threshold: float) -> None:
        self.dataset, self.entries, self.fmt, self.threshold = dataset, entries, fmt, threshold

    def __call__(self, prompt: str, completion: str, answer: str) -> float:
        given = extract_answer(completion, self.fmt)
        if given is None:
            return 0.0
        return float(self.dataset.score_answer(given, self.entries[prompt]) >= self.threshold)


def rg_task(name: str, *, size: int = 32, seed: int = 0, format: str = "answer", prefill: str = "",
            instruction: str | None = None, threshold: float = 1.0, max_new_tokens: int | None = None,
            **options: Any) -> Task:
    """A reasoning-gym dataset as a :class:`Task` (see the module doc for every argument).

    The prompt of entry ``i`` is its question plus the instruction, then :data:`PREFILL` and the
    prefill when one is given (the policy renders it as the start of the assistant's turn).
    Repeated questions are dropped (prompts must be unique).

    Parameters
    ----------
    name : str
        A reasoning-gym dataset name (``rg.factory.DATASETS``).
    size : int, default 32
        Number of entries drawn, ``1 <= size <= 10**5``.
    seed : int, default 0
        Dataset seed, ``>= 0``.
    format : {"answer", "think", "last-number"}, default "answer"
        How answers are read from a completion (and the default instruction).
    prefill : str, default ""
        Text placed at the start of the assistant's turn (filled from the entry's metadata).
    instruction : str, optional
        Text appended to each question; default the format's instruction.
    threshold : float, default 1.0
        Score of reasoning-gym's checker at or above which an answer is right, in ``(0, 1]``.
    max_new_tokens : int, optional
        Completion length, ``>= 1``; default the longest answer plus 4 for ``"answer"``, else 48.
    **options
        The dataset's own config options.

    Returns
    -------
    Task
        An enumerable ``"oneof"`` task (answer or space plus answer) when the checker is
        reasoning-gym's default exact match, ``format="answer"`` and ``threshold = 1``; otherwise a
        ``"custom"`` task scored by the dataset's checker.

    Raises
    ------
    ValueError
        For an out-of-range ``size``, ``seed``, ``threshold`` or ``max_new_tokens``, an unknown
        ``format`` or dataset, or options the dataset refuses.
    """
    from rlvrlens.core.budget import MAX_PROMPTS
    from rlvrlens.core.checks import check_float, check_int

    rg = _import_rg()
    size = check_int("size", size, maximum=MAX_PROMPTS)
    seed = check_int("seed", seed, minimum=0)
    threshold = check_float("threshold", threshold, low=0.0, high=1.0, low_open=True)
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    names = sorted(rg.factory.DATASETS)
    if name not in rg.factory.DATASETS:
        raise ValueError(f"unknown reasoning-gym dataset {name!r}; known: {', '.join(names)}")
    try:
        dataset = rg.create_dataset(name, size=size, seed=seed, **options)
    except TypeError as exc:  # an option the dataset's config does not have
        raise ValueError(f"reasoning-gym dataset {name!r}: {exc}") from None
    except AssertionError as exc:  # reasoning-gym validates its configs with assert
        raise ValueError(f"reasoning-gym dataset {name!r}: invalid options {options}: {exc}") from None
    instruction = _INSTRUCTIONS[format] if instruction is None else instruction
    prompts, answers, entries, level = [], [], {}, []
    for entry in dataset:
        prompt = entry["question"] + (" " + instruction if instruction else "")
        if prefill:
            prompt += PREFILL + fill_prefill(prefill, entry["metadata"])
        if prompt in entries:  # a repeated question: prompts must be unique
            continue
        entries[prompt] = entry
        prompts.append(prompt), answers.append(str(entry["answer"]))
        meta = entry["metadata"]
        level.append(int(meta.get("num_terms", 0)) if isinstance(meta.get("num_terms", 0), int) else 0)
    # the accepted set is {answer, " " + answer} exactly when the checker is reasoning-gym's default
    # exact-match one and 1 is required
    exact = (format == "answer" and threshold == 1.0 and not any("|" in a for a in answers)
             and type(dataset).score_answer is rg.dataset.ProceduralDataset.score_answer)
    if max_new_tokens is None:
        max_new_tokens = max(len(a) for a in answers) + 4 if format == "answer" else 48
    check_int("max_new_tokens", max_new_tokens)
    label = f"rg:{name}"
    if exact:
        return Task(label, tuple(prompts), tuple(f"{a}| {a}" for a in answers), "oneof",
                    solutions=tuple(answers), difficulty=tuple(level), max_new_tokens=max_new_tokens)
    checker = RewardFunction(_Checker(dataset, entries, format, threshold), timeout=None)
    return Task(label, tuple(prompts), tuple(answers), "custom", difficulty=tuple(level),
                max_new_tokens=max_new_tokens, reward_fn=checker)


def rg_task_from_spec(spec: str, *, n: int = 32, seed: int = 0) -> Task:
    """:func:`rg_task` from an ``rg:NAME?k=v`` string; ``n`` and ``seed`` are defaults for size and seed."""
    name, options = parse_rg_spec(spec)
    options.setdefault("size", n)
    options.setdefault("seed", seed)
    return rg_task(name, **options)
