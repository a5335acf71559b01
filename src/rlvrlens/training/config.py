"""The trainer's configuration: one dataclass, option names as in TRL's ``GRPOConfig`` where the
meaning is the same. Imports no torch (the CLI builds its flags from it)."""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlvrlens.core.budget import MAX_PROMPTS
from rlvrlens.core.checks import check_float32, check_int
from rlvrlens.core.kl import KL_ESTIMATORS, KL_LEVELS, check_estimator
from rlvrlens.core.records import load_json

#: Loss aggregation modes (see :func:`rlvrlens.training.losses.aggregate`): GRPO's per-sequence
#: token mean, TRL's ``bnpo`` (token mean of each micro-batch), DAPO's token mean over the whole
#: step's batch, and Dr. GRPO's per-sequence sum over a fixed constant.
AGGREGATIONS = ("seq-mean-token-mean", "bnpo", "dapo", "seq-sum-constant")
#: Other accepted names (TRL's ``loss_type`` values; ``token-mean`` is the old name of ``bnpo``).
AGGREGATION_ALIASES = {"token-mean": "bnpo", "grpo": "seq-mean-token-mean", "dr_grpo": "seq-sum-constant"}
#: Optimisers (``optim``; TRL/Hugging Face's ``adamw_torch`` is accepted for ``adamw``).
OPTIMIZERS = ("adamw", "adam", "sgd")
OPTIMIZER_ALIASES = {"adamw_torch": "adamw"}
#: Learning-rate schedules (``lr_scheduler_type``, Hugging Face's names): constant, or linear decay to 0
#: at ``steps`` (TRL's default); both after ``warmup_steps`` of linear warm-up from 0.
LR_SCHEDULERS = ("constant", "linear")
#: Architectures of a fresh model (``CausalLMPolicy.from_config``).
ARCHS = ("gpt2", "llama")
#: Autocast precisions (``fp32``: none).
PRECISIONS = ("fp32", "bf16", "fp16")
#: Warm-start steps of a fresh model when ``warm_start_steps`` is not given (a ``--model`` gets 0).
DEFAULT_WARM_START_STEPS = 60


