"""``rlvrlens fixed-points | iterate``: the dynamics layer from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path
import numpy as np

from rlvrlens.commands._common import SCHEME_FLAGS, add_scheme_args, print_json, print_table, scheme_from_args
from rlvrlens.dynamics import (
    Outcome,
    SuccessMap,
    attractor,
    dr_grpo_success_map,
    fixed_points,
    grpo_success_map,
    iterate,
    success_map,
    two_cycles,
)
from rlvrlens.objectives import dr_grpo, grpo, raft, rloo


def _add_map_args(p: argparse.ArgumentParser) -> None:
    add_scheme_args(p, M_default=16, scheme_required=False)  # --scheme is not needed with --population
    p.add_argument("--population", action="store_true",
                   help="Mroueh's population GRPO map, Omega(p) = (p(1-p)+eps)^(-1/2) (eps from --eps, "
                        "default 1e-5); with --mean-only the population Dr. GRPO map (gap 1)")
    p.add_argument("--mean-only", action="store_true", help="with --population: the mean-only (Dr. GRPO) map")
    p.add_argument("--beta", type=float, required=True, help="KL coefficient beta > 0")
    p.add_argument("--p-ref", type=float, required=True, help="reference success probability in [0, 1]")
    p.add_argument("--alpha", type=float, default=1.0,
                   help="weight of the KL to pi_ref (1: Mroueh's map, 0: mirror = KL to the previous policy)")
    p.add_argument("--json", action="store_true", help="print JSON")


def map_from_args(args: argparse.Namespace) -> SuccessMap:
    """The success map the flags describe."""
    if args.population:
        wanted = "dr_grpo" if args.mean_only else "grpo"
        if args.scheme is not None and args.scheme != wanted:
            raise ValueError(f"--population is Mroueh's population {'Dr. GRPO' if args.mean_only else 'GRPO'} map; "
                             f"--scheme {args.scheme!r} does not apply (omit --scheme, or drop --population "
                             f"for scheme {args.scheme!r} at finite M)")
        extra = [flag for flag, (name, _) in SCHEME_FLAGS.items()
                 if getattr(args, name, None) is not None and not (name == "eps" and not args.mean_only)]
        if getattr(args, "dynamic_sampling", None) is not None:
            extra.append("--dynamic-sampling")
        if extra:
            raise ValueError(f"{', '.join(extra)} does not apply to --population"
                             f"{' --mean-only' if args.mean_only else ' (it takes only --eps)'}")
        if args.mean_only:
            return dr_grpo_success_map(args.beta, args.p_ref, alpha=args.alpha)
        eps = 1e-5 if args.eps is None else args.eps
        return grpo_success_map(args.beta, args.p_ref, eps, alpha=args.alpha)
    if args.mean_only:
        raise ValueError("--mean-only needs --population (for finite M use --scheme dr_grpo)")
    if args.scheme is None:
        raise ValueError("give --scheme NAME (with --M) or --population")
    return success_map(scheme_from_args(args), args.beta, args.p_ref, alpha=args.alpha)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fixed-points", help="every fixed point of a success map, its type, and 2-cycles")
    _add_map_args(p)
    p.set_defaults(func=run_fixed_points)

    p = sub.add_parser("iterate", help="iterate a success map: the trajectory p_0, ..., p_n")
    _add_map_args(p)
    p.add_argument("--n", type=int, default=50, help="number of steps")
    p.add_argument("--p0", type=float, nargs="+", help="start(s) in [0, 1] (default p_ref)")
    p.add_argument("--plot", metavar="FILE", help="plot the trajectories into FILE (.png/.pdf)")
    p.set_defaults(func=run_iterate)


def _fp_row(fp) -> dict:
    return {"p": fp.p, "logit_p": fp.logit, "one_minus_p": fp.one_minus_p, "slope": fp.slope,
            "type": fp.kind, "reached_from_p_ref": fp.reached}


def run_fixed_points(args: argparse.Namespace) -> int:
    F = map_from_args(args)
    fps = fixed_points(F)
    cycles = two_cycles(F)
    settled = attractor(F)
    if args.json:
        print_json({"map": repr(F), "fixed_points": [_fp_row(fp) for fp in fps],
                    "two_cycles": [{"logits": list(c.logits), "p": list(c.p), "multiplier": c.multiplier,
                                    "type": c.kind} for c in cycles],
                    "attractor_from_p_ref": {"kind": settled.kind, "outcome": settled.outcome.label, "logits": settled.logits.tolist(),
                                             "p": settled.p.tolist(), "multiplier": settled.multiplier}})
        return 0
    print(F.title)
    print_table(["p*", "logit p*", "1 - p*", "F'(p*)", "type", "reached from p_ref"],
                [[fp.p, float(fp.logit), fp.one_minus_p, fp.slope, fp.kind, "yes" if fp.reached else ""]
                 for fp in fps])
    for c in cycles:
        print(f"2-cycle ({c.kind}, multiplier {c.multiplier:.6g}): p = {c.p[0]:.10g} <-> {c.p[1]:.10g} "
              f"(logits {c.logits[0]:.10g}, {c.logits[1]:.10g})")
    print(f"from p_0 = p_ref the iteration settles on: {_describe(settled)}")
    return 0


def _describe(settled) -> str:
    if settled.outcome == Outcome.UNRESOLVED:
        return f"nothing of period <= 64 after {settled.steps} steps (unresolved, possibly chaotic)"
    pts = ", ".join(f"p = {p:.10g} (logit {x:.10g})" for p, x in zip(settled.p, settled.logits))
    what = "a fixed point" if settled.outcome == Outcome.FIXED_POINT else f"a cycle of period {settled.period}"
    return f"{what}: {pts}; multiplier {settled.multiplier:.6g}"


def run_iterate(args: argparse.Namespace) -> int:
    F = map_from_args(args)
    p0 = np.asarray(args.p0 if args.p0 else [args.p_ref], dtype=float)
    tr = iterate(F, p0, args.n)
    if args.json:
        print_json({"map": repr(F), "p0": p0.tolist(), "p": tr.p.T.tolist(), "logit_p": tr.logit.T.tolist()})
    else:
        print(F.title)
        headers = ["n"] + [h for x in p0 for h in (f"p_n (p0={x:g})", "logit p_n")]
        print_table(headers, [[n] + [float(v) for pair in zip(tr.p[n], tr.logit[n]) for v in pair]
                              for n in range(args.n + 1)])
    if args.plot:
        from rlvrlens.figures.dynamics import plot_trajectories
        from rlvrlens.figures.style import save

        fig = plot_trajectories({f"$p_0$={x:g}": tr.p[:, i] for i, x in enumerate(p0)}, title=F.title)
        suffix = args.plot.rsplit(".", 1)[-1] if "." in args.plot else "png"
        for path in save(fig, args.plot, formats=(suffix,)):
            print(f"wrote {path}")
    return 0


def demo(out: Path) -> None:
    """The dynamics part of ``make demo``: fixed points of a few maps, and Mroueh's Fig. 5 grid
    (data from :mod:`rlvrlens.paper_repro.mroueh`)."""
    from rlvrlens.figures.dynamics import plot_iteration_grid
    from rlvrlens.figures.style import save
    from rlvrlens.paper_repro import mroueh

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    print("== Fixed points of KL-regularised iterations, beta = 1, p_ref = 0.2 (Mroueh 2025, THEORY.md §2) ==")
    rows = [[name, fp.p, float(fp.logit), fp.slope, fp.kind, "yes" if fp.reached else ""]
            for name, F in demo_maps().items() for fp in fixed_points(F)]
    print_table(["map", "p*", "logit p*", "F'(p*)", "type", "reached"], rows)
    F = grpo_success_map(3.0, 1e-3, 1e-5)
    print(f"{F.title}: from p_ref the iteration settles on {_describe(attractor(F))}")

    tr = mroueh.fig5_trajectories()
    betas, p_refs = mroueh.FIG5_BETAS, mroueh.FIG5_PREFS
    titles = [[f"$p_{{50}}$ = {mroueh.format_p(tr.logit[-1, i, j])}" for j in range(len(p_refs))]
              for i in range(len(betas))]
    fig = plot_iteration_grid(tr.p, titles, row_labels=[rf"$\beta$ = {b:g}" for b in betas],
                              col_labels=[f"$p_{{ref}}$ = {pr:g}" for pr in p_refs],
                              suptitle=r"Population GRPO iterations $p_{n+1}=h_{\epsilon,p_{ref}}(p_n)$, "
                                       rf"$p_0={mroueh.FIG5_P0:g}$, $\epsilon=10^{{-5}}$ (Mroueh 2025, Fig. 5)")
    for path in save(fig, out / "dynamics_trajectories"):
        print(f"wrote {path}")


def demo_maps() -> dict[str, SuccessMap]:
    """The maps of the demo's table, at beta = 1, p_ref = 0.2."""
    return {
        "population GRPO (eps=1e-5)": grpo_success_map(1.0, 0.2, 1e-5),
        "population Dr. GRPO": dr_grpo_success_map(1.0, 0.2),
        **{f"{s.name} M=16": success_map(s, 1.0, 0.2) for s in (grpo(16), dr_grpo(16), rloo(16), raft(16))},
    }
