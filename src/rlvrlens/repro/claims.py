"""Claims as code: a statement from a paper, the number we measure, a tolerance, and PASS or FAIL.

A :class:`Claim` is evaluated when a reproduction runs: the measurement is a function, called then,
and its result is compared with the expected value. A measurement that raises is recorded as a
failing claim with the error, never dropped: a reproduction reports every claim it makes.

Examples
--------
>>> c = close("1 + 1 is 2", lambda: 1.0 + 1.0, expected=2.0, tolerance=1e-12)
>>> c.verdict, c.measured
('PASS', 2.0)
>>> at_most("an error below 1e-3", lambda: 0.01, bound=1e-3).verdict
'FAIL'
>>> broken = close("raises", lambda: 1 / 0, expected=0.0, tolerance=1.0)
>>> broken.verdict, broken.error
('FAIL', 'ZeroDivisionError: division by zero')
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

#: How the measured number is compared with ``expected``.
RELATIONS = ("close", "at_most", "at_least")


@dataclass(frozen=True)
class Claim:
    """One checked statement.

    Parameters
    ----------
    statement : str
        What the paper (or our derivation) says, in words.
    measured : float
        The number measured when the reproduction ran (NaN if the measurement failed).
    expected : float
        The value the claim predicts (``"close"``) or the bound it states (``"at_most"``,
        ``"at_least"``).
    tolerance : float
        Allowed ``|measured - expected|`` for ``"close"``; slack added to the bound otherwise.
    relation : {"close", "at_most", "at_least"}
    source : str
        Where the claim comes from ("Davis & Recht Fig. 2", "THEORY.md §1, derived").
    error : str or None
        The exception the measurement raised, if any (the claim then fails).
    """

    statement: str
    measured: float
    expected: float
    tolerance: float = 0.0
    relation: str = "close"
    source: str = ""
    error: str | None = None

    def __post_init__(self) -> None:
        if self.relation not in RELATIONS:
            raise ValueError(f"relation must be one of {RELATIONS}, got {self.relation!r}")
        if not (self.tolerance >= 0):
            raise ValueError(f"tolerance must be >= 0, got {self.tolerance!r}")

    @property
    def passed(self) -> bool:
        """True when the measurement succeeded, is finite, and satisfies the relation."""
        m = self.measured
        if self.error is not None or not math.isfinite(m):
            return False
        if self.relation == "close":
            return abs(m - self.expected) <= self.tolerance
        if self.relation == "at_most":
            return m <= self.expected + self.tolerance
        return m >= self.expected - self.tolerance

    @property
    def verdict(self) -> str:
        """``"PASS"`` or ``"FAIL"``."""
        return "PASS" if self.passed else "FAIL"

    @property
    def criterion(self) -> str:
        """The test applied to the measured number, in words (``"|x - 1| <= 1e-12"``)."""
        e, tol = _num(self.expected), _num(self.tolerance)
        if self.relation == "close":
            return f"|x − {e}| ≤ {tol}"
        slack = f" + {tol}" if self.tolerance else ""
        if self.relation == "at_most":
            return f"x ≤ {e}{slack}"
        return f"x ≥ {e}{' − ' + tol if self.tolerance else ''}"

    def as_dict(self) -> dict:
        """A JSON-ready record (a non-finite measurement becomes ``None``)."""
        measured = self.measured if math.isfinite(self.measured) else None  # JSON has no NaN/inf
        return {"statement": self.statement, "measured": measured, "expected": self.expected,
                "tolerance": self.tolerance, "relation": self.relation, "criterion": self.criterion,
                "verdict": self.verdict, "source": self.source, "error": self.error}


def _num(x: float) -> str:
    return f"{x:.6g}"


def _measure(measure: Callable[[], float]) -> tuple[float, str | None]:
    try:
        return float(measure()), None
    except Exception as exc:  # noqa: BLE001 - a failing measurement is a failing claim, reported
        return math.nan, f"{type(exc).__name__}: {exc}"


def close(statement: str, measure: Callable[[], float], *, expected: float, tolerance: float,
          source: str = "") -> Claim:
    """The claim ``|measure() - expected| <= tolerance``."""
    value, error = _measure(measure)
    return Claim(statement, value, float(expected), float(tolerance), "close", source, error)


def at_most(statement: str, measure: Callable[[], float], *, bound: float, tolerance: float = 0.0,
            source: str = "") -> Claim:
    """The claim ``measure() <= bound + tolerance`` (errors, gaps, ratios that must stay small)."""
    value, error = _measure(measure)
    return Claim(statement, value, float(bound), float(tolerance), "at_most", source, error)


def at_least(statement: str, measure: Callable[[], float], *, bound: float, tolerance: float = 0.0,
             source: str = "") -> Claim:
    """The claim ``measure() >= bound - tolerance`` (margins that must stay positive)."""
    value, error = _measure(measure)
    return Claim(statement, value, float(bound), float(tolerance), "at_least", source, error)


def summary(claims: list[Claim]) -> tuple[int, int]:
    """``(passed, total)``.

    >>> summary([close("a", lambda: 0.0, expected=0.0, tolerance=0.0)])
    (1, 1)
    """
    return sum(c.passed for c in claims), len(claims)