@dataclass
class TrainConfig:
    """Everything a run depends on (saved in each checkpoint and in ``config.json``).

    Task and model
        task: built-in task name (``mod``, ``add``, ``cot``) or a ``.jsonl`` file of {prompt, answer}.
        n_prompts, task_seed: size and seed of a built-in task. verifier: for JSONL tasks.
        model: a local model directory (``save_pretrained`` layout); ``None`` builds a fresh
        ``arch`` (``gpt2``/``llama``) model of ``n_layer`` layers and ``width`` from config.
        chat_template: wrap prompts in the ``model``'s chat template (``None``: whenever its
        tokenizer has one, i.e. for instruct models; ``False``: raw prompts). Needs ``model``.
        warm_start_steps, warm_start_fraction, warm_start_lr: SFT on a fraction of the prompts before
        RL (the result is pi_ref); 0 steps skips it. ``None`` (the default) means 60 for a fresh
        model and 0 for a ``model``; the recorded config holds the number applied.
        device: ``cpu``, ``cuda`` or ``cuda:N`` for the model the trainer builds (``None``: the CPU,
        or a given policy's own device). precision: autocast of the forward passes, ``fp32``
        (none), ``bf16`` (CPU or CUDA) or ``fp16`` (CUDA, with loss scaling); sampling and scoring run
        under autocast, the logged success probabilities in full precision. gradient_checkpointing:
        recompute activations in the backward pass (less memory, more time; transformers models).
    The update (THEORY.md §1, §3)
        scheme, scheme_params: a catalogue weight scheme by name (``rlvrlens.objectives.get_scheme``).
        num_generations: M, completions per prompt (TRL's name; the papers' G or M).
        prompts_per_step: groups per RL step. gradient_accumulation_steps: micro-batches per step.
        num_iterations: mu, optimisation epochs on each batch (TRL's name); > 1 uses the importance
        ratio pi_theta/pi_old and clipping with epsilon_low, epsilon_high (DAPO's clip-higher).
        beta: KL coefficient to pi_ref (0: no reference model). kl_estimator: ``k1``/``k2``/``k3``
        per token, or ``exact`` (sequence-level KL; policies with ``sequence_kl``). kl_level:
        ``token`` (the estimator on each token's log-ratio, summed: TRL and verl) or ``sequence`` (on
        the sequence's log-ratio: the gradients of THEORY.md §4 for answers of any length; see
        :func:`rlvrlens.training.losses.sequence_kl_estimate`); ``exact`` is sequence-level. kl_in_reward:
        subtract ``beta * KL`` of the sequence from its reward instead (REINFORCE++): the sampled
        ``log(pi/pi_ref)`` summed over the sequence, or with ``exact`` the prompt's exact KL.
        loss_aggregation: ``seq-mean-token-mean`` (GRPO), ``bnpo`` (TRL: token mean per
        micro-batch; old name ``token-mean``), ``dapo`` (token mean over the step's whole batch, so
        gradient accumulation does not change it) or ``seq-sum-constant`` (Dr. GRPO; divides by
        ``aggregation_constant``, default ``max_new_tokens`` as TRL's ``max_completion_length``).
        Only ``seq-sum-constant`` keeps ``E[update] = h'_M(p) grad p`` exact when completion
        lengths vary: the others divide by a random token count (THEORY.md §3). With constant 1 the
        gradient is exactly the theory's ``(1/M) sum_i Z_i grad log pi(y_i|x)`` averaged over groups.
    The optimiser (Hugging Face ``TrainingArguments`` names, as TRL's ``GRPOConfig`` inherits them)
        optim: ``adamw`` (the default, ``torch.optim.AdamW``; ``adamw_torch`` accepted), ``adam``
        (``torch.optim.Adam``: ``weight_decay`` added to the gradient, L2) or ``sgd`` (plain
        ``torch.optim.SGD``, no momentum: the system the kernel model of THEORY.md §4 describes).
        learning_rate; adam_beta1, adam_beta2 (0.9, 0.999), adam_epsilon (1e-8): Adam's moments;
        weight_decay (0: TRL's default; decoupled for ``adamw``). lr_scheduler_type: ``constant`` (the
        default here) or ``linear`` (TRL's default: decay to 0 at ``steps``); warmup_steps: linear
        warm-up from 0 first. max_grad_norm: clipping of the gradient norm (0 disables).
    Sampling, logging
        temperature, top_p, max_new_tokens (``None``: the task's). The scores, ratios and KL of the
        loss use the distribution that sampled: logits divided by ``temperature`` (as TRL), and
        for the policy the ``top_p`` nucleus renormalised. seed: everything random.
        eval_steps: record per-prompt success every this many steps (and at 0 and the end);
        eval_samples: K for tasks without exact success. save_steps: checkpoint period.
    """

    task: str = "mod"
    n_prompts: int = 24
    task_seed: int = 0
    verifier: str = "exact"
    model: str | None = None
    chat_template: bool | None = None
    arch: str = "gpt2"
    n_layer: int = 2
    width: int = 64
    n_head: int = 2
    warm_start_steps: int | None = None
    warm_start_fraction: float = 0.5
    warm_start_lr: float = 3e-3
    scheme: str = "grpo"
    scheme_params: dict[str, Any] = field(default_factory=dict)
    num_generations: int = 8
    prompts_per_step: int = 8
    gradient_accumulation_steps: int = 1
    num_iterations: int = 1
    epsilon_low: float = 0.2
    epsilon_high: float = 0.2
    beta: float = 0.0
    kl_estimator: str = "k3"
    kl_level: str = "token"
    kl_in_reward: bool = False
    loss_aggregation: str = "seq-mean-token-mean"
    aggregation_constant: float | None = None
    optim: str = "adamw"
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    lr_scheduler_type: str = "constant"
    warmup_steps: int = 0
    max_grad_norm: float = 1.0
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int | None = None
    steps: int = 50
    seed: int = 0
    eval_steps: int = 10
    eval_samples: int = 64
    save_steps: int = 10
    device: str | None = None
    precision: str = "fp32"
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        if self.warm_start_steps is None:
            self.warm_start_steps = 0 if self.model else DEFAULT_WARM_START_STEPS
        self.loss_aggregation = AGGREGATION_ALIASES.get(self.loss_aggregation, self.loss_aggregation)
        self.optim = OPTIMIZER_ALIASES.get(self.optim, self.optim)
        check_int("n_prompts", self.n_prompts, maximum=MAX_PROMPTS)
        for name in ("n_layer", "width", "n_head", "num_generations", "prompts_per_step",
                     "gradient_accumulation_steps", "num_iterations", "eval_steps", "eval_samples", "save_steps"):
            check_int(name, getattr(self, name))
        for name in ("warm_start_steps", "steps", "seed", "task_seed", "warmup_steps"):
            check_int(name, getattr(self, name), minimum=0)
        if self.prompts_per_step % self.gradient_accumulation_steps:
            raise ValueError("prompts_per_step must be divisible by gradient_accumulation_steps, got "
                             f"{self.prompts_per_step} and {self.gradient_accumulation_steps}")
        check_float32("warm_start_fraction", self.warm_start_fraction, low=0, high=1, low_open=True)
        check_float32("warm_start_lr", self.warm_start_lr, low=0, low_open=True)
        check_float32("epsilon_low", self.epsilon_low, low=0, high=1)
        check_float32("epsilon_high", self.epsilon_high, low=0)
        check_float32("beta", self.beta, low=0)
        check_float32("learning_rate", self.learning_rate, low=0, low_open=True)
        check_float32("max_grad_norm", self.max_grad_norm, low=0)
        check_float32("temperature", self.temperature, low=0, low_open=True)
        check_float32("top_p", self.top_p, low=0, high=1, low_open=True)
        check_estimator(self.kl_estimator, KL_ESTIMATORS)
        check_estimator(self.kl_level, KL_LEVELS, name="kl_level")
        check_estimator(self.optim, OPTIMIZERS + tuple(OPTIMIZER_ALIASES), name="optim")
        check_estimator(self.lr_scheduler_type, LR_SCHEDULERS, name="lr_scheduler_type")
        if self.kl_level != "token" and (self.beta == 0 or self.kl_estimator == "exact"):
            raise ValueError(f"kl_level {self.kl_level!r} applies to a sampled KL estimator (k1, k2, k3) with beta > 0; "
                             f"got beta={self.beta}, kl_estimator={self.kl_estimator!r}")
        if self.kl_in_reward and self.kl_estimator == "exact":
            raise ValueError("kl_in_reward needs a per-sequence KL estimate (kl_estimator k1, k2 or k3): the exact "
                             "KL is one number per prompt, a constant within each group that group-relative "
                             "schemes cancel; use kl_estimator 'exact' with kl_in_reward false (a loss term)")
        if self.loss_aggregation not in AGGREGATIONS:
            raise ValueError(f"loss_aggregation must be one of {AGGREGATIONS} (or {sorted(AGGREGATION_ALIASES)}), "
                             f"got {self.loss_aggregation!r}")
        if self.aggregation_constant is not None:
            check_float32("aggregation_constant", self.aggregation_constant, low=0, low_open=True)
        check_float32("adam_beta1", self.adam_beta1, low=0, high=1, high_open=True)
        check_float32("adam_beta2", self.adam_beta2, low=0, high=1, high_open=True)
        check_float32("adam_epsilon", self.adam_epsilon, low=0, low_open=True)
        check_float32("weight_decay", self.weight_decay, low=0)
        if self.max_new_tokens is not None:
            check_int("max_new_tokens", self.max_new_tokens)
        if not isinstance(self.scheme_params, dict):
            raise TypeError(f"scheme_params must be a table of scheme parameters, got {self.scheme_params!r}")
        if self.device is not None and not re.fullmatch(r"cpu|cuda(:\d+)?", str(self.device)):
            raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")
        if self.chat_template is not None:
            if not isinstance(self.chat_template, bool):
                raise TypeError(f"chat_template must be true, false or unset, got {self.chat_template!r}")
            if not self.model:
                raise ValueError("chat_template applies to a pretrained model: give model (--model) or leave it unset")
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {self.arch!r}")
        if self.width % self.n_head:
            raise ValueError(f"width must be divisible by n_head, got width={self.width}, n_head={self.n_head}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        for name in ("kl_in_reward", "gradient_checkpointing"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be true or false, got {getattr(self, name)!r}")
        for name in ("task", "verifier", "arch", "scheme", "kl_estimator", "kl_level", "optim", "lr_scheduler_type"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a string, got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config option(s): {', '.join(unknown)}")
        return cls(**data)

    @staticmethod
    def read_fields(path: str | Path) -> dict[str, Any]:
        """The fields a file sets, unvalidated: a ``.json`` object (a run's ``config.json``), a TOML
        file (any other name; top-level keys are field names, ``[scheme_params]`` a table), or a
        run directory (its ``config.json``). One-line errors for a missing, unreadable or invalid file."""
        path = Path(path)
        if path.is_dir():
            path = path / "config.json"
        is_json = path.suffix == ".json"
        try:
            if is_json:
                data = load_json(path.read_text())
            else:
                with open(path, "rb") as fh:
                    data = tomllib.load(fh)
        except FileNotFoundError:
            raise FileNotFoundError(f"config file {str(path)!r} does not exist") from None
        except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"config file {str(path)!r} is not valid {'JSON' if is_json else 'TOML'}: {exc}") from None
        except RecursionError:  # tomllib's parser
            raise ValueError(f"config file {str(path)!r} is nested too deeply to be a config") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise OSError(f"cannot read config file {str(path)!r}: {getattr(exc, 'strerror', None) or exc}") from None
        if not isinstance(data, dict):
            raise ValueError(f"config file {str(path)!r} must hold an object of TrainConfig fields")
        return data

    @classmethod
    def from_toml(cls, path: str | Path) -> "TrainConfig":
        """Read a TOML file whose top-level keys are field names (``[scheme_params]`` a table)."""
        return cls.from_file(path)

    @classmethod
    def from_json(cls, path: str | Path) -> "TrainConfig":
        """Read a JSON object of field names, e.g. a run directory's ``config.json``."""
        return cls.from_file(path)

    @classmethod
    def from_file(cls, path: str | Path) -> "TrainConfig":
        """The config a ``.json`` file or a run directory (its ``config.json``) or a TOML file records;
        an invalid field is refused naming the file."""
        data = cls.read_fields(path)
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as exc:
            where = Path(path) / "config.json" if Path(path).is_dir() else Path(path)
            raise ValueError(f"config file {str(where)!r}: {exc}") from None

    def differences(self, other: "TrainConfig", *, ignore: tuple[str, ...] = ()) -> list[str]:
        """``"field: self's value -> other's value"`` for each field that differs (``ignore`` left out).

        Examples
        --------
        >>> TrainConfig(beta=0.0).differences(TrainConfig(beta=0.1))
        ['beta: 0.0 -> 0.1']
        """
        a, b = self.to_dict(), other.to_dict()
        return [f"{k}: {a[k]!r} -> {b[k]!r}" for k in a if k not in ignore and a[k] != b[k]]
