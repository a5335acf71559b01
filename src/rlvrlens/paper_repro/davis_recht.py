"""Davis & Recht (2025), "What is the objective of reasoning with reinforcement learning?".

Regenerates Fig. 1 (the three limiting transforms), Fig. 2 (rejection sampling against
``ln t + 1``), Fig. 3 (normalised GRPO against ``(2/pi) arcsin sqrt t``, both panels) and the
catalogue table of THEORY.md §1, in which every scheme's ``h_M`` (computed by
:mod:`rlvrlens.objectives`) is checked against its closed form written out independently below.

Run alone: ``python -m rlvrlens.paper_repro.davis_recht OUT_DIR``; all papers: ``rlvrlens repro``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from scipy import special

from rlvrlens.paper_repro.claims import Claim, at_least, at_most, close
from rlvrlens.paper_repro.report import FigureFile, Reproduction, Table
from rlvrlens.objectives import (
    LIMITS,
    WeightScheme,
    dh,
    dr_grpo,
    grpo,
    h,
    h_exact,
    log_odds,
    pass_at_k,
    raft,
    reinforce,
    reinforce_rej,
    rloo,
    t_symbol,
)

KEY = "davis_recht"
TITLE = "Davis & Recht (2025): the objective each weighting of answers optimises"
REFERENCE = ('D. Davis, B. Recht, "What is the objective of reasoning with reinforcement learning?", '
             "2025, arXiv:2510.13651. Figures 1-3 and the catalogue of THEORY.md §1.")

#: Group sizes of Fig. 2 and Fig. 3 (left).
PAPER_MS = (2, 16, 256)
#: GRPO's epsilon in Fig. 3 (left) and both epsilons of Fig. 3 (right, M = 128).
GRPO_EPS = 1e-8
FIG3_RIGHT = (128, (1e-8, 1e-1))
#: Dense grid on [0, 1] with extra points near both ends, where the schemes differ most.
T_GRID = np.unique(np.concatenate([np.linspace(0.0, 1.0, 2001), np.geomspace(1e-9, 1e-3, 60),
                                   1.0 - np.geomspace(1e-9, 1e-3, 60)]))
#: Fig. 2's log-scaled axis: t from e^-6 to 1.
T_LOG = np.exp(np.linspace(-6.0, 0.0, 600))


# ---------------------------------------------------------------------------------------------
# Independent closed forms: the other side of every check (THEORY.md §1 table). They are written
# from the paper's formulas, not from rlvrlens.objectives, and work on numpy arrays and on the
# sympy symbol t alike.
# ---------------------------------------------------------------------------------------------

def _frac(num: int, den: int, like: Any):
    """``num/den``: an exact rational when ``like`` is symbolic, else a float."""
    if isinstance(like, np.ndarray) or np.isscalar(like):
        return num / den
    import sympy

    return sympy.Rational(num, den)


def harmonic(M: int, like: Any = 0.0):
    """``H_M = sum_{k=1}^M 1/k``."""
    return sum(_frac(1, k, like) for k in range(1, M + 1))


def _raft_closed(M, t):
    return sum((1 - (1 - t) ** k) * _frac(1, k, t) for k in range(1, M + 1))


def _log_odds_closed(M, t):
    return harmonic(M, t) + sum((t**k - (1 - t) ** k) * _frac(1, k, t) for k in range(1, M + 1))


def _arcsine(t):
    return LIMITS["arcsin"][0](t) / np.pi


@dataclass(frozen=True)
class CatalogueEntry:
    """A row of the catalogue: how to build the scheme, its ``Z_i``, its ``h_M`` in closed form
    (``None`` for GRPO: checked against the incomplete-beta definition), and its ``M -> infinity``
    limit: ``h_M`` (divided by ``h_M(1)`` if ``normalise``, minus ``H_M`` if ``minus_harmonic``)
    tends to ``limit_fn`` on ``interval``."""

    label: str
    build: Callable[[int], WeightScheme]
    weight: str
    formula: str
    closed: Callable[[int, Any], Any] | None
    limit: str
    limit_fn: Callable[[np.ndarray], np.ndarray]
    interval: tuple[float, float] = (0.0, 1.0)
    normalise: bool = False
    minus_harmonic: bool = False


CATALOGUE = (
    CatalogueEntry("REINFORCE", reinforce, "R_i", "t", lambda M, t: t, "t", lambda t: t),
    CatalogueEntry("RLOO", rloo, "R_i − S_i/(M−1)", "t", lambda M, t: t, "t", lambda t: t),
    CatalogueEntry('mean baseline ("Dr. GRPO")', dr_grpo, "R_i − R̄", "(M−1)t/M",
                   lambda M, t: _frac(M - 1, M, t) * t, "t", lambda t: t),
    CatalogueEntry("GRPO (sample std, ε = 1e-8 outside the root)", lambda M: grpo(M, eps=GRPO_EPS),
                   "(R_i − R̄)/(std + ε)", "(1/M) Σ_s c_s I_t(s+1, M−s)", None,
                   "h_M/h_M(1) → (2/π) arcsin √t", _arcsine, normalise=True),
    CatalogueEntry("GRPO (population std, ε = 1e-5 inside the root, Mroueh)",
                   lambda M: grpo(M, eps=1e-5, std="population", eps_inside_sqrt=True),
                   "(R_i − R̄)/√(var + ε)", "(1/M) Σ_s c_s I_t(s+1, M−s)", None,
                   "h_M/h_M(1) → (2/π) arcsin √t", _arcsine, normalise=True),
    CatalogueEntry("rejection sampling / RAFT", raft, "M R_i/Σ_j R_j", "Σ_{k=1}^M (1 − (1−t)^k)/k",
                   _raft_closed, "h_M − H_M → ln t (on [0.05, 1])", LIMITS["log"][0], (0.05, 1.0),
                   minus_harmonic=True),
    CatalogueEntry("Reinforce-Rej (0/1 rewards)", reinforce_rej, "R_i, 0 for all-right/all-wrong groups",
                   "t − t^M/M", lambda M, t: t - t**M * _frac(1, M, t), "t", lambda t: t),
    CatalogueEntry("Reinforce-Rej (±1 rewards)", lambda M: reinforce_rej(M, reward_scale="pm1"),
                   "±1 reward, 0 for all-right/all-wrong groups", "2t − (1 − (1−t)^M)/M − t^M/M",
                   lambda M, t: 2 * t - (1 - (1 - t) ** M) * _frac(1, M, t) - t**M * _frac(1, M, t),
                   "2t", lambda t: 2 * t),
    CatalogueEntry("log-odds", log_odds, "M R_i/#right − M(1−R_i)/#wrong", "H_M + Σ_k (t^k − (1−t)^k)/k",
                   _log_odds_closed, "h_M − H_M → logit t (on [0.05, 0.95])",
                   LIMITS["logit"][0], (0.05, 0.95), minus_harmonic=True),
    CatalogueEntry("pass@2", lambda M: pass_at_k(M, 2), "any split of c_s = 2 C(M−2,s)/C(M−1,s)",
                   "1 − (1−t)^2", lambda M, t: 1 - (1 - t) ** 2, "1 − (1−t)^2 (the same for every M)",
                   lambda t: 1 - (1 - t) ** 2),
)


def transformed_h(entry: CatalogueEntry, M: int, t: np.ndarray) -> np.ndarray:
    """``h_M`` as its limit is stated: divided by ``h_M(1)`` and/or minus ``H_M`` per the entry."""
    scheme = entry.build(M)
    values = h(scheme, t)
    if entry.normalise:
        values = values / h(scheme, 1.0)
    if entry.minus_harmonic:
        values = values - harmonic(M)
    return values


def limit_distance(entry: CatalogueEntry, M: int) -> float:
    """Sup distance between ``h_M`` (normalised/shifted as the entry says) and its limit on the
    entry's interval (2,001 points)."""
    t = np.linspace(*entry.interval, 2001)
    return float(np.max(np.abs(transformed_h(entry, M, t) - entry.limit_fn(t))))


