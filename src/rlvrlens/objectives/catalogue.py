"""The published weight schemes (THEORY.md §1, Davis & Recht 2025, Table and §3) and a registry.

Each constructor returns a :class:`~rlvrlens.objectives.WeightScheme` with its ``(a, b)`` table,
its formula for real-valued rewards where the scheme has one, exact sympy coefficients, and the
name of its ``M -> infinity`` limit.
"""

from __future__ import annotations

import inspect
from math import comb
from typing import Any, Callable

import numpy as np

from rlvrlens._validation import check_float, check_int
from rlvrlens.objectives.scheme import WeightScheme

_STD_CHOICES = ("sample", "population")
_SPLITS = ("right", "centred")


def split_c(c: np.ndarray, split: str = "right") -> tuple[np.ndarray, np.ndarray]:
    """Split ``c = b - a`` into weights ``(a, b)`` (only the variance of the step depends on this).

    ``"right"`` puts everything on the right answers (``a = 0, b = c``); ``"centred"`` uses
    ``b_s = c_s (M-1-s)/(M-1)``, ``a_s = -c_s s/(M-1)``, which for ``c = 1`` is exactly RLOO
    (THEORY.md §1, design step 3).
    """
    c = np.asarray(c, dtype=float)
    M = c.size
    if split == "right":
        return np.zeros(M), c.copy()
    if split == "centred":
        if M == 1:
            return np.zeros(1), c.copy()
        s = np.arange(M)
        return -c * s / (M - 1), c * (M - 1 - s) / (M - 1)
    raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")


def split_c_exact(c: list, split: str = "right") -> tuple[list, list]:
    """:func:`split_c` for exact (sympy) coefficients: the same two splits, kept exact."""
    import sympy

    M = len(c)
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
    if split == "right" or M == 1:
        return [sympy.Integer(0)] * M, list(c)
    return ([-c[s] * sympy.Rational(s, M - 1) for s in range(M)],
            [c[s] * sympy.Rational(M - 1 - s, M - 1) for s in range(M)])


def _rational(x: float):
    """The exact rational a user meant by a decimal float (``1e-8`` -> ``1/100000000``)."""
    import sympy

    return sympy.Rational(repr(float(x)))


def reinforce(M: int) -> WeightScheme:
    """REINFORCE with the 0/1 reward as advantage: ``Z_i = R_i``; ``h_M(t) = t``.

    Examples
    --------
    >>> reinforce(3).weights([1, 0, 1]).tolist()
    [1.0, 0.0, 1.0]
    """
    M = check_int("M", M, minimum=1)

    def exact():
        import sympy

        return [sympy.Integer(0)] * M, [sympy.Integer(1)] * M

    return WeightScheme(M, np.zeros(M), np.ones(M), name="reinforce",
                        formula=lambda R: R.copy(), exact=exact, limit="t")


def rloo(M: int) -> WeightScheme:
    """REINFORCE leave-one-out: ``Z_i = R_i - S_i/(M-1)``; ``h_M(t) = t`` (needs ``M >= 2``)."""
    M = check_int("M", M, minimum=2)
    s = np.arange(M)

    def formula(R: np.ndarray) -> np.ndarray:
        return R - (R.sum(axis=-1, keepdims=True) - R) / (M - 1)

    def exact():
        import sympy

        return ([-sympy.Rational(k, M - 1) for k in range(M)],
                [1 - sympy.Rational(k, M - 1) for k in range(M)])

    return WeightScheme(M, -s / (M - 1), 1 - s / (M - 1), name="rloo",
                        formula=formula, exact=exact, limit="t")


def dr_grpo(M: int) -> WeightScheme:
    """Mean baseline ("Dr. GRPO"): ``Z_i = R_i - mean(R)``; ``h_M(t) = (M-1) t / M``."""
    M = check_int("M", M, minimum=1)
    s = np.arange(M)

    def exact():
        import sympy

        return ([-sympy.Rational(k, M) for k in range(M)],
                [1 - sympy.Rational(k + 1, M) for k in range(M)])

    return WeightScheme(M, -s / M, 1 - (s + 1) / M, name="dr_grpo",
                        formula=lambda R: R - R.mean(axis=-1, keepdims=True),
                        exact=exact, limit="t")


