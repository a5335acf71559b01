"""Mroueh (2025), "Reinforcement learning with verifiable rewards: GRPO's effective loss, dynamics,
and success amplification".

Regenerates Fig. 1 (GRPO's two weights), Fig. 2 (the map ``h_{eps,p_ref}`` for 12 ``(beta, p_ref)``
pairs), Fig. 4 (the local-convergence bound ``B(p*)``) and Fig. 5 (the 6 x 4 grid of 50-step
iterations from ``p_0 = 0.1``), plus the figure the paper did not draw: a map over
``(beta, p_ref)`` of where the iteration converges, where fixed points are multiple, and where it
cycles. All dynamics come from :mod:`rlvrlens.dynamics`; the claims compare them with the paper's
closed forms, written out independently below. ``eps = 1e-5`` throughout, as in the paper.

The paper's experiment (Qwen2.5-0.5B-Instruct on GSM8K) is not reproduced here.

Run alone: ``python -m rlvrlens.paper_repro.mroueh OUT_DIR``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy import special

from rlvrlens.paper_repro.claims import Claim, at_least, at_most, close
from rlvrlens.paper_repro.report import FigureFile, Reproduction
from rlvrlens.dynamics import (
    Outcome,
    attractor,
    dr_grpo_success_map,
    fixed_point_grid,
    fixed_points,
    grpo_success_map,
    iterate,
    mirror_map,
    mroueh_bound,
    stability_beta,
)
from rlvrlens.dynamics import count_fixed_points as dynamics_count_fixed_points
from rlvrlens.objectives import grpo

KEY = "mroueh"
TITLE = "Mroueh (2025): GRPO's success-probability dynamics and success amplification"
REFERENCE = ('Y. Mroueh, "Reinforcement learning with verifiable rewards: GRPO\'s effective loss, dynamics, '
             'and success amplification", 2025, arXiv:2503.06639. Figures 1, 2, 4, 5 (THEORY.md §2), and a '
             "fixed-point map.")

EPS = 1e-5
#: Fig. 2: beta x p_ref.
FIG2_BETAS = (1.0, 5.0, 0.01, 0.2)
FIG2_PREFS = (1e-4, 0.2, 0.8)
#: Fig. 5: beta (rows) x p_ref (columns), 50 iterations from p_0 = 0.1.
FIG5_BETAS = (0.01, 0.2, 0.4, 0.8, 1.0, 5.0)
FIG5_PREFS = (1e-4, 0.2, 0.5, 0.8)
FIG5_STEPS = 50
FIG5_P0 = 0.1
#: The fixed-point map's grid.
MAP_BETAS = np.geomspace(1e-2, 10.0, 90)
MAP_PREFS = special.expit(np.linspace(special.logit(1e-4), special.logit(0.99), 80))
#: The map's categories (codes 0..3).
CATEGORIES = ("converges; unique fixed point", "converges; several fixed points",
              "2-cycle", "no period ≤ 2 (chaotic or long cycle)")


# ---------------------------------------------------------------------------------------------
# Independent closed forms (the paper's formulas), for the claims
# ---------------------------------------------------------------------------------------------

def omega_closed(p: np.ndarray, eps: float = EPS) -> tuple[np.ndarray, np.ndarray]:
    """``(omega+, omega-) = ((1-p), p) / sqrt(p(1-p) + eps)`` (Mroueh, §3)."""
    s = np.sqrt(p * (1 - p) + eps)
    return (1 - p) / s, p / s


def h_closed(p: np.ndarray, beta, p_ref, eps: float = EPS) -> np.ndarray:
    """``h_{eps,p_ref}(p) = sigmoid(logit p_ref + (p(1-p)+eps)^{-1/2} / beta)``."""
    return special.expit(special.logit(p_ref) + (p * (1 - p) + eps) ** -0.5 / beta)


def bound_closed(p_star: np.ndarray, eps: float = EPS) -> np.ndarray:
    """``B(p*) = p*(1-p*)|2p*-1| / (2 (p*(1-p*)+eps)^{3/2})``: the local-convergence bound (Mroueh, Fig. 4)."""
    v = p_star * (1 - p_star)
    return v * np.abs(2 * p_star - 1) / (2 * (v + eps) ** 1.5)


def fig5_closed(steps: int = FIG5_STEPS, p0: float = FIG5_P0) -> np.ndarray:
    """``logit p_steps`` of the 6 x 4 panels of Fig. 5, iterating the paper's recursion written out
    here in logit space, ``x_(n+1) = logit p_ref + (sigma(x) sigma(-x) + eps)^{-1/2} / beta``."""
    B, P = np.array(FIG5_BETAS)[:, None], np.array(FIG5_PREFS)[None, :]
    x = np.full((len(FIG5_BETAS), len(FIG5_PREFS)), special.logit(p0))
    for _ in range(steps):
        x = special.logit(P) + (np.exp(-np.logaddexp(0, x) - np.logaddexp(0, -x)) + EPS) ** -0.5 / B
    return x


def dh_closed(p: np.ndarray, beta, p_ref, eps: float = EPS) -> np.ndarray:
    """``h'(p) = -h (1-h) (1-2p) / (2 beta (p(1-p)+eps)^{3/2})`` (Mroueh)."""
    hv = h_closed(p, beta, p_ref, eps)
    return -hv * (1 - hv) * (1 - 2 * p) / (2 * beta * (p * (1 - p) + eps) ** 1.5)


