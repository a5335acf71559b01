"""rlvrlens: what an RL-with-verifiable-rewards update optimises, where it converges, and whether a
real model agrees.

Layers (imports point downward only): :mod:`rlvrlens.figures` -> :mod:`rlvrlens.training` ->
:mod:`rlvrlens.dynamics` -> :mod:`rlvrlens.objectives`. Only :mod:`rlvrlens.training` imports torch.
"""

__version__ = "0.1.0"
