"""Expectations of a sequence under a binomial law, fast and accurate for any n.

Every numeric quantity of the objectives layer is such an expectation (THEORY.md §1):

* h'_M(t) = E[c_S],          S ~ Bin(M-1, t)   (the Bernstein polynomial of c),
* h_M(t)  = E[K_X] / M,      X ~ Bin(M, t),    K_k = c_0 + ... + c_{k-1},
* h''_M(t) = (M-1) E[Δc_S],  S ~ Bin(M-2, t),  Δc_s = c_{s+1} - c_s.

Only a window of ``12 σ + 50`` terms either side of the mode matters: by Bernstein's inequality
the mass outside it is below ``1e-31``. Inside the window the probabilities are built from one
accurate anchor (scipy's ``binom.pmf`` at the mode) and the ratio recurrence
``P(s+1)/P(s) = (n-s) t / ((s+1)(1-t))``, which loses no accuracy to cancellation. Points with
``t > 1/2`` are reflected (``X -> n - X``) so that the small probability ``1 - t`` is used as
given, which is what lets callers in logit space resolve ``t`` within 1e-300 of 1.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

#: Half-width of the summation window in standard deviations, plus a constant margin.
_WINDOW_SIGMAS = 12.0
_WINDOW_MARGIN = 50
#: Below this success probability the first-order expansion in ``n u`` is exact to float64.
_TINY = 1e-280
#: Upper bound on the number of window cells processed at once (memory).
_CHUNK_CELLS = 2_000_000


def binomial_expectation(
    seq: np.ndarray, t: np.ndarray, q: np.ndarray | None = None
) -> np.ndarray:
    """Return ``E[seq[X]]`` for ``X ~ Bin(n, t)`` with ``n = len(seq) - 1``, elementwise in ``t``.

    Parameters
    ----------
    seq : array_like, shape (n + 1,)
        Finite values of the sequence at ``0, ..., n``.
    t : array_like
        Success probabilities in ``[0, 1]`` (validated by the callers).
    q : array_like, optional
        ``1 - t`` computed by the caller to full relative precision (e.g. ``expit(-x)`` for a
        logit ``x``); used where ``t > 1/2``. Defaults to ``1 - t``.

    Returns
    -------
    numpy.ndarray
        Same shape as ``t``.
    """
    seq = np.asarray(seq, dtype=float)
    t = np.asarray(t, dtype=float)
    q = 1.0 - t if q is None else np.broadcast_to(np.asarray(q, dtype=float), t.shape)
    n = seq.size - 1
    flat_t, flat_q = t.ravel(), q.ravel()
    out = np.empty(flat_t.shape)
    # Reflect: work with u = min(t, 1-t) <= 1/2 and the sequence read backwards where t > 1/2.
    upper = flat_t > 0.5
    u = np.where(upper, flat_q, flat_t)
    if n == 0:
        out[:] = seq[0]
        return out.reshape(t.shape)
    for flip, mask in ((False, ~upper), (True, upper)):
        idx = np.flatnonzero(mask)
        if idx.size:
            out[idx] = _expect_small_u(seq[::-1] if flip else seq, n, u[idx])
    return out.reshape(t.shape)


def _expect_small_u(seq: np.ndarray, n: int, u: np.ndarray) -> np.ndarray:
    """``E[seq[X]]``, ``X ~ Bin(n, u)`` with ``0 <= u <= 1/2``."""
    out = np.full(u.shape, seq[0])  # u == 0: X = 0 surely
    # below 1e-280, E = seq[0] + n u (seq[1] - seq[0]) + O((n u)^2) exactly in float64 (and scipy's
    # pmf overflows for subnormal u)
    tiny = np.flatnonzero((u > 0) & (u < _TINY))
    if tiny.size:
        out[tiny] = seq[0] + n * u[tiny] * (seq[min(1, n)] - seq[0])
    live = np.flatnonzero(u >= _TINY)
    if live.size == 0:
        return out
    sigma = np.sqrt(n * u[live] * (1.0 - u[live]))
    order = live[np.argsort(sigma)]  # points of similar width share a chunk
    widest = _half_width(n, sigma.max())
    per_chunk = max(64, _CHUNK_CELLS // (2 * widest + 1))
    for start in range(0, order.size, per_chunk):
        sel = order[start : start + per_chunk]
        width = _half_width(n, np.sqrt(n * u[sel[-1]] * (1.0 - u[sel[-1]])))
        out[sel] = _window_sum(seq, n, u[sel], width)
    return out


def _half_width(n: int, sigma: float) -> int:
    return min(n, int(np.ceil(_WINDOW_SIGMAS * sigma + _WINDOW_MARGIN)))


def _window_sum(seq: np.ndarray, n: int, u: np.ndarray, width: int) -> np.ndarray:
    v = 1.0 - u
    mode = np.clip(np.floor((n + 1) * u), 0, n).astype(np.int64)
    anchor = stats.binom.pmf(mode, n, u)
    total = anchor * seq[mode]
    if width == 0:
        return total
    j = np.arange(width)
    # upward: P(s+1) = P(s) (n-s) u / ((s+1) v),  s = mode + j
    s = mode[:, None] + j[None, :]
    ratio = np.clip(n - s, 0, None) * u[:, None] / ((s + 1) * v[:, None])
    p_up = anchor[:, None] * np.cumprod(ratio, axis=1)
    total = total + np.sum(p_up * seq[np.minimum(s + 1, n)], axis=1)
    # downward: P(s-1) = P(s) s v / ((n-s+1) u),  s = mode - j
    s = mode[:, None] - j[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.clip(s, 0, None) * v[:, None] / ((n - s + 1) * u[:, None])
    ratio = np.nan_to_num(ratio, nan=0.0, posinf=0.0)
    p_down = anchor[:, None] * np.cumprod(ratio, axis=1)
    total = total + np.sum(p_down * seq[np.maximum(s - 1, 0)], axis=1)
    return total
