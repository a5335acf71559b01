"""Safe parsing of target expressions such as ``"log(t/(1-t))"`` (issue 11, item 1).

A string is never handed to ``sympy.sympify``, ``parse_expr`` or ``eval`` (sympy's string parser
evaluates Python). It is parsed by Python's :mod:`ast` in ``"eval"`` mode, every node is checked
against a whitelist, and the sympy expression is built node by node from that whitelist:

* the variable ``t`` and the constants ``pi`` and ``E``;
* integer and decimal literals (decimals are read as the exact rational they print as);
* ``+``, ``-`` (binary and unary), ``*``, ``/``, ``**`` and parentheses;
* the one-argument functions in :data:`FUNCTIONS`.

Anything else (attribute access, subscripts, calls of other names, keywords, lambdas,
comprehensions, strings, comparisons, ...) is refused with a one-line ``ValueError``. Sizes are
bounded so that no input hangs: at most :data:`MAX_LENGTH` characters, nesting depth
:data:`MAX_DEPTH`, numeric powers whose result has at most :data:`MAX_DIGITS` digits, and a
polynomial degree bound of :data:`MAX_DEGREE`.

Examples
--------
>>> parse_target("log(t/(1-t))")
log(t/(1 - t))
>>> parse_target("__import__('os')")
Traceback (most recent call last):
...
ValueError: target: function '__import__' is not allowed; allowed: log, exp, sqrt, asin, acos, atan, sin, cos, tan, sinh, cosh, tanh, asinh, atanh
"""

from __future__ import annotations

import ast
import math
from typing import Any

#: Longest target string accepted.
MAX_LENGTH = 1000
#: Deepest nesting of operations accepted.
MAX_DEPTH = 60
#: Largest number of decimal digits a numeric power may produce.
MAX_DIGITS = 2000
#: Largest exponent of ``t`` (a bound computed from the expression tree).
MAX_DEGREE = 20_000

#: The functions a target may call, all of one argument.
FUNCTION_NAMES = ("log", "exp", "sqrt", "asin", "acos", "atan", "sin", "cos", "tan",
                  "sinh", "cosh", "tanh", "asinh", "atanh")
CONSTANT_NAMES = ("pi", "E")

_BINOPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)


def _functions() -> dict[str, Any]:
    import sympy

    return {name: getattr(sympy, name) for name in FUNCTION_NAMES}


def parse_target(text: object, *, what: str = "target"):
    """Parse ``text`` into a sympy expression in the symbol ``t`` using the whitelist above.

    Parameters
    ----------
    text : str
        The expression, e.g. ``"1 - (1-t)**3"``.
    what : str
        The name used in error messages.

    Returns
    -------
    sympy.Expr

    Raises
    ------
    ValueError
        One line naming what is not allowed (a name, a construct, a size).
    """
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ValueError(f"{what}: expression is {len(text)} characters long; at most {MAX_LENGTH} are accepted")
    if not text.strip():
        raise ValueError(f"{what}: empty expression")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        msg = getattr(exc, "msg", None) or type(exc).__name__
        raise ValueError(f"{what}: cannot parse {_short(text)} as an expression in t ({msg})") from None
    builder = _Builder(what)
    expr, _ = builder.build(tree.body, 0)
    return expr


