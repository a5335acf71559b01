"""The finite-sample iteration: each step sees only M sampled answers per prompt.

For a two-outcome policy (right / wrong) the KL-regularised step with per-outcome advantages
``A_right``, ``A_wrong`` is exact: ``pi_n ∝ pi_ref exp(A/beta)`` gives
``logit p_n = logit p_ref + (A_right - A_wrong)/beta``. The deterministic map uses the expected
advantages, whose gap is ``h'_M(p)``. Here they are estimated from one sampled group per prompt and
step. With weights ``Z_i`` from ``scheme.weights`` the default (``"importance"``) estimates are

    A_right = (1/(M p)) sum_i R_i Z_i,    A_wrong = (1/(M (1-p))) sum_i (1-R_i) Z_i,

unbiased: ``E[A_right - A_wrong] = E[b_S] - E[a_S] = h'_M(p)`` (``K ~ Bin(M,p)`` right answers each
get ``b_{K-1}``, and ``E[K b_{K-1}]/(M p) = E[b_S]``, ``S ~ Bin(M-1,p)``). They are also what the
sampled policy gradient ``(1/M) sum_i Z_i (R_i - p) = p(1-p) (A_right - A_wrong)`` implies.
``"group_mean"`` instead takes the mean weight of the right answers minus that of the wrong ones
(0 for a kind absent from the group): biased, e.g. for RAFT, and shown for contrast.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from rlvrlens.core.checks import check_array, check_int
from rlvrlens.core.kl import check_beta
from rlvrlens.objectives import WeightScheme

_ESTIMATORS = ("importance", "group_mean")


@dataclass(frozen=True)
class Simulation:
    """Per-prompt success probabilities over time.

    Attributes
    ----------
    p, logit : ndarray, shape (n_steps + 1, n_prompts)
        ``p_n`` for every prompt (row 0 is ``p_0``).
    p_ref : ndarray, shape (n_prompts,)
    gap : ndarray, shape (n_steps, n_prompts)
        The sampled advantage gaps ``A_right - A_wrong`` used at each step.
    """

    p: np.ndarray
    logit: np.ndarray
    p_ref: np.ndarray
    gap: np.ndarray

    def mean(self) -> np.ndarray:
        """Mean of ``p_n`` over prompts, shape ``(n_steps + 1,)``."""
        return self.p.mean(axis=1)

    def quantiles(self, q: object = (0.1, 0.5, 0.9)) -> np.ndarray:
        """Quantiles of ``p_n`` over prompts, shape ``(len(q), n_steps + 1)``."""
        return np.quantile(self.p, np.asarray(q, dtype=float), axis=1)


def sample_gap(scheme: WeightScheme, p: np.ndarray, rng: np.random.Generator, *,
               q: np.ndarray | None = None, estimator: str = "importance") -> np.ndarray:
    """One sampled advantage gap per entry of ``p`` (one group of ``M`` answers each).

    ``q = 1 - p`` may be given to full precision (from a logit): the number of wrong answers is then
    drawn with ``q`` where ``p > 1/2``, so ``p`` within 1e-300 of 1 still yields wrong answers at
    the right rate.

    Parameters
    ----------
    scheme : WeightScheme
        The weight scheme (its group size ``M`` is the number of answers drawn per entry).
    p : ndarray
        Success probabilities in ``[0, 1]`` (not checked here), any shape.
    rng : numpy.random.Generator
        Source of the sampled groups.
    q : ndarray, optional
        ``1 - p`` to full precision; default ``1 - p``.
    estimator : {"importance", "group_mean"}, default "importance"
        ``"importance"``: ``A_right - A_wrong`` with the unbiased estimates of the module docstring;
        ``"group_mean"``: the mean weight of the right answers minus that of the wrong ones (0 for a
        kind absent from the group; biased).

    Returns
    -------
    ndarray
        The sampled gaps, shaped like ``p``.

    Raises
    ------
    ValueError
        If ``estimator`` is not a valid choice.

    Examples
    --------
    >>> from rlvrlens.objectives import reinforce
    >>> sample_gap(reinforce(4), np.array([0.0, 1.0]), np.random.default_rng(0)).tolist()
    [0.0, 1.0]
    """
    if estimator not in _ESTIMATORS:
        raise ValueError(f"estimator must be one of {_ESTIMATORS}, got {estimator!r}")
    p = np.asarray(p, dtype=float)
    q = 1.0 - p if q is None else np.asarray(q, dtype=float)
    M = scheme.M
    upper = p > 0.5
    k = np.where(upper, M - rng.binomial(M, np.where(upper, q, 0.5)), rng.binomial(M, np.where(upper, 0.5, p)))
    rewards = (np.arange(M) < k[..., None]).astype(float)  # weights depend on (R_i, S_i) only
    z = scheme.weights(rewards)
    right = (rewards * z).sum(axis=-1)
    wrong = ((1.0 - rewards) * z).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        if estimator == "importance":
            a_right = np.where(k > 0, right / (M * p), 0.0)
            a_wrong = np.where(k < M, wrong / (M * q), 0.0)
        else:
            a_right = np.where(k > 0, right / k, 0.0)
            a_wrong = np.where(k < M, wrong / (M - k), 0.0)
    return a_right - a_wrong


def simulate(scheme: WeightScheme, beta: float, p_ref: object, n_steps: int, *,
             n_prompts: int | None = None, seed: int = 0, p0: object = None,
             estimator: str = "importance") -> Simulation:
    """Run the KL-regularised iteration with ``M`` sampled answers per prompt and step.

    ``logit p_n = logit p_ref + (A_right - A_wrong)/beta`` with the advantages estimated from one
    sampled group (see the module docstring), for many prompts at once.

    Parameters
    ----------
    scheme : WeightScheme
    beta : float
        KL coefficient ``> 0``.
    p_ref : float or array_like
        Each prompt's reference success probability in ``(0, 1)``; a scalar is shared by
        ``n_prompts`` prompts.
    n_steps : int
    n_prompts : int, optional
        Number of prompts (default ``len(p_ref)``, or 1000 for a scalar ``p_ref``).
    seed : int
        Seed of the ``numpy`` generator: the same seed gives the same result.
    p0 : float or array_like, optional
        Starting success probabilities (default ``p_ref``).
    estimator : {"importance", "group_mean"}

    Examples
    --------
    >>> from rlvrlens.objectives import rloo
    >>> sim = simulate(rloo(8), beta=2.0, p_ref=0.3, n_steps=5, n_prompts=200, seed=1)
    >>> sim.p.shape
    (6, 200)
    """
    if not isinstance(scheme, WeightScheme):
        raise TypeError(f"scheme must be a WeightScheme, got {type(scheme).__name__}")
    beta = check_beta(beta)
    n_steps = check_int("n_steps", n_steps, minimum=0)
    seed = check_int("seed", seed, minimum=0)
    p_ref = check_array("p_ref", p_ref, low=0.0, high=1.0, low_open=True)
    if (p_ref >= 1).any():
        raise ValueError("p_ref must lie in the open interval (0, 1)")
    if p_ref.ndim > 1:
        raise ValueError("p_ref must be a number or a 1-D array (one per prompt)")
    if n_prompts is None:
        n_prompts = p_ref.size if p_ref.ndim == 1 else 1000
    n_prompts = check_int("n_prompts", n_prompts, minimum=1)
    if p_ref.ndim == 1 and p_ref.size != n_prompts:
        raise ValueError(f"n_prompts ({n_prompts}) must equal len(p_ref) ({p_ref.size}) when p_ref is an array")
    p_ref = np.broadcast_to(p_ref, (n_prompts,)).copy()
    start = p_ref if p0 is None else np.broadcast_to(
        check_array("p0", p0, low=0.0, high=1.0, low_open=False), (n_prompts,))
    rng = np.random.default_rng(seed)
    x_ref = special.logit(p_ref)
    xs = np.empty((n_steps + 1, n_prompts))
    with np.errstate(divide="ignore"):
        xs[0] = special.logit(start)
    gaps = np.empty((n_steps, n_prompts))
    for n in range(n_steps):
        x = xs[n]
        gaps[n] = sample_gap(scheme, special.expit(x), rng, q=special.expit(-x), estimator=estimator)
        xs[n + 1] = x_ref + gaps[n] / beta
    return Simulation(special.expit(xs), xs, p_ref, gaps)
