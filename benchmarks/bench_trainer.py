"""Trainer throughput: completions per second of full RL steps on a tiny GPT-2.

Setting (issue 4): GPT-2 with 4 layers, width 128, the package's char tokenizer; 8 prompts x 8
completions = 64 completions per step, 8 new tokens, no KL (beta = 0), one optimiser step per batch.
Measured in the same run: (a) rlvrlens' Trainer, (b) a naive sampler that recomputes the whole
prefix at every token (no KV cache), generation only, against our KV-cache sampler, and (c) TRL's
``GRPOTrainer`` on the identical model, task and batch, if ``trl`` is importable.

Run: ``PYTHONPATH=src python benchmarks/bench_trainer.py [--steps 10] [--repeats 3] [--threads 1]``
(TRL lives in its own environment, e.g. ``/work/venv-trl``; without it only our numbers print).

SmolLM2 setting (issue 13.6, ``--smollm2``): SmolLM2-135M-Instruct (the cached dequantised GGUF,
:func:`rlvrlens.training.models.resolve_model`) on reasoning-gym ``basic_arithmetic`` prompts (the
chat template applied, the expression prefilled), 2 prompts x M = 8 completions per step,
8 new tokens, temperature 1, top-p 1, beta 0, full RL steps. Ours and TRL's ``GRPOTrainer`` run in
separate child processes (so each peak RSS is its own), interleaved ``--repeats`` times, and each
step's time is split into sampling, scoring and the rest (loss forward, backward, optimiser)::

    PYTHONPATH=src python benchmarks/bench_trainer.py --smollm2 --steps 4 --repeats 2 --threads 2
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
                          dataloader_num_workers=0, bf16=False, gradient_checkpointing=False)
        data = Dataset.from_dict({"prompt": list(task.prompts), "answer": list(task.answers)})
        trainer = GRPOTrainer(model=pol.model, reward_funcs=[reward], args=args, train_dataset=data,
                              processing_class=pol.tokenizer, callbacks=[Clock()])
        trainer.train()
    return {"step_times": [b - a for a, b in zip(stamps[warmup - 1:-1], stamps[warmup:])]}


# --- SmolLM2-135M against TRL -------------------------------------------------------------------------
SMOL_PROMPTS, SMOL_TOKENS = 2, 8


def _timed(obj, name: str, bucket: dict, key: str) -> None:
    """Wrap ``obj.name`` so that the seconds it takes accumulate in ``bucket[key]``."""
    fn = getattr(obj, name)

    def wrapper(*a, **k):
        t0 = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            bucket[key] = bucket.get(key, 0.0) + time.perf_counter() - t0

    object.__setattr__(obj, name, wrapper)  # also on frozen dataclasses (Task)


def _smol_task(n: int = 16):
    from rlvrlens.training.showcase import SMOLLM2_TASK
    from rlvrlens.training.tasks import get_task

    return get_task(SMOLLM2_TASK, n=n, seed=0)


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _smol_ours(steps: int, warmup: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    task = _smol_task()
    policy = CausalLMPolicy.from_pretrained("smollm2-135m")
    cfg = TrainConfig(num_generations=M, prompts_per_step=SMOL_PROMPTS, max_new_tokens=SMOL_TOKENS, beta=0.0,
                      warm_start_steps=0, learning_rate=1e-6, eval_steps=10**6, save_steps=10**6, temperature=1.0)
    tr = Trainer(cfg, None, policy=policy, task=task)
    parts: dict[str, float] = {}
    _timed(tr.policy, "sample", parts, "sampling + teacher-forced forward")
    _timed(tr.task, "rewards", parts, "scoring")
    for _ in range(warmup):
        tr.rl_step()
    parts.clear()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        tr.rl_step()
        times.append(time.perf_counter() - t0)
    parts["loss + backward + optimiser"] = sum(times) - sum(parts.values())
    return {"step_times": times, "parts_s_per_step": {k: v / steps for k, v in parts.items()},
            "peak_rss_mb": _peak_rss_mb()}


def _smol_trl(steps: int, warmup: int, threads: int, gradient_checkpointing: bool = False) -> dict:
    """TRL's GRPOTrainer in float32 like ours (GRPOConfig defaults to bf16 autocast, which on a CPU
    without bf16 matrix units runs every matmul through a slow fallback GEMM). GRPOConfig also turns
    gradient checkpointing on by default (slower, less memory): off here, like ours, unless
    ``gradient_checkpointing`` (``--trl-checkpointing``)."""
    torch.set_num_threads(threads)
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from rlvrlens.training.models import resolve_model

    task = _smol_task()
    folder = resolve_model("smollm2-135m")
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(folder)
    fmt = CausalLMPolicy(model, _with_pad(tok))
    fmt.chat_template = True
    # the same conditioning text as ours: chat template + prefill, given to TRL as plain prompts
    prompts = [fmt.format_prompt(p) for p in task.prompts]
    answer_of = dict(zip(prompts, task.answers))
    stamps: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            stamps.append(time.perf_counter())

    def reward(prompts, completions, **kwargs):
        return [float(c in answer_of[p].split("|")) for p, c in zip(prompts, completions)]

    with tempfile.TemporaryDirectory() as tmp:
        args = GRPOConfig(output_dir=tmp, per_device_train_batch_size=SMOL_PROMPTS * M, num_generations=M,
                          max_completion_length=SMOL_TOKENS, max_steps=warmup + steps, learning_rate=1e-6,
                          beta=0.0, logging_steps=10**6, save_strategy="no", report_to=[], use_cpu=True,
                          temperature=1.0, top_p=1.0, seed=0, dataloader_num_workers=0,
                          gradient_checkpointing=gradient_checkpointing, bf16=False)
        data = Dataset.from_dict({"prompt": prompts})
        trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=args, train_dataset=data,
                              processing_class=tok, callbacks=[Clock()])
        parts: dict[str, float] = {}
        _timed(trainer, "_generate", parts, "sampling")
        _timed(trainer, "_calculate_rewards", parts, "scoring")
        _timed(trainer, "_generate_and_score_completions", parts, "_gen_and_score")
        trainer.train()
    measured = [b - a for a, b in zip(stamps[warmup - 1:-1], stamps[warmup:])]
    # parts accumulated over all steps; scale to the measured ones by the share of steps
    n = warmup + steps
    per = {k: v / n for k, v in parts.items()}
    per["old/ref log-probs, advantages"] = per.pop("_gen_and_score") - per["sampling"] - per["scoring"]
    per["loss forward + backward + optimiser"] = sum(measured) / steps - sum(per.values())
    return {"step_times": measured, "parts_s_per_step": per, "peak_rss_mb": _peak_rss_mb()}


def _with_pad(tok):
    """A copy of the tokenizer with a pad token distinct from EOS (needed by CausalLMPolicy only)."""
    import copy

    tok = copy.deepcopy(tok)
    if tok.pad_token_id is None or tok.pad_token_id == tok.eos_token_id:
        tok.add_special_tokens({"pad_token": "<pad>"})
    return tok


def _child(kind: str, steps: int, warmup: int, threads: int, queue) -> None:
    try:
        if kind == "ours":
            value = _smol_ours(steps, warmup, threads)
        else:
            value = _smol_trl(steps, warmup, threads, gradient_checkpointing=kind == "trl-checkpointing")
        queue.put(("ok", value))
    except Exception as exc:  # noqa: BLE001 - reported by the parent
        queue.put(("error", f"{type(exc).__name__}: {exc}"))


def bench_smollm2(steps: int, repeats: int, threads: int, warmup: int = 1, trl_checkpointing: bool = False) -> dict:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    runs: dict[str, list[dict]] = {"ours": [], "trl": []}
    if trl_checkpointing:
        runs["trl-checkpointing"] = []
    for _ in range(repeats):
        for kind in runs:
            queue = ctx.Queue()
            proc = ctx.Process(target=_child, args=(kind, steps, warmup, threads, queue))
            proc.start()
            status, value = queue.get()
            proc.join()
            if status != "ok":
                raise RuntimeError(f"{kind}: {value}")
            runs[kind].append(value)
    out: dict = {"setting": f"SmolLM2-135M-Instruct, {SMOL_PROMPTS}x{M} completions/step, {SMOL_TOKENS} new "
                            f"tokens, T=1, top-p 1, beta 0, cpu, threads={threads}, {steps} steps x {repeats}"}
    for kind, rs in runs.items():
        times = [t for r in rs for t in r["step_times"]]
        parts = {k: statistics.mean(r["parts_s_per_step"][k] for r in rs) for k in rs[0]["parts_s_per_step"]}
        out[kind] = {"completions_per_s": {"best": SMOL_PROMPTS * M / min(times),
                                           "median": SMOL_PROMPTS * M / statistics.median(times)},
                     "s_per_step_parts": {k: round(v, 3) for k, v in parts.items()},
                     "peak_rss_mb": max(r["peak_rss_mb"] for r in rs)}
    for kind in runs:
        if kind != "ours":
            out[f"ratio_ours_vs_{kind}"] = {k: out["ours"]["completions_per_s"][k] / out[kind]["completions_per_s"][k]
                                            for k in ("best", "median")}
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repetitions of ours vs TRL")
    ap.add_argument("--large", action="store_true", help="also a larger model (GPU: 8 layers, width 512)")
    ap.add_argument("--smollm2", action="store_true", help="only the SmolLM2-135M setting, ours vs TRL")
    ap.add_argument("--trl-checkpointing", action="store_true",
                    help="--smollm2: also TRL with its default gradient checkpointing")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.smollm2:
        print(json.dumps(bench_smollm2(args.steps, args.repeats, args.threads,
                                       trl_checkpointing=args.trl_checkpointing), indent=2))
        return
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
