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
    "davis_recht": "rlvrlens.paper_repro.davis_recht",
    "mroueh": "rlvrlens.paper_repro.mroueh",
    "beyond": "rlvrlens.paper_repro.beyond",
    "xiong": "rlvrlens.paper_repro.xiong",
    "validation": "rlvrlens.paper_repro.validation",
}

#: Reproductions not done yet: title -> why (listed on the index page).
PENDING: dict[str, str] = {}


def load(key: str) -> ModuleType:
    """The reproduction module registered as ``key``.

    >>> load("davis_recht").KEY
    'davis_recht'
    """
    if key not in PAPERS:
        raise ValueError(f"unknown paper {key!r}; valid names: {', '.join(PAPERS)}")
    return importlib.import_module(PAPERS[key])
