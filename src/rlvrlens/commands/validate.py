"""``rlvrlens validate``: theory against measurement on real models (issue 6)."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

#: The names of :data:`rlvrlens.validation.experiments.VALIDATION_SIZES` (listed here: parsing imports no torch).
PRESETS = ("tiny", "demo", "cpu", "gpu", "smollm2-cpu", "smollm2-gpu")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="predicted vs measured: expected step, speed, fixed points, trajectories, "
                       "coupling")
    p.add_argument("--preset", default="cpu", choices=PRESETS,
                   help="run size: tiny (tests, ~1 min), demo (make demo, ~5 min), cpu (the full sweep, ~13 min), "
                        "gpu (a lent accelerator) on a tiny transformer; smollm2-cpu (~15 min) and smollm2-gpu on "
                        "SmolLM2-135M-Instruct (identity, coupled one-step prediction, trajectory)")
    p.add_argument("--out", default="out/validation", help="output folder")
    p.add_argument("--device", help="override the preset's device (cpu, cuda)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rlvrlens.validation.experiments import get_size
    from rlvrlens.validation.report import run_validation

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
