"""Designing weights for a target objective ``h`` (THEORY.md §1, "Designing weights"; ours).

Three methods, all returning a :class:`DesignResult`:

* ``"quasi"`` (default). If ``h'`` is a polynomial of degree ``<= M-1`` its exact Bernstein
  coefficients give a scheme with ``h_M = h - h(0)`` identically; they are computed in exact integer
  arithmetic from the monomial coefficients ``a_j`` of ``h'`` by the closed form
  ``c_s = sum_j a_j C(s, j)/C(M-1, j)`` (``t^j = sum_{s>=j} C(s,j)/C(M-1,j) B_{s,M-1}(t)``),
  tabulated over ``s`` by Newton forward differences, ``O(M d)`` big-integer additions for degree
  ``d``. Otherwise Bernstein quasi-interpolation ``c_s = h'(node_s)``: nodes ``s/(M-1)`` when ``h'``
  is finite on ``[0, 1]``, interior nodes ``(s+1)/(M+1)`` when it blows up at an end.
* ``"minimax"``: the ``c`` minimising ``min_k sup_{t in interval} |h_M(t) - h(t) - k|`` over a dense
  grid, by linear programming (scipy's HiGHS), optionally with ``|a_s|, |b_s| <= max_weight``.
  ``h_M(t) = (1/M) sum_s c_s I_t(s+1, M-s)`` is linear in ``c``; the LP is solved for a correction
  to the quasi-interpolant, in units scaled to its residual, and refined twice (iterative
  refinement), which keeps it well-conditioned at ``M = 256``.
* ``"lsq"``: the same fit in the least-squares sense (the constant ``k`` free), with the same
  optional bound.

``c`` is then split into ``(a, b)``: all on the right answers, centred (RLOO-like), or custom. The
result reports the sup error on the interval and the largest second moment ``E[Z^2]`` of the
weights there (:func:`rlvrlens.objectives.second_moment`), so that accuracy and cost are seen
together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from rlvrlens.core.budget import check_group_size
from rlvrlens.core.checks import check_float, check_probabilities
from rlvrlens.objectives.catalogue import split_c, split_c_exact
from rlvrlens.objectives.expression import FUNCTION_NAMES, parse_target
from rlvrlens.objectives.numeric import h as h_numeric
from rlvrlens.objectives.scheme import WeightScheme
from rlvrlens.objectives.variance import second_moment

_NODE_CHOICES = ("auto", "uniform", "interior")
_METHODS = ("quasi", "minimax", "lsq")
#: Above this many big-integer operations (M times the degree) the exact conversion is refused.
MAX_EXACT_WORK = 20_000_000
#: Above this group size the minimax and least-squares fits are refused (dense M x grid matrices).
MAX_FIT_M = 1024


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
        The quasi-interpolation nodes (None for an exact design or a fit).
    method : str
        ``"quasi"``, ``"minimax"`` or ``"lsq"``.
    second_moment : float
        ``max_{t in interval} E[Z^2]``, the largest second moment of one answer's weight.
    max_weight : float or None
        The bound on ``|a_s|, |b_s|`` the fit was held to.
    """

    scheme: WeightScheme
    error: float
    constant: float
    interval: tuple[float, float]
    exact: bool
    nodes: np.ndarray | None
    method: str = "quasi"
    second_moment: float = float("nan")
    max_weight: float | None = None

    def __repr__(self) -> str:
        lo, hi = self.interval
        bound = "" if self.max_weight is None else f", max_weight={self.max_weight:g}"
        return (f"DesignResult({self.scheme.name!r}, M={self.scheme.M}, method={self.method!r}, "
                f"exact={self.exact}, error={self.error:.3g} on [{lo:g}, {hi:g}], "
                f"second_moment={self.second_moment:.3g}{bound})")


# --------------------------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------------------------

def _allowed_function_classes():
    import sympy

    return tuple(getattr(sympy, name) for name in FUNCTION_NAMES if name != "sqrt")


