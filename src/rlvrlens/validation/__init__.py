"""Theory against measurement: the experiments of ``rlvrlens validate`` (imports torch).

:mod:`~rlvrlens.validation.sizes` (the run sizes, torch-free), :mod:`~rlvrlens.validation.setups`
(models, tasks, prompts, the trainer's configuration), the experiments
(:mod:`~rlvrlens.validation.identity`, :mod:`~rlvrlens.validation.tabular`,
:mod:`~rlvrlens.validation.coupling`, :mod:`~rlvrlens.validation.fixed_points`),
:mod:`~rlvrlens.validation.verdicts` (every threshold, and the verdict rows; torch-free),
:mod:`~rlvrlens.validation.runner` (runs a size) and :mod:`~rlvrlens.validation.report` (writes).
Names are loaded lazily, so ``import rlvrlens.validation.sizes`` (the command line) imports no torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {"VALIDATION_SIZES": "sizes", "RealModelSize": "sizes", "ValidationSize": "sizes", "get_size": "sizes",
            "run_validation": "runner", "run_real_model_validation": "runner"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"rlvrlens.validation.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'rlvrlens.validation' has no attribute {name!r}")
