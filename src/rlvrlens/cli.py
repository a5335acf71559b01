"""The ``rlvrlens`` command. Thin: it parses, calls the layers, prints and plots.

Each module of :mod:`rlvrlens.commands` contributes subcommands through ``register(subparsers)``;
every subcommand stores its handler as ``func(args) -> int``. Errors in the user's input
(``ValueError``/``TypeError`` from the layers' validation) print as one line, not a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import Sequence

import rlvrlens
import rlvrlens.commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rlvrlens",
        description="What does an RL-with-verifiable-rewards update optimise, and where does it converge?",
    )
    parser.add_argument("--version", action="version", version=f"rlvrlens {rlvrlens.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(rlvrlens.commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"rlvrlens.commands.{info.name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, OSError) as exc:
        print(f"rlvrlens {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