def _check_expression(expr, target: Any):
    """Refuse anything but an elementary real expression in ``t`` (whitelist of node types)."""
    import sympy

    t = sympy.Symbol("t")
    if not isinstance(expr, sympy.Expr):
        raise ValueError(f"target must be an expression in t, got {target!r}")
    allowed_functions = _allowed_function_classes()
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, sympy.Symbol):
            if node != t:
                raise ValueError(f"target must be an expression in the single variable t, got {node} in it")
        elif node.is_Number or node in (sympy.zoo, sympy.oo, -sympy.oo, sympy.nan):
            if not (node.is_real and node.is_finite):
                raise ValueError(f"target: contains the non-finite or non-real number {node} "
                                 "(e.g. log(0), 1/0 or nan)")
        elif isinstance(node, (sympy.Add, sympy.Mul, sympy.Pow, sympy.NumberSymbol)):
            continue
        elif isinstance(node, allowed_functions):
            continue
        elif node is sympy.I or node == sympy.I:
            raise ValueError("target must be real-valued; it contains the imaginary unit I")
        else:
            raise ValueError(f"target: {type(node).__name__} is not an elementary function this package "
                             f"designs for (allowed: + - * / **, {', '.join(FUNCTION_NAMES)}, pi, E)")
    return expr


def _parse_target(target: Any, derivative: Callable | None):
    """Return (sympy expr or None, h callable, h' callable)."""
    import sympy

    t = sympy.Symbol("t")
    if isinstance(target, str) or isinstance(target, sympy.Basic):
        expr = parse_target(target) if isinstance(target, str) else target
        expr = _check_expression(expr, target)
        d_expr = sympy.diff(expr, t)
        return expr, sympy.lambdify(t, expr, "numpy"), sympy.lambdify(t, d_expr, "numpy")
    if callable(target):
        if derivative is None or not callable(derivative):
            raise TypeError("derivative must be given (a callable h'(t)) when target is a callable")
        return None, target, derivative
    raise TypeError(f"target must be a string, a sympy expression or a callable, got {type(target).__name__}")


def _evaluate(fn: Callable, t: np.ndarray, what: str = "target") -> np.ndarray:
    try:
        with np.errstate(all="ignore"):
            value = np.asarray(fn(t))
            if value.dtype == object:  # an exact integer the expression left as a Python int
                value = value.astype(complex if np.iscomplexobj(t) else float)
    except OverflowError:  # an exact number beyond float64 (e.g. 10**1999) in the expression
        raise ValueError(f"{what}: its values are beyond the float64 range (|x| > 1.8e308); "
                         "scale the target down") from None
    if np.iscomplexobj(value):
        imag = np.abs(value.imag)
        if (imag > 1e-12 * (1.0 + np.abs(value.real))).any():
            where = np.argmax((imag > 1e-12 * (1.0 + np.abs(value.real))).ravel())
            bad = np.broadcast_to(t, value.shape).ravel()[where].real
            raise ValueError(f"{what} must be real-valued on (0, 1); at t = {bad:.4g} it is "
                             f"{complex(value.ravel()[where]):.4g}")
        value = value.real
    return np.broadcast_to(value.astype(float), t.shape)


def _check_real(h_fn: Callable, dh_fn: Callable, inner: np.ndarray) -> None:
    """Evaluate with complex arguments so that e.g. ``sqrt(t - 2)`` shows its imaginary part."""
    z = inner.astype(complex)
    _evaluate(h_fn, z, "target")
    _evaluate(dh_fn, z, "target's derivative")


# --------------------------------------------------------------------------------------------
# Exact conversion (polynomial h')
# --------------------------------------------------------------------------------------------

def _falling(n: int, k: int) -> int:
    return math.perm(n, k) if k >= 0 else 0


def _tabulate(diffs: list, M: int) -> list:
    """Values ``P(0), ..., P(M-1)`` of the polynomial with forward differences ``diffs`` at 0."""
    diffs = list(diffs)
    out = []
    d = len(diffs) - 1
    for _ in range(M):
        out.append(diffs[0])
        for j in range(d):
            diffs[j] += diffs[j + 1]
    return out


