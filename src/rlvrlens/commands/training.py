"""``rlvrlens train | evaluate``: RL fine-tuning with a weight scheme, and per-prompt success."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from rlvrlens.commands._common import add_config_args, config_from_args, print_json, print_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="RL fine-tuning of a (tiny) causal LM with a weight scheme",
                       description="Options are TrainConfig fields (see rlvrlens.training.config); "
                                   "flags override --config FILE, which overrides the defaults (with "
                                   "--resume: the run's own recorded config).")
    p.add_argument("--out", required=True, help="run directory (logs, checkpoints, model)")
    p.add_argument("--config", help="TrainConfig fields: a TOML file, or a run's config.json")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in OUT from its checkpoint and recorded config (--steps N extends it)")
    p.add_argument("--overwrite", action="store_true", help="replace the run OUT holds")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    add_config_args(p)
    p.set_defaults(func=run_train)

    p = sub.add_parser("evaluate", help="per-prompt success probability of a run's checkpoint or a model dir")
    p.add_argument("path", nargs="?", help="run directory, checkpoint file, or model directory (save_pretrained)")
    p.add_argument("--run", help="the same as PATH: a run directory or checkpoint file")
    p.add_argument("--task", help="task (default: the run's); needed for a bare model directory")
    p.add_argument("--n-prompts", type=int, default=24, help="size of a built-in task")
    p.add_argument("--task-seed", type=int, default=0)
    p.add_argument("--verifier", default="exact", help="verifier of a JSONL task")
    p.add_argument("--K", type=int, default=64, help="samples per prompt where success is not exact")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_evaluate)


def run_train(args: argparse.Namespace) -> int:
    from rlvrlens.core.records import CONFIG, SUCCESS, read_jsonl
    from rlvrlens.training.rundir import check_out
    from rlvrlens.training.trainer import Trainer

    check_out(args.out)  # before reading configs or building anything
    if args.resume and not args.overwrite and not (Path(args.out) / CONFIG).is_file():
        raise ValueError(f"--resume: {args.out!r} holds no recorded run (no {CONFIG}) to continue; "
                         "start the run without --resume")
    config = config_from_args(args)
    with Trainer(config, args.out, resume=args.resume, overwrite=args.overwrite, progress=not args.quiet) as trainer:
        trainer.train()
    last = read_jsonl(Path(args.out) / SUCCESS)[-1]
    print(f"step {trainer.step}: mean success {np.mean(last['p']):.4f} ({last['method']}); logs in {args.out}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from rlvrlens.core.budget import MAX_PROMPTS
    from rlvrlens.core.checks import check_int
    from rlvrlens.core.records import CONFIG, MODEL
    from rlvrlens.training.runtime import seeded_generator
    from rlvrlens.training.success import success_probabilities
    from rlvrlens.training.tasks import BUILTIN_TASKS, get_task
    from rlvrlens.training.trainer import CHECKPOINT, build_task, load_model, load_policy

    if args.path and args.run and Path(args.path) != Path(args.run):
        raise ValueError(f"give the run once: PATH {args.path!r} and --run {args.run!r} differ")
    spec = args.path or args.run
    if not spec:
        raise ValueError("evaluate needs a run directory, checkpoint file or model directory (PATH or --run)")
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"{spec!r} does not exist (a run directory, checkpoint file or model directory)")
    if args.task in BUILTIN_TASKS and args.verifier != "exact":
        raise ValueError(f"--verifier applies to JSONL tasks only; built-in task {args.task!r} has its own")
    check_int("--n-prompts", args.n_prompts, maximum=MAX_PROMPTS)  # before a model is loaded
    check_int("--K", args.K)
    if path.is_file() or (path / CHECKPOINT).exists():
        policy, config, step = load_policy(path)
        task = build_task(config) if args.task is None else None
    elif not any((path / name).exists() for name in (CONFIG, MODEL)):
        raise FileNotFoundError(f"{spec!r} holds no run (no {CHECKPOINT}, {CONFIG} or {MODEL}/) and is no model "
                                f"directory: give a run directory, checkpoint file or save_pretrained folder")
    else:
        if args.task is None:
            raise ValueError(f"{spec!r} has no {CHECKPOINT}, so it is read as a model directory (save_pretrained), "
                             f"which records no task: give --task")
        policy, step, task = load_model(path), None, None
    if task is None:
        task = get_task(args.task, n=args.n_prompts, seed=args.task_seed, verifier=args.verifier)
    result = success_probabilities(policy, task, K=args.K, generator=seeded_generator(args.seed))
    result.update(step=step, task=task.name, prompts=list(task.prompts), mean=float(np.mean(result["p"])))
    if args.json:
        print_json(result)
        return 0
    print(f"task {task.name}, step {step}, {result['method']}: mean success {result['mean']:.4f}")
    print_table(["prompt", "answer", "p"], [[pr, a, float(v)] for pr, a, v in zip(task.prompts, task.answers, result["p"])])
    return 0


def demo(out: Path, *, steps: int = 60) -> None:
    """A short CPU run (tiny GPT-2, modular arithmetic, GRPO M = 8, about a minute): logs and
    ``success.png`` (per-prompt and mean exact success against the step) in ``out/train``."""
    from rlvrlens.figures.style import save
    from rlvrlens.figures.training import plot_success
    from rlvrlens.training.config import TrainConfig
    from rlvrlens.core.records import read_jsonl
    from rlvrlens.training.runtime import limit_threads
    from rlvrlens.training.trainer import Trainer

    out = Path(out) / "train"
    config = TrainConfig(task="mod", n_prompts=16, warm_start_steps=40, scheme="grpo", num_generations=8,
                         prompts_per_step=8, steps=steps, learning_rate=1e-3, beta=0.04,
                         eval_steps=10, save_steps=30)
    # the demo's own folder: rerunning replaces it; a tiny model gains nothing from more than 4 threads
    with limit_threads(4), Trainer(config, out, overwrite=True) as trainer:
        trainer.train()
    records = read_jsonl(out / "success.jsonl")
    fig = plot_success(records, title="tiny GPT-2, a+b mod m, GRPO M=8, beta=0.04")
    for path in save(fig, out / "success", formats=("png",)):
        print(f"wrote {path}")
    print(f"mean success {np.mean(records[0]['p']):.3f} -> {np.mean(records[-1]['p']):.3f}")
    smollm2_demo(Path(out).parent / "smollm2")


def smollm2_demo(out: Path) -> None:
    """SmolLM2-135M-Instruct's exact per-prompt success on a few reasoning-gym prompts (the model is
    dequantised once into the user cache; about 30 s after that)."""
    from rlvrlens.figures.style import save
    from rlvrlens.figures.training import plot_prompt_success
    from rlvrlens.training.runtime import limit_threads
    from rlvrlens.training.showcase import smollm2_demo as compute

    with limit_threads(4):
        result = compute(out)
    fig = plot_prompt_success(result["labels"], result["p"],
                              title="SmolLM2-135M-Instruct on reasoning-gym basic_arithmetic (T = 1)")
    for path in save(fig, Path(out) / "smollm2_success", formats=("png",)):
        print(f"wrote {path}")
    for label, p in zip(result["labels"], result["p"]):
        print(f"  {label:12s} exact p = {p:.4f}")
    print(f"(load {result['seconds']['load']} s, total {result['seconds']['total']} s)")