# ---------------------------------------------------------------------------------------------
# The data of the figures (all dynamics from rlvrlens.dynamics)
# ---------------------------------------------------------------------------------------------

def grpo_weights(group: int = 1000, eps: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GRPO's advantage of a right and (minus) of a wrong answer, ``(p, omega+, omega-)``.

    Computed with GRPO's own formula (:func:`rlvrlens.objectives.grpo`, population std, ``eps``
    inside the root) on groups of ``group`` answers with ``k`` right, ``p = k/group``: the group's
    mean is then exactly ``p`` and its variance exactly ``p(1-p)``.
    """
    k = np.arange(1, group)
    R = (np.arange(group)[None, :] < k[:, None]).astype(float)
    Z = grpo(group, eps=eps, std="population", eps_inside_sqrt=True).weights(R)
    return k / group, Z[:, 0], -Z[:, -1]


def fig2_maps(p: np.ndarray) -> np.ndarray:
    """``h_{eps,p_ref}(p)``, shape ``(len(FIG2_BETAS), len(FIG2_PREFS), len(p))``."""
    F = grpo_success_map(np.array(FIG2_BETAS)[:, None, None], np.array(FIG2_PREFS)[None, :, None], EPS)
    return F(p[None, None, :])


def fig5_trajectories():
    """``iterate`` over the 6 x 4 grid: a Trajectory with arrays of shape ``(51, 6, 4)``."""
    F = grpo_success_map(np.array(FIG5_BETAS)[:, None], np.array(FIG5_PREFS)[None, :], EPS)
    return iterate(F, FIG5_P0, FIG5_STEPS)


def format_p(logit: float) -> str:
    """``p`` from its logit, written so that values near 1 stay readable (``1 − 3.2e-12``).

    >>> format_p(0.0), format_p(30.0), format_p(2000.0)
    ('0.5', '1 − 9.4e-14', '$1 - 10^{-869}$')
    """
    p, q = special.expit(logit), special.expit(-logit)
    if q == 0.0:  # below float64's range: the exponent from the logit
        return f"$1 - 10^{{-{np.logaddexp(0.0, logit) / np.log(10):.0f}}}$"
    if q < 1e-3:
        return f"1 − {q:.2g}"
    return f"{p:.4g}"


def count_fixed_points(betas: np.ndarray, p_refs: np.ndarray) -> np.ndarray:
    """Number of fixed points in ``(0, 1)`` of the map at each ``(beta, p_ref)``
    (:func:`rlvrlens.dynamics.count_fixed_points` for population GRPO with ``eps = EPS``)."""
    return dynamics_count_fixed_points(grpo_success_map(1.0, 0.5, EPS), betas, p_refs)


def fixed_point_map(betas: np.ndarray = MAP_BETAS, p_refs: np.ndarray = MAP_PREFS):
    """Category (see :data:`CATEGORIES`), reached fixed point (logit) and fixed-point count per cell."""
    grid = fixed_point_grid(grpo_success_map(1.0, 0.5, EPS), betas, p_refs)
    n_fp = count_fixed_points(betas, p_refs)
    category = np.full(grid.kind.shape, 3)
    converged = grid.kind == Outcome.FIXED_POINT
    category[converged & (n_fp <= 1)] = 0
    category[converged & (n_fp > 1)] = 1
    category[grid.kind == Outcome.TWO_CYCLE] = 2
    return category, grid.logit, n_fp


# ---------------------------------------------------------------------------------------------
# Claims
# ---------------------------------------------------------------------------------------------

_SRC = "Mroueh, arXiv:2503.06639"
#: The paper's recursion and weights as published (also in the author's post https://ymroueh.me/post/post_2).
_EQ = f"{_SRC}, §3 (ω±, the recursion p_n = h_(ε,p_ref)(p_(n−1)))"


def _neutral_at_bound(p_stars=(0.05, 0.2, 0.35, 0.65, 0.8, 0.95)) -> float:
    """``max | |F'(p*)| - 1 |`` with ``beta = B(p*)`` and ``p_ref`` chosen so that ``p*`` is fixed,
    ``F'`` by central finite differences of the map (independent of any derivative formula)."""
    worst = 0.0
    for ps in p_stars:
        beta = float(mroueh_bound(ps, EPS))
        p_ref = float(special.expit(special.logit(ps) - (ps * (1 - ps) + EPS) ** -0.5 / beta))
        F = grpo_success_map(beta, p_ref, EPS)
        step = 1e-6
        slope = float((F(ps + step) - F(ps - step)) / (2 * step))
        worst = max(worst, abs(abs(slope) - 1))
    return worst


