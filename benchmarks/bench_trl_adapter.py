"""TRL's GRPOTrainer, plain and with the rlvrlens weight-scheme adapter, in one run (and our trainer).

Configuration (issue 4's benchmark): a fresh GPT-2 of 4 layers, width 128, char tokenizer; 8 prompts x
M = 8 = 64 completions per step, at most 8 new tokens; CPU, one torch thread. The adapter runs with
``grpo(8, eps=1e-4)``, which reproduces TRL's own advantages, and with a ``PromptSuccessRecorder``,
so both TRL runs do the same sampling and loss work: any difference is the adapter's cost.

Reported: completions per second (median and fastest step, first step of each run dropped) for plain TRL,
TRL + adapter and, when ``rlvrlens.training.trainer`` is installed, rlvrlens's own trainer on the same
model, task and batch; the adapter's overhead end to end (noisy on a shared machine: runs are
interleaved and repeated), and the time spent in the adapter's own code as a fraction of the step
(exact: measured by wrapping TRL's methods). Target: overhead <= 5%.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import warnings
from pathlib import Path

from rlvrlens.objectives import grpo

try:  # TRL is an optional extra: without it this benchmark says so and stops
    import torch
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback
    from trl import GRPOConfig, GRPOTrainer

    from rlvrlens.training.trl_adapter import PromptSuccessRecorder, WeightSchemeGRPOTrainer
except ImportError as err:
    MISSING: ImportError | None = err
    TrainerCallback = object
else:
    MISSING = None

from rlvrlens.training.config import TrainConfig
from rlvrlens.training.trainer import Trainer, build_policy, build_task

M, PROMPTS, NEW_TOKENS, N_LAYER, WIDTH, N_HEAD = 8, 8, 8, 4, 128, 2
STEPS, REPEATS = 8, 5


class StepTimes(TrainerCallback):
    """Wall time of every optimizer step."""

    def __init__(self):
        self.times: list[float] = []
        self._start = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter() - self._start)


class MethodClock:
    """Total time spent in a class's method (patched in place; ``restore`` undoes it)."""

    def __init__(self, cls: type, name: str):
        self.cls, self.name, self.total = cls, name, 0.0
        self.original = cls.__dict__[name]
        clock = self

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return clock.original(*args, **kwargs)
            finally:
                clock.total += time.perf_counter() - t0

        setattr(cls, name, timed)

    def restore(self) -> None:
        setattr(self.cls, self.name, self.original)


def model_tokenizer_prompts():
    """The tiny GPT-2, char tokenizer and task of rlvrlens's trainer benchmark (identical for all runs)."""
    config = our_config()
    policy, task = build_policy(config), build_task(config)
    rows = [{"prompt": p, "answer": a, "prompt_id": str(i)}
            for i, (p, a) in enumerate(zip(task.prompts, task.answers))]
    return policy.model, policy.tokenizer, rows


def our_config():
    return TrainConfig(task="mod", n_prompts=64, n_layer=N_LAYER, width=WIDTH, n_head=N_HEAD, warm_start_steps=0,
                       scheme="grpo", scheme_params={"eps": 1e-4}, num_generations=M, prompts_per_step=PROMPTS,
                       max_new_tokens=NEW_TOKENS, steps=STEPS + 1, seed=0)


def exact_match(completions, answer, **kwargs):
    return [float(c.strip() == a) for c, a in zip(completions, answer)]


def run_trl(adapted: bool, model, tokenizer, rows, workdir: Path) -> list[float]:
    from datasets import Dataset

    clock = StepTimes()
    args = GRPOConfig(output_dir=str(workdir / "trl"), max_steps=STEPS + 1, per_device_train_batch_size=M * PROMPTS,
                      num_generations=M, max_completion_length=NEW_TOKENS, learning_rate=1e-3, use_vllm=False,
                      report_to="none", bf16=False, use_cpu=True, save_strategy="no", logging_strategy="no",
                      disable_tqdm=True, seed=0)
    common = dict(model=model, processing_class=tokenizer, reward_funcs=exact_match, args=args,
                  train_dataset=Dataset.from_list(rows))
    if adapted:
        recorder = PromptSuccessRecorder(workdir / "groups.jsonl")
        trainer = WeightSchemeGRPOTrainer(**common, scheme=grpo(M, eps=1e-4), callbacks=[clock, recorder])
    else:
        trainer = GRPOTrainer(**common, callbacks=[clock])
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    return clock.times


def run_ours() -> list[float]:
    trainer = Trainer(our_config(), out=None)
    return [trainer.rl_step()["time"] for _ in range(STEPS + 1)][1:]


def main() -> None:
    if MISSING is not None:
        print(f"skipped: {MISSING} (pip install 'rlvrlens[trl]')")
        return
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=FutureWarning)
    import transformers

    transformers.logging.set_verbosity_error()
    completions = M * PROMPTS
    times: dict[str, list[float]] = {"trl": [], "trl+adapter": [], "rlvrlens": []}
    clocks = [MethodClock(cls, name) for cls in (WeightSchemeGRPOTrainer, GRPOTrainer)
              for name in ("_calculate_rewards", "_generate_and_score_completions")]
    adapter_runtime = 0.0
    try:
        for _ in range(REPEATS):  # interleaved, so drifts of a shared machine hit both alike
            for adapted in (False, True):
                model, tokenizer, rows = model_tokenizer_prompts()
                before = [c.total for c in clocks]
                with tempfile.TemporaryDirectory() as tmp:
                    steps = run_trl(adapted, model, tokenizer, rows, Path(tmp))
                    times["trl+adapter" if adapted else "trl"] += steps[1:]
                    if adapted:
                        adapter_runtime += sum(steps)
                        spent = [c.total - b for c, b in zip(clocks, before)]
                        added = (spent[0] - spent[2]) + (spent[1] - spent[3])  # adapter methods minus TRL's
                        times.setdefault("adapter code", []).append(added)
            times["rlvrlens"] += run_ours()
    finally:
        for c in clocks:
            c.restore()

    print(f"config: GPT-2 {N_LAYER} layers, width {WIDTH}; {PROMPTS} prompts x M={M} = {completions} "
          f"completions/step, <= {NEW_TOKENS} new tokens; CPU, 1 thread; {STEPS} timed steps x {REPEATS} runs")
    rate, best = {}, {}
    for name in ("trl", "trl+adapter", "rlvrlens"):
        if times[name]:
            rate[name] = completions / statistics.median(times[name])
            best[name] = completions / min(times[name])
            print(f"{name:12s} {rate[name]:7.1f} completions/s (median step)   {best[name]:7.1f} (fastest step)")
    print(f"adapter overhead, end to end: {rate['trl'] / rate['trl+adapter'] - 1:+.1%} (median), "
          f"{best['trl'] / best['trl+adapter'] - 1:+.1%} (fastest); target <= 5%, shared-machine noise included")
    added = sum(times["adapter code"])
    print(f"adapter overhead, own code: {added / (adapter_runtime - added):.3%} of TRL's step time "
          f"({added * 1e3 / (REPEATS * (STEPS + 1)):.2f} ms per step)")
    print(f"rlvrlens trainer / TRL+adapter throughput: {rate['rlvrlens'] / rate['trl+adapter']:.2f}x (median), "
          f"{best['rlvrlens'] / best['trl+adapter']:.2f}x (fastest)")


if __name__ == "__main__":
    main()