def grpo_by_definition(M: int, t: np.ndarray, *, eps: float, std: str = "sample",
                       eps_inside_sqrt: bool = False) -> np.ndarray:
    """GRPO's ``h_M`` from the theorem's definition: ``(1/M) sum_s c_s I_t(s+1, M-s)``.

    The weights are written out from the group statistics (``sigma_k`` of a group with ``k`` right
    answers, THEORY.md §1) and the incomplete beta function comes from scipy: a computation
    independent of :func:`rlvrlens.objectives.h` (which sums binomial expectations).
    """
    ddof = 1 if std == "sample" else 0
    k = np.arange(M + 1)
    var = k * (M - k) / (M * (M - ddof))
    den = np.sqrt(var + eps) if eps_inside_sqrt else np.sqrt(var) + eps
    s = np.arange(M)
    a = np.where(den[s] > 0, -(s / M) / np.where(den[s] > 0, den[s], 1.0), 0.0)
    b = np.where(den[s + 1] > 0, (1 - (s + 1) / M) / np.where(den[s + 1] > 0, den[s + 1], 1.0), 0.0)
    c = b - a
    t = np.asarray(t, dtype=float)
    return (c[:, None] * special.betainc(s[:, None] + 1.0, M - s[:, None] + 0.0, t[None, :])).sum(0) / M