def claims() -> list[Claim]:
    """The fast claims: closed forms, amplification, the bound, the iterations of Fig. 5 and the numbers
    of Fig. 5 (:func:`printed_claims`)."""
    p = np.linspace(0.0, 1.0, 2001)
    interior = p[1:-1]
    betas, prefs = np.array(FIG2_BETAS)[:, None, None], np.array(FIG2_PREFS)[None, :, None]

    def fig1_error() -> float:
        q, wp, wm = grpo_weights()
        cp, cm = omega_closed(q, eps=0.0)  # = sqrt((1-p)/p), sqrt(p/(1-p))
        return max(np.max(np.abs(wp / cp - 1)), np.max(np.abs(wm / cm - 1)))

    def omega_error() -> float:
        q = np.linspace(0.001, 0.999, 999)
        gap = grpo_success_map(1.0, 0.5, EPS).gap(special.logit(q))
        return float(np.max(np.abs(gap / np.add(*omega_closed(q)) - 1)))

    def fig5_error() -> float:
        x, ref = fig5_trajectories().logit[-1], fig5_closed()
        return float(np.max(np.abs(x - ref) / (1 + np.abs(ref))))

    def bound_error() -> float:
        ps = np.linspace(0.01, 0.99, 980)  # even count: 1/2 is not a node
        ref = bound_closed(ps)
        general = stability_beta(grpo_success_map(1.0, 0.5, EPS), ps)
        return float(max(np.max(np.abs(mroueh_bound(ps, EPS) / ref - 1)), np.max(np.abs(general / ref - 1))))

    def fig5_margin() -> float:
        tr = fig5_trajectories()
        return float(np.min(tr.logit[1:] - special.logit(np.array(FIG5_PREFS))[None, None, :]))

    def fixed_points_missed() -> float:
        missed = 0
        for b in FIG5_BETAS:
            for pr in FIG5_PREFS:
                F = grpo_success_map(b, pr, EPS)
                end = attractor(F)
                if end.outcome == Outcome.FIXED_POINT:
                    x = float(end.logits[0])
                    missed += not any(abs(fp.logit - x) <= 1e-6 * (1 + abs(x)) for fp in fixed_points(F))
        return float(missed)

    def fixed_point_margin() -> float:
        margins = [fp.logit - special.logit(pr) for b in FIG5_BETAS for pr in FIG5_PREFS
                   for fp in fixed_points(grpo_success_map(b, pr, EPS), find_reached=False)]
        return float(np.min(margins))

    return [
        at_most("Fig. 1: GRPO's weight of a right answer is √((1−p)/p) and of a wrong one √(p/(1−p)) (ε = 0, "
                "from GRPO's advantage formula on groups of 1000): max relative error",
                fig1_error, bound=1e-12, source=f"{_SRC}, Fig. 1 and §3 (ω± as published)", kind="paper"),
        at_most("Ω(p) = ω⁺ + ω⁻ = (p(1−p)+ε)^(−1/2): the dynamics layer's gap against the paper's ω⁺ + ω⁻ "
                "(ε = 1e-5 inside the root), p ∈ [0.001, 0.999]: max relative error", omega_error, bound=1e-12,
                source=_EQ, kind="paper"),
        at_most("Fig. 2: the map equals σ(logit p_ref + Ω(p)/β) for the 12 (β, p_ref) pairs: max abs error",
                lambda: np.max(np.abs(fig2_maps(p) - h_closed(p, betas, prefs))), bound=1e-12,
                source=f"{_SRC}, Fig. 2 and §3 (the published recursion)", kind="paper"),
        at_least("Success amplification: h(p) > p_ref for every p: min over the 12 pairs and p of "
                 "logit h(p) − logit p_ref",
                 lambda: np.min(special.logit(fig2_maps(p)) - special.logit(prefs)), bound=0.0,
                 source=f"{_SRC}, abstract (amplification); true by construction of the map (Ω > 0)",
                 kind="consistency"),
        at_most("h'(p) = −h(1−h)(1−2p)/(2β(p(1−p)+ε)^(3/2)): the map's derivative against the formula, "
                "12 pairs, p ∈ (0, 1): max |difference| / (1 + |h'|)",
                lambda: max(np.max(np.abs(grpo_success_map(b, pr, EPS).derivative(interior)
                                          - dh_closed(interior, b, pr)) / (1 + np.abs(dh_closed(interior, b, pr))))
                            for b in FIG2_BETAS for pr in FIG2_PREFS), bound=1e-9,
                source=f"{_SRC}, h' of the published recursion (closed form written out here)"),
        at_most("h is smallest at p = 1/2 (Ω is): max over the 12 pairs of |argmin_p logit h(p) − 1/2| "
                "(in logit space: at β = 0.01, h rounds to 1 everywhere)",
                lambda: max(abs(interior[np.argmin(grpo_success_map(b, pr, EPS).step_logit(special.logit(interior)))]
                                - 0.5) for b in FIG2_BETAS for pr in FIG2_PREFS), bound=5e-4,
                source=f"{_SRC}, §4; true by construction (Ω is smallest at p = 1/2)", kind="consistency"),
        at_most("Fig. 4: at β = B(p*) the fixed point p* is neutral, |h'(p*)| = 1 (finite differences, "
                "p* = 0.05 … 0.95): max ||h'(p*)| − 1|", _neutral_at_bound, bound=1e-5,
                source=f"{_SRC}, Fig. 4 (B(p*) against finite differences of the map)"),
        at_most("Fig. 4: mroueh_bound and the dynamics layer's general bound p*(1−p*)|g'(p*)| both equal the "
                "paper's B(p*) = p*(1−p*)|2p*−1|/(2(p*(1−p*)+ε)^(3/2)) on [0.01, 0.99] (p* ≠ 1/2, where it "
                "vanishes): max relative difference", bound_error, bound=1e-9,
                source=f"{_SRC}, Fig. 4 (the published bound)", kind="paper"),
        at_least("Fig. 5: every iterate p_n (n ≥ 1) exceeds p_ref in all 24 panels: min logit p_n − logit p_ref",
                 fig5_margin, bound=0.0, source=f"{_SRC}, Fig. 5; true by construction of the map (Ω > 0)",
                 kind="consistency"),
        at_least("Every fixed point exceeds p_ref: min logit p* − logit p_ref over all fixed points of the "
                 "24 (β, p_ref) pairs of Fig. 5", fixed_point_margin, bound=0.0,
                 source=f"{_SRC}, abstract (the fixed point exceeds the reference); true by construction of the "
                 "map", kind="consistency"),
        at_most("Consistency of the dynamics layer: the fixed point the iteration from p_ref reaches is among "
                "those fixed_points() finds, for the 24 (β, p_ref) pairs of Fig. 5: pairs missed",
                fixed_points_missed, bound=0.0, source="rlvrlens.dynamics (attractor vs fixed_points)",
                kind="consistency"),
        at_most("Fig. 5's panel titles p_50 (24 panels, 50 steps from p_0 = 0.1): the dynamics layer's iterate "
                "against the paper's recursion iterated here in logit space: max |Δ logit| / (1 + |logit|)",
                fig5_error, bound=1e-6, source=f"{_SRC}, Fig. 5 (recursion of §3, iterated independently)"),
        close("Dr. GRPO (mean only): logit p* = logit p_ref + 1/β, reached in one step from any p_0: "
              "max |logit p_1 − logit p_ref − 1/β| over p_0, β, p_ref",
              lambda: np.max(np.abs(iterate(dr_grpo_success_map(np.array([0.1, 1.0, 5.0])[:, None], 0.3),
                                            np.array([0.01, 0.5, 0.99]), 3).logit[1:]
                                    - special.logit(0.3) - 1 / np.array([0.1, 1.0, 5.0])[:, None])),
              expected=0.0, tolerance=1e-12, source=f"{_SRC}, §5 (Dr. GRPO; fixed point written out here)"),
        at_least("Mirror GRPO (KL to the previous policy): p_n increases to 1: min_n (logit p_(n+1) − logit p_n) "
                 "over 200 steps, β = 0.5, 1, 5",
                 lambda: np.min(np.diff(iterate(mirror_map(grpo_success_map(np.array([0.5, 1.0, 5.0]), 0.2, EPS)),
                                                0.2, 200).logit, axis=0)), bound=0.0,
                 source=f"{_SRC}, §5 (mirror); true by construction (each step adds Ω/β > 0)", kind="consistency"),
    ] + printed_claims()


