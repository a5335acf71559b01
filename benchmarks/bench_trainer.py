"""Trainer throughput: completions per second of full RL steps on a tiny GPT-2.

Setting (issue 4): GPT-2 with 4 layers, width 128, the package's char tokenizer; 8 prompts x 8
completions = 64 completions per step, 8 new tokens, no KL (beta = 0), one optimiser step per batch.
Measured in the same run: (a) rlvrlens' Trainer, (b) a naive sampler that recomputes the whole
prefix at every token (no KV cache), generation only, against our KV-cache sampler, and (c) TRL's
``GRPOTrainer`` on the identical model, task and batch, if ``trl`` is importable.

Run: ``PYTHONPATH=src python benchmarks/bench_trainer.py [--steps 10] [--repeats 3] [--threads 1]``
(TRL lives in its own environment, e.g. ``/work/venv-trl``; without it only our numbers print).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import torch

from rlvrlens.training.config import TrainConfig
from rlvrlens.training.policy import CausalLMPolicy
from rlvrlens.training.tasks import modular_arithmetic
from rlvrlens.training.trainer import Trainer

PROMPTS, M, NEW_TOKENS = 8, 8, 8


def make_policy(device: str, n_layer: int = 4, width: int = 128) -> CausalLMPolicy:
    pol = CausalLMPolicy.from_config("gpt2", n_layer=n_layer, width=width, n_head=4, seed=0)
    pol.model.to(device)
    return pol


def bench_ours(device: str, steps: int, warmup: int = 2, n_layer: int = 4, width: int = 128) -> dict:
    task = modular_arithmetic(64, seed=0)
    cfg = TrainConfig(num_generations=M, prompts_per_step=PROMPTS, max_new_tokens=NEW_TOKENS, beta=0.0,
                      warm_start_steps=0, learning_rate=1e-5, eval_steps=10**6, save_steps=10**6)
    tr = Trainer(cfg, None, policy=make_policy(device, n_layer, width), task=task)
    for _ in range(warmup):
        tr.rl_step()
    times, tokens = [], 0.0
    for _ in range(steps):
        t0 = time.perf_counter()
        m = tr.rl_step()
        times.append(time.perf_counter() - t0)
        tokens += m["completions/mean_length"] * PROMPTS * M
    return {"step_times": times, "tokens_per_s": tokens / sum(times)}


@torch.no_grad()
def naive_sample(pol: CausalLMPolicy, prompts: list[str], n: int, generator: torch.Generator) -> torch.Tensor:
    """Sampling without a KV cache: the full sequence is re-encoded for every new token."""
    ids, attn = pol._encode_prompts([p for p in prompts for _ in range(n)])
    for _ in range(NEW_TOKENS):
        pos = (attn.cumsum(-1) - 1).clamp(min=0)
        logits = pol._never_pad(pol.model(input_ids=ids, attention_mask=attn, position_ids=pos).logits[:, -1].float())
        tok = torch.multinomial(torch.softmax(logits, -1), 1, generator=generator)
        ids, attn = torch.cat([ids, tok], -1), torch.cat([attn, torch.ones_like(tok)], -1)
    return ids


def bench_sampling(device: str, reps: int) -> dict:
    pol = make_policy(device)
    prompts = list(modular_arithmetic(PROMPTS, seed=0).prompts)
    g = torch.Generator(device=device).manual_seed(0) if device != "cpu" else torch.Generator().manual_seed(0)
    out = {}
    for name, fn in [("kv_cache", lambda: pol.sample(prompts, M, generator=g, max_new_tokens=NEW_TOKENS)),
                     ("naive", lambda: naive_sample(pol, prompts, M, g))]:
        fn()
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        out[name] = reps * PROMPTS * M / (time.perf_counter() - t0)
    return out


def bench_trl(device: str, steps: int, warmup: int = 2) -> dict | None:
    try:
        from datasets import Dataset
        from transformers import TrainerCallback
        from trl import GRPOConfig, GRPOTrainer
    except ImportError:
        return None
    task = modular_arithmetic(64, seed=0)
    pol = make_policy("cpu")
    stamps: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            stamps.append(time.perf_counter())

    def reward(prompts, completions, answer, **kwargs):
        return [float(c == a) for c, a in zip(completions, answer)]

    with tempfile.TemporaryDirectory() as tmp:
        args = GRPOConfig(output_dir=tmp, per_device_train_batch_size=PROMPTS * M, num_generations=M,
                          max_completion_length=NEW_TOKENS, max_steps=warmup + steps, learning_rate=1e-5,
                          beta=0.0, logging_steps=10**6, save_strategy="no", report_to=[],
                          use_cpu=device == "cpu", temperature=1.0, top_p=1.0, seed=0,
                          dataloader_num_workers=0)
        data = Dataset.from_dict({"prompt": list(task.prompts), "answer": list(task.answers)})
        trainer = GRPOTrainer(model=pol.model, reward_funcs=[reward], args=args, train_dataset=data,
                              processing_class=pol.tokenizer, callbacks=[Clock()])
        trainer.train()
    return {"step_times": [b - a for a, b in zip(stamps[warmup - 1:-1], stamps[warmup:])]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repetitions of ours vs TRL")
    ap.add_argument("--large", action="store_true", help="also a larger model (GPU: 8 layers, width 512)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = {"setting": f"gpt2 4x128, {PROMPTS}x{M} completions/step, {NEW_TOKENS} new tokens, "
                         f"device={args.device}, threads={args.threads}"}
    s = bench_sampling(args.device, args.steps)
    result["sampling_completions_per_s"] = s
    result["ratio_kv_cache_vs_naive_sampling"] = s["kv_cache"] / s["naive"]
    if args.large:
        large = bench_ours(args.device, args.steps, n_layer=8, width=512)
        result["ours_large_8x512"] = {"completions_per_s": PROMPTS * M / statistics.median(large["step_times"]),
                                      "tokens_per_s": large["tokens_per_s"]}
    ours, trl = [], []
    for _ in range(args.repeats):  # interleaved, so that machine load affects both alike
        ours += bench_ours(args.device, args.steps)["step_times"]
        t = bench_trl(args.device, args.steps)
        if t is not None:
            trl += t["step_times"]
    per_s = lambda times, f: PROMPTS * M / f(times)
    # on a shared machine the fastest steps are the least disturbed; the median is reported too
    result["ours_completions_per_s"] = {"best": per_s(ours, min), "median": per_s(ours, statistics.median)}
    if trl:
        result["trl_completions_per_s"] = {"best": per_s(trl, min), "median": per_s(trl, statistics.median)}
        result["ratio_ours_vs_trl"] = {k: result["ours_completions_per_s"][k] / result["trl_completions_per_s"][k]
                                       for k in ("best", "median")}
    else:
        result["trl_completions_per_s"] = "trl not installed"
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
