"""Logits of success probabilities, in one place.

:func:`logit` is exact (``-inf`` at 0, ``inf`` at 1) and validates its input; :func:`clipped_logit`
is what a comparison of measured and predicted trajectories uses (probabilities clipped to
``[eps, 1 - eps]`` first, so that a prompt at exactly 0 or 1 gives a finite gap of at most
``|logit eps|``); :func:`logit_rms` is the root mean square of the clipped logit difference.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from rlvrlens.core.checks import check_array

#: Probabilities are clipped to ``[CLIP, 1 - CLIP]`` before a logit comparison (``|logit| <= 27.6``).
CLIP = 1e-12


def logit(p: object) -> np.ndarray:
    """``log(p/(1-p))`` of probabilities in ``[0, 1]`` (``-inf`` at 0, ``inf`` at 1).

    >>> float(logit(0.5)), float(logit(1.0))
    (0.0, inf)
    """
    p = check_array("p", p, low=0.0, high=1.0, low_open=False)
    with np.errstate(divide="ignore"):
        return special.logit(p)


def clipped_logit(p: object, eps: float = CLIP) -> np.ndarray:
    """``logit(clip(p, eps, 1 - eps))``: finite for every ``p`` in ``[0, 1]``.

    >>> round(float(clipped_logit(0.0)), 2)
    -27.63
    """
    return special.logit(np.clip(np.asarray(p, dtype=float), eps, 1.0 - eps))


def logit_rms(measured: object, predicted: object, eps: float = CLIP) -> float:
    """Root mean square of ``clipped_logit(measured) - clipped_logit(predicted)`` over all entries.

    >>> logit_rms([0.5, 0.5], [0.5, 0.5])
    0.0
    """
    diff = clipped_logit(measured, eps) - clipped_logit(predicted, eps)
    return float(np.sqrt(np.mean(diff ** 2)))
