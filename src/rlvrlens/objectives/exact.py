"""Exact (sympy) induced objectives: ``h_M`` and ``h'_M`` as polynomials in the symbol ``t``.

``h'_M(t) = sum_s c_s C(M-1, s) t^s (1-t)^(M-1-s)`` (Davis & Recht 2025, THEORY.md §1), expanded in
the monomial basis: the coefficient of ``t^j`` is
``sum_{s<=j} c_s C(M-1, s) C(M-1-s, j-s) (-1)^(j-s)``; ``h_M`` is its antiderivative vanishing at 0.
Coefficients stay exact: rational for rational ``a, b``, algebraic for GRPO (square roots).
"""

from __future__ import annotations

from math import comb
from typing import Any

import numpy as np

from rlvrlens.objectives.scheme import WeightScheme

#: Beyond this group size the exact expansion is refused (its cost grows like M^2 big terms).
MAX_EXACT_M = 256


def t_symbol():
    """The sympy symbol ``t`` in which :func:`h_exact` and :func:`dh_exact` are written."""
    import sympy

    return sympy.Symbol("t")


def exact_c(scheme: WeightScheme) -> list[Any]:
    """Exact ``c_s = b_s - a_s`` as sympy numbers.

    Uses the scheme's own exact coefficients where it has them (every catalogue scheme); other
    schemes' floats are read as the decimal they print as (``0.1`` -> ``1/10``).
    """
    import sympy

    if not isinstance(scheme, WeightScheme):
        raise TypeError(f"scheme must be a WeightScheme, got {type(scheme).__name__}")
    if scheme.exact is not None:
        a, b = scheme.exact()
        return [sympy.sympify(bs - as_, strict=True) for as_, bs in zip(a, b)]  # never parses a string
    return [sympy.Rational(repr(float(x))) for x in np.asarray(scheme.c)]


def dh_exact(scheme: WeightScheme):
    """``h'_M`` as a ``sympy.Poly`` in ``t``.

    Parameters
    ----------
    scheme : WeightScheme
        The scheme; its exact coefficients are used where it has them, otherwise its floats are read
        as the decimals they print as. ``M <= 256``.

    Returns
    -------
    sympy.Poly
        ``h'_M(t) = sum_s c_s C(M-1,s) t^s (1-t)^(M-1-s)`` expanded in powers of ``t``.

    Raises
    ------
    TypeError
        If ``scheme`` is not a :class:`WeightScheme`.
    ValueError
        If ``M > 256`` (use :func:`rlvrlens.objectives.dh` instead).

    Examples
    --------
    >>> from rlvrlens.objectives import raft
    >>> dh_exact(raft(2)).as_expr()
    2 - t
    """
    import sympy

    if not isinstance(scheme, WeightScheme):
        raise TypeError(f"scheme must be a WeightScheme, got {type(scheme).__name__}")
    M = scheme.M
    if M > MAX_EXACT_M:
        raise ValueError(f"M must be <= {MAX_EXACT_M} for exact expansion, got {M}; use h/dh")
    c = exact_c(scheme)
    coeffs = []
    for j in range(M):
        terms = [c[s] * (comb(M - 1, s) * comb(M - 1 - s, j - s) * (-1) ** (j - s))
                 for s in range(j + 1) if c[s] != 0]
        coeffs.append(sympy.Add(*terms))
    return sympy.Poly(list(reversed(coeffs)), t_symbol())


def h_exact(scheme: WeightScheme):
    """``h_M`` as a ``sympy.Poly`` in ``t`` with ``h_M(0) = 0``.

    Parameters
    ----------
    scheme : WeightScheme
        The scheme, ``M <= 256`` (as in :func:`dh_exact`).

    Returns
    -------
    sympy.Poly
        The integral of :func:`dh_exact` with zero constant term.

    Raises
    ------
    TypeError
        If ``scheme`` is not a :class:`WeightScheme`.
    ValueError
        If ``M > 256``.

    Examples
    --------
    >>> from rlvrlens.objectives import raft
    >>> h_exact(raft(2)).as_expr()
    -t**2/2 + 2*t
    """
    return dh_exact(scheme).integrate()
