"""A real pretrained model on a real reasoning task, offline: SmolLM2-135M-Instruct on reasoning-gym.

:func:`smollm2_demo` computes the exact per-prompt success probability of SmolLM2 on a few
``basic_arithmetic`` prompts (answer-only format with the expression prefilled, so the accepted
completions are the answer with or without one leading space, then the end-of-turn token; every
tokenisation counted, :mod:`rlvrlens.training.enumeration`), writes ``smollm2_success.json`` (the
demo draws it as ``smollm2_success.png``). About 30-60 s on a 2-core CPU once the model is cached.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from rlvrlens.training.reasoning_gym import SMOLLM2_TASK

__all__ = ["SMOLLM2_TASK", "smollm2_demo"]

def smollm2_demo(out_dir: str | Path, *, n_prompts: int = 6, seed: int = 0, model: str = "smollm2-135m") -> dict:
    """Exact per-prompt success of ``model`` on :data:`SMOLLM2_TASK`; writes ``smollm2_success.json``.

    Parameters
    ----------
    out_dir : str or Path
        Folder for ``smollm2_success.json`` (created if missing).
    n_prompts : int, default 6
        Number of prompts of the task.
    seed : int, default 0
        Task seed.
    model : str, default "smollm2-135m"
        The model (:func:`rlvrlens.training.models.resolve_model`).

    Returns
    -------
    dict
        The JSON-ready dict: ``prompts`` (the prefilled expressions), ``answers``, ``p`` (exact),
        ``labels`` (expression = answer, for a figure: :func:`rlvrlens.figures.training.plot_prompt_success`),
        ``sequences`` (token sequences counted per prompt), ``seconds``; also ``model``, ``task``,
        ``method`` and ``temperature``.
    """
    from rlvrlens.training.enumeration import accepted_sequences
    from rlvrlens.training.policy import PREFILL, CausalLMPolicy
    from rlvrlens.training.success import exact_success
    from rlvrlens.training.tasks import get_task

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    policy = CausalLMPolicy.from_pretrained(model)
    task = get_task(SMOLLM2_TASK, n=n_prompts, seed=seed)
    loaded = time.perf_counter() - t0
    with torch.no_grad():
        p = exact_success(policy, task).double().cpu().tolist()
    counts = [len(accepted_sequences(policy.tokenizer, task.accepted(i), task.max_new_tokens)) for i in range(len(task))]
    labels = [prompt.partition(PREFILL)[2] + " " + answer for prompt, answer in zip(task.prompts, task.solutions)]
    result = {"model": model, "task": SMOLLM2_TASK, "method": "exact", "temperature": 1.0,
              "prompts": [prompt.partition(PREFILL)[2] for prompt in task.prompts], "answers": list(task.solutions),
              "p": p, "labels": labels, "sequences": counts,
              "seconds": {"load": round(loaded, 1), "total": round(time.perf_counter() - t0, 1)}}
    (out_dir / "smollm2_success.json").write_text(json.dumps(result, indent=2) + "\n")
    return result
