"""Paper reproductions: one module per paper, each runnable alone and all together.

Every module exposes ``KEY``, ``TITLE``, ``run(out_dir) -> Reproduction`` (figures with captions,
tables and every claim, evaluated) and a fast ``claims() -> list[Claim]`` that the test suite runs.
``rlvrlens repro [PAPER ...] --out DIR`` runs them and writes ``DIR/index.html``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: Reproductions available, in the order the index page shows them: key -> module.
PAPERS: dict[str, str] = {
    "davis_recht": "paper_repro.davis_recht",
    "mroueh": "paper_repro.mroueh",
    "beyond": "paper_repro.beyond",
}

#: Reproductions that wait for a layer not built yet: title -> why.
PENDING: dict[str, str] = {
    "Xiong et al. (2025), A minimalist approach to LLM reasoning": (
        "the small-scale ablation (RAFT, RAFT++, Reinforce, Reinforce-Rej, GRPO, success and entropy curves) "
        "needs the training layer (rlvrlens.training), which is not available to this reproduction yet."),
}


def load(key: str) -> ModuleType:
    """The reproduction module registered as ``key``.

    >>> load("davis_recht").KEY
    'davis_recht'
    """
    if key not in PAPERS:
        raise ValueError(f"unknown paper {key!r}; valid names: {', '.join(PAPERS)}")
    return importlib.import_module(PAPERS[key])
