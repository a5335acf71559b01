"""Argument helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import textwrap
import typing
from pathlib import Path
from typing import Any

from rlvrlens.core.records import json_ready
from rlvrlens.objectives import SCHEMES, WeightScheme, dynamic_sampling, get_scheme, scheme_parameters

#: CLI flag -> (scheme parameter, argparse keyword arguments)
SCHEME_FLAGS: dict[str, tuple[str, dict[str, Any]]] = {
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
    for flag, (_, kwargs) in SCHEME_FLAGS.items():
        parser.add_argument(flag, default=None, **kwargs)
    parser.add_argument("--dynamic-sampling", type=float, nargs="+", metavar="P", default=None,
                        help="DAPO dynamic sampling on the scheme: drop all-equal groups and refill, for a "
                             "batch of prompts with these success probabilities")


def scheme_from_args(args: argparse.Namespace) -> WeightScheme:
    """Build the scheme named by ``--scheme`` with the flags it takes; refuse flags it does not."""
    allowed = scheme_parameters(args.scheme)  # raises for an unknown name
    params = {}
    for flag, (name, _) in SCHEME_FLAGS.items():
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
    """``obj`` as JSON on stdout: numpy values as numbers and lists, NaN and infinities as ``null``
    (:func:`rlvrlens.core.records.json_ready`; JSON has no NaN)."""
    json.dump(json_ready(obj), sys.stdout, indent=2, default=float, allow_nan=False)
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


#: CLI aliases for config fields (the theory's names).
_ALIASES = {"num_generations": ["--M"], "num_iterations": ["--mu"]}
#: Help of fields whose default alone does not say enough.
_HELP = {
    "warm_start_steps": "SFT steps before RL (default 60 for a fresh model, 0 with --model)",
    "loss_aggregation": "seq-mean-token-mean (GRPO), bnpo (token mean per micro-batch; old name token-mean), "
                        "dapo (token mean over the whole step), seq-sum-constant (Dr. GRPO; keeps "
                        "E[update] = h'(p) grad p when lengths vary)",
    "aggregation_constant": "seq-sum-constant's divisor (default max_new_tokens)",
    "device": "cpu, cuda or cuda:N for the model (default: the CPU)",
    "precision": "autocast: fp32 (none), bf16, fp16 (CUDA only)",
    "gradient_checkpointing": "recompute activations in the backward pass (less memory)",
    "chat_template": "wrap prompts in the --model's chat template (default: when it has one)",
    "kl_in_reward": "subtract beta * the sequence's KL estimate from its reward (REINFORCE++)",
    "optim": "adamw (default), adam or sgd (no momentum)",
    "lr_scheduler_type": "constant (default) or linear (decay to 0 at --steps, TRL's default); after --warmup-steps",
    "kl_level": "token: the estimator on each token's log-ratio, summed (TRL, verl); sequence: on the "
                "sequence's log-ratio (k2: grad KL(pi||pi_ref), k3: grad KL(pi_ref||pi) for answers of any length)",
}


def _field_type(f: dataclasses.Field) -> Any:
    hints = typing.get_type_hints(_config_cls())
    t = hints[f.name]
    args = [a for a in typing.get_args(t) if a is not type(None)]
    return args[0] if args else t


def _config_cls():
    from rlvrlens.training.config import TrainConfig

    return TrainConfig


def add_config_args(p: argparse.ArgumentParser, helps: dict[str, str] | None = None) -> None:
    """One flag per :class:`~rlvrlens.training.TrainConfig` field (``--learning-rate``, ``--M``, ...),
    ``--no-chat-template`` and the scheme parameter flags (``--eps``, ``--k``, ...), all defaulting
    to None (unset: the config file's or the dataclass's value); :func:`config_from_args` reads them.
    ``helps`` replaces the help of some fields (by field name)."""
    helps = {**_HELP, **(helps or {})}
    for f in dataclasses.fields(_config_cls()):
        if f.name == "scheme_params":
            continue
        flags = [f"--{f.name.replace('_', '-')}"] + _ALIASES.get(f.name, [])
        kind = _field_type(f)
        if kind is bool:
            p.add_argument(*flags, dest=f.name, action="store_const", const=True, default=None,
                           help=helps.get(f.name))
        else:
            p.add_argument(*flags, dest=f.name, type=kind, default=None,
                           help=helps.get(f.name, f"(default {f.default!r})"))
    p.add_argument("--no-chat-template", dest="chat_template", action="store_const", const=False,
                   help="give a pretrained --model raw prompts, not its chat template")
    for flag, (name, kwargs) in SCHEME_FLAGS.items():
        p.add_argument(flag, dest=f"scheme_{name}", default=None,
                       **{k: v for k, v in kwargs.items() if k != "dest"})


def config_from_args(args: argparse.Namespace, base: dict[str, Any] | None = None):
    """The :class:`~rlvrlens.training.TrainConfig` of the flags of :func:`add_config_args`.

    Later sources win: the defaults, then (with ``--resume``) the run's recorded ``config.json``,
    then ``base`` (fields mapped from a framework's config), then the ``--config`` file, then the
    flags given.
    """
    TrainConfig = _config_cls()
    data: dict[str, Any] = {}
    recorded = Path(args.out) / "config.json" if args.out else None
    if getattr(args, "resume", False) and recorded is not None and recorded.is_file():
        data.update(TrainConfig.from_json(recorded).to_dict())
    data.update(base or {})
    if args.config:
        data.update(TrainConfig.read_fields(args.config))  # TOML or a run's config.json
    for f in dataclasses.fields(TrainConfig):
        value = getattr(args, f.name, None)
        if value is not None:
            data[f.name] = value
    params = dict(data.get("scheme_params", {}))
    for _, (name, _) in SCHEME_FLAGS.items():
        value = getattr(args, f"scheme_{name}")
        if value is not None:
            params[name] = value
    data["scheme_params"] = params
    return TrainConfig.from_dict(data)


def print_parts(parts: Any) -> None:
    """What the stationary point and the forecast model of each part of a run's configuration: a
    table of the statuses, then how, one wrapped paragraph per part."""
    print("\nWhat the predictions model of the run's configuration (p*: each prompt's stationary point; "
          "forecast: the coupled model)")
    with_forecast = any(part.forecast is not None for part in parts)
    headers = ["part", "setting", "p*"] + (["forecast"] if with_forecast else [])
    print_table(headers, [[part.name, part.setting, part.stationary] + ([part.forecast or "-"] if with_forecast else [])
                          for part in parts])
    for part in parts:
        print(textwrap.fill(part.how, width=110, initial_indent=f"  {part.name}: ", subsequent_indent="    "))
