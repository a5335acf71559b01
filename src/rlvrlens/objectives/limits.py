"""The ``M -> infinity`` limits of the catalogue's objectives (Davis & Recht 2025, Fig. 1).

* ``"t"``: REINFORCE, RLOO, Dr. GRPO, Reinforce-Rej (``h_M -> t``);
* ``"arcsin"``: GRPO, ``h_M -> 2 arcsin sqrt(t)`` (un-normalised; Fig. 3 divides by ``h(1) = pi``);
* ``"log"``: rejection sampling, ``h_M - H_M -> log t``;
* ``"logit"``: log-odds weights, ``h_M - const -> log(t/(1-t))``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from rlvrlens.core.checks import check_probabilities
from rlvrlens.core.logit import logit


def _identity(t: np.ndarray) -> np.ndarray:
    return t.copy()


def _arcsin(t: np.ndarray) -> np.ndarray:
    return 2.0 * np.arcsin(np.sqrt(t))


def _log(t: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(t)


#: name -> (function of t, label for plots)
LIMITS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], str]] = {
    "t": (_identity, "t"),
    "arcsin": (_arcsin, r"$2\arcsin\sqrt{t}$"),
    "log": (_log, r"$\log t$"),
    "logit": (logit, r"$\log\frac{t}{1-t}$"),
}


def limit(name: str, t: object) -> np.ndarray:
    """Evaluate the named limiting objective at ``t`` in ``[0, 1]``.

    ``log`` and ``logit`` may be ±inf at the endpoints.

    Parameters
    ----------
    name : {"t", "arcsin", "log", "logit"}
        A key of :data:`LIMITS`.
    t : array_like
        Points in ``[0, 1]``.

    Returns
    -------
    ndarray
        The limit at ``t``, shaped like ``t``.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid ones) or a ``t`` outside ``[0, 1]``.

    Examples
    --------
    >>> float(limit("arcsin", 1.0)) == float(np.pi)
    True
    """
    if name not in LIMITS:
        raise ValueError(f"unknown limit {name!r}; valid names: {', '.join(LIMITS)}")
    return LIMITS[name][0](check_probabilities("t", t))
