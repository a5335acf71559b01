"""``explain --run``: a recorded run's per-prompt success against where the theory drives it.

Reads a run directory written by :class:`rlvrlens.training.Trainer` (``config.json``,
``success.jsonl``, ``log.jsonl``) or by TRL with :class:`rlvrlens.training.trl_adapter.PromptSuccessRecorder`
(its ``success_path`` file, same shape with ``prompt_ids``; the run's scheme then comes from a
TRL config). For every prompt: its current ``p`` with the recorded interval (Wilson for estimates;
exact success has none), the point the run's scheme, ``beta`` and KL estimator drive it to from
``p_ref`` = its first recorded ``p`` (:func:`rlvrlens.explain.estimator_point`), and whether it gets a learning
signal (``p`` in ``{0, 1}`` gives all-equal groups: no gradient for group-baselined schemes).
The measured fraction of zero-variance groups (``frac_reward_zero_std`` of ``log.jsonl``, or the
per-group records of the TRL recorder) is compared with ``mean(p^M + (1-p)^M)`` over the prompts.
Reads JSON only (nothing executable); no torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlvrlens.dynamics import Outcome
from rlvrlens.core.kl import STATIONARY_CONDITION, check_beta, treatment_of
from rlvrlens.core.records import CONFIG, GROUPS, LOG, SUCCESS, load_json, read_jsonl
from rlvrlens.explain.report import estimator_point
from rlvrlens.objectives import WeightScheme, frac_reward_zero_std, get_scheme

#: Below this distance from 0 or 1 (with the whole interval there) a prompt gets no learning signal.
NO_SIGNAL_P = 1e-3


@dataclass(frozen=True, eq=False)
class RunReport:
    """Per-prompt measured against predicted (see the module docstring); arrays are per prompt."""

    run: str
    scheme: WeightScheme
    beta: float
    kl_estimator: str
    steps: np.ndarray
    history: np.ndarray
    prompt_ids: tuple[str, ...]
    p_ref: np.ndarray
    p_now: np.ndarray
    low: np.ndarray
    high: np.ndarray
    predicted: np.ndarray
    outcome: tuple[Outcome, ...]
    no_signal: np.ndarray
    zero_std_measured: float | None
    zero_std_predicted: float
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        def arr(x):
            return np.asarray(x, dtype=float).tolist()

        return {"run": self.run, "scheme": self.scheme.name, "M": self.scheme.M, "beta": self.beta,
                "kl_estimator": self.kl_estimator, "steps": arr(self.steps), "prompt_ids": list(self.prompt_ids),
                "p_ref": arr(self.p_ref), "p_now": arr(self.p_now), "low": arr(self.low), "high": arr(self.high),
                "predicted": arr(self.predicted), "outcome": [o.label for o in self.outcome],
                "no_signal": [bool(x) for x in self.no_signal],
                "frac_reward_zero_std": {"measured": self.zero_std_measured, "predicted": self.zero_std_predicted},
                "notes": list(self.notes)}


def _read_config(path: Path) -> dict[str, Any]:
    """A run's ``config.json`` as a mapping; one line naming the file when it is not one."""
    try:
        config = load_json(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a text file ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: not an rlvrlens run config (a JSON object), got {type(config).__name__}")
    return config


def _probabilities(values: Any, key: str, where: Path) -> np.ndarray:
    """The records' ``key`` values as a float array of probabilities, or one line naming the file."""
    try:
        arr = np.array(values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: '{key}' must hold numbers in [0, 1], got {str(values)[:60]}") from None
    bad = ~((arr >= 0) & (arr <= 1))  # NaN included
    if bad.any():
        raise ValueError(f"{where}: '{key}' must hold probabilities in [0, 1], got {arr[bad].ravel()[0]}")
    return arr


def _scheme_from_config(config: dict[str, Any], where: Path) -> tuple[WeightScheme, float, str]:
    """The scheme, beta and KL estimator of a run's ``config.json`` (every field the trainer writes)."""
    missing = [k for k in ("scheme", "num_generations", "scheme_params", "beta", "kl_estimator", "kl_in_reward")
               if k not in config]
    if missing:
        raise ValueError(f"{where}: not an rlvrlens run config (it lacks {', '.join(missing)})")
    try:
        params = config["scheme_params"] or {}
        if not isinstance(params, dict):
            raise TypeError(f"scheme_params must be an object, got {params!r}")
        scheme = get_scheme(config["scheme"], config["num_generations"], **params)
        beta = check_beta(config["beta"], zero=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from None
    kl = "reward" if config["kl_in_reward"] else str(config["kl_estimator"])
    return scheme, beta, kl


def explain_run(run: str | Path, *, scheme: WeightScheme | None = None, beta: float | None = None,
                kl_estimator: str | None = None) -> RunReport:
    """Read the run in ``run`` (a directory, or a ``success.jsonl``-shaped file) and compare.

    ``scheme``, ``beta``, ``kl_estimator`` override (or, for a TRL run without ``config.json``,
    supply) the run's own configuration.
    """
    run = Path(run)
    if run.is_dir():
        success_file = run / SUCCESS
        if not success_file.exists():
            found = sorted(p.name for p in run.glob("*success*.jsonl"))
            if len(found) != 1:
                raise ValueError(f"--run {run}: no success.jsonl (per-prompt success records) in the directory")
            success_file = run / found[0]
        config_file = run / CONFIG
    elif run.exists():
        if run.suffix != ".jsonl":
            raise ValueError(f"--run {run}: expected a run directory or a success .jsonl file")
        success_file, config_file = run, run.parent / CONFIG
    else:
        raise FileNotFoundError(2, "No such file or directory", str(run))
    records = [r for r in read_jsonl(success_file) if "p" in r]
    if not records:
        raise ValueError(f"{success_file}: no per-prompt success records (lines with 'p')")
    notes: list[str] = []
    if config_file.exists():
        config = _read_config(config_file)
        cfg_scheme, cfg_beta, cfg_kl = _scheme_from_config(config, config_file)
        if (cfg_beta > 0 and cfg_kl in ("k2", "k3") and config.get("kl_level", "token") == "token"
                and not config.get("kl_in_reward")):
            notes.append(f"{cfg_kl} was applied to each token's log-ratio (kl_level 'token'): the prediction is the "
                         "sequence-level one, exact for one-token answers only (the per-token sum drops the cross "
                         "terms between tokens; kl_level 'sequence' removes the difference)")
    elif scheme is None:
        raise ValueError(f"--run {run}: no config.json; say which scheme the run used (--trl-config FILE, or "
                         "--preset NAME --num-generations M --beta B)")
    else:
        cfg_scheme, cfg_beta, cfg_kl = scheme, 0.0, "k3"
    scheme = scheme or cfg_scheme
    beta = cfg_beta if beta is None else float(beta)
    kl = kl_estimator or cfg_kl
    if not all(isinstance(r["p"], list) and r["p"] for r in records):
        raise ValueError(f"{success_file}: every record's 'p' must be a non-empty list of probabilities")
    sizes = {len(r["p"]) for r in records}
    if len(sizes) != 1:
        raise ValueError(f"{success_file}: records have different numbers of prompts {sorted(sizes)}")
    history = _probabilities([r["p"] for r in records], "p", success_file)
    steps = np.array([r.get("step", i) for i, r in enumerate(records)], dtype=object)
    if not all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in steps):
        raise ValueError(f"{success_file}: every record's 'step' must be a number")
    steps = steps.astype(float)
    last = records[-1]
    n = history.shape[1]
    low = _probabilities(last.get("low", history[-1]), "low", success_file)
    high = _probabilities(last.get("high", history[-1]), "high", success_file)
    ids = tuple(str(x) for x in last.get("prompt_ids", range(n)))
    p_ref = history[0]
    estimated = str(records[0].get("method", "exact")) != "exact"
    undetermined = estimated & ((p_ref <= 0) | (p_ref >= 1))
    if undetermined.any():
        notes.append(f"{int(undetermined.sum())} prompt(s) had an estimated first p of exactly 0 or 1 (all samples "
                     "alike): their p_ref is not known well enough to predict (shown as unresolved)")
    preds = []
    for p, bad in zip(p_ref, undetermined):  # beta = 0: the penalty-free flow (k1's point, p -> 1)
        point = None if bad else estimator_point(scheme, beta if beta > 0 else 1.0, float(p), kl if beta > 0 else "k1")
        preds.append((Outcome.UNRESOLVED, float("nan")) if point is None else (Outcome.FIXED_POINT, float(point.p)))
    if beta <= 0:
        notes.append("beta = 0: no KL anchor, the theory predicts p -> 1 wherever h'_M > 0 (no finite fixed point)")
    else:
        notes.append(f"KL estimator {kl}: {STATIONARY_CONDITION[treatment_of(kl)]}")
    no_signal = (high <= NO_SIGNAL_P) | (low >= 1 - NO_SIGNAL_P)
    measured = None
    log_file = success_file.parent / LOG
    if log_file.exists():
        values = [r["frac_reward_zero_std"] for r in read_jsonl(log_file) if "frac_reward_zero_std" in r]
        measured = float(np.mean(_probabilities(values, "frac_reward_zero_std", log_file))) if values else None
    groups = success_file.parent / GROUPS
    if measured is None and groups.exists():
        rows = [r["rewards"] for r in read_jsonl(groups) if r.get("split") == "train" and "rewards" in r]
        if not all(isinstance(rewards, list) and all(isinstance(x, (int, float)) for x in rewards) for rewards in rows):
            raise ValueError(f"{groups}: every group's 'rewards' must be a list of numbers")
        measured = float(np.mean([len(set(rewards)) == 1 for rewards in rows])) if rows else None
    predicted_zero = float(np.mean(frac_reward_zero_std(history, scheme.M)))
    return RunReport(str(run), scheme, beta, kl, steps, history, ids, p_ref, history[-1], low, high,
                     np.array([p for _, p in preds]), tuple(o for o, _ in preds), no_signal, measured,
                     predicted_zero, tuple(notes))
