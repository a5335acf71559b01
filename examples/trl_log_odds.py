"""Train with TRL's GRPOTrainer using a *designed* rlvrlens weight scheme (log-odds objective).

The scheme is designed so that the expected update ascends h_M(p) ≈ log(p / (1 - p)) of each
prompt's success probability p (Davis & Recht 2025: any weights Z = (1-R) a[S] + R b[S] ascend
some h_M; ``rlvrlens.objectives.design`` picks a, b for a target h). Everything else is TRL's.

One CPU, a tiny GPT-2 warm-started by a few SFT steps on half of a built-in modular-arithmetic
task (rlvrlens.training's ``warm_start``, as ``rlvrlens train`` does), so that rewards are not all
0 and the run visibly learns (a couple of minutes)::

    python examples/trl_log_odds.py --out runs/trl_log_odds

Eight GPUs, a local model directory and a JSONL task of {"prompt", "answer"} lines::

    accelerate launch --num_processes 8 examples/trl_log_odds.py \\
        --model /models/Qwen2.5-0.5B-Instruct --data tasks.jsonl --M 8 --steps 500 \\
        --batch-size 16 --max-completion-length 256 --bf16 --out runs/trl_log_odds

Writes ``groups.jsonl`` (one record per prompt group per step, and per evaluation group) and
``success.jsonl`` (per-prompt success at each evaluation) under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="tiny",
                   help="local model directory, or 'tiny' (2-layer GPT-2, warm-started on the built-in task)")
    p.add_argument("--warm-start-steps", type=int, default=60, help="SFT steps of the tiny model before RL")
    p.add_argument("--data", default=None, help="JSONL of {prompt, answer[, prompt_id]}; default: built-in sums")
    p.add_argument("--scheme", default="designed",
                   help="'designed' (design('log(t/(1-t))', M)) or any catalogue name, e.g. log_odds, grpo")
    p.add_argument("--M", type=int, default=8, help="completions per prompt (TRL's num_generations)")
    p.add_argument("--steps", type=int, default=60, help="optimizer steps (TRL's max_steps)")
    p.add_argument("--batch-size", type=int, default=16, help="completions per device per step")
    p.add_argument("--max-completion-length", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate")
    p.add_argument("--beta", type=float, default=0.0, help="KL coefficient to the reference model")
    p.add_argument("--eval-steps", type=int, default=10, help="evaluate per-prompt success every this many steps")
    p.add_argument("--bf16", action="store_true", help="bfloat16 training (GPUs)")
    p.add_argument("--vllm", action="store_true", help="generate with vLLM (needs vllm installed)")
    p.add_argument("--out", type=Path, default=Path("runs/trl_log_odds"))
    return p.parse_args(argv)


def make_scheme(name: str, M: int):
    from rlvrlens.objectives import design, get_scheme

    if name == "designed":
        result = design("log(t/(1-t))", M)
        print(f"designed log-odds scheme, M={M}: sup|h_M - h - const| = {result.error:.3g} on {result.interval}")
        return result.scheme
    return get_scheme(name, M)


def builtin_task():
    """rlvrlens's modular-arithmetic task (32 prompts such as ``"7+5 mod 3="``)."""
    from rlvrlens.training.tasks import modular_arithmetic

    return modular_arithmetic(32, seed=0)


def tiny_model_and_tokenizer(warm_start_steps: int):
    """A 2-layer GPT-2 with rlvrlens's character tokenizer (nothing is downloaded), fitted by SFT on
    the solutions of half of the built-in task: a random model is almost never exactly right, and a
    0/1 reward that is 0 for every completion gives GRPO nothing to learn from."""
    from rlvrlens.training import CausalLMPolicy
    from rlvrlens.training.sft import warm_start

    task = builtin_task()
    policy = CausalLMPolicy.from_config("gpt2", n_layer=2, width=64, n_head=2, seed=0)
    if warm_start_steps:
        losses = warm_start(policy, task, fraction=0.5, steps=warm_start_steps)
        print(f"warm start: {warm_start_steps} SFT steps, loss {losses[0]:.3f} -> {losses[-1]:.3f}")
    return policy.model, policy.tokenizer


def load_rows(path: str | None) -> list[dict]:
    if path is None:
        task = builtin_task()
        return [{"prompt": p, "answer": a} for p, a in zip(task.prompts, task.answers)]
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def exact_match(completions, answer, **kwargs) -> list[float]:
    """1.0 when the completion, stripped, is exactly the answer; else 0.0."""
    return [float(str(c).strip() == str(a).strip()) for c, a in zip(completions, answer)]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig

    from rlvrlens.training.trl_adapter import PromptSuccessRecorder, WeightSchemeGRPOTrainer

    scheme = make_scheme(args.scheme, args.M)
    if args.model == "tiny":
        model, tokenizer = tiny_model_and_tokenizer(args.warm_start_steps)
        if args.beta > 0:  # TRL loads its reference model from a path: save the warm-started one
            model.save_pretrained(args.out / "tiny_model")
            tokenizer.save_pretrained(args.out / "tiny_model")
            model = str(args.out / "tiny_model")
    else:
        model = AutoModelForCausalLM.from_pretrained(args.model)
        tokenizer = AutoTokenizer.from_pretrained(args.model)
    rows = [dict(row, prompt_id=str(row.get("prompt_id", i))) for i, row in enumerate(load_rows(args.data))]
    random.Random(0).shuffle(rows)
    n_eval = max(1, len(rows) // 10)
    config = GRPOConfig(
        output_dir=str(args.out / "trl"), max_steps=args.steps, learning_rate=args.lr, beta=args.beta,
        num_generations=args.M, per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.batch_size, max_completion_length=args.max_completion_length,
        eval_strategy="steps", eval_steps=args.eval_steps, eval_on_start=True, bf16=args.bf16, use_vllm=args.vllm,
        logging_steps=1, save_strategy="no", report_to="none",
    )
    trainer = WeightSchemeGRPOTrainer(
        model=model, processing_class=tokenizer, reward_funcs=exact_match, args=config, scheme=scheme,
        train_dataset=Dataset.from_list(rows[n_eval:]), eval_dataset=Dataset.from_list(rows[:n_eval]),
        callbacks=[PromptSuccessRecorder(args.out / "groups.jsonl", success_path=args.out / "success.jsonl")],
    )
    trainer.train()
    if trainer.accelerator.is_main_process:
        print(f"per-prompt records in {args.out / 'groups.jsonl'} and {args.out / 'success.jsonl'}")
        train = [r for r in map(json.loads, (args.out / "groups.jsonl").read_text().splitlines())
                 if r["split"] == "train"]
        third = max(1, args.steps // 3)
        early = [r["p_hat"] for r in train if r["step"] < third]
        late = [r["p_hat"] for r in train if r["step"] >= args.steps - third]
        if early and late:
            print(f"mean train reward: steps < {third}: {sum(early) / len(early):.3f}, "
                  f"last {third} steps: {sum(late) / len(late):.3f}")


if __name__ == "__main__":
    main()