def _closed_or_definition(entry: CatalogueEntry, M: int, t: np.ndarray) -> np.ndarray:
    if entry.closed is not None:
        return np.asarray(entry.closed(M, t), dtype=float) * np.ones_like(t)
    params = entry.build(M).params
    return grpo_by_definition(M, t, eps=params["eps"], std=params["std"],
                              eps_inside_sqrt=params["eps_inside_sqrt"])


def closed_form_error(entry: CatalogueEntry, M: int) -> float:
    """``max_t |h_M(t) - closed(t)| / max(1, |closed(t)|)`` over :data:`T_GRID`."""
    ref = _closed_or_definition(entry, M, T_GRID)
    return float(np.max(np.abs(h(entry.build(M), T_GRID) - ref) / np.maximum(1.0, np.abs(ref))))


def exact_error(entry: CatalogueEntry, M: int) -> float:
    """Largest coefficient of ``h_exact - closed`` as sympy polynomials (0 when they are identical).

    For GRPO (no polynomial closed form) the exact polynomial is evaluated and compared with the
    incomplete-beta definition at 101 points instead.
    """
    import sympy

    poly = h_exact(entry.build(M))
    if entry.closed is None:
        import mpmath

        coeffs = [mpmath.mpf(str(sympy.N(co, 40))) for co in poly.all_coeffs()]
        tt = np.linspace(0.0, 1.0, 101)
        with mpmath.workdps(40):
            values = np.array([float(mpmath.polyval(coeffs, mpmath.mpf(i) / 100)) for i in range(101)])
        return float(np.max(np.abs(values - _closed_or_definition(entry, M, tt))))
    diff = sympy.Poly(sympy.expand(poly.as_expr() - entry.closed(M, t_symbol())), t_symbol())
    return max((abs(float(co)) for co in diff.all_coeffs()), default=0.0)


