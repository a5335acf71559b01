"""``rlvrlens validate``: theory against measurement on real models."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from rlvrlens.validation.sizes import VALIDATION_SIZES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="predicted vs measured: expected step, speed, fixed points, trajectories, "
                       "coupling")
    p.add_argument("--preset", default="cpu", choices=list(VALIDATION_SIZES),
                   help="run size: tiny (tests, ~1 min), demo (make demo), cpu (the full sweep), gpu (a lent "
                        "accelerator) on a tiny transformer; smollm2-cpu and smollm2-gpu on SmolLM2-135M-Instruct "
                        "(identity, coupled one-step prediction, trajectory, fixed points)")
    p.add_argument("--out", default="out/validation", help="output folder")
    p.add_argument("--device", help="override the preset's device (cpu, cuda)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rlvrlens.validation.runner import run_validation
    from rlvrlens.validation.sizes import get_size

    overrides = {"device": args.device} if args.device else {}
    size = get_size(args.preset, **overrides)
    verdicts = run_validation(size, args.out)
    counts = Counter(v["verdict"] for v in verdicts)
    for v in verdicts:
        print(f"{v['verdict']:>9s}  {v['experiment']:28s} {v['case']:60s} {v['gap']}")
    print(f"wrote {Path(args.out) / 'report.md'} ({dict(counts)})")
    return 0


def demo(out: Path) -> None:
    """The reduced CPU validation that ``make demo`` runs."""
    run(argparse.Namespace(preset="tiny", out=str(out / "validation"), device=None))