def grpo(M: int, eps: float = 1e-6, std: str = "sample", eps_inside_sqrt: bool = False) -> WeightScheme:
    """GRPO: ``Z_i = (R_i - mean(R)) / (std(R) + eps)``; ``h_M -> 2 arcsin sqrt(t)``.

    Parameters
    ----------
    M : int
        Group size (``M >= 2`` for the sample std).
    eps : float, default 1e-6
        The stabiliser, ``eps >= 0``.
    std : {"sample", "population"}, default "sample"
        ``"sample"`` (ddof = 1, what the CS336 course and most trainers use) or ``"population"``
        (ddof = 0, Mroueh's analysis).
    eps_inside_sqrt : bool, default False
        ``False``: divide by ``std + eps`` (the default of common trainers); ``True``: divide by
        ``sqrt(var + eps)`` (Mroueh 2025).

    Notes
    -----
    With ``k`` right answers the group's std is ``sigma_k = sqrt(k (M-k)) / M`` (population) or
    ``sqrt(k (M-k) / (M (M-1)))`` (sample); ``a_s = -(s/M)/(sigma_s + eps)`` and
    ``b_s = (1 - (s+1)/M)/(sigma_{s+1} + eps)``. A group with zero spread gets weight 0 when
    ``eps = 0`` (the 0/0 is taken as 0, as trainers do).
    """
    M = check_int("M", M, minimum=1)
    eps = check_float("eps", eps, low=0.0)
    if std not in _STD_CHOICES:
        raise ValueError(f"std must be one of {_STD_CHOICES}, got {std!r}")
    if std == "sample" and M < 2:
        raise ValueError("M must be >= 2 for std='sample' (the sample std of one answer is undefined)")
    if not isinstance(eps_inside_sqrt, (bool, np.bool_)):
        raise TypeError(f"eps_inside_sqrt must be a bool, got {eps_inside_sqrt!r}")
    ddof = 1 if std == "sample" else 0

    def denominator(var: np.ndarray) -> np.ndarray:
        return np.sqrt(var + eps) if eps_inside_sqrt else np.sqrt(var) + eps

    def safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den > 0)

    k = np.arange(M + 1)
    den_k = denominator(k * (M - k) / (M * (M - ddof)))
    s = np.arange(M)
    a = safe_ratio(-s / M, den_k[s])
    b = safe_ratio(1 - (s + 1) / M, den_k[s + 1])

    def formula(R: np.ndarray) -> np.ndarray:
        centred = R - R.mean(axis=-1, keepdims=True)
        var = (centred**2).sum(axis=-1, keepdims=True) / (M - ddof)
        return safe_ratio(centred, denominator(var))

    def exact():
        import sympy

        e = _rational(eps)

        def ratio(num, j: int):
            var = sympy.Rational(j * (M - j), M * (M - ddof))
            if var == 0 and e == 0:
                return sympy.Integer(0)
            if eps_inside_sqrt:
                return num / sympy.sqrt(var + e)
            if var == e**2:
                return num / (2 * e)
            # rationalised: 1/(sqrt(v) + e) = (sqrt(v) - e)/(v - e^2), so sums of terms collect
            return num * (sympy.sqrt(var) - e) / (var - e**2)

        return ([ratio(-sympy.Rational(j, M), j) for j in range(M)],
                [ratio(1 - sympy.Rational(j + 1, M), j + 1) for j in range(M)])

    return WeightScheme(M, a, b, name="grpo",
                        params={"eps": eps, "std": std, "eps_inside_sqrt": bool(eps_inside_sqrt)},
                        formula=formula, exact=exact, limit="arcsin")


def raft(M: int) -> WeightScheme:
    """Rejection sampling / RAFT: ``Z_i = M R_i / #right`` (0 if none is right).

    ``h_M(t) = sum_{k=1}^{M} (1 - (1-t)^k)/k``, and ``h_M(t) - H_M -> log t``.
    """
    M = check_int("M", M, minimum=1)
    s = np.arange(M)

    def exact():
        import sympy

        return [sympy.Integer(0)] * M, [sympy.Rational(M, j + 1) for j in range(M)]

    return WeightScheme(M, np.zeros(M), M / (s + 1.0), name="raft", exact=exact, limit="log")