#: Fig. 5's panel titles (p_50) could not be read (they are text inside the figure's image). These are
#: computed, not printed: p_50 of the four panels whose title is not 1, by the paper's recursion from
#: p_0 = 0.1 with eps = 1e-5 in 400-digit mpmath (logit space). (beta, p_ref) -> p_50. The panel
#: (beta = 5, p_ref = 1e-4) is left out: its orbit is chaotic (both interior fixed points repel) and
#: float64 variants of the formula disagree in the 7th digit (0.0442 from p_0 = 0.1; 1 from p_0 = p_ref).
FIG5_COMPUTED_P50 = {(1.0, 0.2): 0.681283437786, (5.0, 0.2): 0.28066003278, (5.0, 0.5): 0.60069416959,
                     (5.0, 0.8): 0.881276449721}
#: The printed number the Fig. 5 claims rest on: eps = 1e-5 (the caption; read second-hand).
_FIG5_PRINTED = (f"printed: ε = 1e-5 and the grid of {_SRC}, Fig. 5 (caption 'convergence to fixed points of h_ε, "
                 "ε = 1e-5', read second-hand; p_0 = 0.1 and 50 iterations as in THEORY.md §2)")


def printed_claims() -> list[Claim]:
    """Fig. 5 against what our dynamics layer computes.

    No output value of the paper could be read (the panel titles are in the image), so one claim
    rests on the printed ``eps = 1e-5``, which alone sets where the saturated panels end: with
    ``p`` at 1 up to ``e^-300``, ``Omega(p_49) = eps^(-1/2)`` and ``logit p_50 = logit p_ref + eps^(-1/2)/beta``.
    The others compare the panels that converge inside ``(0, 1)`` with values computed, not printed,
    in 400-digit arithmetic (:data:`FIG5_COMPUTED_P50`).
    """
    b_row, p_col = FIG5_BETAS.index(1.0), FIG5_PREFS.index(0.5)

    def saturated() -> float:
        return float(fig5_trajectories().logit[-1][b_row, p_col])

    def computed_error() -> float:
        p50 = special.expit(fig5_trajectories().logit[-1])
        return max(abs(float(p50[FIG5_BETAS.index(b), FIG5_PREFS.index(pr)]) / v - 1)
                   for (b, pr), v in FIG5_COMPUTED_P50.items())

    return [
        close("Fig. 5, panel (β = 1, p_ref = 0.5): p_50 is 1 to within e^-316, and its logit is set by the printed "
              "ε = 1e-5 alone: logit p_50 = logit p_ref + ε^(-1/2)/β = 316.2278 (our dynamics layer's iterate)",
              saturated, expected=float(special.logit(0.5) + EPS ** -0.5 / 1.0), tolerance=1e-3,
              source=_FIG5_PRINTED, kind="paper",
              explanation="ε added outside the root, 1/(√(p(1−p)) + ε), gives logit 1e5; a map that ignores ε "
                          "overflows to an infinite logit; another ε gives ε^(-1/2) of that ε."),
        at_most("Fig. 5, the four panels whose p_50 is not 1 — (β, p_ref) = (1, 0.2), (5, 0.2), (5, 0.5), (5, 0.8): "
                "0.681283, 0.280660, 0.600694, 0.881276 (computed, not printed): max relative error of our "
                "iterate", computed_error, bound=1e-6,
                source=f"computed, not printed: {_SRC}, Fig. 5 (the panel titles could not be read); the "
                       "paper's recursion iterated in 400-digit mpmath from p_0 = 0.1, ε = 1e-5",
                explanation="An iteration started from p_ref instead of p_0 = 0.1 leaves these four unchanged (each "
                            "converges to its attracting fixed point) but sends (5, 1e-4) to 1, which is why that "
                            "panel is not encoded; β applied as β·Ω instead of Ω/β sends the β = 5 panels to 1; "
                            "an ε of 1e-8 instead of 1e-5 moves p_50 by 7e-6 to 3e-5 (relative), above the tolerance."),
    ]