def _short(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


class _Builder:
    """Turns a whitelisted :mod:`ast` tree into sympy, tracking a bound on the degree in ``t``."""

    def __init__(self, what: str) -> None:
        import sympy

        self.sympy = sympy
        self.what = what
        self.t = sympy.Symbol("t")
        self.functions = _functions()
        self.constants = {"pi": sympy.pi, "E": sympy.E}

    def fail(self, message: str) -> ValueError:
        return ValueError(f"{self.what}: {message}")

    def build(self, node: ast.AST, depth: int):
        """Return ``(expr, degree_bound)``; ``degree_bound`` is None where ``t`` appears in a
        non-polynomial position (then no power of it can blow up an expansion)."""
        if depth > MAX_DEPTH:
            raise self.fail(f"expression nested deeper than {MAX_DEPTH} levels")
        sp = self.sympy
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self.fail(f"literal {value!r} is not allowed (only real numbers)")
            if isinstance(value, float):
                if not math.isfinite(value):
                    raise self.fail(f"number {value!r} is not finite")
                return sp.Rational(repr(value)), 0
            if abs(value) >= 10**MAX_DIGITS:
                raise self.fail(f"integer literal has more than {MAX_DIGITS} digits")
            return sp.Integer(value), 0
        if isinstance(node, ast.Name):
            if node.id == "t":
                return self.t, 1
            if node.id in self.constants:
                return self.constants[node.id], 0
            raise self.fail(f"unknown name {node.id!r}; the variable is t and the constants are "
                            f"{', '.join(CONSTANT_NAMES)}")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
            operand, deg = self.build(node.operand, depth + 1)
            return (-operand if isinstance(node.op, ast.USub) else operand), deg
        if isinstance(node, ast.BinOp) and isinstance(node.op, _BINOPS):
            left, dl = self.build(node.left, depth + 1)
            right, dr = self.build(node.right, depth + 1)
            return self._binop(node.op, left, dl, right, dr)
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name):
                raise self.fail("only calls of the allowed functions by name are allowed "
                                f"(allowed: {', '.join(FUNCTION_NAMES)})")
            name = node.func.id
            if name not in self.functions:
                raise self.fail(f"function {name!r} is not allowed; allowed: {', '.join(FUNCTION_NAMES)}")
            if node.keywords or len(node.args) != 1 or isinstance(node.args[0], ast.Starred):
                raise self.fail(f"{name}() takes exactly one positional argument")
            arg, deg = self.build(node.args[0], depth + 1)
            return self.functions[name](arg), (0 if deg == 0 else None)
        raise self.fail(f"{type(node).__name__} is not allowed in an expression (allowed: t, numbers, "
                        f"+ - * / **, parentheses, {', '.join(CONSTANT_NAMES)} and "
                        f"{', '.join(FUNCTION_NAMES)})")

    def _binop(self, op: ast.operator, left, dl, right, dr):
        if isinstance(op, (ast.Add, ast.Sub)):
            deg = None if dl is None or dr is None else max(dl, dr)
            return (left + right if isinstance(op, ast.Add) else left - right), self._check(deg)
        if isinstance(op, ast.Mult):
            deg = None if dl is None or dr is None else dl + dr
            return left * right, self._check(deg)
        if isinstance(op, ast.Div):
            if right == 0:
                raise self.fail("division by zero")
            deg = None if dl is None or dr is None else dl + dr
            return left / right, self._check(deg)
        # power
        if dr != 0:  # t in the exponent: not a polynomial, nothing to expand
            return left ** right, None
        if not right.is_number or not right.is_real:
            raise self.fail("exponent must be real")
        exponent = float(right)
        if dl == 0:
            self._check_numeric_power(left, exponent)
            if left == 0 and exponent < 0:
                raise self.fail("division by zero (0 to a negative power)")
            return left ** right, 0
        if abs(exponent) > MAX_DEGREE:
            raise self.fail(f"exponent {exponent:g} is larger than {MAX_DEGREE} in absolute value")
        deg = None if dl is None else dl * abs(exponent)
        return left ** right, self._check(deg)

    def _check(self, deg):
        if deg is not None and deg > MAX_DEGREE:
            raise self.fail(f"the polynomial degree of the expression exceeds {MAX_DEGREE}")
        return deg

    def _check_numeric_power(self, base, exponent: float) -> None:
        if abs(exponent) > MAX_DEGREE:
            raise self.fail(f"exponent {exponent:g} is larger than {MAX_DEGREE} in absolute value")
        if not base.is_Rational or base == 0:
            return  # sympy keeps powers of pi, E, sqrt(2), ... unevaluated
        digits = abs(exponent) * max(math.log10(abs(base.p)), math.log10(base.q))
        if digits > MAX_DIGITS:
            raise self.fail(f"the number {_short(str(base))}**{exponent:g} would have about {digits:.3g} "
                            f"digits; at most {MAX_DIGITS} are accepted")
