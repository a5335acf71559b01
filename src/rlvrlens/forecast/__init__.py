"""Probes of a model and the predictions they feed (imports torch; above training, below validation).

:mod:`~rlvrlens.forecast.probes` measures a policy without updating it (exact ``p`` and ``grad p``
per prompt, the kernel ``K``, directional scores, the KL term's projection);
:mod:`~rlvrlens.forecast.coupled` is the first-order model of prompts coupled through shared
parameters (THEORY.md §4) that turns those measurements into predicted changes of ``p``.
"""

from rlvrlens.forecast.coupled import P_CLIP, coupled_step, predicted_change, step_size_for, uncoupled_flow
from rlvrlens.forecast.probes import (
    directional_scores,
    flat_grad,
    kernel,
    kl_projection,
    success_jacobian,
    unit_grad_p,
)

__all__ = ["P_CLIP", "coupled_step", "directional_scores", "flat_grad", "kernel", "kl_projection",
           "predicted_change", "step_size_for", "success_jacobian", "uncoupled_flow", "unit_grad_p"]
