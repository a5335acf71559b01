"""What a recorded run holds, read from any of the formats ``explain --run`` accepts.

* **rlvrlens runs** (:class:`rlvrlens.training.Trainer`): ``success.jsonl`` (per-prompt success at
  evaluation steps, exact or estimated with Wilson bounds), ``config.json``, ``log.jsonl``.
* **TRL runs** (:class:`rlvrlens.training.trl_adapter.PromptSuccessRecorder`): ``groups.jsonl`` (one
  line per sampled group), ``success.jsonl`` when TRL evaluated, and ``scheme.json`` /
  ``trl_config.json`` (the scheme the adapter used, the TRL arguments that matter).
* **verl runs** (:mod:`rlvrlens.training.verl_plugin`): ``groups.jsonl`` in the same shape and
  ``scheme.json``; verl's ``uid`` is drawn afresh for every sampled prompt, so those records have
  per-prompt trajectories only where the run records a stable ``prompt_id``.
* **Plain JSONL of rewards** (a verl or OpenRLHF user's own logs, the format small audit tools use):
  one line per sampled group, ``{"step": 12, "prompt_id": "q17", "rewards": [0, 1, 0, 0]}``
  (extra keys ignored). Groups are pooled per prompt over windows of steps
  (:data:`DEFAULT_WINDOWS` windows unless ``window`` is given): ``p`` is the mean reward with its
  Wilson 95% interval, ``M`` the group size.

A folder is read as a run by its files; a ``.jsonl`` file by its lines (``"p"``: success records,
``"rewards"``: groups). Reads JSON only (nothing executable).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlvrlens.core.intervals import wilson_interval
from rlvrlens.core.records import CONFIG, FORECAST, GROUPS, LOG, SCHEME, SUCCESS, TRL_ARGS, load_json, read_jsonl

#: Groups of a rewards JSONL are pooled over this many windows of steps by default.
DEFAULT_WINDOWS = 8


@dataclass(frozen=True, eq=False)
class RunRecords:
    """A run's per-prompt success over time and what it records of itself.

    Attributes
    ----------
    kind : str
        ``"rlvrlens"``, ``"trl"``, ``"verl"`` (records of rlvrlens's verl plugin) or ``"rewards"`` (a plain
        JSONL of per-group rewards).
    source : Path
        The file the success came from.
    steps : ndarray (R,)
        Step of each record (for rewards: the mean step of each window's groups).
    p, low, high : ndarray (R, N)
        Success per record and prompt (NaN where a prompt was not sampled in a window); ``low`` =
        ``high`` = ``p`` for exact success.
    samples : ndarray (R, N) or None
        Rewards pooled into each cell (rewards format), None otherwise.
    prompt_ids : tuple of str
    method : str
        ``"exact"`` or how ``p`` was estimated (``"estimate(K=64)"``, ``"rewards in windows of 5 steps"``).
    M : int or None
        Group size, where the records say it.
    zero_std : float or None
        Measured fraction of groups with all-equal rewards (``frac_reward_zero_std``).
    config, scheme, trl_args : dict or None
        ``config.json`` (a TrainConfig), ``scheme.json`` and ``trl_config.json``, where present.
    forecast : Path or None
        ``forecast.json`` next to the records.
    notes : tuple of str
    """

    kind: str
    source: Path
    steps: np.ndarray
    p: np.ndarray
    low: np.ndarray
    high: np.ndarray
    samples: np.ndarray | None
    prompt_ids: tuple[str, ...]
    method: str
    M: int | None
    zero_std: float | None
    config: dict[str, Any] | None
    scheme: dict[str, Any] | None
    trl_args: dict[str, Any] | None
    forecast: Path | None
    notes: tuple[str, ...] = ()

    @property
    def exact(self) -> bool:
        return self.method == "exact"


def _json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = load_json(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a text file ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: must hold a JSON object")
    return data


def _first_record(path: Path) -> dict[str, Any] | None:
    rows = read_jsonl(path)
    return rows[0] if rows else None


def read_run(run: str | Path, *, window: int | None = None) -> RunRecords:
    """Read the run ``run`` (a folder or a ``.jsonl`` file; module docstring).

    A folder is read from its ``success.jsonl`` (per-prompt success; or its only ``*success*.jsonl``)
    or else its ``groups.jsonl`` (per-group rewards), with the ``config``, ``scheme``, TRL args and
    forecast files beside it. A ``.jsonl`` file holds success records (lines with ``"p"``) or one
    line per group (``"prompt_id"`` and ``"rewards"``).

    Parameters
    ----------
    run : str or Path
        The run folder or ``.jsonl`` file.
    window : int, optional
        For rewards: pool each prompt's groups over windows of this many steps (``>= 1``); default
        :data:`DEFAULT_WINDOWS` windows over the run.

    Returns
    -------
    RunRecords
        Per-prompt success over steps, with what was recorded beside it.

    Raises
    ------
    FileNotFoundError
        For a path that does not exist.
    ValueError
        One line naming the file for anything else that is not a run.
    """
    run = Path(run)
    if not run.exists():
        raise FileNotFoundError(2, "No such file or directory", str(run))
    if run.is_dir():
        folder = run
        success = run / SUCCESS
        if not success.exists():
            found = sorted(p for p in run.glob("*success*.jsonl"))
            success = found[0] if len(found) == 1 else None
        groups = run / GROUPS if (run / GROUPS).exists() else None
        if success is not None and groups is not None and not read_jsonl(success):
            success = None  # an empty success file beside the groups' rewards: read the rewards
        if success is None and groups is None:
            raise ValueError(f"--run {run}: no success.jsonl (per-prompt success) nor groups.jsonl (per-group rewards) "
                             "in the folder")
    else:
        if run.suffix != ".jsonl":
            raise ValueError(f"--run {run}: expected a run folder or a .jsonl file of success records or rewards")
        folder = run.parent
        first = _first_record(run) or {}
        success, groups = (run, None) if "p" in first else (None, run)
        if "p" not in first and not {"rewards", "prompt_id"} <= set(first):
            raise ValueError(f"--run {run}: its first line has neither 'p' (success records) nor 'prompt_id' and "
                             "'rewards' (one line per group)")
    meta = {"config": _json(folder / CONFIG), "scheme": _json(folder / SCHEME),
            "trl_args": _json(folder / TRL_ARGS),
            "forecast": folder / FORECAST if (folder / FORECAST).is_file() else None}
    rows = read_jsonl(groups) if groups is not None else []
    zero = _zero_std(folder, rows)
    if success is not None:
        return _from_success(success, meta, zero, rows)
    return _from_rewards(groups, rows, meta, zero, window)


def _zero_std(folder: Path, rows: list[dict[str, Any]]) -> float | None:
    log = folder / LOG
    if log.exists():
        values = [r["frac_reward_zero_std"] for r in read_jsonl(log) if "frac_reward_zero_std" in r]
        if values:
            return float(np.mean(_probabilities(values, "frac_reward_zero_std", log)))
    train = [r for r in rows if r.get("split", "train") == "train" and "rewards" in r]
    if not all(isinstance(r["rewards"], list) and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                      for x in r["rewards"]) for r in train):
        raise ValueError(f"{folder / GROUPS}: every group's 'rewards' must be a list of numbers")
    return float(np.mean([len(set(r["rewards"])) == 1 for r in train])) if train else None


def _from_success(path: Path, meta: dict[str, Any], zero: float | None, rows: list[dict[str, Any]]) -> RunRecords:
    records = [r for r in read_jsonl(path) if "p" in r]
    if not records:
        raise ValueError(f"{path}: no per-prompt success records (lines with 'p')")
    if not all(isinstance(r["p"], list) and r["p"] for r in records):
        raise ValueError(f"{path}: every record's 'p' must be a non-empty list of probabilities")
    sizes = {len(r["p"]) for r in records}
    if len(sizes) != 1:
        raise ValueError(f"{path}: records have different numbers of prompts {sorted(sizes)}")
    p = _probabilities([r["p"] for r in records], "p", path)
    low = _probabilities([r.get("low", r["p"]) for r in records], "low", path)
    high = _probabilities([r.get("high", r["p"]) for r in records], "high", path)
    steps = [r.get("step", i) for i, r in enumerate(records)]
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in steps):
        raise ValueError(f"{path}: every record's 'step' must be a finite number")
    steps = np.array(steps, dtype=float)
    ids = tuple(str(x) for x in records[-1].get("prompt_ids", range(p.shape[1])))
    method = str(records[0].get("method", "exact"))
    kind = _kind(records[-1].get("source"), meta["scheme"], "rlvrlens")
    config = meta["config"]
    M = config.get("num_generations") if config else _group_size(rows)[0] if rows else None
    return RunRecords(kind, path, steps, p, low, high, None, ids, method, M, zero, config, meta["scheme"],
                      meta["trl_args"], meta["forecast"])


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


def _kind(source: Any, scheme: dict[str, Any] | None, default: str) -> str:
    """``"trl"`` or ``"verl"`` when the records or their ``scheme.json`` say so, else ``default``."""
    source = source or (scheme or {}).get("source")
    return source if source in ("trl", "verl") else default


def _group_size(rows: list[dict[str, Any]]) -> tuple[int, str | None]:
    sizes = Counter(len(r["rewards"]) for r in rows)
    M = sizes.most_common(1)[0][0]
    note = None if len(sizes) == 1 else (f"groups of different sizes {sorted(sizes)}: M = {M}, the most common")
    return M, note


def _from_rewards(path: Path, rows: list[dict[str, Any]], meta: dict[str, Any], zero: float | None,
                  window: int | None) -> RunRecords:
    for i, r in enumerate(rows, 1):
        missing = [k for k in ("step", "prompt_id", "rewards") if k not in r]
        if missing:
            raise ValueError(f"{path}: line {i} lacks {', '.join(missing)} (each line: {{\"step\", \"prompt_id\", "
                             "\"rewards\": [0, 1, ...]}})")
        if not isinstance(r["rewards"], list) or not r["rewards"] or any(x not in (0, 1) for x in r["rewards"]):
            raise ValueError(f"{path}: line {i}: rewards must be a non-empty list of 0/1, got {r['rewards']!r}")
    if not rows:
        raise ValueError(f"{path}: no groups (lines of {{\"step\", \"prompt_id\", \"rewards\"}})")
    steps = np.array([float(r["step"]) for r in rows])
    first, last = steps.min(), steps.max()
    if window is None:
        window = max(1, math.ceil((last - first + 1) / DEFAULT_WINDOWS))
    elif window < 1:
        raise ValueError(f"--window must be >= 1 step, got {window}")
    ids = list(dict.fromkeys(str(r["prompt_id"]) for r in rows))
    col = {pid: i for i, pid in enumerate(ids)}
    bins = ((steps - first) // window).astype(int)
    used = np.unique(bins)
    row_of = {b: k for k, b in enumerate(used)}
    wins = np.zeros((used.size, len(ids)))
    n = np.zeros_like(wins)
    for r, b in zip(rows, bins):
        wins[row_of[b], col[str(r["prompt_id"])]] += sum(r["rewards"])
        n[row_of[b], col[str(r["prompt_id"])]] += len(r["rewards"])
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(n > 0, wins / n, np.nan)
        low, high = wilson_interval(wins, np.where(n > 0, n, 1))
    low, high = np.where(n > 0, low, np.nan), np.where(n > 0, high, np.nan)
    mean_step = np.array([steps[bins == b].mean() for b in used])
    kind = _kind(rows[-1].get("source"), meta["scheme"], "rewards")
    once = used.size > 1 and (n > 0).sum(axis=0).max() == 1
    if once and kind == "verl":
        raise ValueError(f"{path}: no prompt_id is recorded in two windows of steps, so no prompt has a trajectory "
                         "to explain (verl's uid is drawn afresh for every sampled prompt: record a stable prompt id)")
    M, note = _group_size(rows)
    notes = [f"groups pooled per prompt in windows of {window} step(s) (--window): p is each window's mean reward, "
             "with its Wilson 95% interval"] + ([note] if note else [])
    if once:
        notes.append("no prompt is recorded in two windows: each prompt has one estimate (its p_ref is its p now); "
                     "a larger --window, or a longer run, gives trajectories")
    return RunRecords(kind, path, mean_step, p, low, high, n,
                      tuple(ids), f"rewards in windows of {window} step(s)", M, zero, meta["config"], meta["scheme"],
                      meta["trl_args"], meta["forecast"], tuple(notes))
