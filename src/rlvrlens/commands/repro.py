"""``rlvrlens repro [PAPER ...] --out DIR``: regenerate the papers' figures and check their claims.

The reproductions live in :mod:`rlvrlens.paper_repro` (one module per paper); this
command runs the selected ones, prints each claim with PASS/FAIL and writes ``DIR/index.html``
showing every figure with its caption and every claim with the measured number.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Sequence


def register(sub: argparse._SubParsersAction) -> None:
    from rlvrlens.paper_repro import PAPERS

    p = sub.add_parser("repro", help="reproduce the papers' figures and check their claims (writes DIR/index.html)")
    p.add_argument("papers", nargs="*", metavar="PAPER",
                   help=f"papers to reproduce (default: all): {', '.join(PAPERS)}")
    p.add_argument("--out", default="out/repro", help="output folder (default: out/repro)")
    p.add_argument("--strict", action="store_true", help="exit with status 1 if any recomputed claim fails (an INCONCLUSIVE one does not, nor a stored "
                   "claim re-read from a committed measurement)")
    p.set_defaults(func=run_repro)


def reproduce(papers: Sequence[str], out: Path, *, echo: bool = True) -> tuple[Path, list]:
    """Run the reproductions ``papers`` (all if empty) into ``out``; return the index page and the
    :class:`~rlvrlens.paper_repro.report.Reproduction` objects."""
    from rlvrlens.paper_repro import PAPERS, PENDING, load
    from rlvrlens.paper_repro.report import counts_line, write_index

    keys = list(papers) or list(PAPERS)
    modules = [load(k) for k in keys]  # unknown names fail before any work
    out = Path(out)
    reps = []
    for key, module in zip(keys, modules):
        start = time.perf_counter()
        rep = module.run(out / key)
        reps.append(rep)
        if echo:
            print(f"== {rep.title} ({time.perf_counter() - start:.1f} s): {len(rep.figures)} figures, "
                  f"{counts_line(rep.claims)}")
            for claim in rep.claims:
                print(f"  {claim.verdict:<12} {claim.kind:<11} x = {claim.measured:<12.6g} ({claim.criterion})  "
                      f"{claim.statement}")
    pending = PENDING if not papers else {}
    index = write_index(reps, out, pending=pending)
    if echo:
        print(f"wrote {index}")
    return index, reps


def run_repro(args: argparse.Namespace) -> int:
    _, reps = reproduce(args.papers, Path(args.out))
    failed = sum(c.failed for rep in reps for c in rep.claims if c.kind != "stored")
    stored = sum(c.failed for rep in reps for c in rep.claims if c.kind == "stored")
    if failed:
        print(f"{failed} claim(s) FAIL")
    if stored:
        print(f"{stored} stored claim(s) FAIL (committed measurements, not recomputed)")
    return 1 if (failed and args.strict) else 0


def demo(out: Path) -> None:
    """The reproductions' part of ``make demo``: every paper into ``out/repro``."""
    reproduce([], Path(out) / "repro")
