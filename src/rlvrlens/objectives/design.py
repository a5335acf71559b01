"""Designing weights for a target objective ``h`` (THEORY.md §1, "Designing weights"; ours).

1. If ``h'`` is a polynomial of degree ``<= M-1``, its exact Bernstein coefficients give a scheme
   with ``h_M = h - h(0)`` identically (power-to-Bernstein conversion,
   ``t^j = sum_{s>=j} C(s, j)/C(M-1, j) B_{s,M-1}(t)``).
2. Otherwise Bernstein quasi-interpolation ``c_s = h'(node_s)``: nodes ``s/(M-1)`` when ``h'`` is
   finite on ``[0, 1]``, interior nodes ``(s+1)/(M+1)`` when it blows up at an end (as rejection
   sampling does with ``(s+1)/M``). The achieved error ``min_k sup |h_M - h - k|`` on a stated
   interval is reported.
3. ``c`` is split into ``(a, b)``: all on the right answers, centred (RLOO-like), or custom.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb
from typing import Any, Callable

import numpy as np

from rlvrlens._validation import check_int, check_probabilities
from rlvrlens.objectives.catalogue import split_c, split_c_exact
from rlvrlens.objectives.numeric import h as h_numeric
from rlvrlens.objectives.scheme import WeightScheme

_NODE_CHOICES = ("auto", "uniform", "interior")


@dataclass(frozen=True)
class DesignResult:
    """The outcome of :func:`design`.

    Attributes
    ----------
    scheme : WeightScheme
        The designed weights.
    error : float
        ``min_k sup_{t in interval} |h_M(t) - h(t) - k|`` (0 for an exact design).
    constant : float
        The minimising ``k``: ``h_M ≈ h + constant`` on the interval.
    interval : tuple of float
        Where ``error`` was measured.
    exact : bool
        Whether ``h_M = h - h(0)`` holds symbolically.
    nodes : numpy.ndarray or None
        The quasi-interpolation nodes (None for an exact design).
    """

    scheme: WeightScheme
    error: float
    constant: float
    interval: tuple[float, float]
    exact: bool
    nodes: np.ndarray | None


def _parse_target(target: Any, derivative: Callable | None):
    """Return (sympy expr or None, h callable, h' callable)."""
    import sympy

    t = sympy.Symbol("t")
    if isinstance(target, str) or isinstance(target, sympy.Expr):
        try:
            expr = sympy.sympify(target, locals={"t": t}) if isinstance(target, str) else target
        except (sympy.SympifyError, SyntaxError, TypeError) as exc:
            raise ValueError(f"target: cannot parse {target!r} as a function of t ({exc})") from None
        if not isinstance(expr, sympy.Expr) or expr.free_symbols - {t}:
            raise ValueError(f"target must be an expression in the single variable t, got {target!r}")
        d_expr = sympy.diff(expr, t)
        return expr, sympy.lambdify(t, expr, "numpy"), sympy.lambdify(t, d_expr, "numpy")
    if callable(target):
        if derivative is None or not callable(derivative):
            raise TypeError("derivative must be given (a callable h'(t)) when target is a callable")
        return None, target, derivative
    raise TypeError(f"target must be a string, a sympy expression or a callable, got {type(target).__name__}")


def _evaluate(fn: Callable, t: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.broadcast_to(np.asarray(fn(t), dtype=float), t.shape)


def _exact_bernstein(expr, M: int):
    """Exact Bernstein coefficients of ``expr'`` in degree ``M-1``, or None if it is not a polynomial
    of degree ``<= M-1``."""
    import sympy

    t = sympy.Symbol("t")
    d_expr = sympy.expand(sympy.diff(expr, t))
    if not d_expr.is_polynomial(t):
        return None
    poly = sympy.Poly(d_expr, t)
    if poly.degree() > M - 1:
        return None
    power = [poly.coeff_monomial(t**j) for j in range(M)]
    return [sympy.Add(*[sympy.Rational(comb(s, j), comb(M - 1, j)) * power[j] for j in range(s + 1)])
            for s in range(M)]


def design(
    target: Any,
    M: int,
    *,
    derivative: Callable | None = None,
    split: str | Callable[[np.ndarray], np.ndarray] = "right",
    nodes: str | np.ndarray = "auto",
    interval: tuple[float, float] | None = None,
    name: str | None = None,
) -> DesignResult:
    """Weights for group size ``M`` whose induced objective ``h_M`` matches ``target``.

    Parameters
    ----------
    target : str, sympy expression or callable
        The desired ``h(t)``, e.g. ``"log(t/(1-t))"``. A callable needs ``derivative``.
    M : int
        Group size, ``M >= 1``.
    derivative : callable, optional
        ``h'(t)`` when ``target`` is a callable.
    split : {"right", "centred"} or callable
        How ``c`` is split into ``(a, b)``; a callable maps ``c`` to ``a`` (then ``b = a + c``).
    nodes : {"auto", "uniform", "interior"} or array of M points in [0, 1]
        Quasi-interpolation nodes (ignored for an exact design).
    interval : (float, float), optional
        Where the error is measured; default ``[0, 1]``, shrunk to ``[0.01, 0.99]`` at an end
        where ``h'`` is infinite.

    Returns
    -------
    DesignResult

    Raises
    ------
    ValueError
        If ``h'`` is negative (target not monotone non-decreasing) or not finite inside ``(0, 1)``.

    Examples
    --------
    >>> r = design("t**3", 4)
    >>> r.exact, r.scheme.c.tolist()
    (True, [0.0, 0.0, 1.0, 3.0])
    """
    import sympy

    M = check_int("M", M, minimum=1)
    expr, h_fn, dh_fn = _parse_target(target, derivative)
    inner = np.linspace(0.0, 1.0, 4001)[1:-1]
    slope = _evaluate(dh_fn, inner)
    if not np.isfinite(slope).all():
        raise ValueError("target: h'(t) must be finite for every t in (0, 1)")
    if (slope < 0).any():
        bad = inner[np.argmax(slope < 0)]
        raise ValueError(f"target must be non-decreasing on (0, 1); h'({bad:.4g}) = {_evaluate(dh_fn, np.array([bad]))[0]:.4g} < 0")
    ends_finite = np.isfinite(_evaluate(dh_fn, np.array([0.0, 1.0])))

    exact_c = _exact_bernstein(expr, M) if expr is not None else None
    node_points = None
    if exact_c is not None:
        c = np.array([float(x) for x in exact_c])
    else:
        node_points = _nodes(nodes, M, ends_finite)
        c = _evaluate(dh_fn, node_points)
        if not np.isfinite(c).all():
            raise ValueError("target: h' is not finite at a quasi-interpolation node; use nodes='interior'")
    if callable(split):
        a = np.asarray(split(c.copy()), dtype=float)
        b = a + c
    else:
        a, b = split_c(c, split)

    exact_split = exact_c is not None and isinstance(split, str)

    label = name or (f"design[{target}]" if isinstance(target, (str, sympy.Expr)) else "design")
    scheme = WeightScheme(M, a, b, name=label, params={"split": split if isinstance(split, str) else "custom"},
                          exact=(lambda: split_c_exact(exact_c, split)) if exact_split else None)

    if interval is None:
        interval = (0.0 if ends_finite[0] else 0.01, 1.0 if ends_finite[1] else 0.99)
    lo, hi = (float(x) for x in check_probabilities("interval", interval).ravel()[:2])
    if not lo < hi:
        raise ValueError(f"interval must satisfy lo < hi inside [0, 1], got {interval}")
    grid = np.unique(np.concatenate([np.linspace(lo, hi, 2001), np.geomspace(max(lo, 1e-12), hi, 500)]))
    grid = grid[(grid >= lo) & (grid <= hi)]
    diff = h_numeric(scheme, grid) - _evaluate(h_fn, grid)
    finite = np.isfinite(diff)
    diff = diff[finite]
    constant = 0.5 * (diff.max() + diff.min())
    error = 0.0 if exact_c is not None else 0.5 * (diff.max() - diff.min())
    return DesignResult(scheme, float(error), float(constant), (lo, hi), exact_c is not None, node_points)


def _nodes(nodes: str | np.ndarray, M: int, ends_finite: np.ndarray) -> np.ndarray:
    s = np.arange(M)
    if isinstance(nodes, str):
        if nodes not in _NODE_CHOICES:
            raise ValueError(f"nodes must be one of {_NODE_CHOICES} or an array, got {nodes!r}")
        if nodes == "auto":
            nodes = "uniform" if ends_finite.all() else "interior"
        if nodes == "uniform":
            return s / (M - 1) if M > 1 else np.array([0.5])
        return (s + 1.0) / (M + 1.0)
    arr = check_probabilities("nodes", nodes)
    if arr.shape != (M,):
        raise ValueError(f"nodes must have shape ({M},), got {arr.shape}")
    return arr
