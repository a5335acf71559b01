"""The RL loop: sample, score, weigh (the scheme's own weights), loss, update; logs and checkpoints.

Files written under ``out`` (see :mod:`rlvrlens.training.rundir`): ``config.json``; ``log.jsonl``
(one line of metrics per step, TRL's metric names); ``success.jsonl`` (per-prompt success
probabilities at evaluation steps); ``checkpoint.pt`` (plain tensors, numbers, strings, lists and
dicts, loaded with ``torch.load(weights_only=True)``: reading a checkpoint runs no code), written to
a temporary file and renamed; ``model/`` at the end (``--model PATH`` loads it); ``run.lock`` while
a process uses the directory. Each JSONL line is flushed when written; a checkpoint records how
many lines each file had, so ``resume`` truncates lines written after it (a partial last line
included) and neither loses nor duplicates any.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import random
import re
import resource
import shutil
import sys
import time
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch

from rlvrlens.core.budget import format_bytes
from rlvrlens.core.checks import check_int
from rlvrlens.objectives import WeightScheme, get_scheme
from rlvrlens.training import rundir
from rlvrlens.training.config import TrainConfig
from rlvrlens.training.losses import (
    aggregate, clipped_policy_loss, group_weights, kl_estimate, masked_mean, sequence_kl_estimate,
)
from rlvrlens.core.records import CHECKPOINT, CONFIG, LOG, MODEL, SUCCESS, complete_lines, load_json
from rlvrlens.training.optim import adam_preconditioner, build_optimizer, build_scheduler, lr_factor
from rlvrlens.training.policy import CausalLMPolicy, Rollout, model_config_sizes, trainable_parameters
from rlvrlens.training.protocol import ExactKLPolicy, Policy, SavablePolicy
from rlvrlens.training.runtime import device_memory
from rlvrlens.training.sft import warm_start
from rlvrlens.training.success import success_probabilities
from rlvrlens.training.task import Task
from rlvrlens.training.tasks import BUILTIN_TASKS, get_task

#: A callback of :meth:`Trainer.train`: called with the trainer and the step's metrics.
Callback = Callable[["Trainer", dict], None]

#: Metrics that measure the machine (time, memory), not the run: they differ between identical runs.
MACHINE_METRICS = ("time", "completions_per_second", "memory/peak_rss_mb", "memory/max_allocated_mb")
#: Keys every checkpoint holds.
CHECKPOINT_KEYS = ("step", "config", "policy", "optimizer", "rng", "log_lines")


def build_task(config: TrainConfig) -> Task:
    """The config's task; ``verifier`` is refused for a built-in task (it has its own)."""
    if config.task in BUILTIN_TASKS and config.verifier != "exact":
        raise ValueError(f"verifier {config.verifier!r} applies to JSONL tasks only; built-in task "
                         f"{config.task!r} checks answers with its own exact-match verifier")
    if not config.task.strip():
        raise ValueError("task must be a built-in task name or a .jsonl file, got ''")
    if config.task.endswith(".jsonl") and not Path(config.task).exists():
        raise FileNotFoundError(f"task file {config.task!r} does not exist")
    try:
        return get_task(config.task, n=config.n_prompts, seed=config.task_seed, verifier=config.verifier)
    except OSError as exc:
        raise type(exc)(f"cannot read task file {config.task!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"cannot read task file {config.task!r}: not UTF-8 text ({exc.reason})") from None


def build_policy(config: TrainConfig) -> CausalLMPolicy:
    """The config's model: a local folder (``config.model``) or a fresh tiny one."""
    if not config.model:
        return CausalLMPolicy.from_config(config.arch, n_layer=config.n_layer, width=config.width,
                                          n_head=config.n_head, seed=config.seed)
    return load_model(config.model, chat_template=config.chat_template)


def load_model(spec: str | Path, *, chat_template: bool | None = None) -> CausalLMPolicy:
    """:meth:`CausalLMPolicy.from_pretrained` with one-line errors naming the model (missing,
    unreadable, corrupt folder)."""
    spec = str(spec)
    if not spec.strip():
        raise ValueError("model must be a model folder (or a named model), got ''")
    if not Path(spec).exists() and (os.sep in spec or spec.startswith(".")):
        raise FileNotFoundError(f"model {spec!r} does not exist")
    try:
        return CausalLMPolicy.from_pretrained(spec, chat_template=chat_template)
    except (FileNotFoundError, PermissionError) as exc:
        raise type(exc)(f"cannot load model {spec!r}: {_first_line(exc)}") from None
    except ImportError as exc:  # a missing optional package: its message says what to install
        raise ValueError(f"cannot load model {spec!r}: {_first_line(exc)}") from None
    except Exception as exc:  # corrupt weights or config (OSError, safetensors, json, torch errors)
        raise ValueError(f"cannot load model {spec!r} (corrupt or not a model folder): "
                         f"{type(exc).__name__}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def resolve_device(name: str | None) -> torch.device | None:
    """``cpu``/``cuda``/``cuda:N`` as a device, refused when not available here (``None``: no choice)."""
    if name is None:
        return None
    if not isinstance(name, str) or not re.fullmatch(r"cpu|cuda(:\d+)?", name):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {name!r}")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} is not available: no CUDA GPU is visible to torch "
                             f"{torch.__version__} here (use --device cpu)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r} is not available: this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s), cuda:0 .. cuda:{torch.cuda.device_count() - 1}")
    return device


def _model_sizes(config: TrainConfig, policy: Policy | None) -> tuple[int, int, int]:
    """``(vocabulary, hidden width, layers)`` of the model a run will train, as far as known cheaply
    (unknown sizes count as 1, 0, 0: the estimate stays a lower bound)."""
    if policy is not None:
        return policy.footprint()
    if config.model:
        try:
            sizes = load_json((Path(config.model) / "config.json").read_text())
        except (OSError, ValueError):
            return 1, 0, 0
    else:
        from rlvrlens.training.tokenizer import char_tokenizer

        return len(char_tokenizer()), config.width, config.n_layer
    return model_config_sizes(sizes)


def estimate_step_memory(config: TrainConfig, task: Task, max_new_tokens: int, vocab: int, width: int,
                         layers: int) -> int:
    """A lower bound (bytes) on the memory of one RL step or evaluation.

    ``B`` rows are decoded together (``B = prompts_per_step * num_generations``, or
    ``n_prompts * eval_samples`` for a sampled evaluation), each of ``T = max_new_tokens`` tokens
    with float32 logits kept three times (logits, log-softmax, probabilities: ``3 V``) and about
    ``16 H`` activations per layer: ``4 B T (3 V + 16 L H)`` bytes, plus the scheme's coefficient
    arrays (``3 (M + 1)`` float64). The model's own weights come on top (:func:`estimate_model_memory`).

    Parameters
    ----------
    config : TrainConfig
        The run's config (``prompts_per_step``, ``num_generations``, ``eval_samples``).
    task : Task
        The task (a non-enumerable one is evaluated by sampling).
    max_new_tokens : int
        Tokens decoded per row, ``T``.
    vocab : int
        Vocabulary size ``V``.
    width : int
        Hidden size ``H``.
    layers : int
        Number of layers ``L``.

    Returns
    -------
    int
        The bound in bytes.

    Examples
    --------
    >>> from rlvrlens.training.tasks import get_task
    >>> estimate_step_memory(TrainConfig(num_generations=8, prompts_per_step=8), get_task("mod", n=4),
    ...                      4, vocab=20, width=0, layers=0)
    61656
    """
    rows = config.prompts_per_step * config.num_generations
    if not task.enumerable:
        rows = max(rows, len(task) * config.eval_samples)
    per_token = 3 * vocab + 16 * layers * width
    return 4 * rows * max_new_tokens * per_token + 8 * 3 * (config.num_generations + 1)


def estimate_model_memory(vocab: int, width: int, layers: int, *, reference: bool) -> int:
    """A lower bound (bytes) on the memory of the model a run builds and trains: ``V H + 12 L H^2``
    float32 weights (embeddings; attention and MLP of each layer), their gradients and Adam's two
    moments, and a frozen copy for ``pi_ref`` when ``reference``.

    Examples
    --------
    >>> estimate_model_memory(65, 65536, 2, reference=False) / 2**30  # --width 65536: 12 x 2 x 2^32 weights
    1536.0634765625
    """
    return 4 * (vocab * width + 12 * layers * width**2) * (5 if reference else 4)


def _safe_load(path: Path) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; one-line errors for missing, corrupt, unsafe."""
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    if path.is_file() and not zipfile.is_zipfile(path):  # torch.save writes a zip archive
        raise ValueError(f"checkpoint {str(path)!r} is not a checkpoint (not a torch.save archive)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise OSError(f"cannot read checkpoint {str(path)!r}: {exc.strerror or exc}") from None
    except Exception as exc:  # pickle.UnpicklingError for unsafe content; RuntimeError for a corrupt file
        unsafe = re.search(r"Unsupported (?:global|operand)[^.]*", str(exc))
        if unsafe or "weights_only" in str(exc):
            what = f" ({unsafe.group(0).strip()})" if unsafe else ""
            raise ValueError(f"checkpoint {str(path)!r} holds objects other than tensors and plain values{what}, "
                             "which are refused (loading them could run code)") from None
        raise ValueError(f"checkpoint {str(path)!r} is corrupt: {_first_line(exc)[:200]}") from None
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in CHECKPOINT_KEYS):
        missing = [k for k in CHECKPOINT_KEYS if not isinstance(ckpt, dict) or k not in ckpt]
        raise ValueError(f"checkpoint {str(path)!r} is not an rlvrlens checkpoint (missing {', '.join(missing)})")
    return ckpt


class Trainer:
    """RL fine-tuning of ``policy`` on ``task`` with a weight scheme.

    Parameters
    ----------
    config : TrainConfig
    out : path, optional
        Run directory for logs and checkpoints (``None``: keep nothing on disk). Checked (writable,
        not holding another run) and locked before anything is built; see :mod:`rlvrlens.training.rundir`.
    policy, task : optional
        Override the ones the config builds (e.g. a :class:`TabularPolicy`); ``policy`` must satisfy
        :class:`~rlvrlens.training.protocol.Policy`. A given policy is used as is (no warm start).
    ref : Policy, optional
        The reference policy ``pi_ref`` of the KL penalty (``beta > 0``), used as is and never
        trained (default: a frozen copy of the policy at the start). Refused with ``beta = 0``.
    scheme : WeightScheme, optional
        Any scheme object (e.g. a designed one); default ``get_scheme(config.scheme, M, **params)``.
    resume : bool
        Continue the run in ``out`` from its ``checkpoint.pt`` (a fresh start if it has none). The
        config must be the run's own, except ``steps``, which may extend a finished run; the
        differences are listed field by field otherwise.
    overwrite : bool
        Replace the run ``out`` holds (the files the run wrote are deleted, nothing else; a directory
        holding other files under a run's names is refused, naming them).

    Examples
    --------
    >>> from rlvrlens.training import TabularPolicy, Task
    >>> task = Task("yes?", ["q"], ["yes"])
    >>> pol = TabularPolicy(["q"], ["yes", "no"])
    >>> tr = Trainer(TrainConfig(num_generations=4, prompts_per_step=1, steps=3), policy=pol, task=task)
    >>> seen = []
    >>> history = tr.train(callbacks=[lambda t, m: seen.append(m["step"])], success_at=[0, 3])
    >>> seen, [s["step"] for s in tr.success_history]
    ([1, 2, 3], [0, 3])
    """

    def __init__(self, config: TrainConfig, out: str | Path | None = None, *, policy: Policy | None = None,
                 task: Task | None = None, scheme: WeightScheme | None = None, ref: Policy | None = None,
                 resume: bool = False, overwrite: bool = False, progress: bool = False) -> None:
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        self.config = config
        self.progress = progress
        self.out: Path | None = None
        self._lock: rundir.RunLock | None = None
        self.success_history: list[dict[str, Any]] = []
        if out is not None:  # the run directory first: nothing is built for a directory that cannot be used
            self.out, self._lock = rundir.prepare(out, resume=resume, overwrite=overwrite, owner=self)
        self._created_config = False
        try:
            self._setup(policy, task, scheme, ref, resume)
        except Exception:
            if self._created_config:  # nothing ran: the directory holds no run, as before
                (self.out / CONFIG).unlink(missing_ok=True)
            self.close()
            raise
        except BaseException:
            self.close()
            raise

    def _setup(self, policy: Policy | None, task: Task | None, scheme: WeightScheme | None, ref: Policy | None,
               resume: bool) -> None:
        config = self.config
        for name, given in (("policy", policy), ("ref", ref)):
            if given is not None and not isinstance(given, Policy):
                raise TypeError(f"{name} must satisfy rlvrlens.training.protocol.Policy, got {type(given).__name__}")
        if ref is not None and config.beta == 0:
            raise ValueError("ref (the reference policy) is used only by the KL penalty; it needs beta > 0")
        if config.kl_estimator == "exact" and policy is not None and not isinstance(policy, ExactKLPolicy):
            raise ValueError("kl_estimator 'exact' needs a policy with sequence_kl (e.g. a TabularPolicy)")
        if config.kl_estimator == "exact" and policy is None and config.beta > 0:
            raise ValueError("kl_estimator 'exact' needs a policy with sequence_kl (e.g. a TabularPolicy); "
                             "a transformers model takes k1, k2 or k3")
        device = resolve_device(config.device)
        self.task = task if task is not None else build_task(config)
        self.max_new_tokens = config.max_new_tokens or self.task.max_new_tokens
        target = device or (torch.device("cpu") if policy is None else _policy_device(policy))
        self._check_precision(target)
        self._check_memory(policy, target)
        M = config.num_generations
        self.scheme = scheme if scheme is not None else get_scheme(config.scheme, M, **config.scheme_params)
        if not isinstance(self.scheme, WeightScheme) or self.scheme.M != M:
            raise ValueError(f"scheme must be a WeightScheme with M = num_generations = {M}")
        self.step = 0
        self.rng = np.random.default_rng(config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)
        ckpt = self._resume_state() if resume and self.out is not None else None
        if self.out is not None:  # recorded before the (possibly long) model load and warm start
            self._record_config()
        if policy is None:
            policy = build_policy(config)
            if device is not None:
                policy.to(device)
            if ckpt is None and config.warm_start_steps:
                warm_start(policy, self.task, fraction=config.warm_start_fraction, steps=config.warm_start_steps,
                           lr=config.warm_start_lr, seed=config.seed)
                _check_finite(policy, "the warm start (lower warm_start_lr)")
        elif device is not None:
            policy.to(device)
        if config.gradient_checkpointing:
            policy.enable_gradient_checkpointing()
        self.policy = policy
        self.device = _policy_device(policy)
        self.ref = (ref if ref is not None else policy.clone()) if config.beta > 0 else None
        self.optimizer = build_optimizer(config, policy.parameters())
        self.scheduler = build_scheduler(config, self.optimizer)
        self.scaler = torch.amp.GradScaler("cuda") if config.precision == "fp16" else None
        if ckpt is not None:
            self._restore(ckpt)
        elif self.out is not None:
            for name in (LOG, SUCCESS):
                rundir.guard_write(str(self.out / name), lambda name=name: (self.out / name).write_text(""))

    def _check_memory(self, policy: Policy | None, device: torch.device) -> None:
        """Refuse a run whose model (one built here) and step need more memory than ``device`` has,
        naming the parameters of the larger part."""
        config = self.config
        sizes = _model_sizes(config, policy)
        step = estimate_step_memory(config, self.task, self.max_new_tokens, *sizes)
        model = 0 if policy is not None else estimate_model_memory(*sizes, reference=config.beta > 0)
        have = device_memory(device)
        if step + model <= have:
            return
        if model > step:
            what = (f"the model ({sizes[2]} layers of width {sizes[1]}, vocabulary {sizes[0]}: weights, gradients, "
                    "Adam's moments" + (" and pi_ref" if config.beta > 0 else "") + ")")
            advice = "use a smaller --model" if config.model else "lower width or n_layer"
        else:
            what = (f"one step ({config.prompts_per_step} prompts x num_generations {config.num_generations} completions "
                    f"of {self.max_new_tokens} tokens)")
            vocab, width, layers = sizes
            deep = not config.model and policy is None and 16 * layers * width > 3 * vocab  # activations dominate
            advice = f"lower num_generations, prompts_per_step{', max_new_tokens, n_layer or width' if deep else ' or max_new_tokens'}"
        raise ValueError(f"this run needs at least {format_bytes(step + model)} of memory, {format_bytes(max(step, model))} "
                         f"of it for {what}, more than the {format_bytes(have)} of {device.type.upper()} memory; {advice}")

    def _record_config(self) -> None:
        """Write ``config.json`` (atomically). A run killed after this resumes as the same run; one
        whose setup fails (a bad model, say) before its first step takes back a config it created."""
        path = self.out / CONFIG
        self._created_config = not path.exists()
        rundir.write_atomic(path, json.dumps(self.config.to_dict(), indent=2) + "\n")

    def _check_precision(self, device: torch.device) -> None:
        precision = self.config.precision
        if precision == "fp16" and device.type != "cuda":
            raise ValueError("precision 'fp16' needs a CUDA device (its loss scaling is CUDA's); "
                             "use bf16 or fp32 on the CPU")
        if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError(f"precision 'bf16' is not supported by {torch.cuda.get_device_name(device)}; use fp16")

    def _resume_state(self) -> dict[str, Any] | None:
        """The checkpoint to continue from (``None``: start afresh), after checking the config."""
        path = self.out / CHECKPOINT
        if path.exists():
            ckpt = _safe_load(path)
            recorded = ckpt["config"]
        elif (self.out / CONFIG).exists():  # killed before the first checkpoint: a fresh start of the same run
            ckpt, recorded = None, TrainConfig.from_json(self.out / CONFIG).to_dict()
        else:
            return None
        try:
            old = TrainConfig.from_dict(recorded)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"the run in {str(self.out)!r} has a config this version cannot read: {exc}") from None
        diff = old.differences(self.config, ignore=("steps",))
        if diff:
            raise ValueError(f"cannot resume {str(self.out)!r}: it was written with a different config "
                             f"({'; '.join(diff)}); only steps may change on resume (pass --overwrite "
                             "to replace the run)")
        if ckpt is not None and self.config.steps < ckpt["step"]:
            raise ValueError(f"cannot resume {str(self.out)!r} with steps = {self.config.steps}: "
                             f"the run is already at step {ckpt['step']}")
        return ckpt

    # --- the algorithm ----------------------------------------------------------------------------
    def _autocast(self):
        if self.config.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.config.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def rl_step(self) -> dict[str, float]:
        """One RL step: sample, score, weigh, loss, update. Returns the step's metrics."""
        cfg = self.config
        t0 = time.perf_counter()
        lr = self.optimizer.param_groups[0]["lr"]  # the rate this step uses (the schedule moves after it)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        # 1-3. sample M completions per prompt, score them, weigh them with the scheme's own Z
        rollout, rewards, Z, ref_logp, old_logp = self._sample_batch()
        # 4-5. loss and update, mu epochs over micro-batches of whole groups
        stats: dict[str, list[float]] = {}
        olds: list[torch.Tensor] = []
        for epoch in range(cfg.num_iterations):
            self._backward(rollout, Z, ref_logp, old_logp, olds, epoch, stats)
            if self.scaler is not None:
                self.scaler.unscale_(self.optimizer)
            params = [p for p in self.policy.parameters() if p.grad is not None]
            norm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm if cfg.max_grad_norm > 0 else float("inf"))
            stats.setdefault("grad_norm", []).append(float(norm))
            if self.scaler is not None:
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
        _check_finite(self.policy, f"step {self.step + 1} (lower learning_rate, beta or weight_decay)")
        self.step += 1
        return self._metrics(rewards, rollout, stats, lr, time.perf_counter() - t0)

    def _sample_batch(self):
        """Steps 1-3: ``prompts_per_step`` prompts, ``M`` completions each (rows ``i*M .. i*M+M-1`` are
        prompt ``i``'s group), their rewards (shaped by the KL with ``kl_in_reward``) and weights ``Z``."""
        cfg, M = self.config, self.config.num_generations
        idx = self.rng.choice(len(self.task), size=cfg.prompts_per_step, replace=len(self.task) < cfg.prompts_per_step)
        prompts = [self.task.prompts[i] for i in idx]
        # on-policy, one micro-batch: the sampling pass itself is differentiated, no second forward
        fused = (cfg.num_iterations == 1 and cfg.gradient_accumulation_steps == 1 and not cfg.kl_in_reward
                 and not cfg.gradient_checkpointing)
        with self._autocast():
            rollout = self.policy.sample(prompts, M, generator=self.generator, temperature=cfg.temperature,
                                         top_p=cfg.top_p, max_new_tokens=self.max_new_tokens, with_grad=fused)
        rewards = self.task.rewards(rollout.prompts, rollout.texts).reshape(len(prompts), M)
        old_logp = None  # pi_old: the sampling policy; taken from the first epoch's forward pass
        sampled_kl = cfg.beta > 0 and cfg.kl_estimator != "exact"
        with torch.no_grad(), self._autocast():
            # pi_ref scores the same tempered distribution (as TRL); the nucleus is the policy's alone
            ref_logp = self.ref.token_logprobs(rollout, temperature=cfg.temperature)[0] if sampled_kl else None
            shaped = rewards
            if cfg.kl_in_reward and ref_logp is not None:  # REINFORCE++: r - beta * sum_t kl_t of the sequence
                old_logp = self._logprobs(rollout)[0]
                kl_seq = sequence_kl_estimate(old_logp, ref_logp, rollout.mask.to(old_logp.device), cfg.kl_estimator,
                                              cfg.kl_level)
                shaped = rewards - cfg.beta * kl_seq.reshape(rewards.shape).float().cpu().numpy()
        Z = group_weights(self.scheme, shaped).reshape(-1)  # one implementation, in rlvrlens.objectives
        return rollout, rewards, Z, ref_logp, old_logp

    def _backward(self, rollout: Rollout, Z: torch.Tensor, ref_logp: torch.Tensor | None,
                  old_logp: torch.Tensor | None, olds: list[torch.Tensor], epoch: int,
                  stats: dict[str, list[float]]) -> None:
        """Step 4 for one epoch: the loss of every micro-batch, backpropagated (gradients accumulate)."""
        cfg = self.config
        chunks = np.array_split(np.arange(len(rollout)), cfg.gradient_accumulation_steps)
        # dapo divides every micro-batch by the whole batch's token count; the others average micro-batches
        total_tokens = float(rollout.mask.sum())
        share = 1.0 if cfg.loss_aggregation == "dapo" else 1.0 / len(chunks)
        for k, rows in enumerate(chunks):
            old = old_logp[rows] if old_logp is not None else (olds[k] if epoch else None)
            batch = rollout if len(chunks) == 1 else rollout.select(rows)
            loss, parts, logp = self._loss(batch, old, Z[rows], None if ref_logp is None else ref_logp[rows],
                                           total_tokens)
            if epoch == 0:
                olds.append(logp.detach())  # no update yet: this is pi_old
            scaled = loss * share
            (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
            for name, value in parts.items():
                stats.setdefault(name, []).append(value)

    def stochastic_gradient(self) -> tuple[torch.Tensor, dict[str, float]]:
        """The gradient of one freshly sampled batch's loss, as a step would compute it (first epoch,
        before clipping), flattened over the trainable parameters (float32, on the CPU); nothing is
        updated (the step counter and the parameters stay; the random streams move on).

        A probe of the run's noise (:func:`rlvrlens.forecast.probes.gradient_moments`): its mean
        is the expected update, its second moment what Adam's ``v`` tracks.

        Returns
        -------
        gradient : Tensor, shape (n_params,)
        stats : dict
            ``reward``, ``mean_length`` (completion tokens per sequence), ``inverse_length`` (the mean
            of ``1/length``), ``grad_norm``.
        """
        rollout, rewards, Z, ref_logp, old_logp = self._sample_batch()
        self.optimizer.zero_grad(set_to_none=True)
        self._backward(rollout, Z, ref_logp, old_logp, [], 0, {})
        params = trainable_parameters(self.policy)
        flat = torch.cat([(q.grad if q.grad is not None else torch.zeros_like(q)).detach().float().flatten().cpu()
                          for q in params])
        if self.scaler is not None:  # fp16: the loss was scaled
            flat /= self.scaler.get_scale()
        self.optimizer.zero_grad(set_to_none=True)
        lengths = rollout.mask.sum(-1).float().clamp(min=1)
        return flat, {"reward": float(rewards.mean()), "mean_length": float(lengths.mean()),
                      "inverse_length": float((1 / lengths).mean()), "grad_norm": float(flat.double().norm())}

    def _logprobs(self, rollout: Rollout) -> tuple[torch.Tensor, torch.Tensor]:
        """The policy's scores of its own tokens under the sampling distribution (temperature, top-p)."""
        return self.policy.token_logprobs(rollout, temperature=self.config.temperature, top_p=self.config.top_p)

    def _metrics(self, rewards: np.ndarray, rollout: Rollout, stats: dict[str, list[float]], lr: float,
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
            "learning_rate": lr,
            "time": elapsed,
            "completions_per_second": len(rollout) / elapsed,
            **self._memory(),
        }

    def _memory(self) -> dict[str, float]:
        """Peak memory of the step: ``torch.cuda.max_memory_allocated`` on a GPU, else the process's
        peak resident set size (since it started), in MiB."""
        if self.device.type == "cuda":
            return {"memory/max_allocated_mb": torch.cuda.max_memory_allocated(self.device) / 2**20}
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
        return {"memory/peak_rss_mb": rss / (2**20 if sys.platform == "darwin" else 2**10)}

    def _loss(self, rollout: Rollout, old_logp: torch.Tensor | None, Z: torch.Tensor,
              ref_logp: torch.Tensor | None, total_tokens: float) -> tuple[torch.Tensor, dict[str, float], torch.Tensor]:
        """Aggregated clipped policy loss (+ beta KL); ``old_logp=None`` means pi_old = pi_theta now."""
        cfg = self.config
        if rollout.logp is not None:  # recorded while sampling (fused on-policy step); usable once
            logp, entropy = rollout.logp, rollout.entropy
            rollout.logp = rollout.entropy = None
        else:
            with self._autocast():
                logp, entropy = self._logprobs(rollout)
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
        elif ref_logp is not None and cfg.kl_level == "sequence":
            kl_seq = sequence_kl_estimate(logp, ref_logp, mask, cfg.kl_estimator, "sequence")
            parts["kl"] = kl_seq.mean().item()
            if not cfg.kl_in_reward:  # one term per sequence, carried by its first token through the aggregation
                first = torch.zeros_like(per_token)
                first[:, 0] = 1.0
                per_token = per_token + cfg.beta * kl_seq[:, None] * first
        elif ref_logp is not None:
            kl_tok = kl_estimate(logp, ref_logp, cfg.kl_estimator)
            parts["kl"] = (kl_tok * mask).sum(-1).mean().item()
            if not cfg.kl_in_reward:
                per_token = per_token + cfg.beta * kl_tok
        if cfg.loss_aggregation == "dapo":
            constant = total_tokens
        elif cfg.loss_aggregation == "seq-sum-constant":
            constant = cfg.aggregation_constant or self.max_new_tokens  # TRL: max_completion_length
        else:
            constant = None
        loss = aggregate(per_token, mask, cfg.loss_aggregation, constant)
        if kl_term is not None:
            loss = loss + cfg.beta * kl_term
        parts["loss"] = loss.item()
        return loss, parts, logp

    # --- plumbing: evaluation, logs, checkpoints --------------------------------------------------
    def evaluate(self) -> dict[str, Any]:
        """Per-prompt success probabilities now (exact where possible), without touching the training RNG."""
        gen = torch.Generator().manual_seed(self.config.seed * 1_000_003 + self.step)
        result = success_probabilities(self.policy, self.task, K=self.config.eval_samples, generator=gen,
                                       max_new_tokens=self.max_new_tokens)
        if not np.isfinite(result["p"]).all():
            raise ValueError(f"the policy's success probabilities are NaN at step {self.step}: its logits overflowed "
                             "(the run diverged: lower learning_rate, beta or weight_decay)")
        return {"step": self.step, **result}

    def train(self, steps: int | None = None, *, callbacks: Sequence[Callback] = (),
              success_at: Iterable[int] | None = None) -> list[dict[str, float]]:
        """Run until ``config.steps`` (or ``steps`` more steps); log, evaluate and checkpoint on the way.

        Parameters
        ----------
        steps : int, optional
            Steps to take now (default: up to ``config.steps``).
        callbacks : sequence of callables ``cb(trainer, metrics)``
            Called after every step (after its log line, evaluation and checkpoint).
        success_at : iterable of int, optional
            Steps (0: before the first) at which :meth:`evaluate`'s dict is appended to
            ``self.success_history``, with or without a run directory.

        Returns
        -------
        list of dict
            The metrics of each step taken.
        """
        end = self.config.steps if steps is None else self.step + check_int("steps", steps, minimum=0)
        record = set()
        for s in (success_at or ()):
            record.add(check_int("success_at step", s, minimum=0))
        callbacks = list(callbacks)
        if not all(callable(cb) for cb in callbacks):
            raise TypeError("callbacks must be callables cb(trainer, metrics)")
        cache: dict[int, dict[str, Any]] = {}

        def evaluated() -> dict[str, Any]:  # one evaluation per step, shared by the log and the history
            if self.step not in cache:
                cache[self.step] = self.evaluate()
            return cache[self.step]

        if self.step in record and self.step not in {h["step"] for h in self.success_history}:
            self.success_history.append(evaluated())
        if self.out is not None and self.step == 0 and self._lines(SUCCESS) == 0:
            self._append(SUCCESS, evaluated())
        history = []
        start = self.step
        while self.step < end:
            metrics = self.rl_step()
            history.append(metrics)
            self._append(LOG, metrics)
            if self.out is not None and (self.step % self.config.eval_steps == 0 or self.step == end):
                self._append(SUCCESS, evaluated())
            if self.step in record:
                self.success_history.append(evaluated())
            if self.step % self.config.save_steps == 0 or self.step == end:
                self.save()
            for cb in callbacks:
                cb(self, metrics)
            if self.progress:
                print(f"\rstep {self.step}/{end}  reward {metrics['reward']:.3f}  "
                      f"{metrics['completions_per_second']:.0f} completions/s", end="", file=sys.stderr, flush=True)
        if self.progress:
            print(file=sys.stderr)
        if self.out is not None and isinstance(self.policy, SavablePolicy) and (
                self.step > start or not (self.out / MODEL).exists()):
            self._save_model()
        return history

    def _save_model(self) -> None:
        """``out/model`` (loadable with ``--model PATH``), written to ``model.tmp`` and renamed."""
        tmp, final = self.out / (MODEL + ".tmp"), self.out / MODEL

        def write() -> None:
            if tmp.exists():
                shutil.rmtree(tmp)
            self.policy.save_pretrained(tmp)
            rundir.write_model_manifest(tmp)
            if final.exists():
                rundir.remove_model(final)  # the files the run saved there, nothing else
            if final.exists():
                raise rundir.RunDirError(f"cannot replace {str(final)!r}: it holds files no run wrote "
                                         f"({', '.join(rundir.foreign_files(self.out))}); the new model is in "
                                         f"{str(tmp)!r}")
            os.replace(tmp, final)

        rundir.guard_write(str(final), write)

    def close(self) -> None:
        """Release the run directory's lock (also done when the trainer is garbage-collected)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> "Trainer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _append(self, name: str, record: dict) -> None:
        if self.out is not None:
            rundir.append_line(self.out / name, record)

    def _lines(self, name: str) -> int:
        return 0 if self.out is None else complete_lines(self.out / name)[0]

    def checkpoint(self) -> dict[str, Any]:
        """The checkpoint: tensors and plain values only (loadable with ``weights_only=True``)."""
        return {
            "step": self.step,
            "config": self.config.to_dict(),
            "scheme": self.scheme.describe(),
            "policy": self.policy.state_dict(),
            "ref": None if self.ref is None else self.ref.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": None if self.scaler is None else self.scaler.state_dict(),
            "rng": {"numpy": self.rng.bit_generator.state, "torch_generator": self.generator.get_state(),
                    "torch": torch.get_rng_state(), "python": list(random.getstate())},
            "log_lines": {LOG: self._lines(LOG), SUCCESS: self._lines(SUCCESS)},
        }

    def save(self) -> Path | None:
        """Write the checkpoint atomically (temporary file, then rename)."""
        if self.out is None:
            return None
        path = self.out / CHECKPOINT
        tmp = path.with_suffix(".pt.tmp")

        def write() -> None:
            with open(tmp, "wb") as fh:  # through a file object, a failed write keeps its OSError
                torch.save(self.checkpoint(), fh)
            os.replace(tmp, path)

        try:
            rundir.guard_write(str(path), write)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return path

    def preconditioner(self):
        """The optimiser's current diagonal preconditioner ``P`` (a step is ``-lr P m``) as a flat
        float64 array over the trainable parameters: Adam's ``1/(sqrt(v_hat) + eps)``
        (:func:`rlvrlens.training.optim.adam_preconditioner`), ``None`` for SGD (``P = 1``) and
        before Adam's first step."""
        if self.config.optim == "sgd":
            return None
        return adam_preconditioner(self.optimizer, trainable_parameters(self.policy))

    def snapshot(self) -> dict[str, Any]:
        """The trainer's state in memory: parameters, optimiser and schedule state, scaler, RNG
        states and step (deep copies; not ``pi_ref``, which never changes), for :meth:`restore`.

        An experiment that repeats one step from the same state takes a snapshot once and restores
        it before each repeat (``rng=False`` keeps the random streams going, so that every repeat
        samples new groups). Logs and the run directory are not part of it.

        Examples
        --------
        >>> from rlvrlens.training import TabularPolicy, Task
        >>> tr = Trainer(TrainConfig(num_generations=4, prompts_per_step=1, optim="sgd", learning_rate=0.5),
        ...              policy=TabularPolicy(["q"], ["yes", "no"]), task=Task("t", ["q"], ["yes"]))
        >>> state = tr.snapshot()
        >>> _ = tr.train(2)
        >>> tr.restore(state)
        >>> tr.step, tr.policy.logits.tolist()
        (0, [[0.0, 0.0]])
        """
        return copy.deepcopy({k: v for k, v in self.checkpoint().items()
                              if k not in ("config", "scheme", "log_lines", "ref")})  # pi_ref never changes

    def restore(self, state: dict[str, Any], *, rng: bool = True) -> None:
        """Return to a :meth:`snapshot`: parameters, optimiser, schedule, scaler and step; the RNG
        states too unless ``rng=False``."""
        if not isinstance(state, dict) or "policy" not in state or "optimizer" not in state:
            raise TypeError("state must be a dict returned by Trainer.snapshot()")
        state = copy.deepcopy(state)
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler") is not None:
            self.scaler.load_state_dict(state["scaler"])
        if rng:
            self._set_rng(state["rng"])
        self.step = state["step"]
        self._schedule_at(self.step)

    def _schedule_at(self, step: int) -> None:
        """The learning rate of optimiser step ``step`` under this config's schedule (a resume may extend
        ``steps``, the linear schedule's horizon)."""
        self.scheduler.last_epoch = step
        for group, base in zip(self.optimizer.param_groups, self.scheduler.base_lrs):
            group["lr"] = base * lr_factor(self.config, step)

    def _set_rng(self, states: dict[str, Any]) -> None:
        self.rng.bit_generator.state = states["numpy"]
        self.generator.set_state(states["torch_generator"])
        torch.set_rng_state(states["torch"])
        version, state, gauss = states["python"]
        random.setstate((version, tuple(state), gauss))

    def _restore(self, ckpt: dict[str, Any]) -> None:
        try:
            self.policy.load_state_dict(ckpt["policy"])
            if self.ref is not None:
                self.ref.load_state_dict(ckpt["ref"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            if ckpt.get("scheduler") is not None:
                self.scheduler.load_state_dict(ckpt["scheduler"])
            self._schedule_at(ckpt["step"])
            if self.scaler is not None and ckpt.get("scaler") is not None:
                self.scaler.load_state_dict(ckpt["scaler"])
            self._set_rng(ckpt["rng"])
        except (KeyError, RuntimeError, TypeError, ValueError) as exc:
            raise ValueError(f"checkpoint {str(self.out / CHECKPOINT)!r} does not fit this run: "
                             f"{_first_line(exc)[:200]}") from None
        self.step = ckpt["step"]
        for name, n in ckpt["log_lines"].items():  # drop lines written after the checkpoint, a partial one too
            rundir.truncate_lines(self.out / name, n)


def _check_finite(policy: Policy, after: str) -> None:
    """Refuse to go on with weights that an update made NaN or inf (a diverged run), naming ``after``."""
    flags = [torch.isfinite(p).all() for p in policy.parameters()]
    if flags and not bool(torch.stack(flags).all()):
        raise ValueError(f"the policy's weights are NaN or inf after {after}: the run diverged")


def _policy_device(policy: Policy) -> torch.device:
    for p in policy.parameters():
        return p.device
    return torch.device("cpu")


def load_policy(path: str | Path) -> tuple[CausalLMPolicy, TrainConfig, int]:
    """The policy of a run directory's checkpoint (or a checkpoint file), its config and step.

    The checkpoint is read with ``weights_only=True``: a file holding anything but tensors and
    plain values is refused without running it.

    Parameters
    ----------
    path : str or Path
        A run directory (its checkpoint file is read) or a checkpoint file.

    Returns
    -------
    policy : CausalLMPolicy
        The policy built from the checkpoint's config, with its weights loaded.
    config : TrainConfig
        The run's config.
    step : int
        The step the checkpoint was saved at.

    Raises
    ------
    FileNotFoundError
        If the checkpoint does not exist.
    ValueError
        If the file is not a checkpoint, its config is unreadable, or its weights do not fit the
        model the config builds.
    """
    path = Path(path)
    file = path / CHECKPOINT if path.is_dir() else path
    ckpt = _safe_load(file)
    try:
        config = TrainConfig.from_dict(ckpt["config"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"checkpoint {str(file)!r} has an unreadable config: {exc}") from None
    policy = build_policy(config)
    try:
        policy.load_state_dict(ckpt["policy"])
    except (RuntimeError, KeyError) as exc:
        raise ValueError(f"checkpoint {str(file)!r} does not fit its model: {_first_line(exc)[:200]}") from None
    return policy, config, ckpt["step"]
