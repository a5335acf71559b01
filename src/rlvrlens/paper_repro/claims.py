"""Claims as code: a statement, the number we measure, a criterion, and PASS, FAIL or INCONCLUSIVE.

A :class:`Claim` is evaluated when a reproduction runs: the measurement is a function, called then,
and its result is compared with the expected value. A measurement that raises is recorded as a
failing claim with the error, never dropped: a reproduction reports every claim it makes.

Every claim has a **kind** (:data:`KINDS`), shown on the index page:

- ``"paper"``: the expected value is the paper's own published result (a number, the value a figure
  shows, a limit or a finding stated in the paper), cited by arXiv id and figure / table /
  equation / section; the measured value is ours.
- ``"independent"``: our value against an independent computation (a closed form written out
  from the formulas, brute-force enumeration, quadrature, mpmath, Monte Carlo with its error).
- ``"consistency"``: a check that cannot fail for a wrong implementation (an identity, a property
  that holds by construction of a map or a filter, the package compared with itself). Kept as a
  smoke test, labelled as such, and not counted among the claims that can fail.

A measurement may carry **noise** (the standard error of a mean over seeds) and a multiplier
``z`` (the two-sided critical value for the confidence wanted): the claim is then judged on the
interval ``measured ± z·noise``. It PASSES when the whole interval satisfies the relation, FAILS when
none of it does, and is INCONCLUSIVE otherwise (the effect is inside the noise). With ``noise = 0``
(exact computations) the verdict is PASS or FAIL. :func:`seeded` builds such a claim from per-seed
paired differences (Student's t with ``n - 1`` degrees of freedom), :func:`estimated` from a
measurement that comes with its own standard error (normal quantile). A comparison of measured
numbers should always carry its standard error: a tolerance finer than the noise can resolve then
gives INCONCLUSIVE, not a PASS or FAIL decided by the noise.

A claim may carry an ``explanation``: why it fails or is inconclusive where that is understood (the
experiment that explains it), and what a wrong implementation would do to it.

Examples
--------
>>> c = close("1 + 1 is 2", lambda: 1.0 + 1.0, expected=2.0, tolerance=1e-12)
>>> c.verdict, c.measured, c.kind
('PASS', 2.0, 'independent')
>>> at_most("an error below 1e-3", lambda: 0.01, bound=1e-3).verdict
'FAIL'
>>> broken = close("raises", lambda: 1 / 0, expected=0.0, tolerance=1.0)
>>> broken.verdict, broken.error
('FAIL', 'ZeroDivisionError: division by zero')
>>> seeded("A beats B", lambda: [0.10, 0.12, 0.11], bound=0.0).verdict   # mean 0.11, se 0.006
'PASS'
>>> seeded("A beats B", lambda: [0.10, -0.08, 0.02], bound=0.0).verdict  # inside the noise
'INCONCLUSIVE'
>>> estimated("ratio within 3% of 1", lambda: (1.01, 0.024), expected=1.0, tolerance=0.03).verdict
'INCONCLUSIVE'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

#: How the measured number is compared with ``expected``.
RELATIONS = ("close", "at_most", "at_least")
#: What the expected value is (see the module docstring).
KINDS = ("paper", "independent", "consistency", "stored")
#: Kinds left out of the claims that can fail (:func:`summary`).
UNCOUNTED = ("consistency", "stored")
#: The three verdicts.
VERDICTS = ("PASS", "FAIL", "INCONCLUSIVE")


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
        Where the claim comes from ("Davis & Recht, arXiv:2510.13651, Fig. 2", "THEORY.md §1, derived").
    error : str or None
        The exception the measurement raised, if any (the claim then fails).
    kind : {"paper", "independent", "consistency", "stored"}
        What the expected value is, or ``"stored"`` for a value re-read from a committed file
        (module docstring).
    noise : float
        Standard error of ``measured`` (0 for an exact computation; NaN when it cannot be
        estimated, e.g. one seed: the verdict is then INCONCLUSIVE).
    z : float
        The interval judged is ``measured ± z * noise``.
    explanation : str
        Why the claim fails or is inconclusive where that is understood, and what a wrong
        implementation would do to it (shown under the statement).
    """

    statement: str
    measured: float
    expected: float
    tolerance: float = 0.0
    relation: str = "close"
    source: str = ""
    error: str | None = None
    kind: str = "independent"
    noise: float = 0.0
    z: float = 0.0
    explanation: str = ""

    def __post_init__(self) -> None:
        if self.relation not in RELATIONS:
            raise ValueError(f"relation must be one of {RELATIONS}, got {self.relation!r}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if not (self.tolerance >= 0):
            raise ValueError(f"tolerance must be >= 0, got {self.tolerance!r}")
        if not (self.noise >= 0 or math.isnan(self.noise)):
            raise ValueError(f"noise must be >= 0 or NaN, got {self.noise!r}")
        if not (self.z >= 0):
            raise ValueError(f"z must be >= 0, got {self.z!r}")

    @property
    def interval(self) -> tuple[float, float]:
        """``(measured - z·noise, measured + z·noise)``."""
        half = self.z * self.noise if self.noise else 0.0
        return self.measured - half, self.measured + half

    @property
    def verdict(self) -> str:
        """``"PASS"``, ``"FAIL"`` or ``"INCONCLUSIVE"`` (see the module docstring)."""
        m = self.measured
        if self.error is not None or not math.isfinite(m):
            return "FAIL"
        if math.isnan(self.noise):
            return "INCONCLUSIVE"
        lo, hi = self.interval
        if self.relation == "close":
            a, b = self.expected - self.tolerance, self.expected + self.tolerance
            inside, outside = (a <= lo and hi <= b), (hi < a or lo > b)
        elif self.relation == "at_most":
            bound = self.expected + self.tolerance
            inside, outside = hi <= bound, lo > bound
        else:
            bound = self.expected - self.tolerance
            inside, outside = lo >= bound, hi < bound
        return "PASS" if inside else "FAIL" if outside else "INCONCLUSIVE"

    @property
    def passed(self) -> bool:
        """True for PASS."""
        return self.verdict == "PASS"

    @property
    def failed(self) -> bool:
        """True for FAIL (an INCONCLUSIVE claim has neither passed nor failed)."""
        return self.verdict == "FAIL"

    @property
    def criterion(self) -> str:
        """The test applied to the measured number, in words (``"|x − 1| ≤ 1e-12"``)."""
        e, tol = _num(self.expected), _num(self.tolerance)
        if self.relation == "close":
            text = f"|x − {e}| ≤ {tol}"
        elif self.relation == "at_most":
            text = f"x ≤ {e}{' + ' + tol if self.tolerance else ''}"
        else:
            text = f"x ≥ {e}{' − ' + tol if self.tolerance else ''}"
        if self.noise or math.isnan(self.noise):
            text += f" for all of x ± {_num(self.z)}·se (se = {_num(self.noise)})"
        return text

    def as_dict(self) -> dict:
        """A JSON-ready record (a non-finite number becomes ``None``)."""
        def finite(x: float) -> float | None:
            return x if math.isfinite(x) else None  # JSON has no NaN/inf

        return {"statement": self.statement, "kind": self.kind, "measured": finite(self.measured),
                "noise": finite(self.noise), "z": self.z, "expected": self.expected,
                "tolerance": self.tolerance, "relation": self.relation, "criterion": self.criterion,
                "verdict": self.verdict, "source": self.source, "error": self.error,
                "explanation": self.explanation}


def _num(x: float) -> str:
    return f"{x:.6g}"


def _measure(measure: Callable[[], float]) -> tuple[float, str | None]:
    try:
        return float(measure()), None
    except Exception as exc:  # noqa: BLE001 - a failing measurement is a failing claim, reported
        return math.nan, f"{type(exc).__name__}: {exc}"


def close(statement: str, measure: Callable[[], float], *, expected: float, tolerance: float,
          source: str = "", kind: str = "independent", explanation: str = "") -> Claim:
    """The claim ``|measure() - expected| <= tolerance``."""
    value, error = _measure(measure)
    return Claim(statement, value, float(expected), float(tolerance), "close", source, error, kind,
                 explanation=explanation)


def at_most(statement: str, measure: Callable[[], float], *, bound: float, tolerance: float = 0.0,
            source: str = "", kind: str = "independent", explanation: str = "") -> Claim:
    """The claim ``measure() <= bound + tolerance`` (errors, gaps, ratios that must stay small)."""
    value, error = _measure(measure)
    return Claim(statement, value, float(bound), float(tolerance), "at_most", source, error, kind,
                 explanation=explanation)


def at_least(statement: str, measure: Callable[[], float], *, bound: float, tolerance: float = 0.0,
             source: str = "", kind: str = "independent", explanation: str = "") -> Claim:
    """The claim ``measure() >= bound - tolerance`` (margins that must stay positive)."""
    value, error = _measure(measure)
    return Claim(statement, value, float(bound), float(tolerance), "at_least", source, error, kind,
                 explanation=explanation)


#: Two-sided 95% quantile of the standard normal, the default ``z`` of :func:`estimated`.
Z95 = 1.959963984540054


def estimated(statement: str, measure: Callable[[], tuple[float, float]], *, expected: float,
              relation: str = "close", tolerance: float = 0.0, z: float = Z95, source: str = "",
              kind: str = "independent", explanation: str = "") -> Claim:
    """A claim on a measured number that comes with its standard error.

    Parameters
    ----------
    statement : str
    measure : callable
        Returns ``(value, standard error)``; a standard error of NaN (not estimable) makes the
        claim INCONCLUSIVE.
    expected : float
        The value (``"close"``) or bound (``"at_most"``, ``"at_least"``) of the claim.
    relation : {"close", "at_most", "at_least"}
    tolerance : float
    z : float
        The interval judged is ``value ± z·se`` (default: the two-sided 95% normal quantile).
    source, kind, explanation : str
        As in :class:`Claim`.

    Returns
    -------
    Claim
        PASS when the whole interval satisfies the relation, FAIL when none of it does,
        INCONCLUSIVE otherwise: a tolerance finer than ``z·se`` can then never PASS.

    Examples
    --------
    >>> estimated("x is 1", lambda: (1.01, 0.001), expected=1.0, tolerance=0.03).verdict
    'PASS'
    >>> estimated("x is 1", lambda: (1.2, 0.01), expected=1.0, tolerance=0.03).verdict
    'FAIL'
    """
    try:
        value, noise = (float(x) for x in measure())
        error = None
    except Exception as exc:  # noqa: BLE001 - reported as a failing claim
        value, noise, error = math.nan, 0.0, f"{type(exc).__name__}: {exc}"
    if not (noise >= 0 or math.isnan(noise)):
        value, noise, error = math.nan, 0.0, f"ValueError: standard error must be >= 0, got {noise!r}"
    return Claim(statement, value, float(expected), float(tolerance), relation, source, error, kind, noise,
                 float(z), explanation)


def seed_mean(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """``(mean, standard error, z)`` of per-seed values, ``z`` the two-sided Student-t quantile with
    ``n - 1`` degrees of freedom (NaN standard error and z = 0 for fewer than two seeds).

    >>> m, se, z = seed_mean([1.0, 2.0, 3.0])
    >>> m, round(se, 4), round(z, 3)
    (2.0, 0.5774, 4.303)
    """
    from scipy import stats

    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    x = np.asarray(values, dtype=float).ravel()
    if x.size == 0:
        raise ValueError("values must hold at least one seed's value")
    if x.size < 2:
        return float(x[0]), math.nan, 0.0
    se = float(x.std(ddof=1) / math.sqrt(x.size))
    return float(x.mean()), se, float(stats.t.ppf(0.5 + confidence / 2, x.size - 1))


def seeded(statement: str, measure: Callable[[], Iterable[float]], *, bound: float = 0.0,
           relation: str = "at_least", tolerance: float = 0.0, confidence: float = 0.95,
           source: str = "", kind: str = "paper", explanation: str = "") -> Claim:
    """A claim about a mean over seeds, judged with its seed noise.

    ``measure()`` returns one value per seed (typically the paired difference of two training runs
    that share the seed's warm start). The claim's measured value is their mean, its noise their
    standard error, and ``z`` the Student-t quantile for ``confidence`` (:func:`seed_mean`): PASS
    when the whole confidence interval satisfies ``relation``, FAIL when none of it does,
    INCONCLUSIVE otherwise (and always with one seed).
    """
    try:
        value, noise, z = seed_mean(list(measure()), confidence)
        error = None
    except Exception as exc:  # noqa: BLE001 - reported as a failing claim
        value, noise, z, error = math.nan, 0.0, 0.0, f"{type(exc).__name__}: {exc}"
    return Claim(statement, value, float(bound), float(tolerance), relation, source, error, kind, noise, z,
                 explanation)


def counted(claims: Iterable[Claim]) -> list[Claim]:
    """The claims that can fail and are checked now: neither consistency checks nor stored claims."""
    return [c for c in claims if c.kind not in UNCOUNTED]


def summary(claims: list[Claim]) -> tuple[int, int]:
    """``(passed, total)`` over the claims that can fail and are recomputed now (consistency checks
    and stored claims left out: :data:`UNCOUNTED`).

    >>> summary([close("a", lambda: 0.0, expected=0.0, tolerance=0.0),
    ...          close("b", lambda: 0.0, expected=0.0, tolerance=0.0, kind="consistency"),
    ...          close("c", lambda: 0.0, expected=0.0, tolerance=0.0, kind="stored")])
    (1, 1)
    """
    counted_ = counted(claims)
    return sum(c.passed for c in counted_), len(counted_)


def tally(claims: list[Claim]) -> dict[str, dict[str, int]]:
    """Counts of each verdict per kind: ``{kind: {verdict: n}}`` (every kind and verdict present).

    >>> tally([at_most("a", lambda: 2.0, bound=1.0, kind="paper")])["paper"]
    {'PASS': 0, 'FAIL': 1, 'INCONCLUSIVE': 0}
    """
    out = {k: {v: 0 for v in VERDICTS} for k in KINDS}
    for c in claims:
        out[c.kind][c.verdict] += 1
    return out
