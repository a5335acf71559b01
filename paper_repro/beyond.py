"""Beyond the papers: every catalogue scheme's objective and step size on one page.

Davis & Recht plot a few schemes at a few group sizes; here every row of the catalogue
(:data:`paper_repro.davis_recht.CATALOGUE`) is drawn at M = 2, 4, 16, 64, 256 against its
M → ∞ limit, and the step size ``h'_M(t)`` (how hard each scheme pushes a prompt of success
probability ``t``) of all of them is compared on one logit-scaled axis.

Run alone: ``python -m paper_repro.beyond OUT_DIR``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from paper_repro.claims import Claim, at_least, at_most
from paper_repro.davis_recht import CATALOGUE, CatalogueEntry, harmonic
from paper_repro.report import FigureFile, Reproduction
from rlvrlens.objectives import dh, h

KEY = "beyond"
TITLE = "Beyond the papers: the whole catalogue at every group size"
REFERENCE = ("Built on Davis & Recht (2025) and THEORY.md §1; figures the papers did not draw.")

#: Group sizes drawn for every scheme.
MS = (2, 4, 16, 64, 256)
#: Group size of the step-size comparison.
STEP_M = 16


def transformed_h(entry: CatalogueEntry, M: int, t: np.ndarray) -> np.ndarray:
    """``h_M`` as its limit is stated: divided by ``h_M(1)`` and/or minus ``H_M`` per the entry."""
    scheme = entry.build(M)
    values = h(scheme, t)
    if entry.normalise:
        values = values / h(scheme, 1.0)
    if entry.minus_harmonic:
        values = values - harmonic(M)
    return values


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


def claims() -> list[Claim]:
    """Properties every catalogue scheme shares, at every group size drawn."""
    grid = np.linspace(0.0, 1.0, 1001)
    schemes = [(entry, entry.build(M)) for entry in CATALOGUE for M in MS]
    return [
        at_most("Every catalogue scheme has h_M(0) = 0: max |h_M(0)| over all rows and M = 2…256",
                lambda: max(abs(float(h(s, 0.0))) for _, s in schemes), bound=1e-14,
                source="THEORY.md §1"),
        at_least("Every catalogue objective is non-decreasing (more success never lowers it): "
                 "min over rows, M and t of h'_M(t)",
                 lambda: min(float(dh(s, grid).min()) for _, s in schemes), bound=0.0, tolerance=1e-12,
                 source="THEORY.md §1 (c_s ≥ 0 for every row)"),
        at_most("h_M(1) = (1/M) Σ_s c_s (I_1 = 1): max relative error over rows and M",
                lambda: max(abs(float(h(s, 1.0)) - s.c.sum() / s.M) / max(1.0, abs(s.c.sum() / s.M))
                            for _, s in schemes), bound=1e-12, source="THEORY.md §1 (derived)"),
    ]


def run(out_dir: str | Path) -> Reproduction:
    """Write the catalogue page and the step-size comparison; evaluate the claims."""
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
    rep.claims.extend(claims())
    return rep


if __name__ == "__main__":  # pragma: no cover
    from paper_repro.report import write_index

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "out/repro")
    print(write_index([run(target / KEY)], target))
