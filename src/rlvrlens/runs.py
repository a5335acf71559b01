"""``explain --run``: a recorded run's per-prompt success against where the theory drives it.

Reads a run directory written by :class:`rlvrlens.training.Trainer` (``config.json``,
``success.jsonl``, ``log.jsonl``) or by TRL with :class:`rlvrlens.training.trl_adapter.PromptSuccessRecorder`
(its ``success_path`` file, same shape with ``prompt_ids``; the run's scheme then comes from a
TRL config). For every prompt: its current ``p`` with the recorded interval (Wilson for estimates;
exact success has none), the point the run's scheme, ``beta`` and KL estimator drive it to from
``p_ref`` = its first recorded ``p`` (:func:`predicted_point`), and whether it gets a learning
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
from rlvrlens.explain import estimator_point, frac_reward_zero_std
from rlvrlens.objectives import WeightScheme, get_scheme

#: Below this distance from 0 or 1 (with the whole interval there) a prompt gets no learning signal.
NO_SIGNAL_P = 1e-3


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """JSON lines, refusing a corrupt line by file and line number (a final partial line is dropped,
    as a killed run leaves it)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            if i == len(lines):
                break  # a partial last line (kill or full disk during a write)
            raise ValueError(f"{path}: line {i} is not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise ValueError(f"{path}: line {i} must be a JSON object")
        out.append(record)
    return out


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


def predicted_point(scheme: WeightScheme, beta: float, p_ref: float, kl_estimator: str) -> tuple[Outcome, float]:
    """Where gradient training with this scheme, ``beta`` and KL estimator drives a prompt from ``p_ref``.

    The estimator-aware stationary point a small-step run reaches from ``pi_ref``
    (:func:`rlvrlens.dynamics.flow_target`, THEORY.md §4): ``exact``/``k2`` the forward KL (the
    map's fixed points, the first one above ``p_ref``, not a 2-cycle's mean), ``k3`` the reverse
    KL, ``k1`` no penalty (p -> 1 while h'_M > 0), ``reward`` (KL folded into the reward) the
    affine-scheme result ``logit p* = logit p_ref + 1/beta``; a scheme for which KL-in-reward has
    no such point (not affine in the rewards) is reported as unresolved (NaN), never as a guess.

    Examples
    --------
    >>> from rlvrlens.objectives import get_scheme
    >>> [round(predicted_point(get_scheme("grpo", 4), 1.0, 0.05, kl)[1], 4) for kl in ("k2", "k3", "k1")]
    [0.1818, 0.3816, 1.0]
    """
    target = estimator_point(scheme, beta if beta > 0 else 1.0, p_ref, kl_estimator)  # k1 ignores beta
    if target is None:
        return Outcome.UNRESOLVED, float("nan")
    return Outcome.FIXED_POINT, float(target.p)


def _scheme_from_config(config: dict[str, Any], where: Path) -> tuple[WeightScheme, float, str]:
    try:
        name, M = config["scheme"], config["num_generations"]
    except KeyError as exc:
        raise ValueError(f"{where}: config lacks {exc.args[0]!r}") from None
    scheme = get_scheme(name, M, **dict(config.get("scheme_params") or {}))
    beta = float(config.get("beta", 0.0))
    kl = "reward" if config.get("kl_in_reward") else str(config.get("kl_estimator", "k3"))
    return scheme, beta, kl


def explain_run(run: str | Path, *, scheme: WeightScheme | None = None, beta: float | None = None,
                kl_estimator: str | None = None) -> RunReport:
    """Read the run in ``run`` (a directory, or a ``success.jsonl``-shaped file) and compare.

    ``scheme``, ``beta``, ``kl_estimator`` override (or, for a TRL run without ``config.json``,
    supply) the run's own configuration.
    """
    run = Path(run)
    if run.is_dir():
        success_file = run / "success.jsonl"
        if not success_file.exists():
            found = sorted(p.name for p in run.glob("*success*.jsonl"))
            if len(found) != 1:
                raise ValueError(f"--run {run}: no success.jsonl (per-prompt success records) in the directory")
            success_file = run / found[0]
        config_file = run / "config.json"
    elif run.exists():
        if run.suffix != ".jsonl":
            raise ValueError(f"--run {run}: expected a run directory or a success .jsonl file")
        success_file, config_file = run, run.parent / "config.json"
    else:
        raise FileNotFoundError(2, "No such file or directory", str(run))
    records = [r for r in read_jsonl(success_file) if "p" in r]
    if not records:
        raise ValueError(f"{success_file}: no per-prompt success records (lines with 'p')")
    notes: list[str] = []
    if config_file.exists():
        config = json.loads(config_file.read_text(encoding="utf-8"))
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
    sizes = {len(r["p"]) for r in records}
    if len(sizes) != 1:
        raise ValueError(f"{success_file}: records have different numbers of prompts {sorted(sizes)}")
    history = np.array([r["p"] for r in records], dtype=float)
    steps = np.array([r.get("step", i) for i, r in enumerate(records)], dtype=float)
    last = records[-1]
    n = history.shape[1]
    low = np.asarray(last.get("low", history[-1]), dtype=float)
    high = np.asarray(last.get("high", history[-1]), dtype=float)
    ids = tuple(str(x) for x in last.get("prompt_ids", range(n)))
    p_ref = history[0]
    estimated = str(records[0].get("method", "exact")) != "exact"
    undetermined = estimated & ((p_ref <= 0) | (p_ref >= 1))
    if undetermined.any():
        notes.append(f"{int(undetermined.sum())} prompt(s) had an estimated first p of exactly 0 or 1 (all samples "
                     "alike): their p_ref is not known well enough to predict (shown as unresolved)")
    preds = [predicted_point(scheme, beta, float(p), kl if beta > 0 else "k1") if not bad
             else (Outcome.UNRESOLVED, float("nan")) for p, bad in zip(p_ref, undetermined)]
    if beta <= 0:
        notes.append("beta = 0: no KL anchor, the theory predicts p -> 1 wherever h'_M > 0 (no finite fixed point)")
    elif kl == "k1":
        notes.append("KL estimator k1 as a loss term: its gradient has expectation zero, so no penalty (p -> 1)")
    elif kl == "k3":
        notes.append("KL estimator k3 as a loss term: the gradient of the reverse KL(pi_ref || pi), whose "
                     "stationary point solves p(1-p) h'_M(p) = beta (p - p_ref)")
    no_signal = (high <= NO_SIGNAL_P) | (low >= 1 - NO_SIGNAL_P)
    measured = None
    log_file = success_file.parent / "log.jsonl"
    if log_file.exists():
        values = [r["frac_reward_zero_std"] for r in read_jsonl(log_file) if "frac_reward_zero_std" in r]
        measured = float(np.mean(values)) if values else None
    groups = success_file.parent / "groups.jsonl"
    if measured is None and groups.exists():
        rows = [r for r in read_jsonl(groups) if r.get("split") == "train" and "rewards" in r]
        measured = float(np.mean([len(set(r["rewards"])) == 1 for r in rows])) if rows else None
    predicted_zero = float(np.mean(frac_reward_zero_std(history, scheme.M)))
    return RunReport(str(run), scheme, beta, kl, steps, history, ids, p_ref, history[-1], low, high,
                     np.array([p for _, p in preds]), tuple(o for o, _ in preds), no_signal, measured,
                     predicted_zero, tuple(notes))
