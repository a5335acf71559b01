"""``rlvrlens forecast``: what a run will do to each prompt, before it starts."""

from __future__ import annotations

import argparse
import sys
import time
from rlvrlens.commands._common import add_config_args, config_from_args, print_json, print_parts, print_table
from rlvrlens.core.intervals import format_exact, format_interval
from rlvrlens.core.records import FORECAST

#: The probe's default batches (``rlvrlens.forecast.forecast.DEFAULT_BATCHES``, kept here so that parsing
#: does not import torch; a test checks that the two agree).
PROBE_BATCHES = 16


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "forecast", help="what a run will do to each prompt, before it starts (a probe of the starting model)",
        description="Probe the run's starting model once (exact p and grad p per prompt, a few stochastic "
                    "gradients of the run's own loss) and integrate the coupled first-order model of the run's "
                    "optimiser, schedule and KL term. The run is given as rlvrlens train takes it (the same flags, "
                    "or --config), or as a TRL GRPOConfig / verl YAML plus --model and --task; --scheme also takes "
                    "a framework preset or a scheme's JSON file (rlvrlens design --json). Writes OUT/forecast.json "
                    "and OUT/forecast.png; train the run into OUT and `rlvrlens explain --run OUT` compares.")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for forecast.json and the figure (the run's "
                                                               "--out, so that explain --run finds the forecast)")
    p.add_argument("--config", help="TrainConfig fields: a TOML file, or a run's config.json")
    p.add_argument("--trl-config", metavar="FILE", help="a TRL GRPOConfig as YAML or JSON (flags override its fields)")
    p.add_argument("--verl-config", metavar="FILE", help="a verl trainer YAML (flags override its fields)")
    p.add_argument("--at", type=int, nargs="+", metavar="STEP",
                   help="steps reported per prompt (default: a quarter, half and all of --steps)")
    p.add_argument("--probe-batches", type=int, default=PROBE_BATCHES, metavar="J",
                   help="the probe's budget: stochastic gradients drawn, each about one training step (>= 2; "
                        f"default {PROBE_BATCHES}: fewer bias Adam's preconditioner high)")
    p.add_argument("--probe-seed", type=int, default=0, help="seed of the probe's samples")
    p.add_argument("--propagate-every", type=int, default=0, metavar="N",
                   help="propagate the forecast along its own parameter path, re-measuring p every N steps (one "
                        "exact-p and one backward pass each; 0, the default: the kernel frozen at step 0)")
    p.add_argument("--json", action="store_true", help="print the forecast as JSON (the curves stay in the file)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_args(p, {"scheme": "a catalogue scheme, a framework preset (trl-grpo, ...) or a scheme's JSON file "
                                  "(rlvrlens design --json); default grpo, or the framework's own with --trl-config",
                        "steps": "the run's optimizer steps: its schedule, and the forecast's horizon"})
    p.set_defaults(func=run_forecast)


class ProgressLine:
    """A one-line progress bar on stderr for each part of the probe (a new line when a part is done)."""

    WIDTH = 24

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self, part: str, done: int, total: int) -> None:
        filled = round(self.WIDTH * done / max(total, 1))
        print(f"\rprobe {part:<9} [{'#' * filled}{'.' * (self.WIDTH - filled)}] {done}/{total}  "
              f"{time.perf_counter() - self.start:.0f} s", end="\n" if done >= total else "", file=sys.stderr,
              flush=True)


def _settings(args: argparse.Namespace):
    """The framework config the flags name (None without one)."""
    from rlvrlens.explain import read_config_file
    from rlvrlens.explain.run_config import trl_settings, verl_settings

    if args.trl_config and args.verl_config:
        raise ValueError("give one of --trl-config, --verl-config")
    if args.trl_config:
        return trl_settings(read_config_file(args.trl_config, "--trl-config"))
    if args.verl_config:
        return verl_settings(read_config_file(args.verl_config, "--verl-config"))
    return None


def run_forecast(args: argparse.Namespace) -> int:
    from rlvrlens.explain.run_config import read_scheme
    from rlvrlens.figures.forecast import plot_forecast
    from rlvrlens.figures.style import save
    from rlvrlens.forecast.runs import forecast_run
    from rlvrlens.training.rundir import check_out, describe_run

    if args.propagate_every < 0:
        raise ValueError(f"--propagate-every must be 0 (off) or a number of steps >= 1, got {args.propagate_every}")
    out = check_out(args.out)
    held = describe_run(out)
    if held:
        raise ValueError(f"--out {args.out} already holds a run ({held}): a forecast is made before the run starts; "
                         "give an empty folder")
    settings = _settings(args)
    base = dict(settings.fields) if settings else None
    if settings is not None and args.scheme is None:  # the framework's own advantages: its preset
        base.update(scheme=settings.scheme.name, scheme_params=dict(settings.scheme.params))
    config = config_from_args(args, base=base)
    scheme = read_scheme(config.scheme, config.num_generations, config.scheme_params)
    refused = {k: v for k, v in (settings.refused if settings else {}).items()
               if getattr(args, k, None) is None and not (k == "scheme" and args.scheme)}
    record = forecast_run(config, scheme=scheme, at=args.at, batches=args.probe_batches, seed=args.probe_seed,
                          refused=refused, notes=settings.notes if settings else (),
                          progress=None if args.quiet or args.json else ProgressLine(),
                          propagate_every=args.propagate_every or None)
    files = [record.write(out / FORECAST)] + save(plot_forecast(record), out / "forecast")
    if args.json:
        data = record.to_dict()
        data.pop("curves")
        print_json(data)
        return 0
    print_forecast(record)
    for path in files:
        print(f"wrote {path}")
    return 0


def print_forecast(record) -> None:
    """The summary, one row per prompt, the parts of the configuration and the notes."""
    cfg = record.config
    print(f"forecast: {record.model} on {record.task}; {record.scheme['name']} M={record.M}, {record.kl}; "
          f"{cfg['optim']} learning_rate {cfg['learning_rate']:g} ({cfg['lr_scheduler_type']}), {cfg['steps']} steps")
    for line in record.summary():
        print(line)
    rows = record.rows()
    headers = ["prompt", "p now"] + [f"p at step {a['step']} [band]" for a in rows[0]["at"]] + [
        "p* (own flow)", "fate", "learning signal"]
    print()
    print_table(headers, [[r["prompt_id"], format_exact(r["p_now"])]
                          + [format_interval(a["p"], a["low"], a["high"]) for a in r["at"]]
                          + [format_exact(r["stationary"]), r["fate"] + (" (because of others)" if r["because_of_others"]
                                                                          else ""),
                             "yes" if r["signal"] else "NO (all-equal groups)"] for r in rows])
    print_parts(record.parts)
    for note in record.notes:
        print(f"   note: {note}")