def exact_bernstein(expr, M: int):
    """Exact Bernstein coefficients ``c_0..c_{M-1}`` of ``h' = expr'`` in degree ``M - 1``, or None
    when ``h'`` is not a polynomial of degree ``<= M-1``.

    Returns ``(c, exact)``: ``c`` as floats (correctly rounded) and a thunk giving the sympy values.

    Examples
    --------
    >>> import sympy
    >>> c, exact = exact_bernstein(sympy.Symbol("t") ** 3, 4)
    >>> c.tolist(), exact()
    ([0.0, 0.0, 1.0, 3.0], [0, 0, 1, 3])
    """
    import sympy

    t = sympy.Symbol("t")
    try:
        poly = sympy.Poly(expr, t)
    except sympy.PolynomialError:
        return None
    dpoly = poly.diff(t)
    d = max(dpoly.degree(), 0)
    if d > M - 1:
        return None
    if M * (d + 1) > MAX_EXACT_WORK:
        raise ValueError(f"target: the exact Bernstein conversion of a degree-{d} h' at M = {M} needs about "
                         f"{M * (d + 1):.3g} big-integer operations (limit {MAX_EXACT_WORK:.3g}); use "
                         "method='minimax' or a smaller M")
    coeffs = list(reversed(dpoly.all_coeffs())) + [sympy.Integer(0)] * (d + 1 - len(dpoly.all_coeffs()))
    if all(cf.is_Rational for cf in coeffs):
        # integer numerators: N_s = sum_j n_j j! falling(M-1-j, d-j) C(s, j), common denominator D falling(M-1, d)
        den = math.lcm(*(int(cf.q) for cf in coeffs))
        nums = [int(cf.p) * (den // int(cf.q)) for cf in coeffs]
        diffs = [nums[j] * math.factorial(j) * _falling(M - 1 - j, d - j) for j in range(d + 1)]
        scale = den * _falling(M - 1, d)
        values = _tabulate(diffs, M)
        c = np.array([v / scale for v in values])  # int / int is correctly rounded

        def exact():
            return [sympy.Rational(v, scale) for v in values]

        return c, exact
    # algebraic coefficients (pi, sqrt(2), ...): the same recurrence in sympy arithmetic
    if M * (d + 1) > 200_000:
        raise ValueError(f"target: exact conversion with non-rational coefficients is limited to M (d+1) <= "
                         f"200000, got {M * (d + 1)}; use method='minimax'")
    diffs = [coeffs[j] / math.comb(M - 1, j) for j in range(d + 1)]
    values = _tabulate(diffs, M)
    c = np.array([float(v) for v in values])
    return c, (lambda: list(values))


# --------------------------------------------------------------------------------------------
# Fits
# --------------------------------------------------------------------------------------------

def _error_grid(lo: float, hi: float) -> np.ndarray:
    grid = np.unique(np.concatenate([np.linspace(lo, hi, 2001), np.geomspace(max(lo, 1e-12), hi, 500)]))
    return grid[(grid >= lo) & (grid <= hi)]


def _value_matrix(M: int, t: np.ndarray) -> np.ndarray:
    """``A[j, s] = I_{t_j}(s+1, M-s) / M``, so that ``h_M(t_j) = (A c)_j`` (Davis & Recht 2025, Thm 1)."""
    from scipy import special

    s = np.arange(M)
    return special.betainc(s[None, :] + 1.0, (M - s)[None, :], t[:, None]) / M


def _weight_bounds(M: int, split: Any, max_weight: float | None,
                   monotone: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """Bounds ``lower <= c_s <= upper`` implied by ``|a_s|, |b_s| <= max_weight`` for the split and,
    with ``monotone``, by ``c_s >= 0`` (then ``h'_M >= 0``: ``h_M`` non-decreasing like the target)."""
    if max_weight is None and not monotone:
        return None
    upper = np.full(M, np.inf)
    if max_weight is not None:
        if not isinstance(split, str):
            raise ValueError("max_weight needs split='right' or 'centred' (a callable split is not bounded)")
        if split == "right" or M == 1:
            upper = np.full(M, max_weight)
        else:
            s = np.arange(M)
            upper = max_weight * (M - 1) / np.maximum(s, M - 1 - s)
    lower = np.zeros(M) if monotone else -upper
    return lower, upper


def _feasible(c: np.ndarray, bound) -> bool:
    if bound is None:
        return True
    lower, upper = bound
    tol = 1e-9 * (1.0 + np.abs(c))
    return bool(np.all(c >= lower - tol) and np.all(c <= upper + tol))


#: Number of basis functions of the correction to ``c`` (Chebyshev polynomials in ``s``).
_N_BASIS = 64


def _fit(method: str, M: int, grid: np.ndarray, y_fn: Callable[[np.ndarray], np.ndarray], c0: np.ndarray,
         bound: np.ndarray | None) -> np.ndarray:
    """Minimax (LP) or least-squares ``c`` for ``h_M ≈ h + k`` on the interval of ``grid``,
    starting from the quasi-interpolant ``c0``.

    The correction is fitted in a scaled basis, ``c = c0 + w * (V beta)``: ``V`` holds the first
    ``min(M, 64)`` Chebyshev polynomials in ``s`` and ``w_s = |c0_s|`` (plus a floor), so that the
    closed forms of the catalogue, smooth multiples of the quasi-interpolant, lie in (or next to)
    the span, and the LP has a few dozen well-scaled unknowns instead of ``M`` nearly dependent
    ones. Each round solves for a correction in units of the current residual (iterative
    refinement) on Chebyshev points of the interval plus the worst points of the dense ``grid``
    (an exchange step); the best iterate on ``grid`` is returned.
    """
    lo, hi = float(grid[0]), float(grid[-1])
    y_dense = y_fn(grid)
    A_dense = _value_matrix(M, grid)
    if bound is not None:
        c0 = np.clip(c0, *bound)  # a feasible start
        if method == "lsq":  # bounded least squares directly in c (bounded variables, BVLS)
            from scipy import optimize

            big = np.full(1, np.inf)
            res = optimize.lsq_linear(np.hstack([A_dense, -np.ones((grid.size, 1))]), y_dense,
                                      bounds=(np.r_[bound[0], -big], np.r_[bound[1], big]), method="bvls")
            return np.clip(res.x[:M], *bound)
    n_cheb = min(1500, max(300, 3 * M))
    cheb = 0.5 * (lo + hi) + 0.5 * (hi - lo) * np.cos(np.pi * (np.arange(n_cheb) + 0.5) / n_cheb)
    J = min(M, _N_BASIS)
    u = 2.0 * np.arange(M) / (M - 1) - 1.0 if M > 1 else np.zeros(1)
    w = np.abs(c0) + 1e-3 * max(float(np.abs(c0).max()), 1e-12)
    basis = w[:, None] * np.polynomial.chebyshev.chebvander(u, J - 1)
    c = c0.copy()
    best_c, best_err = c0, np.inf
    for _ in range(4):
        r_dense = y_dense - A_dense @ c
        err = 0.5 * float(r_dense.max() - r_dense.min())
        if err < best_err and _feasible(c, bound):
            best_c, best_err = c, err
        dev = np.abs(r_dense - 0.5 * (r_dense.max() + r_dense.min()))
        pts = np.union1d(cheb, grid[np.argsort(dev)[-200:]])
        A = _value_matrix(M, pts)
        r = y_fn(pts) - A @ c
        sigma = float(np.abs(r - r.mean()).max())
        if sigma == 0.0:
            break
        limits = None if bound is None else ((bound[0] - c) / sigma, (bound[1] - c) / sigma)
        beta = _solve(method, A @ basis, r / sigma, basis, limits)
        if beta is None:
            break
        c = c + sigma * (basis @ beta)
    r_dense = y_dense - A_dense @ c
    if 0.5 * float(r_dense.max() - r_dense.min()) < best_err and _feasible(c, bound):
        best_c = c
    if bound is None:
        return best_c
    best_c = np.clip(best_c, *bound)
    return np.where(np.abs(best_c) < 1e-12 * float(np.abs(best_c).max()), 0.0, best_c)  # rounding residue


def _linprog(cost: np.ndarray, A_ub: np.ndarray, b_ub: np.ndarray, bounds: list) -> np.ndarray | None:
    from scipy import optimize

    res = optimize.linprog(cost, A_ub=A_ub, b_ub=b_ub, bounds=bounds, method="highs")
    return res.x if res.status == 0 else None


def _solve(method: str, Q: np.ndarray, r: np.ndarray, basis: np.ndarray, limits) -> np.ndarray | None:
    """Coefficients ``beta`` with ``Q beta ≈ r + k`` (``k`` free) in the minimax or least-squares
    sense, subject to ``lo <= basis beta <= hi`` when ``limits = (lo, hi)`` is given."""

    G, J = Q.shape
    ones = np.ones((G, 1))
    if method == "minimax":
        # variables (beta, k, e): minimise e with |Q beta - k - r| <= e
        rows = [np.hstack([Q, -ones, -ones]), np.hstack([-Q, ones, -ones])]
        rhs = [r, -r]
        if limits is not None:
            zeros = np.zeros((basis.shape[0], 2))
            up, down = np.isfinite(limits[1]), np.isfinite(limits[0])
            rows += [np.hstack([basis, zeros])[up], np.hstack([-basis, zeros])[down]]
            rhs += [limits[1][up], -limits[0][down]]
        cost = np.zeros(J + 2)
        cost[-1] = 1.0
        sol = _linprog(cost, np.vstack(rows), np.concatenate(rhs), [(None, None)] * (J + 1) + [(0, None)])
        return None if sol is None else sol[:J]
    return np.linalg.lstsq(np.hstack([Q, ones]), r, rcond=None)[0][:J]


# --------------------------------------------------------------------------------------------
# design
# --------------------------------------------------------------------------------------------

def design(
    target: Any,
    M: int,
    *,
    derivative: Callable | None = None,
    split: str | Callable[[np.ndarray], np.ndarray] = "right",
    nodes: str | np.ndarray = "auto",
    interval: tuple[float, float] | None = None,
    method: str = "quasi",
    max_weight: float | None = None,
    monotone: bool = False,
    name: str | None = None,
) -> DesignResult:
    """Weights for group size ``M`` whose induced objective ``h_M`` matches ``target``.

    Parameters
    ----------
    target : str, sympy expression or callable
        The desired ``h(t)``, e.g. ``"log(t/(1-t))"``: ``t``, numbers, ``+ - * / **``, ``pi``, ``E``
        and the functions of :data:`rlvrlens.objectives.expression.FUNCTION_NAMES` (strings are
        parsed by a whitelist, never evaluated). A callable needs ``derivative``.
    M : int
        Group size, ``M >= 1``.
    derivative : callable, optional
        ``h'(t)`` when ``target`` is a callable.
    split : {"right", "centred"} or callable
        How ``c`` is split into ``(a, b)``; a callable maps ``c`` to ``a`` (then ``b = a + c``).
    nodes : {"auto", "uniform", "interior"} or array of M points in [0, 1]
        Quasi-interpolation nodes (``method="quasi"`` only, ignored for an exact design).
    interval : (float, float), optional
        Where the error is measured (and, for the fits, minimised); default ``[0, 1]``, shrunk to
        ``[0.01, 0.99]`` at an end where ``h'`` is infinite.
    method : {"quasi", "minimax", "lsq"}
        See the module docstring.
    max_weight : float, optional
        Fits only: bound ``|a_s|, |b_s| <= max_weight`` (for the ``"right"`` and ``"centred"`` splits).
    monotone : bool
        Fits only: require ``c_s >= 0``, so that ``h'_M >= 0`` and ``h_M`` is non-decreasing like the
        target (without it the fit may use sign-changing weights).

    Returns
    -------
    DesignResult

    Raises
    ------
    ValueError
        If the target is not an allowed real expression, ``h'`` is negative (target not monotone
        non-decreasing) or not finite inside ``(0, 1)``, or an argument is out of range.

    Examples
    --------
    >>> r = design("t**3", 4)
    >>> r.exact, r.scheme.c.tolist()
    (True, [0.0, 0.0, 1.0, 3.0])
    >>> r = design("log(t/(1-t))", 16, method="minimax", interval=(0.05, 0.95))
    >>> r.error < design("log(t/(1-t))", 16, interval=(0.05, 0.95)).error
    True
    """
    import sympy

    M = check_group_size(M, minimum=1)
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if not isinstance(monotone, (bool, np.bool_)):
        raise TypeError(f"monotone must be a bool, got {monotone!r}")
    if monotone and method == "quasi":
        raise ValueError("monotone applies only to method='minimax' or 'lsq' (quasi-interpolation of a "
                         "non-decreasing target is monotone already)")
    if max_weight is not None:
        if method == "quasi":
            raise ValueError("max_weight applies only to method='minimax' or 'lsq'")
        max_weight = check_float("max_weight", max_weight, low=0.0, low_open=True)
    if method != "quasi" and M > MAX_FIT_M:
        raise ValueError(f"M must be <= {MAX_FIT_M} for method={method!r}, got {M}")
    expr, h_fn, dh_fn = _parse_target(target, derivative)
    inner = np.linspace(0.0, 1.0, 4001)[1:-1]
    if expr is not None:
        _check_real(h_fn, dh_fn, inner)
    for values, label in ((_evaluate(h_fn, inner), "h(t)"), (_evaluate(dh_fn, inner, "target's derivative"), "h'(t)")):
        if not np.isfinite(values).all():
            at = np.argmax(~np.isfinite(values))
            raise ValueError(f"target: {label} must be finite for every t in (0, 1); at t = {inner[at]:.4g} it is "
                             f"{values[at]} (beyond float64 or undefined)")
    slope = values
    if (slope < 0).any():
        bad = inner[np.argmax(slope < 0)]
        raise ValueError(f"target must be non-decreasing on (0, 1); h'({bad:.4g}) = "
                         f"{_evaluate(dh_fn, np.array([bad]))[0]:.4g} < 0")
    with np.errstate(all="ignore"):
        ends = _evaluate(dh_fn, np.array([0.0, 1.0]))
    ends_finite = np.isfinite(ends)
    for end, slope_there, finite in zip((0, 1), ends, ends_finite):
        if finite and slope_there < 0:  # inside, h' may have underflowed to 0 (e.g. exp(-1e308*t))
            raise ValueError(f"target must be non-decreasing on [0, 1]; h'({end}) = {slope_there:.4g} < 0")

    if interval is None:
        interval = (0.0 if ends_finite[0] else 0.01, 1.0 if ends_finite[1] else 0.99)
    lo, hi = (float(x) for x in check_probabilities("interval", interval).ravel()[:2])
    if np.asarray(interval).size != 2 or not lo < hi:
        raise ValueError(f"interval must be (lo, hi) with lo < hi inside [0, 1], got {interval}")
    grid = _error_grid(lo, hi)
    y = _evaluate(h_fn, grid)
    finite = np.isfinite(y)
    if not finite.all() and method != "quasi":
        raise ValueError(f"target: h is not finite on the interval [{lo:g}, {hi:g}] (at t = "
                         f"{grid[~finite][0]:.4g}); choose an interval inside (0, 1)")

    exact = exact_bernstein(expr, M) if expr is not None else None
    node_points = None
    if exact is not None:
        c = exact[0]
    else:
        node_points = _nodes(nodes, M, ends_finite)
        c = _evaluate(dh_fn, node_points)
        if not np.isfinite(c).all():
            raise ValueError("target: h' is not finite at a quasi-interpolation node; use nodes='interior'")
    bound = _weight_bounds(M, split, max_weight, monotone)
    if method != "quasi" and not (exact is not None and _feasible(c, bound)):
        # an exact design within the bound is already optimal (error 0); otherwise fit
        c = _fit(method, M, grid, lambda x: _evaluate(h_fn, x), c, bound)
        exact, node_points = None, None
    if callable(split):
        a = np.asarray(split(c.copy()), dtype=float)
        b = a + c
    else:
        a, b = split_c(c, split)

    exact_split = exact is not None and isinstance(split, str)
    label = name or (f"design[{target}]" if isinstance(target, (str, sympy.Basic)) else "design")
    params = {"split": split if isinstance(split, str) else "custom", "method": method}
    if max_weight is not None:
        params["max_weight"] = max_weight
    if monotone:
        params["monotone"] = True
    scheme = WeightScheme(M, a, b, name=label, params=params,
                          exact=(lambda: split_c_exact(exact[1](), split)) if exact_split else None)

    diff = h_numeric(scheme, grid) - y
    diff = diff[np.isfinite(diff)]
    constant = 0.5 * (diff.max() + diff.min())
    error = 0.0 if exact is not None else 0.5 * (diff.max() - diff.min())
    moment = float(second_moment(scheme, np.linspace(lo, hi, 201)).max())
    return DesignResult(scheme, float(error), float(constant), (lo, hi), exact is not None, node_points,
                        method, moment, max_weight)


def design_front(target: Any, M: int, max_weights: Sequence[float], *, method: str = "minimax",
                 **kwargs: Any) -> list[DesignResult]:
    """The error-versus-cost front: one :func:`design` per bound in ``max_weights``.

    Parameters
    ----------
    target : str, sympy expression or callable
        The desired ``h(t)``, as in :func:`design`.
    M : int
        Group size, ``M >= 1``.
    max_weights : sequence of float
        The bounds ``|a_s|, |b_s| <= max_weight`` to fit under, one design each.
    method : {"minimax", "lsq"}, default "minimax"
        The fit (``max_weight`` applies to fits only; see :func:`design`).
    **kwargs
        Other keyword arguments of :func:`design` (``interval``, ``split``, ``monotone``, ...).

    Returns
    -------
    list of DesignResult
        One result per entry of ``max_weights``, in the same order.

    Raises
    ------
    ValueError
        As :func:`design` does, for any of the bounds.

    Examples
    --------
    >>> front = design_front("log(t)", 16, [2.0, 8.0], interval=(0.05, 0.95))
    >>> front[0].error >= front[1].error
    True
    """
    return [design(target, M, method=method, max_weight=w, **kwargs) for w in max_weights]


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
