"""``rlvrlens train | evaluate``: RL fine-tuning with a weight scheme, and per-prompt success."""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from pathlib import Path
from typing import Any

import numpy as np

from rlvrlens.commands._common import _SCHEME_FLAGS, print_json, print_table

#: CLI aliases for config fields (the theory's names).
_ALIASES = {"num_generations": ["--M"], "num_iterations": ["--mu"]}


def _field_type(f: dataclasses.Field) -> Any:
    hints = typing.get_type_hints(_config_cls())
    t = hints[f.name]
    args = [a for a in typing.get_args(t) if a is not type(None)]
    return args[0] if args else t


def _config_cls():
    from rlvrlens.training.config import TrainConfig

    return TrainConfig


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="RL fine-tuning of a (tiny) causal LM with a weight scheme",
                       description="Options are TrainConfig fields (see rlvrlens.training.config); "
                                   "flags override --config FILE.toml, which overrides the defaults.")
    p.add_argument("--out", required=True, help="run directory (logs, checkpoints, model)")
    p.add_argument("--config", help="TOML file of TrainConfig fields")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    for f in dataclasses.fields(_config_cls()):
        if f.name == "scheme_params":
            continue
        flags = [f"--{f.name.replace('_', '-')}"] + _ALIASES.get(f.name, [])
        kind = _field_type(f)
        if kind is bool:
            p.add_argument(*flags, dest=f.name, action="store_const", const=True, default=None)
        else:
            p.add_argument(*flags, dest=f.name, type=kind, default=None, help=f"(default {f.default!r})")
    for flag, (name, kwargs) in _SCHEME_FLAGS.items():
        p.add_argument(flag, dest=f"scheme_{name}", default=None,
                       **{k: v for k, v in kwargs.items() if k != "dest"})
    p.set_defaults(func=run_train)

    p = sub.add_parser("evaluate", help="per-prompt success probability of a run's checkpoint or a model dir")
    p.add_argument("path", help="run directory, checkpoint file, or model directory (save_pretrained)")
    p.add_argument("--task", help="task (default: the run's); needed for a bare model directory")
    p.add_argument("--n-prompts", type=int, default=24, help="size of a built-in task")
    p.add_argument("--task-seed", type=int, default=0)
    p.add_argument("--verifier", default="exact", help="verifier of a JSONL task")
    p.add_argument("--K", type=int, default=64, help="samples per prompt where success is not exact")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_evaluate)


def config_from_args(args: argparse.Namespace):
    """Defaults < ``--config`` TOML < explicit flags."""
    TrainConfig = _config_cls()
    data: dict[str, Any] = {}
    if args.config:
        with open(args.config, "rb") as fh:
            import tomllib

            data.update(tomllib.load(fh))
    for f in dataclasses.fields(TrainConfig):
        value = getattr(args, f.name, None)
        if value is not None:
            data[f.name] = value
    params = dict(data.get("scheme_params", {}))
    for _, (name, _) in _SCHEME_FLAGS.items():
        value = getattr(args, f"scheme_{name}")
        if value is not None:
            params[name] = value
    data["scheme_params"] = params
    return TrainConfig.from_dict(data)


def run_train(args: argparse.Namespace) -> int:
    from rlvrlens.training.trainer import Trainer

    config = config_from_args(args)
    trainer = Trainer(config, args.out, resume=args.resume, progress=not args.quiet)
    trainer.train()
    last = json.loads((Path(args.out) / "success.jsonl").read_text().splitlines()[-1])
    print(f"step {trainer.step}: mean success {np.mean(last['p']):.4f} ({last['method']}); logs in {args.out}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    import torch

    from rlvrlens.training.policy import CausalLMPolicy
    from rlvrlens.training.success import success_probabilities
    from rlvrlens.training.tasks import get_task
    from rlvrlens.training.trainer import CHECKPOINT, build_task, load_policy

    path = Path(args.path)
    if path.is_file() or (path / CHECKPOINT).exists():
        policy, config, step = load_policy(path)
        task = build_task(config) if args.task is None else None
    else:
        policy, step, task = CausalLMPolicy.from_pretrained(path), None, None
        if args.task is None:
            raise ValueError("--task is needed to evaluate a bare model directory")
    if task is None:
        task = get_task(args.task, n=args.n_prompts, seed=args.task_seed, verifier=args.verifier)
    result = success_probabilities(policy, task, K=args.K, generator=torch.Generator().manual_seed(args.seed))
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
    import torch

    from rlvrlens.figures.style import save
    from rlvrlens.figures.training import plot_success
    from rlvrlens.training.config import TrainConfig
    from rlvrlens.training.trainer import Trainer

    torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    out = Path(out) / "train"
    config = TrainConfig(task="mod", n_prompts=16, warm_start_steps=40, scheme="grpo", num_generations=8,
                         prompts_per_step=8, steps=steps, learning_rate=1e-3, beta=0.04,
                         eval_steps=10, save_steps=30)
    Trainer(config, out).train()
    records = [json.loads(x) for x in (out / "success.jsonl").read_text().splitlines()]
    fig = plot_success(records, title="tiny GPT-2, a+b mod m, GRPO M=8, beta=0.04")
    for path in save(fig, out / "success", formats=("png",)):
        print(f"wrote {path}")
    print(f"mean success {np.mean(records[0]['p']):.3f} -> {np.mean(records[-1]['p']):.3f}")
