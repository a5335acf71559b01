"""Beyond the papers: every catalogue scheme's objective and step size on one page.

Davis & Recht plot a few schemes at a few group sizes; here every row of the catalogue
(:data:`rlvrlens.paper_repro.davis_recht.CATALOGUE`) is drawn at M = 2, 4, 16, 64, 256 against its
M → ∞ limit, and the step size ``h'_M(t)`` (how hard each scheme pushes a prompt of success
probability ``t``) of all of them is compared on one logit-scaled axis. Mroueh's fixed-point
analysis covers population GRPO only; here the KL-regularised iteration
``logit p_n = logit p_ref + h'_M(p_{n-1})/beta`` (THEORY.md §2, derived) of every scheme is
followed to its fixed point as a function of ``beta``.

Run alone: ``python -m rlvrlens.paper_repro.beyond OUT_DIR``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from rlvrlens.paper_repro.claims import Claim, at_least, at_most, close
from rlvrlens.paper_repro.davis_recht import CATALOGUE, CatalogueEntry, transformed_h
from rlvrlens.paper_repro.mroueh import omega_closed
from rlvrlens.paper_repro.report import FigureFile, Reproduction
from rlvrlens.dynamics import fixed_point_grid, success_map
from rlvrlens.objectives import dh, dr_grpo, grpo, h, reinforce

KEY = "beyond"
TITLE = "Beyond the papers: the whole catalogue at every group size"
REFERENCE = ("Built on Davis & Recht (2025) and THEORY.md §1; figures the papers did not draw.")

#: Group sizes drawn for every scheme.
MS = (2, 4, 16, 64, 256)
#: Group size of the step-size comparison and of the fixed-point curves.
STEP_M = 16
#: The fixed-point curves: beta axis and the reference success probabilities drawn.
FP_BETAS = np.geomspace(0.01, 10.0, 120)
FP_PREFS = (0.01, 0.1, 0.5)


def _ylabel(entry: CatalogueEntry) -> str:
    if entry.normalise:
        return r"$h_M(t)\,/\,h_M(1)$"
    if entry.minus_harmonic:
        return r"$h_M(t) - H_M$"
    return r"$h_M(t)$"


def catalogue_data(t: np.ndarray, Ms=MS):
    """``(curves, limits, ylabels)`` for :func:`rlvrlens.figures.objectives.plot_catalogue`."""
    curves, limits, ylabels = {}, {}, {}
    for entry in CATALOGUE:
        curves[entry.label] = {f"M = {M}": transformed_h(entry, M, t) for M in Ms}
        with np.errstate(divide="ignore"):
            limits[entry.label] = ("M → ∞", entry.limit_fn(t))
        ylabels[entry.label] = _ylabel(entry)
    return curves, limits, ylabels


def step_sizes(t: np.ndarray, M: int = STEP_M) -> dict[str, np.ndarray]:
    """``h'_M(t)`` of every catalogue row, normalised by its mean over ``t`` in (0, 1) ``= h_M(1)``.

    The normalisation makes schemes with different overall scales comparable: only the *shape*
    of the push across prompts matters once a learning rate is tuned.
    """
    out = {}
    for entry in CATALOGUE:
        scheme = entry.build(M)
        out[entry.label] = dh(scheme, t) / h(scheme, 1.0)
    return out


def fixed_point_curves(M: int = STEP_M, betas: np.ndarray = FP_BETAS, p_refs=FP_PREFS):
    """``logit p*`` reached from ``p_0 = p_ref`` for every catalogue row, as a function of ``beta``.

    Returns ``({label: {"p_ref = ...": logit p* (NaN where the orbit cycles or is unresolved)}},
    {label: fraction of cells that cycle or are unresolved})``.
    """
    curves, unsettled = {}, {}
    for entry in CATALOGUE:
        grid = fixed_point_grid(success_map(entry.build(M), 1.0, 0.5), betas, np.array(p_refs))
        curves[entry.label] = {f"$p_{{ref}}$ = {pr:g}": grid.logit[:, j] for j, pr in enumerate(p_refs)}
        unsettled[entry.label] = float(np.mean(grid.kind != 1))
    return curves, unsettled


def grpo_gap_error(M: int, eps: float = 1e-5) -> float:
    """``max_p |h'_M(p) / Omega(p) - 1|`` on ``[0.01, 0.99]``: finite-M population GRPO (``eps`` inside
    the root) against Mroueh's infinite-group gap ``Omega = omega+ + omega-`` (his formula, written out in
    :func:`rlvrlens.paper_repro.mroueh.omega_closed`)."""
    p = np.linspace(0.01, 0.99, 981)
    omega = np.add(*omega_closed(p, eps))
    return float(np.max(np.abs(dh(grpo(M, eps=eps, std="population", eps_inside_sqrt=True), p) / omega - 1)))


def claims() -> list[Claim]:
    """Properties every catalogue scheme shares, at every group size drawn."""
    grid = np.linspace(0.0, 1.0, 1001)
    schemes = [(entry, entry.build(M)) for entry in CATALOGUE for M in MS]
    return [
        at_most("Every catalogue scheme has h_M(0) = 0: max |h_M(0)| over all rows and M = 2…256",
                lambda: max(abs(float(h(s, 0.0))) for _, s in schemes), bound=1e-14,
                source="THEORY.md §1; true by construction (I_0 = 0)", kind="consistency"),
        at_least("Every catalogue objective is non-decreasing (more success never lowers it): "
                 "min over rows, M and t of h'_M(t)",
                 lambda: min(float(dh(s, grid).min()) for _, s in schemes), bound=0.0, tolerance=1e-12,
                 source="THEORY.md §1; true by construction (c_s ≥ 0 for every row)", kind="consistency"),
        at_most("h_M(1) = (1/M) Σ_s c_s (I_1 = 1): max relative error over rows and M",
                lambda: max(abs(float(h(s, 1.0)) - s.c.sum() / s.M) / max(1.0, abs(s.c.sum() / s.M))
                            for _, s in schemes), bound=1e-12,
                source="THEORY.md §1; the package's h against its own coefficients", kind="consistency"),
        at_most("Mroueh's map is the M → ∞ GRPO case: largest ratio of successive max_p |h'_M/Ω − 1| over "
                "M = 16, 256, 4096 (population std, ε = 1e-5 inside the root)",
                lambda: max(grpo_gap_error(b) / grpo_gap_error(a) for a, b in ((16, 256), (256, 4096))),
                bound=1.0, source="THEORY.md §2; Mroueh arXiv:2503.06639 §3 (Ω written out)"),
        at_most("…and at M = 4096 the gaps agree to 1%: max_p |h'_M/Ω − 1|", lambda: grpo_gap_error(4096),
                bound=0.01, source="THEORY.md §2; Mroueh arXiv:2503.06639 §3 (Ω written out)"),
        close("REINFORCE's iteration has the fixed point logit p* = logit p_ref + 1/β (h' = 1), reached from "
              "p_ref: max error over the β × p_ref grid",
              lambda: np.max(np.abs(fixed_point_grid(success_map(reinforce(8), 1.0, 0.5), FP_BETAS,
                                                     np.array(FP_PREFS)).logit
                                    - np.log(np.array(FP_PREFS) / (1 - np.array(FP_PREFS)))[None, :]
                                    - 1 / FP_BETAS[:, None])),
              expected=0.0, tolerance=1e-9, source="THEORY.md §2 (derived)"),
        close("The mean baseline at finite M: logit p* = logit p_ref + (M−1)/(Mβ), M = 16: max error",
              lambda: np.max(np.abs(fixed_point_grid(success_map(dr_grpo(16), 1.0, 0.5), FP_BETAS,
                                                     np.array(FP_PREFS)).logit
                                    - np.log(np.array(FP_PREFS) / (1 - np.array(FP_PREFS)))[None, :]
                                    - 15 / (16 * FP_BETAS[:, None]))),
              expected=0.0, tolerance=1e-9, source="THEORY.md §2 (derived)"),
    ]


def run(out_dir: str | Path) -> Reproduction:
    """Write the catalogue page and the step-size comparison; evaluate the claims."""
    from rlvrlens.figures.dynamics import plot_fixed_point_curves
    from rlvrlens.figures.objectives import plot_catalogue, plot_step_sizes
    from rlvrlens.figures.style import save

    out_dir = Path(out_dir)
    rep = Reproduction(KEY, TITLE, REFERENCE)
    t = np.linspace(0.0, 1.0, 801)[1:]
    curves, limits, ylabels = catalogue_data(t)
    fig = plot_catalogue(t, curves, limits, ylabels=ylabels, xlim=(0, 1))
    fig.suptitle("Every catalogue scheme's induced objective at M = 2, 4, 16, 64, 256 (solid) and its "
                 "M → ∞ limit (dashed)", y=1.01)
    rep.figures.append(FigureFile(
        "catalogue", "h_M(t) of every row of the catalogue for M = 2, 4, 16, 64, 256, transformed as its "
        "limit is stated (GRPO: divided by h_M(1); rejection sampling and log-odds: minus H_M), against that "
        "limit (dashed). REINFORCE, RLOO and pass@2 do not depend on M; the mean baseline and Reinforce-Rej "
        "approach t at rate 1/M; GRPO approaches the arcsine slowly (about M^-1/2); rejection sampling and "
        "log-odds approach ln t and logit t fast away from the endpoints.",
        tuple(save(fig, out_dir / "catalogue"))))

    ts = 1 / (1 + np.exp(-np.linspace(-7, 7, 600)))
    fig = plot_step_sizes(ts, step_sizes(ts), title=f"Step size per prompt, M = {STEP_M}",
                          ylabel=r"$h'_M(t)\,/\,h_M(1)$", ylim=(1e-3, 10))
    rep.figures.append(FigureFile(
        "step_sizes", f"h'_M(t) (the expected weight of a right answer minus that of a wrong one) for every "
        f"catalogue row at M = {STEP_M}, divided by h_M(1) (its average over t) so that the shapes compare: "
        "rejection sampling and log-odds push hardest on rarely solved prompts, GRPO on both extremes, "
        "Reinforce-Rej gives up on prompts that are almost always solved. REINFORCE, RLOO and the mean "
        "baseline coincide (a constant step); so do the two GRPO variants.",
        tuple(save(fig, out_dir / "step_sizes"))))
    curves, unsettled = fixed_point_curves()
    fig = plot_fixed_point_curves(FP_BETAS, curves, ylabel=r"$\mathrm{logit}\, p^*$", asinh=True,
                                  suptitle=f"The fixed point reached by each scheme's KL-regularised iteration "
                                           f"(M = {STEP_M}), against β")
    rep.figures.append(FigureFile(
        "fixed_points", f"logit p* of the fixed point that logit p_n = logit p_ref + h'_M(p_(n−1))/β reaches from "
        f"p_0 = p_ref, for every catalogue row at M = {STEP_M}, β ∈ [0.01, 10] and p_ref = 0.01, 0.1, 0.5 "
        "(asinh scale: linear near 0, logarithmic beyond ±1; gaps: the orbit cycles or does not settle). "
        "Fraction of (β, p_ref) cells without a "
        "fixed point: " + ", ".join(f"{k} {v:.0%}" for k, v in unsettled.items()) + ". Schemes whose step "
        "vanishes as p → 1 (Reinforce-Rej, pass@k) overshoot and cycle for small β.",
        tuple(save(fig, out_dir / "fixed_points"))))
    rep.claims.extend(claims())
    return rep


if __name__ == "__main__":  # pragma: no cover
    from rlvrlens.paper_repro.report import write_index

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "out/repro")
    print(write_index([run(target / KEY)], target))
