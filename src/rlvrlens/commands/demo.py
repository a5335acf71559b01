"""``rlvrlens demo``: the main job that ``make demo`` runs."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

import numpy as np

from rlvrlens.objectives import LIMITS, dh, dr_grpo, grpo, h, log_odds, pass_at_k, raft, reinforce, reinforce_rej, rloo

#: The catalogue as the demo shows it, one constructor per scheme with its default parameters.
_CATALOGUE = {
    "reinforce": reinforce, "rloo": rloo, "dr_grpo": dr_grpo, "grpo": grpo, "raft": raft,
    "reinforce_rej": reinforce_rej, "log_odds": log_odds, "pass_at_k (k=2)": lambda M: pass_at_k(M, 2),
}
_MS = (2, 16, 256)
#: The other layers' parts of the demo, in order: each command module's ``demo(out)``.
_LAYER_DEMOS = ("dynamics", "explain", "training", "repro")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the main job: every layer's demo into one folder (see README)")
    p.add_argument("--out", default="out", help="output folder")
    p.set_defaults(func=run_demo)


def catalogue_curves(t: np.ndarray):
    """h_M for each catalogue scheme and M, aligned at t = 1/2 with its limit where it has one."""
    curves, limits = {}, {}
    for name, ctor in _CATALOGUE.items():
        curves[name] = {}
        lim = ctor(2).limit
        for M in _MS:
            scheme = ctor(M)
            shift = 0.0
            if lim:
                shift = float(LIMITS[lim][0](np.array(0.5))) - float(h(scheme, 0.5))
            curves[name][f"M={M}"] = h(scheme, t) + shift
        if lim:
            fn, label = LIMITS[lim]
            with np.errstate(all="ignore"):
                limits[name] = (f"limit {label}", fn(t))
    return curves, limits


def run_demo(args: argparse.Namespace) -> int:
    from rlvrlens.figures.objectives import plot_catalogue
    from rlvrlens.figures.style import save

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print("== Induced objectives h_M of the catalogue (Davis & Recht 2025) ==")
    header = ("scheme", "M", "h_M(0.1)", "h_M(0.5)", "h_M(1)", "h'_M(0.1)")
    print(f"{header[0]:18s} {header[1]:>5s} " + " ".join(f"{x:>12s}" for x in header[2:]))
    for name, ctor in _CATALOGUE.items():
        for M in _MS:
            s = ctor(M)
            v = h(s, [0.1, 0.5, 1.0])
            print(f"{name:18s} {M:5d} {v[0]:12.6g} {v[1]:12.6g} {v[2]:12.6g} {float(dh(s, 0.1)):12.6g}")
    t = np.linspace(1e-3, 1.0, 600)
    curves, limits = catalogue_curves(t)
    fig = plot_catalogue(t, curves, limits)
    fig.suptitle(r"$h_M(t)$ shifted to meet its $M\to\infty$ limit at $t=1/2$ (dashed)", y=1.02)
    for path in save(fig, out / "catalogue_h_curves"):
        print(f"wrote {path}")
    for name in _LAYER_DEMOS:
        print(f"\n== rlvrlens.commands.{name}.demo ==", flush=True)
        importlib.import_module(f"rlvrlens.commands.{name}").demo(out)
    return 0
