"""``rlvrlens schemes | h | design``: the objectives layer from the command line."""

from __future__ import annotations

import argparse
import inspect

import numpy as np

from rlvrlens.commands._common import add_scheme_args, print_json, print_table, scheme_from_args
from rlvrlens.objectives import LIMITS, SCHEMES, design, dh, h, scheme_parameters


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("schemes", help="list the catalogue of weight schemes")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_schemes)

    p = sub.add_parser("h", help="evaluate the induced objective h_M and its slope h'_M")
    add_scheme_args(p)
    p.add_argument("--t", type=float, nargs="+", default=[0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0],
                   help="points in [0, 1]")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--plot", metavar="FILE", help="also plot h_M and h'_M on [0, 1] into FILE (.png/.pdf)")
    p.set_defaults(func=run_h)

    p = sub.add_parser("design", help="weights whose h_M matches a target h")
    p.add_argument("--target", required=True, help='target h(t) as an expression in t, e.g. "log(t/(1-t))"')
    p.add_argument("--M", type=int, required=True, help="group size")
    p.add_argument("--split", choices=["right", "centred"], default="right", help="how c splits into (a, b)")
    p.add_argument("--nodes", choices=["auto", "uniform", "interior"], default="auto",
                   help="quasi-interpolation nodes when the design is not exact")
    p.add_argument("--interval", type=float, nargs=2, metavar=("LO", "HI"),
                   help="where the error is measured (and minimised by minimax/lsq)")
    p.add_argument("--method", choices=["quasi", "minimax", "lsq"], default="quasi",
                   help="quasi: exact Bernstein or quasi-interpolation; minimax: LP (HiGHS) for the "
                        "smallest sup error; lsq: least squares")
    p.add_argument("--max-weight", type=float, default=None,
                   help="minimax/lsq: bound on |a_s| and |b_s|")
    p.add_argument("--monotone", action="store_true",
                   help="minimax/lsq: require c_s >= 0 (h_M non-decreasing, like the target)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_design)


def run_schemes(args: argparse.Namespace) -> int:
    rows = []
    for name, entry in SCHEMES.items():
        params = {k: (None if v is inspect.Parameter.empty else v) for k, v in scheme_parameters(name).items()}
        rows.append({"name": name, "params": params, "limit": entry.limit, "summary": entry.summary})
    if args.json:
        print_json(rows)
        return 0
    print_table(["name", "parameters (defaults)", "M->inf limit", "what it is"],
                [[r["name"], ", ".join(f"{k}={v}" for k, v in r["params"].items()) or "-",
                  r["limit"] or "-", r["summary"]] for r in rows])
    return 0


def run_h(args: argparse.Namespace) -> int:
    scheme = scheme_from_args(args)
    t = np.asarray(args.t, dtype=float)
    hv, dv = h(scheme, t), dh(scheme, t)
    if args.json:
        print_json({"scheme": scheme.describe(), "t": t.tolist(), "h": hv.tolist(), "dh": dv.tolist()})
    else:
        print(f"{scheme!r}")
        print_table(["t", "h_M(t)", "h'_M(t)"], [[float(a), float(b), float(c)] for a, b, c in zip(t, hv, dv)])
    if args.plot:
        from rlvrlens.figures.objectives import plot_curves
        from rlvrlens.figures.style import save

        grid = np.linspace(0, 1, 501)
        curves = {f"$h_M$, {scheme.name} M={scheme.M}": h(scheme, grid),
                  "$h'_M$": dh(scheme, grid)}
        refs = {}
        if scheme.limit:
            fn, label = LIMITS[scheme.limit]
            with np.errstate(all="ignore"):
                refs[f"limit {label}"] = fn(grid)
        fig = plot_curves(grid, curves, references=refs, title=repr(scheme), ylabel="value")
        for path in save(fig, args.plot, formats=(args.plot.rsplit(".", 1)[-1] if "." in args.plot else "png",)):
            print(f"wrote {path}")
    return 0


def run_design(args: argparse.Namespace) -> int:
    interval = tuple(args.interval) if args.interval else None
    result = design(args.target, args.M, split=args.split, nodes=args.nodes, interval=interval,
                    method=args.method, max_weight=args.max_weight, monotone=args.monotone)
    s = result.scheme
    if args.json:
        print_json({"scheme": s.describe(), "exact": result.exact, "error": result.error,
                    "constant": result.constant, "interval": list(result.interval), "method": result.method,
                    "second_moment": result.second_moment, "max_weight": result.max_weight})
        return 0
    print(f"target h(t) = {args.target}, M = {args.M}, split = {args.split}, method = {args.method}")
    print_table(["s", "a_s", "b_s", "c_s"], [[i, float(x), float(y), float(z)] for i, (x, y, z) in
                                              enumerate(zip(s.a, s.b, s.c))])
    if result.exact:
        kind = "exact (h' is a polynomial of degree <= M-1)"
    else:
        kind = {"quasi": "Bernstein quasi-interpolation", "minimax": "minimax (LP, HiGHS)",
                "lsq": "least squares"}[result.method]
    if result.max_weight is not None:
        kind += f" with |a_s|, |b_s| <= {result.max_weight:g}"
    if s.params.get("monotone"):
        kind += " and c_s >= 0" if result.max_weight is not None else " with c_s >= 0"
    lo, hi = result.interval
    print(f"{kind}: sup |h_M - h - k| = {result.error:.6g} on [{lo:g}, {hi:g}] with k = {result.constant:.6g}")
    print(f"largest second moment of a weight on the interval: max E[Z^2] = {result.second_moment:.6g}")
    return 0
