"""``rlvrlens validate``: theory against measurement on real models."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from rlvrlens.validation.sizes import REAL_MODEL_PARTS, VALIDATION_SIZES, RealModelSize


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="predicted vs measured: expected step, speed, fixed points, trajectories, "
                       "coupling")
    p.add_argument("--preset", default="cpu", choices=list(VALIDATION_SIZES),
                   help="run size: tiny (tests, ~1 min), demo (make demo), cpu (the full sweep), gpu (a lent "
                        "accelerator) on a tiny transformer; smollm2-cpu and smollm2-gpu on SmolLM2-135M-Instruct "
                        "(identity, coupled one-step prediction, trajectory, fixed points)")
    p.add_argument("--out", default="out/validation", help="output folder")
    p.add_argument("--device", help="override the preset's device (cpu, cuda)")
    p.add_argument("--only", help="SmolLM2 presets: a comma-separated subset of the experiments ("
                   + ", ".join(REAL_MODEL_PARTS) + "); the report says which were left out")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rlvrlens.validation.runner import run_validation
    from rlvrlens.validation.sizes import get_size

    overrides = {"device": args.device} if args.device else {}
    if getattr(args, "only", None):
        if not isinstance(VALIDATION_SIZES[args.preset], RealModelSize):
            raise ValueError(f"--only applies to the SmolLM2 presets, not to {args.preset!r}")
        parts = tuple(p.strip() for p in args.only.split(",") if p.strip())
        unknown = [p for p in parts if p not in REAL_MODEL_PARTS]
        if unknown or not parts:
            raise ValueError(f"--only names {', '.join(unknown) or 'nothing'}; valid: "
                             f"{', '.join(REAL_MODEL_PARTS)}")
        overrides["parts"] = parts
    size = get_size(args.preset, **overrides)
    verdicts = run_validation(size, args.out)
    counts = Counter(v["verdict"] for v in verdicts)
    for v in verdicts:
        print(f"{v['verdict']:>9s}  {v['experiment']:28s} {v['case']:60s} {v['gap']}")
    print(f"wrote {Path(args.out) / 'report.md'} ({dict(counts)})")
    return 0


def demo(out: Path) -> None:
    """The reduced CPU validation that ``make demo`` runs."""
    run(argparse.Namespace(preset="tiny", out=str(out / "validation"), device=None, only=None))
