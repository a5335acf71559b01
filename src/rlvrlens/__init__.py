"""rlvrlens: what an RL-with-verifiable-rewards update optimises, where it converges, and whether a
real model agrees.

Layers (imports point downward only; checked by ``tests/test_layers.py``)::

    rlvrlens.cli, rlvrlens.commands        the command line: parse, call one layer function, print/plot
      -> rlvrlens.repro                    the papers' figures and claims
      -> rlvrlens.validation               theory against measurement (training runs)
      -> rlvrlens.training                 torch/transformers trainer, TRL adapter
      -> rlvrlens.dynamics                 success maps, fixed points, cycles (Outcome)
      -> rlvrlens.objectives               weight schemes, h_M, design, presets

    rlvrlens.explain, rlvrlens.frameworks, rlvrlens.runs   at the dynamics level (import dynamics
                                           and objectives only): explain, TRL/verl configs, recorded runs
    rlvrlens.figures                       data in, Figure out: imports explain, dynamics, objectives,
                                           never training or validation

torch, transformers and trl are imported only under :mod:`rlvrlens.training` and
:mod:`rlvrlens.validation`; ``import rlvrlens``, the objectives, dynamics, explain and figures never
import them. No module imports another module's private (``_name``) names.
"""

__version__ = "0.1.0"
