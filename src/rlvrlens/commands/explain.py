"""``rlvrlens presets | explain``: what a TRL / verl / OpenRLHF configuration optimises."""

from __future__ import annotations

import argparse
import re
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from rlvrlens.commands._common import print_json, print_parts, print_table
from rlvrlens.dynamics import Outcome
from rlvrlens.core.kl import EXPLAIN_ESTIMATORS, STATIONARY_CONDITION
from rlvrlens.explain import (
    DEFAULT_SPREAD,
    TABLE_P,
    ExplainReport,
    explain,
    from_trl_config,
    from_verl_config,
    read_config_file,
)
from rlvrlens.objectives import PRESETS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("presets", help="list the framework presets (TRL, verl, OpenRLHF, ...)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_presets)

    p = sub.add_parser("explain", help="what a framework configuration optimises, printed and plotted")
    p.add_argument("--preset", help=f"preset name: {', '.join(PRESETS)}")
    p.add_argument("--trl-config", metavar="FILE",
                   help="a TRL GRPOConfig as YAML (trl grpo --config) or JSON (GRPOConfig.to_json_string())")
    p.add_argument("--verl-config", metavar="FILE", help="a verl trainer YAML (ppo_trainer.yaml layout)")
    p.add_argument("--run", metavar="DIR",
                   help="a run: our run folder, a TRL run recorded by PromptSuccessRecorder, or a JSONL of "
                        '{"step", "prompt_id", "rewards": [0, 1, ...]} lines (docs/runs.md): each prompt against '
                        "the forecast made before the run and its stationary point")
    p.add_argument("--scheme", metavar="NAME_OR_FILE",
                   help="with --run: the run's scheme, a catalogue name or preset (with --num-generations and "
                        "--param) or a JSON file with a and b (rlvrlens design --json); default: the run's record")
    p.add_argument("--forecast", metavar="FILE",
                   help="with --run: a forecast.json (default: the one in the run folder, if any)")
    p.add_argument("--window", type=int, metavar="STEPS",
                   help="with --run on per-group rewards: steps pooled per estimate (default: the run in 8 windows)")
    p.add_argument("--num-generations", "--M", dest="M", type=int,
                   help="answers sampled per prompt (TRL num_generations, verl rollout.n, "
                        "OpenRLHF n_samples_per_prompt)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a preset parameter, e.g. scale_rewards=batch or p_batch=0.2,0.5 (repeatable)")
    p.add_argument("--beta", type=float, help="KL coefficient: where each prompt's success probability is driven")
    p.add_argument("--kl-estimator", choices=EXPLAIN_ESTIMATORS,
                   help="the KL estimator in the loss (reward: KL folded into the reward), with --beta: adds where "
                        "a small-step gradient trainer with it stops (default: none, the map of the KL(pi||pi_ref) penalty only; "
                        "a config file names its own)")
    p.add_argument("--p-ref-file", metavar="FILE",
                   help="success probabilities of your prompts, one per line (default: uniform on (0, 1))")
    p.add_argument("--compare", metavar="PRESET2", help="a second preset, shown side by side")
    p.add_argument("--compare-param", action="append", default=[], metavar="KEY=VALUE",
                   help="a parameter of the --compare preset (repeatable)")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    p.add_argument("--out", metavar="DIR", help="write the figure (PNG and PDF) into DIR")
    p.set_defaults(func=run_explain)


def parse_params(items: list[str]) -> dict[str, Any]:
    """``["scale_rewards=batch", "p_batch=0.2,0.5"]`` -> ``{"scale_rewards": "batch", "p_batch": (0.2, 0.5)}``."""
    params: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--param must look like KEY=VALUE, got {item!r}")
        params[key.strip()] = _parse_value(raw.strip())
    return params


def _parse_value(raw: str) -> Any:
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    if "," in raw:
        return tuple(_parse_value(x.strip()) for x in raw.split(",") if x.strip())
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw


#: Largest --p-ref-file read (a million numbers of 15 digits).
MAX_P_FILE_BYTES = 2**24


def read_p_file(path: str) -> np.ndarray:
    """Numbers separated by whitespace or commas; ``#`` starts a comment; at most
    :data:`MAX_P_FILE_BYTES` bytes."""
    try:
        if Path(path).stat().st_size > MAX_P_FILE_BYTES:
            raise ValueError(f"--p-ref-file: {path!r} is {Path(path).stat().st_size} bytes; at most "
                             f"{MAX_P_FILE_BYTES} are read")
        text = Path(path).read_text()
    except OSError as exc:
        raise ValueError(f"--p-ref-file: cannot read {path!r} ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ValueError(f"--p-ref-file: {path!r} is not a text file of numbers") from None
    tokens = [tok for line in text.splitlines() for tok in re.split(r"[,\s]+", line.split("#")[0]) if tok]
    try:
        values = np.array([float(tok) for tok in tokens])
    except ValueError:
        raise ValueError(f"--p-ref-file: {path!r} must contain numbers in [0, 1]") from None
    if values.size == 0:
        raise ValueError(f"--p-ref-file: {path!r} contains no numbers")
    return values


def run_presets(args: argparse.Namespace) -> int:
    rows = [{"name": n, "framework": p.framework, "config": p.config,
             "params": {k: v for k, v in p.parameters().items()}, "summary": p.summary}
            for n, p in PRESETS.items()]
    if args.json:
        print_json(rows)
        return 0
    print_table(["preset", "framework", "config", "parameters (defaults)"],
                [[r["name"], r["framework"], r["config"],
                  ", ".join(f"{k}={v}" for k, v in r["params"].items()) or "-"] for r in rows])
    return 0


def _title(r: ExplainReport) -> str:
    params = ", ".join(f"{k}={v}" for k, v in r.scheme.params.items() if k != "p_batch")
    return f"{r.preset} [{r.framework}: {r.config}] M={r.M}" + (f", {params}" if params else "")


def print_reports(reports: list[ExplainReport]) -> None:
    """The human-readable tables, one column per report."""
    tags = [chr(ord("A") + i) for i in range(len(reports))]
    for tag, r in zip(tags, reports):
        print(f"{tag}: {_title(r)}")
        summary = (PRESETS[r.preset].summary if r.preset in PRESETS else r.preset).replace("``", "")
        print(textwrap.fill(summary, width=100, initial_indent="   ", subsequent_indent="   "))
        for note in r.notes:
            print(f"   note: {note}")
    p = np.asarray(TABLE_P)

    print("\n1. What it optimises: h_M against its M -> infinity limit "
          "(both divided by their value at t = 1; shifted to 0 at t = 1/2 for log-type limits)")
    headers, cols = ["t"], []
    for tag, r in zip(tags, reports):
        headers.append(f"{tag}: h_M")
        cols.append(np.interp(p, r.t, r.h_normalised))
        if r.limit_normalised is not None:
            headers.append(f"{tag}: limit {r.limit_name}")
            cols.append(np.interp(p, r.t, r.limit_normalised))
    print_table(headers, [[float(x)] + [round(float(c[i]), 4) for c in cols] for i, x in enumerate(p)])
    for tag, r in zip(tags, reports):
        gap = "no known limit" if r.limit_gap is None else f"largest gap to the limit {r.limit_gap:.3g}"
        print(f"   {tag}: {gap}")

    print("\n2. Relative step by prompt difficulty: h'_M(p) / h_M(1) "
          "(1 = every difficulty pushed equally, as REINFORCE/RLOO)")
    headers = ["p"] + [f"{tag}: weight" for tag in tags] + [f"{tag}: vs p=0.5" for tag in tags]
    half = list(p).index(0.5)
    rows = [[float(x)] + [round(float(r.table_weight[i]), 4) for r in reports]
            + [round(float(r.table_weight[i] / r.table_weight[half]), 3) if r.table_weight[half] > 0
               else float("nan") for r in reports] for i, x in enumerate(p)]
    print_table(headers, rows)

    print("\n3. Zero-variance groups (TRL's frac_reward_zero_std): a prompt with success probability p "
          "gives an all-right or all-wrong group, hence no gradient, with probability p^M + (1-p)^M")
    spread = reports[0].p_spread
    origin = ("uniform on (0, 1), the default; give yours with --p-ref-file"
              if spread is DEFAULT_SPREAD else "from --p-ref-file")
    print(f"   spread of p: {spread.size} prompts, mean {spread.mean():.3g} ({origin})")
    for tag, r in zip(tags, reports):
        print(f"   {tag}: expected frac_reward_zero_std = {r.frac_zero_std:.4f} (M={r.M})")
    with_kl = [(tag, r) for tag, r in zip(tags, reports) if r.kl is not None]
    if with_kl:
        _print_kl(with_kl)
    with_flow = [(tag, r) for tag, r in zip(tags, reports) if r.flow is not None]
    if with_flow:
        _print_flow(with_flow)


def _print_flow(items: list[tuple[str, ExplainReport]]) -> None:
    f0 = items[0][1].flow
    print(f"\n5. Where a small-step gradient trainer with this KL estimator stops: {f0.kl_estimator} at "
          f"beta = {f0.beta:g} is {STATIONARY_CONDITION[f0.kl]} (the mean-field gradient flow from pi_ref, THEORY.md §4)")
    headers = ["p_ref"]
    for tag, _ in items:
        headers += [f"{tag}: p* (trainer)", f"{tag}: 1-p*", f"{tag}: p* (section 4)"]
    rows = []
    for i, p in enumerate(f0.p_ref):
        row: list[Any] = [float(p)]
        for _, r in items:
            f, kl = r.flow, r.kl
            resolved = f.outcome[i] == Outcome.FIXED_POINT
            mapped = kl.outcome[i] == Outcome.FIXED_POINT
            row += [f"{float(f.p_star[i]):.6f}" if resolved else "unresolved",
                    f"{float(f.one_minus_p_star[i]):.3g}" if resolved else "-",
                    f"{float(kl.p_star[i]):.6f}" if mapped else kl.outcome[i].label]
        rows.append(row)
    print_table(headers, rows)


def _print_kl(items: list[tuple[str, ExplainReport]]) -> None:
    kl0 = items[0][1].kl
    print(f"\n4. With a KL penalty to the reference policy, beta = {kl0.beta:g}: the idealised iteration "
          "pi_n ∝ pi_ref exp(A_{n-1}/beta) (Mroueh 2025), i.e. logit p_n = logit p_ref + h'_M(p_{n-1})/beta, "
          "started at p_ref, drives each prompt to")
    headers = ["p_ref"]
    for tag, _ in items:
        headers += [f"{tag}: outcome", f"{tag}: p*", f"{tag}: 1-p*", f"{tag}: F'(p*)", f"{tag}: #fixed pts"]
    rows = []
    for i, p in enumerate(kl0.p_ref):
        row: list[Any] = [float(p)]
        for _, r in items:
            kl = r.kl
            orbit = " <-> ".join(f"{x:.4g}" for x in kl.orbit[i])
            cycling = kl.outcome[i] != Outcome.FIXED_POINT
            what = kl.outcome[i].label
            if kl.outcome[i] == Outcome.LONGER_CYCLE:
                what = f"{len(kl.orbit[i])}-cycle"
            row += [what if not cycling else f"{what} {orbit}",
                    "-" if cycling else f"{float(kl.p_star[i]):.6f}",
                    "-" if cycling else f"{float(kl.one_minus_p_star[i]):.3g}",
                    f"{float(kl.multiplier[i]):.3g}", str(int(kl.n_fixed_points[i]))]
        rows.append(row)
    print_table(headers, rows)
    for tag, r in items:
        n = r.kl.spread_kind.size
        mean_star = r.kl.to_dict()["spread"]["mean_p_star_converged"]
        after = "none converge" if mean_star is None else f"mean p* {mean_star:.4g} over the converging ones"
        spread = r.kl.to_dict()["spread"]
        print(f"   {tag}: over the {n} prompts of the spread: {spread['frac_converge']:.0%} converge, "
              f"{spread['frac_cycle']:.0%} cycle, {spread['frac_unresolved']:.0%} unresolved; "
              f"mean p_ref {r.p_spread.mean():.4g} -> {after}")
    print("   (F'(p*): slope at the fixed point, |F'| < 1 attracting; for a cycle, the product along it. "
          "Several fixed points: where p ends depends on where it starts.)")


def _source(args: argparse.Namespace):
    """The framework config the flags name (None for --preset), refusing ambiguous combinations."""
    given = [flag for flag, value in (("--preset", args.preset), ("--trl-config", args.trl_config),
                                      ("--verl-config", args.verl_config)) if value]
    if len(given) > 1:
        raise ValueError(f"give one of --preset, --trl-config, --verl-config (got {', '.join(given)})")
    if not given and not args.run:
        raise ValueError("give --preset NAME --num-generations M, --trl-config FILE, --verl-config FILE or --run DIR")
    if args.trl_config:
        return from_trl_config(read_config_file(args.trl_config, "--trl-config"))
    if args.verl_config:
        return from_verl_config(read_config_file(args.verl_config, "--verl-config"))
    if args.preset and args.M is None:
        raise ValueError("--preset needs --num-generations M")
    return None


def run_explain(args: argparse.Namespace) -> int:
    if args.run:
        return run_explain_run(args)
    for flag, value in (("--scheme", args.scheme), ("--forecast", args.forecast), ("--window", args.window)):
        if value is not None:
            raise ValueError(f"{flag} applies to --run DIR")
    fc = _source(args)
    p_ref = read_p_file(args.p_ref_file) if args.p_ref_file else None
    if fc is not None:
        if args.param:
            raise ValueError("--param applies to --preset; a config file sets the preset's parameters itself")
        for flag, value in (("--num-generations", args.M), ("--beta", args.beta),
                            ("--kl-estimator", args.kl_estimator)):
            if value is not None:
                raise ValueError(f"{flag} is read from the config file; remove it (or edit the file)")
        named = fc.scheme is not None  # verl's adv_estimator=rlvrlens: the config names the weights themselves
        first = explain(fc.scheme if named else fc.preset, fc.M, beta=fc.beta, p_ref=p_ref,
                        params=None if named else fc.params, dynamic_sampling=fc.dynamic_sampling,
                        framework_config=fc)
    else:
        if args.kl_estimator is not None and args.beta is None:
            raise ValueError("--kl-estimator needs --beta (the KL coefficient)")
        first = explain(args.preset, args.M, beta=args.beta, p_ref=p_ref, params=parse_params(args.param),
                        kl_estimator=args.kl_estimator)
    reports = [first]
    if args.compare:
        reports.append(explain(args.compare, first.M, beta=first.kl.beta if first.kl else None, p_ref=p_ref,
                               params=parse_params(args.compare_param),
                               kl_estimator=first.flow.kl_estimator if first.flow else None))
    elif args.compare_param:
        raise ValueError("--compare-param needs --compare")
    if args.json:
        print_json(reports[0].to_dict() if len(reports) == 1 else {"reports": [r.to_dict() for r in reports]})
    else:
        print_reports(reports)
    if args.out:
        for path in write_figure(reports, Path(args.out)):
            if not args.json:
                print(f"wrote {path}")
    elif not args.json:
        print("\n(add --out DIR for the figure)")
    return 0


def run_explain_run(args: argparse.Namespace) -> int:
    """``explain --run DIR``: each prompt against its forecast and stationary point."""
    from rlvrlens.explain import explain_run

    for flags in ((("--preset", args.preset), ("--scheme", args.scheme)),
                  (("--trl-config", args.trl_config), ("--verl-config", args.verl_config))):
        given = [flag for flag, value in flags if value]
        if len(given) > 1:
            raise ValueError(f"give one of {', '.join(flag for flag, _ in flags)} (got {', '.join(given)})")
    for flag, value in (("--compare", args.compare), ("--compare-param", args.compare_param),
                        ("--p-ref-file", args.p_ref_file)):
        if value:
            raise ValueError(f"{flag} does not apply to --run (the run's own prompts are explained)")
    rep = explain_run(args.run, scheme=args.scheme or args.preset, M=args.M, params=parse_params(args.param),
                      beta=args.beta, kl_estimator=args.kl_estimator,
                      trl_config=read_config_file(args.trl_config, "--trl-config") if args.trl_config else None,
                      verl_config=read_config_file(args.verl_config, "--verl-config") if args.verl_config else None,
                      forecast=args.forecast, window=args.window)
    if args.json:
        print_json(rep.to_dict())
    else:
        print_run(rep)
    if args.out:
        from rlvrlens.figures.explain import plot_run
        from rlvrlens.figures.style import save

        for path in save(plot_run(rep), Path(args.out) / "explain_run"):
            if not args.json:
                print(f"wrote {path}")
    return 0


def print_run(rep) -> None:
    """The header, the verdicts, one row per prompt, the parts of the configuration and the notes."""
    from rlvrlens.explain.runs import format_row

    steps = rep.steps
    print(f"run {rep.run} ({rep.kind}): scheme {rep.scheme.name} M={rep.scheme.M} ({rep.scheme_source}), beta = "
          f"{rep.beta:g}, KL estimator {rep.kl_estimator}; {steps.size} records (steps {steps[0]:g} .. {steps[-1]:g})")
    for line in rep.summary():
        print(line)
    print()
    rows = rep.rows()
    with_forecast = rep.forecast is not None
    headers = ["prompt", "p_ref", "p now", "step"] + (["forecast [band]", "vs forecast"] if with_forecast else []) + [
        "p* (own flow)", "vs p*", "learning signal"]
    table = []
    for r in rows:
        fc = r["forecast"]
        table.append([r["prompt_id"], format_row(r["p_ref"]), format_row(r["p_now"]), f"{r['p_now']['step']:g}"]
                     + ([format_row(fc), fc["versus"] if fc else "-"] if with_forecast else [])
                     + [format_row(r["stationary"]) if np.isfinite(r["stationary"]["p"]) else r["stationary"]["outcome"],
                        r["stationary"]["versus"] or "-", "yes" if r["signal"] else "NO"])
    print_table(headers, table)
    print_parts(rep.parts)
    for note in rep.notes:
        print(f"   note: {note}")


def write_figure(reports: list[ExplainReport], out: Path) -> list[Path]:
    from rlvrlens.figures.explain import plot_explain
    from rlvrlens.figures.style import save

    stem = "explain_" + "_vs_".join(r.preset for r in reports) + f"_M{reports[0].M}"
    return save(plot_explain(reports), out / stem)


def demo(out: Path) -> None:
    """``make demo``'s part: TRL's default GRPO against Dr. GRPO (no std) at M = 64 with a KL
    coefficient beta = 1, printed and plotted (about 10 s on one CPU core)."""
    out = Path(out)
    reports = [explain("trl-grpo", 64, beta=1.0), explain("openrlhf-dr-grpo", 64, beta=1.0)]
    print("== rlvrlens explain: TRL GRPO (std-normalised) vs Dr. GRPO (mean only), M = 64, beta = 1 ==")
    print_reports(reports)
    for path in write_figure(reports, out):
        print(f"wrote {path}")