def map_claims(category: np.ndarray, logit_star: np.ndarray, n_fp: np.ndarray) -> list[Claim]:
    """Claims about the fixed-point map (evaluated by :func:`run` on the computed map)."""
    x_ref = special.logit(MAP_PREFS)[None, :]
    return [
        at_least("Fixed points need not be unique: cells of the (β, p_ref) map with ≥ 3 fixed points",
                 lambda: np.count_nonzero(n_fp >= 3), bound=1.0,
                 source=f"{_SRC}, §4 (count_fixed_points, tested against brute-force roots)"),
        at_least("The iteration can cycle: cells ending on a 2-cycle (from p_0 = p_ref)",
                 lambda: np.count_nonzero(category == 2), bound=1.0, source=f"{_SRC}, §4 (attractor)"),
        at_least("Every reached fixed point of the map exceeds p_ref: min logit p* − logit p_ref",
                 lambda: np.nanmin(logit_star - x_ref), bound=0.0,
                 source=f"{_SRC}, abstract (amplification); true by construction of the map", kind="consistency"),
        at_least("A fixed point attracts only if β > B(p*): min over converged cells of (β − B(p*))/β",
                 lambda: np.min((1 - mroueh_bound(special.expit(np.nan_to_num(logit_star)), EPS)
                                 / MAP_BETAS[:, None])[np.isfinite(logit_star)]),
                 bound=0.0, source=f"{_SRC}, Fig. 4 / local convergence (iteration outcome against the bound)"),
    ]