def reinforce_rej(M: int, reward_scale: str = "01") -> WeightScheme:
    """Reinforce-Rej (Xiong et al. 2025): REINFORCE that drops all-right and all-wrong groups.

    ``reward_scale="01"``: ``a = 0``, ``b_s = 1`` for ``s < M-1`` and ``b_{M-1} = 0``
    (``h'_M = 1 - t^{M-1}``). ``"pm1"`` (the paper's ±1 rewards): ``a_0 = 0``, ``a_s = -1``
    (``s >= 1``), ``b_s = 1`` (``s <= M-2``), ``b_{M-1} = 0``.
    """
    M = check_int("M", M, minimum=1)
    if reward_scale not in ("01", "pm1"):
        raise ValueError(f"reward_scale must be '01' or 'pm1', got {reward_scale!r}")
    b = np.ones(M)
    b[M - 1] = 0.0
    a = np.zeros(M)
    if reward_scale == "pm1":
        a[1:] = -1.0

    def exact():
        import sympy

        return [sympy.Integer(int(x)) for x in a], [sympy.Integer(int(x)) for x in b]

    return WeightScheme(M, a, b, name="reinforce_rej", params={"reward_scale": reward_scale},
                        exact=exact, limit="t")


def log_odds(M: int) -> WeightScheme:
    """Log-odds weights: ``Z_i = M R_i/#right - M (1-R_i)/#wrong``; ``h_M -> logit t + const``.

    ``a_s = -M/(M-s)``, ``b_s = M/(s+1)``, ``h_M(t) = H_M + sum_{k=1}^{M} (t^k - (1-t)^k)/k``.
    """
    M = check_int("M", M, minimum=1)
    s = np.arange(M)

    def exact():
        import sympy

        return ([-sympy.Rational(M, M - j) for j in range(M)],
                [sympy.Rational(M, j + 1) for j in range(M)])

    return WeightScheme(M, -M / (M - s), M / (s + 1.0), name="log_odds", exact=exact, limit="logit")


def pass_at_k(M: int, k: int, split: str = "right") -> WeightScheme:
    """Weights whose objective is exactly pass@k: ``h_M(t) = 1 - (1-t)^k`` (``1 <= k <= M``).

    ``c_s = k C(M-k, s) / C(M-1, s)`` for ``s <= M-k``, else 0, split into ``(a, b)`` by
    :func:`split_c`.
    """
    M = check_int("M", M, minimum=1)
    k = check_int("k", k, minimum=1, maximum=M)
    c_exact = [(k * comb(M - k, s), comb(M - 1, s)) if s <= M - k else (0, 1) for s in range(M)]
    c = np.array([num / den for num, den in c_exact])
    a, b = split_c(c, split)

    def exact():
        import sympy

        return split_c_exact([sympy.Rational(num, den) for num, den in c_exact], split)

    return WeightScheme(M, a, b, name="pass_at_k", params={"k": k, "split": split}, exact=exact)


#: Registry: scheme name -> constructor taking ``M`` first and keyword parameters.
SCHEMES: dict[str, Callable[..., WeightScheme]] = {
    "reinforce": reinforce,
    "rloo": rloo,
    "dr_grpo": dr_grpo,
    "grpo": grpo,
    "raft": raft,
    "reinforce_rej": reinforce_rej,
    "log_odds": log_odds,
    "pass_at_k": pass_at_k,
}


def scheme_parameters(name: str) -> dict[str, Any]:
    """The keyword parameters of a registered scheme with their defaults (``inspect.Parameter.empty``
    where required)."""
    ctor = _lookup(name)
    sig = inspect.signature(ctor)
    return {p.name: p.default for p in list(sig.parameters.values())[1:]}


def get_scheme(name: str, M: int, **params: Any) -> WeightScheme:
    """Look a scheme up by name and build it for group size ``M`` with keyword ``params``.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid ones) or a parameter the scheme does not
        take.

    Examples
    --------
    >>> get_scheme("grpo", 8, eps=0.0).params["eps"]
    0.0
    """
    ctor = _lookup(name)
    allowed = scheme_parameters(name)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(
            f"scheme {name!r} does not take parameter(s) {', '.join(unknown)}; "
            f"it takes: {', '.join(allowed) or 'none besides M'}"
        )
    return ctor(M, **params)


def _lookup(name: str) -> Callable[..., WeightScheme]:
    try:
        return SCHEMES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown scheme {name!r}; valid names: {', '.join(SCHEMES)}") from None