def expected_step_z(entry: CatalogueEntry, M: int, p: float, *, groups: int = 100_000,
                    seed: int = 0) -> float:
    """Monte Carlo check of the theorem ``E[(1/M) sum_i Z_i d/dp log P(R_i)] = h'_M(p)``.

    With two outcomes (right with probability ``p``) the score of answer ``i`` is
    ``(R_i - p)/(p(1-p))``. ``groups`` groups of ``M`` Bernoulli(p) rewards are drawn, weighted by
    the scheme's table (:meth:`~rlvrlens.objectives.WeightScheme.weights`), and the mean step is
    compared with ``dh``. Returns the z-score ``(mean - h'_M(p)) / sqrt(se^2 + 1e-12)``: the
    standard error is floored at 1e-6 because some steps are almost deterministic (rejection
    sampling's is ``1{any right}/p``, whose rare zero is never drawn at ``p = 0.85``), where the
    sample standard error would be rounding noise.
    """
    rng = np.random.default_rng(seed)
    R = (rng.random((groups, M)) < p).astype(float)
    step = (entry.build(M).weights(R) * (R - p) / (p * (1 - p))).mean(axis=1)
    se = step.std(ddof=1) / np.sqrt(groups)
    return float((step.mean() - dh(entry.build(M), p)) / np.sqrt(se**2 + 1e-12))


# ---------------------------------------------------------------------------------------------
# The data of the figures (all science from rlvrlens.objectives)
# ---------------------------------------------------------------------------------------------

def _limit(name: str, t: np.ndarray) -> np.ndarray:
    return LIMITS[name][0](np.asarray(t, dtype=float))


def fig1_data(t: np.ndarray) -> dict[str, np.ndarray]:
    """The three limiting transforms, normalised to equal 1 at ``t = 1``."""
    with np.errstate(divide="ignore"):
        return {r"$\frac{2}{\pi}\arcsin\sqrt{t}$ (GRPO)": _limit("arcsin", t) / np.pi,
                r"$t$ (REINFORCE, RLOO, Dr. GRPO)": _limit("t", t),
                r"$\ln t + 1$ (rejection sampling)": _limit("log", t) + 1.0}


def fig2_data(t: np.ndarray, Ms=PAPER_MS) -> dict[str, np.ndarray]:
    """Rejection sampling's ``h_M(t) - (H_M - 1)``, which tends to ``ln t + 1``."""
    return {f"rejection sampling, M = {M}": h(raft(M), t) - (harmonic(M) - 1.0) for M in Ms}


def sci(x: float) -> str:
    """``1e-8`` rather than ``1e-08`` in labels."""
    return np.format_float_scientific(x, trim="-", exp_digits=1)


def normalised_grpo(M: int, eps: float, t: np.ndarray) -> np.ndarray:
    """``h_{M,eps}(t) / h_{M,eps}(1)`` for GRPO (sample std, eps outside the root)."""
    s = grpo(M, eps=eps)
    return h(s, t) / h(s, 1.0)


