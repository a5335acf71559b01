"""Argument helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rlvrlens.objectives import SCHEMES, WeightScheme, dynamic_sampling, get_scheme, scheme_parameters

#: CLI flag -> (scheme parameter, argparse keyword arguments)
_SCHEME_FLAGS: dict[str, tuple[str, dict[str, Any]]] = {
    "--eps": ("eps", {"type": float, "help": "GRPO's stabiliser epsilon (>= 0)"}),
    "--std": ("std", {"choices": ["sample", "population"], "help": "GRPO's std: sample (ddof=1) or population"}),
    "--eps-inside-sqrt": ("eps_inside_sqrt", {"action": "store_const", "const": True,
                                              "help": "GRPO: divide by sqrt(var + eps) (Mroueh) instead of std + eps"}),
    "--k": ("k", {"type": int, "help": "pass@k's and PKPO's k (1 <= k <= M)"}),
    "--T": ("T", {"type": int, "help": "MaxRL's truncation order (1 <= T <= M; default M)"}),
    "--baseline": ("baseline", {"choices": ["none", "mean", "loo", "loo-1"],
                                "help": "MaxRL: none or mean; PKPO: none, loo or loo-1"}),
    "--lam": ("lam", {"type": float, "help": "W-REINFORCE's weight of the right answers (>= 0)"}),
    "--gamma": ("gamma", {"type": float, "help": "F-GRPO's focal exponent (>= 0)"}),
    "--p-batch": ("p_batch", {"type": float, "nargs": "+",
                              "help": "GPG: success probabilities of the batch's prompts"}),
    "--reward-scale": ("reward_scale", {"choices": ["01", "pm1"], "help": "Reinforce-Rej's reward scale"}),
    "--split": ("split", {"choices": ["right", "centred"], "help": "how pass@k splits c into (a, b)"}),
}


def add_scheme_args(parser: argparse.ArgumentParser, *, M_default: int | None = None,
                    scheme_required: bool = True) -> None:
    """``--scheme NAME --M INT`` and the parameter flags of the catalogue schemes."""
    parser.add_argument("--scheme", required=scheme_required, help=f"scheme name: {', '.join(SCHEMES)}")
    parser.add_argument("--M", type=int, required=M_default is None, default=M_default,
                        help="group size: answers sampled per prompt")
    for flag, (_, kwargs) in _SCHEME_FLAGS.items():
        parser.add_argument(flag, default=None, **kwargs)
    parser.add_argument("--dynamic-sampling", type=float, nargs="+", metavar="P", default=None,
                        help="DAPO dynamic sampling on the scheme: drop all-equal groups and refill, for a "
                             "batch of prompts with these success probabilities")


def scheme_from_args(args: argparse.Namespace) -> WeightScheme:
    """Build the scheme named by ``--scheme`` with the flags it takes; refuse flags it does not."""
    allowed = scheme_parameters(args.scheme)  # raises for an unknown name
    params = {}
    for flag, (name, _) in _SCHEME_FLAGS.items():
        value = getattr(args, name)
        if value is None:
            continue
        if name not in allowed:
            raise ValueError(f"{flag} does not apply to scheme {args.scheme!r} (it takes: "
                             f"{', '.join(allowed) or 'only --M'})")
        params[name] = value
    scheme = get_scheme(args.scheme, args.M, **params)
    if getattr(args, "dynamic_sampling", None) is not None:
        scheme = dynamic_sampling(scheme, args.dynamic_sampling)
    return scheme


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, default=float)
    sys.stdout.write("\n")


def print_table(headers: list[str], rows: list[list[Any]]) -> None:
    cells = [[h for h in headers]] + [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [all(isinstance(row[i], (int, float)) for row in rows) for i in range(len(headers))]
    for i, row in enumerate(cells):
        print("  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(row, widths, numeric)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.10g}"
    return str(v)
