"""The weight scheme: what every RL-with-verifiable-rewards update in the catalogue is.

Davis & Recht (2025), Algorithm 1: sample M answers, give answer i the weight

    Z_i = (1 - R_i) a[S_i] + R_i b[S_i],    S_i = sum_{j != i} R_j,

and step along (1/M) sum_i Z_i grad log pi(y_i | x). A :class:`WeightScheme` holds ``a`` and ``b``;
the expected step it induces is described by :func:`rlvrlens.objectives.h`.
"""

from __future__ import annotations

import itertools
import types
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from rlvrlens.core.budget import check_group_size
from rlvrlens.core.checks import check_finite_array

#: A function of real-valued rewards of shape (..., M) returning weights of the same shape.
RewardFormula = Callable[[np.ndarray], np.ndarray]
#: A thunk returning exact (sympy) versions of ``a`` and ``b``.
ExactCoefficients = Callable[[], "tuple[Sequence[Any], Sequence[Any]]"]


@dataclass(frozen=True, eq=False)
class WeightScheme:
    """An immutable weight scheme ``Z_i = (1-R_i) a[S_i] + R_i b[S_i]`` for groups of ``M`` answers.

    Parameters
    ----------
    M : int
        Group size (answers sampled per prompt), ``M >= 1``.
    a, b : array_like, shape (M,)
        Weight of a wrong (``a``) and a right (``b``) answer when ``s`` of the other ``M - 1``
        answers are right, ``s = 0..M-1``. Must be finite.
    name : str
        Short name (the registry key for catalogue schemes).
    params : mapping
        The parameters the scheme was built from (``{"eps": 1e-6, ...}``).
    formula : callable, optional
        The scheme's defining formula for real-valued rewards, shape (..., M) -> (..., M). Used by
        :meth:`weights` when rewards are not all 0/1. Schemes without one require 0/1 rewards.
    exact : callable, optional
        Returns exact sympy values of ``(a, b)``; used by :func:`rlvrlens.objectives.h_exact`.
    limit : str, optional
        Name of the ``M -> infinity`` limit of ``h_M`` (a key of
        :data:`rlvrlens.objectives.LIMITS`), where one is known.

    Examples
    --------
    >>> from rlvrlens.objectives import rloo
    >>> s = rloo(4)
    >>> s.weights([1, 0, 0, 1]).tolist()
    [0.6666666666666667, -0.6666666666666666, -0.6666666666666666, 0.6666666666666667]
    """

    M: int
    a: np.ndarray
    b: np.ndarray
    name: str = "custom"
    params: Mapping[str, Any] = field(default_factory=dict)
    formula: RewardFormula | None = None
    exact: ExactCoefficients | None = None
    limit: str | None = None

    def __post_init__(self) -> None:
        M = check_group_size(self.M, minimum=1)
        a = check_finite_array("a", self.a, shape=(M,)).copy()
        b = check_finite_array("b", self.b, shape=(M,)).copy()
        with np.errstate(over="ignore"):
            if not np.isfinite(b - a).all():
                raise ValueError("a and b must be finite with b - a finite (c = b - a overflows float64 at "
                                 f"s = {int(np.argmax(~np.isfinite(b - a)))})")
        a.flags.writeable = False
        b.flags.writeable = False
        object.__setattr__(self, "M", M)
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "b", b)
        object.__setattr__(self, "params", types.MappingProxyType(dict(self.params)))

    @property
    def c(self) -> np.ndarray:
        """``c_s = b_s - a_s``: the only part of the scheme the expected step depends on."""
        return self.b - self.a

    def weights(self, rewards: object) -> np.ndarray:
        """Weights ``Z`` for rewards ``R`` of shape ``(..., M)`` (one group per last-axis row).

        0/1 rewards are looked up in the ``(a, b)`` table; other real rewards go through the
        scheme's formula where it has one, and are refused otherwise.
        """
        R = np.asarray(rewards, dtype=float)
        if R.ndim == 0 or R.shape[-1] != self.M:
            raise ValueError(
                f"rewards must have shape (..., M) with M = {self.M} for scheme {self.name!r}, "
                f"got shape {R.shape}"
            )
        if not np.isfinite(R).all():
            raise ValueError("rewards must be finite (no NaN or inf)")
        if np.all((R == 0) | (R == 1)):
            right = R == 1
            others = (right.sum(axis=-1, keepdims=True) - right).astype(np.int64)
            return np.where(right, self.b[others], self.a[others])
        if self.formula is None:
            raise ValueError(
                f"rewards must be 0/1 for scheme {self.name!r} (it has no formula for "
                "real-valued rewards)"
            )
        return np.asarray(self.formula(R), dtype=float)

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary: name, M, parameters and the coefficient arrays."""
        return {
            "name": self.name,
            "M": self.M,
            "params": dict(self.params),
            "a": self.a.tolist(),
            "b": self.b.tolist(),
            "c": self.c.tolist(),
        }

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WeightScheme):
            return NotImplemented
        return (
            self.M == other.M
            and self.name == other.name
            and dict(self.params) == dict(other.params)
            and np.array_equal(self.a, other.a)
            and np.array_equal(self.b, other.b)
        )

    def __hash__(self) -> int:
        return hash((self.M, self.name, self.a.tobytes(), self.b.tobytes()))

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"WeightScheme(name={self.name!r}, M={self.M}{', ' + params if params else ''})"


def from_rs(M: int, fn: Callable[[int, int], float], name: str = "custom", **params: Any) -> WeightScheme:
    """Build a scheme from any function ``fn(R_i, S_i)`` of the answer's reward and the others' count.

    Parameters
    ----------
    M : int
        Group size, ``1 <= M <= 10**6``.
    fn : callable
        ``fn(r, s) -> float`` with ``r`` in ``{0, 1}`` and ``s = 0..M-1``: ``a_s = fn(0, s)``,
        ``b_s = fn(1, s)``.
    name : str, default "custom"
        The scheme's name.
    **params
        Stored as the scheme's ``params``.

    Returns
    -------
    WeightScheme
        The scheme with those ``(a, b)`` (no formula for real-valued rewards, no exact coefficients).

    Raises
    ------
    ValueError
        If ``M`` is out of range or a weight is not finite.

    Examples
    --------
    >>> s = from_rs(3, lambda r, s: r * 2.0 - s)
    >>> s.a.tolist(), s.b.tolist()
    ([0.0, -1.0, -2.0], [2.0, 1.0, 0.0])
    """
    M = check_group_size(M, minimum=1)
    a = np.array([float(fn(0, s)) for s in range(M)])
    b = np.array([float(fn(1, s)) for s in range(M)])
    return WeightScheme(M, a, b, name=name, params=params)


#: Above this group size the equivariance check samples permutations instead of enumerating 2^M.
_ENUMERATE_UP_TO = 12


def from_group_fn(
    M: int,
    fn: Callable[[np.ndarray], Sequence[float]],
    name: str = "custom",
    *,
    seed: int = 0,
    **params: Any,
) -> WeightScheme:
    """Build a scheme from a function of the whole 0/1 reward vector of a group.

    ``fn`` maps a reward vector of length ``M`` to ``M`` weights. It is accepted only if the weight
    of answer ``i`` depends on nothing but ``(R_i, S_i)``: checked on all ``2^M`` vectors for
    ``M <= 12``, and otherwise on every count of right answers with several random orders.

    Parameters
    ----------
    M : int
        Group size, ``1 <= M <= 10**6``.
    fn : callable
        Maps a float array of ``M`` 0/1 rewards (a copy) to ``M`` finite weights.
    name : str, default "custom"
        The scheme's name.
    seed : int, default 0
        Seed of the random orders used for ``M > 12``.
    **params
        Stored as the scheme's ``params``.

    Returns
    -------
    WeightScheme
        The scheme with ``a_s``, ``b_s`` read off ``fn``.

    Raises
    ------
    ValueError
        If ``fn`` returns the wrong shape or non-finite values, or is not a function of
        ``(R_i, S_i)`` alone (e.g. it depends on the position ``i``).

    Examples
    --------
    >>> s = from_group_fn(3, lambda R: R - R.mean())
    >>> s.b.tolist()
    [0.6666666666666667, 0.33333333333333337, 0.0]
    """
    M = check_group_size(M, minimum=1)
    table: dict[tuple[int, int], float] = {}
    rng = np.random.default_rng(seed)

    def vectors():
        if M <= _ENUMERATE_UP_TO:
            yield from (np.array(v, dtype=float) for v in itertools.product((0, 1), repeat=M))
            return
        for k in range(M + 1):
            base = np.r_[np.ones(k), np.zeros(M - k)]
            yield base
            for _ in range(8):
                yield rng.permutation(base)

    for R in vectors():
        Z = check_finite_array("fn(rewards)", fn(R.copy()), shape=(M,))
        total = int(R.sum())
        for i in range(M):
            key = (int(R[i]), total - int(R[i]))
            if key in table and not np.isclose(table[key], Z[i], rtol=1e-12, atol=1e-12):
                raise ValueError(
                    f"fn: the weight of an answer must depend only on (R_i, S_i); for R_i = {key[0]}, "
                    f"S_i = {key[1]} it returned both {table[key]!r} and {Z[i]!r} "
                    f"(reward vector {R.astype(int).tolist()})"
                )
            table.setdefault(key, float(Z[i]))
    # every (R_i, S_i) pair occurs in the vectors above, so the table is complete
    a = np.array([table[(0, s)] for s in range(M)])
    b = np.array([table[(1, s)] for s in range(M)])
    return WeightScheme(M, a, b, name=name, params=params)
