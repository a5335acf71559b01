"""``rlvrlens demo``: the main job that ``make demo`` runs."""

from __future__ import annotations

import argparse
import importlib
import time
from pathlib import Path

import numpy as np

from rlvrlens.explain import DEMO_CATALOGUE, catalogue_curves
from rlvrlens.objectives import dh, h

_MS = (2, 16, 256)
#: The other layers' parts of the demo, in order: each command module's ``demo(out)``.
_LAYER_DEMOS = ("dynamics", "explain", "training", "repro")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the main job: every layer's demo into one folder (see README)")
    p.add_argument("--out", default="out", help="output folder")
    p.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from rlvrlens.figures.objectives import plot_catalogue
    from rlvrlens.figures.style import save

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = t0 = time.perf_counter()
    print("== Induced objectives h_M of the catalogue (Davis & Recht 2025) ==")
    header = ("scheme", "M", "h_M(0.1)", "h_M(0.5)", "h_M(1)", "h'_M(0.1)")
    print(f"{header[0]:18s} {header[1]:>5s} " + " ".join(f"{x:>12s}" for x in header[2:]))
    for name, ctor in DEMO_CATALOGUE.items():
        for M in _MS:
            s = ctor(M)
            v = h(s, [0.1, 0.5, 1.0])
            print(f"{name:18s} {M:5d} {v[0]:12.6g} {v[1]:12.6g} {v[2]:12.6g} {float(dh(s, 0.1)):12.6g}")
    t = np.linspace(1e-3, 1.0, 600)
    curves, limits, ylabels = catalogue_curves(t, _MS)
    fig = plot_catalogue(t, curves, limits, ylabels=ylabels)
    fig.suptitle(r"$h_M(t)$ against its $M\to\infty$ limit (dashed): divided by the value at $t=1$, "
                 r"or shifted to 0 at $t=1/2$ where the limit is infinite at an end", y=1.02)
    for path in save(fig, out / "catalogue_h_curves"):
        print(f"wrote {path}")
    print(f"[demo] objectives done ({time.perf_counter() - t0:.0f} s)", flush=True)
    for name in _LAYER_DEMOS:
        print(f"\n== rlvrlens.commands.{name}.demo ==", flush=True)
        t0 = time.perf_counter()
        importlib.import_module(f"rlvrlens.commands.{name}").demo(out)
        print(f"[demo] {name} done ({time.perf_counter() - t0:.0f} s; {time.perf_counter() - start:.0f} s in all)",
              flush=True)
    return 0