# ---------------------------------------------------------------------------------------------
# The reproduction
# ---------------------------------------------------------------------------------------------

def run(out_dir: str | Path) -> Reproduction:
    """Write Figs. 1, 2, 4, 5 and the fixed-point map into ``out_dir``; evaluate every claim."""
    from rlvrlens.figures.dynamics import plot_fixed_point_map, plot_iteration_grid
    from rlvrlens.figures.objectives import plot_curves, plot_panels
    from rlvrlens.figures.style import save

    out_dir = Path(out_dir)
    rep = Reproduction(KEY, TITLE, REFERENCE)
    rep.notes.append("Not reproduced: the paper's training experiment (Qwen2.5-0.5B-Instruct on GSM8K, mean success "
                     "21% → 37.5% as reported earlier in this project; the number could not be re-read in the paper "
                     "with the search tool and is not encoded as a claim); it needs the training layer and a GPU. "
                     "The claims labelled 'paper' compare with the paper's published formulas (ω±, the recursion, "
                     "B(p*)) and its stated results. The panel titles (p_50) of the paper's Fig. 5 could not be "
                     "read (they are text in the image): the only printed number used is the caption's ε = 1e-5, "
                     "which sets the saturated panels' logit (ε^(-1/2)/β + logit p_ref); the four panels that "
                     "converge inside (0, 1) are checked against values computed, not printed (400-digit mpmath), "
                     "and the chaotic panel (β = 5, p_ref = 1e-4: 0.0442 from p_0 = 0.1, to 3 digits at most) is "
                     "not encoded.")

    q, wp, wm = grpo_weights()
    fig = plot_curves(q, {r"$\omega^+(p) = \sqrt{(1-p)/p}$ (right answer)": wp,
                          r"$\omega^-(p) = \sqrt{p/(1-p)}$ (wrong answer)": wm},
                      title="Fig. 1: GRPO's weights (ε = 0)", ylabel="weight", xlabel=r"success probability $p$",
                      ylim=(0, 6), xlim=(0, 1), legend_loc="upper center")
    rep.figures.append(FigureFile(
        "fig1", "GRPO's advantage of a right answer, ω⁺(p) = √((1−p)/p), and minus that of a wrong answer, "
        "ω⁻(p) = √(p/(1−p)), computed from GRPO's advantage formula (population std, ε = 0) on groups of 1000 "
        "answers with 1000p right. Rarely solved prompts give right answers a large weight.",
        tuple(save(fig, out_dir / "fig1"))))

    p = np.linspace(0.0, 1.0, 1001)
    maps = fig2_maps(p)
    panels = [{"curves": {f"$p_{{ref}}$ = {pr:g}": maps[i, j] for j, pr in enumerate(FIG2_PREFS)},
               "references": {"diagonal $h(p) = p$": p}, "title": f"β = {b:g}"}
              for i, b in enumerate(FIG2_BETAS)]
    fig = plot_panels(p, panels, width=4.2, height=3.4, ncols=2, shared_legend=True,
                      ylabel=r"$h_{\varepsilon,p_{ref}}(p)$", xlabel=r"success probability $p$", ylim=(-0.03, 1.03),
                      suptitle="Fig. 2: the success map for ε = 1e-5")
    rep.figures.append(FigureFile(
        "fig2", "The map p_n = h_{ε,p_ref}(p_(n−1)) = σ(logit p_ref + Ω(p)/β), ε = 1e-5, for β = 1, 5, 0.01, 0.2 and "
        "p_ref = 1e-4, 0.2, 0.8, with the diagonal (dashed): fixed points are where a curve crosses it. Every "
        "curve lies above its p_ref (success amplification); at β = 0.01 all three lie on 1.",
        tuple(save(fig, out_dir / "fig2"))))

    ps = np.linspace(0.01, 0.99, 981)
    fig = plot_curves(ps, {r"$B(p^*)$ (Mroueh)": mroueh_bound(ps, EPS)},
                      references={r"$p^*(1-p^*)|g'(p^*)|$ (dynamics layer)":
                                  stability_beta(grpo_success_map(1.0, 0.5, EPS), ps)},
                      title="Fig. 4: β above which a fixed point attracts", ylabel=r"bound on $\beta$",
                      xlabel=r"fixed point $p^*$", xlim=(0, 1), legend_loc="upper center")
    rep.figures.append(FigureFile(
        "fig4", "The local-convergence bound B(p*) = p*(1−p*)|2p*−1| / (2(p*(1−p*)+ε)^(3/2)), ε = 1e-5, on "
        "[0.01, 0.99]: a fixed point p* attracts iff β > B(p*). Dashed: the general bound p*(1−p*)|g'(p*)| "
        "of the dynamics layer, which coincides.", tuple(save(fig, out_dir / "fig4"))))

    tr = fig5_trajectories()
    titles = [[f"$p_{{50}}$ = {format_p(tr.logit[-1, i, j])}" for j in range(len(FIG5_PREFS))]
              for i in range(len(FIG5_BETAS))]
    fig = plot_iteration_grid(tr.p, titles, row_labels=[f"β = {b:g}" for b in FIG5_BETAS],
                              col_labels=[f"$p_{{ref}}$ = {pr:g}" for pr in FIG5_PREFS],
                              reference=np.broadcast_to(np.array(FIG5_PREFS), (len(FIG5_BETAS), len(FIG5_PREFS))),
                              suptitle="Fig. 5: 50 iterations of $p_{n+1} = h(p_n)$ from $p_0 = 0.1$ (ε = 1e-5)")
    rep.figures.append(FigureFile(
        "fig5", "p_(n+1) = h_{ε,p_ref}(p_n) for 50 steps from p_0 = 0.1, β = 0.01 … 5 (rows) and p_ref = 1e-4 … 0.8 "
        "(columns); dotted: p_ref; each panel titled with p_50 (written 1 − x when within 1e-3 of 1). Small β "
        "drives p to 1 at once; at β = 5, p_ref = 1e-4 the orbit never settles.",
        tuple(save(fig, out_dir / "fig5"))))

    category, logit_star, n_fp = fixed_point_map()
    with np.errstate(invalid="ignore"):  # NaN where the orbit does not converge
        depth = np.logaddexp(0.0, logit_star) / np.log(10)  # -log10(1 - p*), exact from the logit
    fig = plot_fixed_point_map(MAP_BETAS, MAP_PREFS, category, CATEGORIES, p_star=depth, log_colour=True,
                               markers={"Fig. 5 grid": (np.repeat(FIG5_BETAS, len(FIG5_PREFS)),
                                                        np.tile(FIG5_PREFS, len(FIG5_BETAS)))})
    counts = np.bincount(category.ravel(), minlength=len(CATEGORIES))
    rep.figures.append(FigureFile(
        "fixed_point_map", "Where the iteration from p_0 = p_ref goes, over β ∈ [0.01, 10] × p_ref ∈ [1e-4, 0.99] "
        f"({category.size} cells; crosses: the (β, p_ref) of Fig. 5). Left: "
        + ", ".join(f"{name} ({n} cells)" for name, n in zip(CATEGORIES, counts))
        + ". Right: the attracting fixed point reached, as −log10(1 − p*) (blank where the orbit does not "
        "converge); p* is within 1e-10 of 1 over most of the small-β region.",
        tuple(save(fig, out_dir / "fixed_point_map"))))

    rep.claims.extend(claims())
    rep.claims.extend(map_claims(category, logit_star, n_fp))
    return rep


if __name__ == "__main__":  # pragma: no cover
    from rlvrlens.paper_repro.report import write_index

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "out/repro")
    print(write_index([run(target / KEY)], target))
