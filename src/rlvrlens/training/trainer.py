"""The RL loop: sample, score, weigh (the scheme's own weights), loss, update; logs and checkpoints.

Files written under ``out``: ``config.json``; ``log.jsonl`` (one line of metrics per step, TRL's
metric names); ``success.jsonl`` (per-prompt success probabilities at evaluation steps);
``checkpoint.pt`` (a plain dict, written to a temporary file and renamed). Each JSONL line is
flushed when written; a checkpoint records how many lines each file had, so ``resume`` truncates
lines written after it and neither loses nor duplicates any.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlvrlens.objectives import WeightScheme, get_scheme
from rlvrlens.training.config import TrainConfig
from rlvrlens.training.losses import aggregate, clipped_policy_loss, group_weights, kl_estimate, masked_mean
from rlvrlens.training.policy import CausalLMPolicy, Rollout
from rlvrlens.training.sft import warm_start
from rlvrlens.training.success import success_probabilities
from rlvrlens.training.tasks import Task, get_task

LOG, SUCCESS, CHECKPOINT = "log.jsonl", "success.jsonl", "checkpoint.pt"


def build_task(config: TrainConfig) -> Task:
    return get_task(config.task, n=config.n_prompts, seed=config.task_seed, verifier=config.verifier)


def build_policy(config: TrainConfig) -> CausalLMPolicy:
    if config.model:
        return CausalLMPolicy.from_pretrained(config.model)
    return CausalLMPolicy.from_config(config.arch, n_layer=config.n_layer, width=config.width,
                                      n_head=config.n_head, seed=config.seed)


class Trainer:
    """RL fine-tuning of ``policy`` on ``task`` with a weight scheme.

    Parameters
    ----------
    config : TrainConfig
    out : path, optional
        Run directory for logs and checkpoints (``None``: keep nothing on disk).
    policy, task : optional
        Override the ones the config builds (e.g. a :class:`TabularPolicy`). A given policy is used
        as is (no warm start).
    scheme : WeightScheme, optional
        Any scheme object (e.g. a designed one); default ``get_scheme(config.scheme, M, **params)``.
    resume : bool
        Continue from ``out/checkpoint.pt`` if it exists.
    """

    def __init__(self, config: TrainConfig, out: str | Path | None = None, *, policy=None, task: Task | None = None,
                 scheme: WeightScheme | None = None, resume: bool = False, progress: bool = False) -> None:
        self.config = config
        self.out = Path(out) if out is not None else None
        self.progress = progress
        self.task = task if task is not None else build_task(config)
        M = config.num_generations
        self.scheme = scheme if scheme is not None else get_scheme(config.scheme, M, **config.scheme_params)
        if not isinstance(self.scheme, WeightScheme) or self.scheme.M != M:
            raise ValueError(f"scheme must be a WeightScheme with M = num_generations = {M}")
        if config.kl_estimator == "exact" and not hasattr(policy, "sequence_kl"):
            raise ValueError("kl_estimator 'exact' needs a policy with sequence_kl (a TabularPolicy)")
        self.max_new_tokens = config.max_new_tokens or self.task.max_new_tokens
        self.step = 0
        self.rng = np.random.default_rng(config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)
        ckpt = self._checkpoint_path() if resume else None
        fresh = ckpt is None or not ckpt.exists()
        if policy is None:
            policy = build_policy(config)
            if fresh and config.warm_start_steps and not config.model:
                warm_start(policy, self.task, fraction=config.warm_start_fraction, steps=config.warm_start_steps,
                           lr=config.warm_start_lr, seed=config.seed)
        self.policy = policy
        self.ref = policy.clone()
        self.optimizer = torch.optim.AdamW(policy.parameters(), lr=config.learning_rate,
                                           betas=(config.adam_beta1, config.adam_beta2),
                                           weight_decay=config.weight_decay)
        if self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
        if not fresh:
            self._load(ckpt)
        elif self.out is not None:
            for name in (LOG, SUCCESS):
                (self.out / name).write_text("")

    # --- the algorithm ----------------------------------------------------------------------------
    def rl_step(self) -> dict[str, float]:
        """One RL step: sample, score, weigh, loss, update. Returns the step's metrics."""
        cfg, M = self.config, self.config.num_generations
        t0 = time.perf_counter()
        idx = self.rng.choice(len(self.task), size=cfg.prompts_per_step, replace=len(self.task) < cfg.prompts_per_step)
        prompts = [self.task.prompts[i] for i in idx]
        # 1. sample M completions per prompt (rows i*M .. i*M+M-1 are prompt i's group)
        # (on-policy, one micro-batch: the sampling pass itself is differentiated, no second forward)
        fused = cfg.num_iterations == 1 and cfg.gradient_accumulation_steps == 1 and not cfg.kl_in_reward
        rollout = self.policy.sample(prompts, M, generator=self.generator, temperature=cfg.temperature,
                                     top_p=cfg.top_p, max_new_tokens=self.max_new_tokens, with_grad=fused)
        # 2. score
        rewards = self.task.rewards(rollout.prompts, rollout.texts).reshape(len(prompts), M)
        old_logp = None  # pi_old: the sampling policy; taken from the first epoch's forward pass
        with torch.no_grad():
            ref_logp = self.ref.token_logprobs(rollout)[0] if cfg.beta > 0 and cfg.kl_estimator != "exact" else None
            shaped = rewards
            if cfg.kl_in_reward and ref_logp is not None:  # REINFORCE++: r - beta * log(pi/pi_ref) of the sequence
                old_logp = self.policy.token_logprobs(rollout)[0]
                shaped = rewards - cfg.beta * (old_logp - ref_logp).sum(-1).reshape(rewards.shape).cpu().numpy()
        # 3. weigh: the scheme's own Z (one implementation, in rlvrlens.objectives)
        Z = group_weights(self.scheme, shaped).reshape(-1)
        # 4-5. loss and update, mu epochs over micro-batches of whole groups
        stats: dict[str, list[float]] = {}
        chunks = np.array_split(np.arange(len(rollout)), cfg.gradient_accumulation_steps)
        olds: list[torch.Tensor] = []
        for epoch in range(cfg.num_iterations):
            for k, rows in enumerate(chunks):
                old = old_logp[rows] if old_logp is not None else (olds[k] if epoch else None)
                batch = rollout if len(chunks) == 1 else rollout.select(rows)
                loss, parts, logp = self._loss(batch, old, Z[rows], None if ref_logp is None else ref_logp[rows])
                if epoch == 0:
                    olds.append(logp.detach())  # no update yet: this is pi_old
                (loss / len(chunks)).backward()
                for name, value in parts.items():
                    stats.setdefault(name, []).append(value)
            params = [p for p in self.policy.parameters() if p.grad is not None]
            norm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm if cfg.max_grad_norm > 0 else float("inf"))
            stats.setdefault("grad_norm", []).append(float(norm))
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return self._metrics(rewards, rollout, stats, time.perf_counter() - t0)

    def _metrics(self, rewards: np.ndarray, rollout: Rollout, stats: dict[str, list[float]],
                 elapsed: float) -> dict[str, float]:
        """One log line, with TRL's metric names where the meaning is the same."""
        return {
            "step": self.step,
            "reward": float(rewards.mean()),
            "reward_std": float(rewards.std(axis=1, ddof=1).mean()) if rewards.shape[1] > 1 else 0.0,
            "frac_reward_zero_std": float(np.mean(rewards.std(axis=1) == 0)),
            **{name: float(np.mean(values)) for name, values in stats.items()},
            "completions/mean_length": float(rollout.mask.sum(-1).mean()),
            "completions/clipped_ratio": float((~rollout.finished).float().mean()),
            "learning_rate": self.optimizer.param_groups[0]["lr"],
            "time": elapsed,
            "completions_per_second": len(rollout) / elapsed,
        }

    def _loss(self, rollout: Rollout, old_logp: torch.Tensor | None, Z: torch.Tensor,
              ref_logp: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, float], torch.Tensor]:
        """Aggregated clipped policy loss (+ beta KL); ``old_logp=None`` means pi_old = pi_theta now."""
        cfg = self.config
        if rollout.logp is not None:  # recorded while sampling (fused on-policy step); usable once
            logp, entropy = rollout.logp, rollout.entropy
            rollout.logp = rollout.entropy = None
        else:
            logp, entropy = self.policy.token_logprobs(rollout)
        old_logp = logp.detach() if old_logp is None else old_logp
        mask, Z = rollout.mask.to(logp.device), Z.to(logp.device)
        pl = clipped_policy_loss(logp, old_logp, Z, cfg.epsilon_low, cfg.epsilon_high)
        per_token = pl.loss
        parts = {"entropy": masked_mean(entropy, mask).item(),
                 "clip_ratio/low_mean": masked_mean(pl.clipped_low, mask).item(),
                 "clip_ratio/high_mean": masked_mean(pl.clipped_high, mask).item()}
        parts["clip_ratio/region_mean"] = parts["clip_ratio/low_mean"] + parts["clip_ratio/high_mean"]
        kl_term = None
        if cfg.beta > 0 and cfg.kl_estimator == "exact":
            kl_term = self.policy.sequence_kl(self.ref, sorted(set(rollout.prompts))).mean()
            parts["kl"] = kl_term.item()
        elif ref_logp is not None:
            kl_tok = kl_estimate(logp, ref_logp, cfg.kl_estimator)
            parts["kl"] = masked_sum_per_seq(kl_tok, mask).mean().item()
            if not cfg.kl_in_reward:
                per_token = per_token + cfg.beta * kl_tok
        loss = aggregate(per_token, mask, cfg.loss_aggregation, cfg.aggregation_constant)
        if kl_term is not None and not cfg.kl_in_reward:
            loss = loss + cfg.beta * kl_term
        parts["loss"] = loss.item()
        return loss, parts, logp

    # --- plumbing: evaluation, logs, checkpoints --------------------------------------------------
    def evaluate(self) -> dict[str, Any]:
        """Per-prompt success probabilities now (exact where possible), without touching the training RNG."""
        gen = torch.Generator().manual_seed(self.config.seed * 1_000_003 + self.step)
        return {"step": self.step, **success_probabilities(self.policy, self.task, K=self.config.eval_samples,
                                                           generator=gen)}

    def train(self, steps: int | None = None) -> list[dict[str, float]]:
        """Run until ``config.steps`` (or ``steps`` more steps); log, evaluate and checkpoint on the way."""
        end = self.config.steps if steps is None else self.step + steps
        history = []
        if self.step == 0 and self._lines(SUCCESS) == 0:
            self._append(SUCCESS, self.evaluate())
        while self.step < end:
            metrics = self.rl_step()
            history.append(metrics)
            self._append(LOG, metrics)
            if self.step % self.config.eval_steps == 0 or self.step == end:
                self._append(SUCCESS, self.evaluate())
            if self.step % self.config.save_steps == 0 or self.step == end:
                self.save()
            if self.progress:
                print(f"\rstep {self.step}/{end}  reward {metrics['reward']:.3f}  "
                      f"{metrics['completions_per_second']:.0f} completions/s", end="", file=sys.stderr, flush=True)
        if self.progress:
            print(file=sys.stderr)
        if self.out is not None and hasattr(self.policy, "save_pretrained"):
            self.policy.save_pretrained(self.out / "model")  # loadable with --model PATH
        return history

    def _append(self, name: str, record: dict) -> None:
        if self.out is None:
            return
        with open(self.out / name, "a") as fh:
            fh.write(json.dumps(record) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def _lines(self, name: str) -> int:
        if self.out is None or not (self.out / name).exists():
            return 0
        with open(self.out / name) as fh:
            return sum(1 for _ in fh)

    def _checkpoint_path(self) -> Path | None:
        return None if self.out is None else self.out / CHECKPOINT

    def checkpoint(self) -> dict[str, Any]:
        """The checkpoint: a plain dict of everything needed to continue the run exactly."""
        return {
            "step": self.step,
            "config": self.config.to_dict(),
            "scheme": self.scheme.describe(),
            "policy": self.policy.state_dict(),
            "ref": self.ref.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": {"numpy": self.rng.bit_generator.state, "torch_generator": self.generator.get_state(),
                    "torch": torch.get_rng_state(), "python": random.getstate()},
            "log_lines": {LOG: self._lines(LOG), SUCCESS: self._lines(SUCCESS)},
        }

    def save(self) -> Path | None:
        """Write the checkpoint atomically (temporary file, then rename)."""
        path = self._checkpoint_path()
        if path is None:
            return None
        tmp = path.with_suffix(".tmp")
        torch.save(self.checkpoint(), tmp)
        os.replace(tmp, path)
        return path

    def _load(self, path: Path) -> None:
        ckpt = torch.load(path, weights_only=False)
        if ckpt["config"] != self.config.to_dict():
            raise ValueError(f"{path} was written with a different config; resume with the same config")
        self.policy.load_state_dict(ckpt["policy"])
        self.ref.load_state_dict(ckpt["ref"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.rng.bit_generator.state = ckpt["rng"]["numpy"]
        self.generator.set_state(ckpt["rng"]["torch_generator"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        random.setstate(ckpt["rng"]["python"])
        self.step = ckpt["step"]
        for name, n in ckpt["log_lines"].items():  # drop lines written after the checkpoint
            file = self.out / name
            lines = file.read_text().splitlines(keepends=True) if file.exists() else []
            if len(lines) < n:
                raise ValueError(f"{file} has fewer lines ({len(lines)}) than its checkpoint recorded ({n})")
            file.write_text("".join(lines[:n]))


def masked_sum_per_seq(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum(-1)


def load_policy(path: str | Path) -> tuple[CausalLMPolicy, TrainConfig, int]:
    """The policy of a run directory's checkpoint (or a checkpoint file), its config and step."""
    path = Path(path)
    file = path / CHECKPOINT if path.is_dir() else path
    if not file.exists():
        raise ValueError(f"no checkpoint at {str(file)!r}")
    ckpt = torch.load(file, weights_only=False)
    config = TrainConfig.from_dict(ckpt["config"])
    policy = build_policy(config)
    policy.load_state_dict(ckpt["policy"])
    return policy, config, ckpt["step"]