def fig3_data(t: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Left: ``eps = 1e-8`` and ``M = 2, 16, 256``; right: ``M = 128`` and ``eps = 1e-8, 1e-1``."""
    left = {f"GRPO, M = {M}, ε = {sci(GRPO_EPS)}": normalised_grpo(M, GRPO_EPS, t) for M in PAPER_MS}
    M, epss = FIG3_RIGHT
    right = {f"GRPO, M = {M}, ε = {sci(e)}": normalised_grpo(M, e, t) for e in epss}
    return left, right


def arcsine(t: np.ndarray) -> np.ndarray:
    """``(2/pi) arcsin sqrt t``: GRPO's normalised limit (``LIMITS["arcsin"] / pi``)."""
    return _arcsine(np.asarray(t, dtype=float))


def grpo_sup_error(M: int, eps: float = GRPO_EPS) -> float:
    """``sup_t |h_M(t)/h_M(1) - (2/pi) arcsin sqrt t|`` over :data:`T_GRID`."""
    return float(np.max(np.abs(normalised_grpo(M, eps, T_GRID) - arcsine(T_GRID))))


def fitted_exponent(Ms, errors) -> float:
    """Least-squares slope of ``log error`` against ``log M``: the observed rate ``M^slope``."""
    return float(np.polyfit(np.log(np.asarray(Ms, float)), np.log(np.asarray(errors, float)), 1)[0])


def raft_tail_gap(M: int, t: np.ndarray = T_LOG) -> tuple[float, float]:
    """``gap = h_M(t) - H_M - ln t = sum_{k>M} (1-t)^k/k`` lies in ``[0, (1-t)^{M+1}/((M+1) t)]``
    (derived: the tail of ``-ln t = sum_k (1-t)^k/k``, each term at most ``(1-t)^{M+1}/(M+1)``
    times a geometric series summing to ``1/t``).

    Returns ``(min gap, max (gap - bound))`` over ``t``: both should be ``>= 0`` and ``<= 0`` up
    to rounding.
    """
    gap = h(raft(M), t) - harmonic(M) - np.log(t)
    bound = (1 - t) ** (M + 1) / ((M + 1) * t)
    return float(gap.min()), float(np.max(gap - bound))


# ---------------------------------------------------------------------------------------------
# Claims
# ---------------------------------------------------------------------------------------------

_SRC = "Davis & Recht, arXiv:2510.13651"


def claims() -> list[Claim]:
    """The fast claims (a few seconds): closed forms, special values, the figures' statements and the
    paper's printed numbers (:func:`printed_claims`)."""
    out = [
        at_most("Normalised GRPO (ε = 1e-8) at M = 2 is the line t: max_t |h(t)/h(1) − t|",
                lambda: np.max(np.abs(normalised_grpo(2, GRPO_EPS, T_GRID) - T_GRID)),
                bound=1e-12, source=f"{_SRC}, Fig. 3 (M = 2; closed form derived)"),
        at_most("Rejection sampling: h_M(1) = H_M (the harmonic number) for M = 2, 16, 256: max error",
                lambda: max(abs(float(h(raft(M), 1.0)) - harmonic(M)) for M in PAPER_MS),
                bound=1e-12, source=f"{_SRC}, §3 (H_M computed here)"),
        at_least("Rejection sampling approaches ln t from above: min over t ∈ [e^-6, 1], "
                 "M = 2, 16, 256 of h_M(t) − H_M − ln t",
                 lambda: min(raft_tail_gap(M)[0] for M in PAPER_MS), bound=0.0, tolerance=1e-12,
                 source=f"{_SRC}, abstract and Fig. 2 (rejection sampling's transform is the logarithm)",
                 kind="paper"),
        at_most("…and within the tail bound (1−t)^(M+1)/((M+1)t): max (gap − bound) over t ∈ [e^-6, 1], "
                "M = 2, 16, 256",
                lambda: max(raft_tail_gap(M)[1] for M in PAPER_MS), bound=0.0, tolerance=1e-12,
                source=f"{_SRC}, Fig. 2 (derived bound)"),
        at_most("Normalised GRPO tends to (2/π) arcsin √t as M grows: sup error at M = 256 over that at M = 16 "
                "(at most ½: the error at least halves for 16 times more answers; the margin is ours)",
                lambda: grpo_sup_error(256) / grpo_sup_error(16),
                bound=0.5, source=f"{_SRC}, abstract and Fig. 3 (left) (GRPO's transform is the arcsine of "
                "the square root)", kind="paper"),
        at_least("A large ε (0.1, M = 128) pulls normalised GRPO away from the arcsine, by more than 0.01 "
                 "(margin ours): sup|h_0.1 − arcsine| − sup|h_1e-8 − arcsine|",
                 lambda: grpo_sup_error(128, 1e-1) - grpo_sup_error(128, 1e-8), bound=0.01,
                 source=f"{_SRC}, Fig. 3 (right)", kind="paper"),
        at_most("…towards the line t, by more than 0.01: sup|h_0.1/h_0.1(1) − t| − sup|h_1e-8/h_1e-8(1) − t| "
                "at M = 128",
                lambda: (np.max(np.abs(normalised_grpo(128, 1e-1, T_GRID) - T_GRID))
                         - np.max(np.abs(normalised_grpo(128, 1e-8, T_GRID) - T_GRID))), bound=-0.01,
                source=f"{_SRC}, Fig. 3 (right)", kind="paper"),
        at_most("Fig. 1: ln t + 1 ≤ t on (0, 1] (rejection sampling pushes hardest on hard prompts): "
                "max_t (ln t + 1 − t)",
                lambda: np.max(_limit("log", T_GRID[1:]) + 1 - T_GRID[1:]), bound=0.0, tolerance=1e-15,
                source=f"{_SRC}, Fig. 1 (an inequality of the logarithm, true whatever h_M is)",
                kind="consistency"),
        at_most("Fig. 1: the arcsine treats success and failure alike, f(t) + f(1−t) = 1: max deviation "
                "(float64: arcsin near 1 amplifies rounding by up to 1/√(1−t) ≈ 3e4 at t = 1 − 1e-9)",
                lambda: np.max(np.abs(arcsine(T_GRID) + arcsine(1 - T_GRID) - 1)), bound=1e-10,
                source=f"{_SRC}, Fig. 1 (an identity of the arcsine, true whatever h_M is)", kind="consistency"),
        close("Pass@k weights give exactly 1 − (1−t)^k: max error over (M, k) = (8, 1), (8, 3), (16, 16), "
              "(256, 4)",
              lambda: max(np.max(np.abs(h(pass_at_k(M, k), T_GRID) - (1 - (1 - T_GRID) ** k)))
                          for M, k in ((8, 1), (8, 3), (16, 16), (256, 4))),
              expected=0.0, tolerance=1e-12, source="THEORY.md §1 (closed form derived, exact coefficients)"),
        close("Mean baseline: h_M = (M−1)t/M, so sup_t |h_M − t| = 1/M: M·sup error at M = 256",
              lambda: 256 * np.max(np.abs(h(dr_grpo(256), T_GRID) - T_GRID)), expected=1.0, tolerance=1e-9,
              source="THEORY.md §1 (derived)"),
    ]
    out.append(at_most(
        "Theorem: the expected update (1/M) Σ Z_i ∇log π(y_i) is ∇h_M(p): largest |z-score| of a Monte Carlo "
        "estimate (10^5 groups) against h'_M(p), every catalogue row, M = 8, p = 0.1, 0.5, 0.85",
        lambda: max(abs(expected_step_z(e, 8, p, seed=i)) for i, (e, p) in
                    enumerate((e, p) for e in CATALOGUE for p in (0.1, 0.5, 0.85))),
        bound=4.5, source=f"{_SRC}, Theorem 1 (Monte Carlo; 30 z-scores: P(max |z| > 4.5) ≈ 2e-4)"))
    for entry in CATALOGUE:
        out.append(at_most(f"Catalogue, {entry.label}: h_M = {entry.formula}; max relative error "
                           f"over t, M = {', '.join(map(str, PAPER_MS))}",
                           lambda e=entry: max(closed_form_error(e, M) for M in PAPER_MS), bound=1e-10,
                           source="THEORY.md §1 table (closed forms written out here; GRPO: scipy betainc)"))
    return out + printed_claims()


#: Where the printed values of Fig. 1 were read: the paper's own text past the introduction could not
#: be read here; D. Davis's lecture notes (§8.2, "The rescaling functions") reproduce Figs. 1 and 3 and print
#: the check below (found with the search tool; second-hand, but from the paper's author).
_FIG1_PRINTED = (f"printed: {_SRC}v1, Fig. 1, as printed in D. Davis's lecture notes §8.2, which replicate "
                 "Figs. 1 and 3: 'the GRPO line ... passing through (0.25, 0.333) since (2/π)arcsin(0.5) ≈ 0.333'; "
                 "'all three pass through (1, 1)'")
#: The printed value and the precision it is printed with (half a unit of its last digit).
FIG1_PRINTED_AT_QUARTER = (0.25, 0.333, 5e-4)


def printed_claims() -> list[Claim]:
    """The paper's printed numbers (Fig. 1) against what our code computes.

    Each claim's source names the arXiv id and where the number is printed; each says what a wrong
    implementation would do to it.
    """
    t, value, tol = FIG1_PRINTED_AT_QUARTER
    return [
        close(f"Fig. 1 (printed): GRPO's normalised limit (2/π) arcsin √t at t = {t:g} is {value:g}: our "
              "LIMITS['arcsin'](t)/π", lambda: float(arcsine(np.array(t))), expected=value, tolerance=tol,
              source=_FIG1_PRINTED, kind="paper",
              explanation="A transform without the square root, (2/π) arcsin t, gives 0.161; one without the "
                          "factor 2 (arcsin √t / π) gives 0.167; an un-normalised 2 arcsin √t gives 1.047."),
        close(f"Fig. 1 (printed) at finite M: GRPO's own h_M (ε = 1e-8, M = 1024) normalised by h_M(1), at t = {t:g}, "
              f"approaches the printed {value:g} (within 0.01: the error decays like M^(-1/2), 0.005 at M = 1024; "
              "margin ours)", lambda: float(normalised_grpo(1024, GRPO_EPS, np.array([t]))[0]), expected=value,
              tolerance=0.01, source=_FIG1_PRINTED, kind="paper",
              explanation="A GRPO without the std normalisation has h_M ∝ t (0.25 here, off by 0.083); a "
                          "population-vs-sample std mix-up moves it by less than 1e-3 at this M."),
        at_most("Fig. 1 (printed): all three curves, (2/π) arcsin √t, t and ln t + 1, pass through (1, 1): "
                "max |f(1) − 1| of our Fig. 1 data", lambda: max(abs(float(v[-1]) - 1.0) for v in
                                                                   fig1_data(np.array([0.5, 1.0])).values()),
                bound=1e-12, source=_FIG1_PRINTED, kind="paper",
                explanation="A missing factor 2 in LIMITS['arcsin'] gives 0.5 at t = 1; the log without its "
                            "shift gives 0."),
    ]


def slow_claims() -> list[Claim]:
    """Claims that need large M or sympy (tens of seconds): run by :func:`run`, not by the tests."""
    Ms = (256, 1024, 4096)
    out = [
        close("Normalised GRPO's sup error decays like M^(-1/2) (endpoint singularity of the arcsine): "
              "fitted exponent over M = 256, 1024, 4096",
              lambda: fitted_exponent(Ms, [grpo_sup_error(M) for M in Ms]), expected=-0.5, tolerance=0.1,
              source=f"{_SRC}, Fig. 3 (the rate M^(-1/2) is our derivation, not the paper's)"),
        close("Mean baseline's sup error is exactly 1/M: fitted exponent over M = 256, 1024, 4096",
              lambda: fitted_exponent(Ms, [np.max(np.abs(h(dr_grpo(M), T_GRID) - T_GRID)) for M in Ms]),
              expected=-1.0, tolerance=1e-6, source="THEORY.md §1 (derived)"),
    ]
    for entry in CATALOGUE:
        out.append(at_most(f"Exact (sympy) h_M of {entry.label} equals the closed form at M = 2, 5, 8: "
                           "largest coefficient of the difference",
                           lambda e=entry: max(exact_error(e, M) for M in (2, 5, 8)), bound=1e-12,
                           source="THEORY.md §1 table"))
    return out


# ---------------------------------------------------------------------------------------------
# The reproduction
# ---------------------------------------------------------------------------------------------

def catalogue_table(Ms_limit=(256, 1024)) -> Table:
    """THEORY.md §1's catalogue with the measured check of every row."""
    rows = []
    for entry in CATALOGUE:
        errs = [closed_form_error(entry, M) for M in PAPER_MS]
        dist = [limit_distance(entry, M) for M in Ms_limit]
        rows.append((entry.label, entry.weight, entry.formula, *errs, entry.limit, *dist))
    return Table(
        "Catalogue",
        "THEORY.md §1: each scheme's weight Z_i, its induced objective in closed form, the largest relative "
        "difference between rlvrlens's h_M and that closed form over 2,121 points of [0, 1] (GRPO: against "
        "the incomplete-beta definition with scipy's betainc), and its M → ∞ limit with the sup distance "
        f"to it at M = {Ms_limit[0]} and {Ms_limit[1]} (on [0, 1] unless stated).",
        ("scheme", "Z_i", "h_M(t)", "max err M=2", "max err M=16", "max err M=256", "M → ∞",
         f"dist. M={Ms_limit[0]}", f"dist. M={Ms_limit[1]}"),
        tuple(rows),
    )


def run(out_dir: str | Path) -> Reproduction:
    """Write Figs. 1-3 into ``out_dir``, build the catalogue table and evaluate every claim."""
    from rlvrlens.figures.objectives import plot_curves, plot_panels
    from rlvrlens.figures.style import save

    out_dir = Path(out_dir)
    rep = Reproduction(KEY, TITLE, REFERENCE)
    t = np.linspace(0.0, 1.0, 801)

    fig = plot_curves(t[1:], fig1_data(t[1:]), title="Fig. 1: the three limiting objectives",
                      ylabel=r"$f(t)$", ylim=(-1.5, 1.05), xlim=(0, 1), legend_loc="lower right")
    rep.figures.append(FigureFile(
        "fig1", "The M → ∞ objectives, normalised to 1 at t = 1: (2/π) arcsin √t (GRPO), t (REINFORCE, "
        "RLOO, mean baseline) and ln t + 1 (rejection sampling). The lower the curve at small t, the "
        "harder the objective pushes on prompts the model rarely solves.", tuple(save(fig, out_dir / "fig1"))))

    fig = plot_curves(T_LOG, fig2_data(T_LOG), references={r"$\ln t + 1$": np.log(T_LOG) + 1},
                      title="Fig. 2: rejection sampling tends to the log", ylabel=r"$h_M(t) - (H_M - 1)$",
                      xlabel=r"success probability $t$ (log scale)", logx=True, logx_base=np.e,
                      xlim=(np.exp(-6), 1), legend_loc="lower right")
    rep.figures.append(FigureFile(
        "fig2", "Rejection sampling (RAFT) with M = 2, 16, 256: h_M(t) − (H_M − 1) against ln t + 1 "
        "(dashed), t from e^-6 to 1 on a log scale. The curves meet the log at t = 1 (h_M(1) = H_M) and "
        "follow it down to t ≈ 1/M.", tuple(save(fig, out_dir / "fig2"))))

    left, right = fig3_data(t)
    ref = {r"$\frac{2}{\pi}\arcsin\sqrt{t}$": arcsine(t)}
    fig = plot_panels(t, [{"curves": left, "references": ref, "title": f"ε = {sci(GRPO_EPS)}"},
                          {"curves": right, "references": ref, "title": f"M = {FIG3_RIGHT[0]}"}],
                      ylabel=r"$h_{M,\varepsilon}(t)\,/\,h_{M,\varepsilon}(1)$", legend_loc="lower right",
                      suptitle="Fig. 3: normalised GRPO against the arcsine")
    rep.figures.append(FigureFile(
        "fig3", "GRPO (sample std, ε added to the std) normalised by its value at t = 1, against "
        "(2/π) arcsin √t (dashed). Left: ε = 1e-8 and M = 2 (exactly the line t), 16, 256. Right: M = 128 "
        "with ε = 1e-8 and 1e-1; a large ε flattens the arcsine towards the line t.",
        tuple(save(fig, out_dir / "fig3"))))

    rep.tables.append(catalogue_table())
    rep.claims.extend(claims())
    rep.claims.extend(slow_claims())
    return rep


if __name__ == "__main__":  # pragma: no cover
    from rlvrlens.paper_repro.report import write_index

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "out/repro")
    print(write_index([run(target / KEY)], target))
