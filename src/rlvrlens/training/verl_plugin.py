"""Any rlvrlens weight scheme as a verl advantage estimator: ``algorithm.adv_estimator: rlvrlens``.

verl (tested: 0.9.1) looks advantage estimators up by name in ``verl.trainer.ppo.core_algos``'s
registry, and ``import verl`` imports every module of the ``verl.plugins`` entry-point group (this
package declares this module there), so installing ``rlvrlens[verl]`` is enough: the estimator
``rlvrlens`` is registered in every process that imports verl. A run selects it with one config
change, naming the scheme in an ``algorithm.rlvrlens`` block (:mod:`rlvrlens.objectives.spec`)::

    algorithm:
      adv_estimator: rlvrlens
      rlvrlens:
        target: "log(t/(1-t))"            # or scheme: NAME (+ params: {...}), or scheme_file: PATH
        design: {method: minimax, max_weight: 20, interval: [0.05, 0.95]}
        record_dir: /abs/path/runs/x      # optional: per-group rewards and the scheme, for explain

verl calls the estimator with keyword arguments only (``verl/trainer/ppo/ray_trainer.py``,
``compute_advantage``): ``token_level_rewards`` and ``response_mask`` of shape ``(batch, response
length)``, ``index`` (the ``uid`` of each row: the responses to one prompt share it), ``config`` (the
``algorithm`` node) and possibly others, which are ignored. :func:`verl_advantages` sums each row's
token-level rewards to the response's reward (verl's reward managers put an outcome reward on the
last valid token), leaves out rows without a valid token (verl's padding rows), groups the rest by
``uid`` whatever their order and size, gives answer *i* of a group of ``n`` the weight
``Z_i = (1-R_i) a[S_i] + R_i b[S_i]`` of the scheme built for ``M = n`` (a group of one answer, for a
scheme that needs two or more, gets 0 with a warning, as in verl's ``rloo_vectorized``), and broadcasts
it over the response's tokens times ``response_mask``, as verl's own outcome estimators do. Everything else --
sampling, the policy loss and its clipping, the KL term, loss aggregation -- stays verl's.

The module imports without verl (only :func:`register` needs it); torch is needed to call the estimator.
"""

from __future__ import annotations

import importlib.util
import json
import os
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from rlvrlens.core.records import GROUPS, append_lines, json_ready, read_jsonl
from rlvrlens.objectives import SchemeSpec, WeightScheme, scheme_spec

__all__ = [
    "ESTIMATOR", "SCHEME_RECORD", "GroupRecorder", "compute_rlvrlens_outcome_advantage",
    "group_rows", "register", "verl_advantages",
]

#: The name under which the estimator is registered: ``algorithm.adv_estimator: rlvrlens``.
ESTIMATOR = "rlvrlens"
#: The config block (under ``algorithm``) that names the scheme and the record directory.
BLOCK = "rlvrlens"
#: Keys of the block that are the plugin's own (the rest names the scheme).
PLUGIN_KEYS = ("record_dir",)
#: The file, next to ``groups.jsonl``, that records the scheme a run used.
SCHEME_RECORD = "scheme.json"


def group_rows(index: Sequence[Any], valid: np.ndarray) -> list[np.ndarray]:
    """The rows of each group: rows with equal ``index`` values, among the ``valid`` ones.

    Groups come in the order of their first row, rows within a group in row order; any order and
    any group sizes (verl interleaves a prompt's responses, but filtering and padding change that).

    Examples
    --------
    >>> [g.tolist() for g in group_rows(["b", "a", "b", "c", "a"], np.array([1, 1, 1, 0, 1], bool))]
    [[0, 2], [1, 4]]
    """
    rows = np.flatnonzero(valid)
    if rows.size == 0:
        return []
    keys = np.asarray(index, dtype=object)[rows]
    _, inverse = np.unique(keys, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.flatnonzero(np.diff(inverse[order])) + 1
    groups = [rows[g] for g in np.split(order, bounds)]
    return sorted(groups, key=lambda g: g[0])


def verl_advantages(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: Sequence[Any],
    scheme_for: SchemeSpec | WeightScheme,
    where: str = "algorithm.rlvrlens",
) -> tuple[torch.Tensor, list[tuple[Any, np.ndarray]]]:
    """The scheme's weights for a verl batch, broadcast over tokens, and each group's rewards.

    Parameters
    ----------
    token_level_rewards : torch.Tensor, shape (batch, response_length)
        verl's rewards per token; a row's sum (in its dtype, as verl sums) is the response's reward.
    response_mask : torch.Tensor, shape (batch, response_length)
        1 on the response's valid tokens. Rows without one (verl's padding rows) get advantage 0 and
        belong to no group. A group of one answer gets 0 (with a warning) when the scheme does not
        exist for ``M = 1``.
    index : sequence, length batch
        The group id of each row (verl's ``uid``).
    scheme_for : SchemeSpec or WeightScheme
        The scheme, built for each group size (a :class:`WeightScheme` serves its own ``M`` only).
    where : str
        The config block, for messages.

    Returns
    -------
    advantages : torch.Tensor, shape (batch, response_length)
        ``Z`` of each row times ``response_mask``, in ``token_level_rewards``'s dtype and device.
    groups : list of (group id, rewards)
        Each group's id and its responses' rewards (float64), in the order of their first row.

    Raises
    ------
    ValueError
        For mismatched shapes, a group size (above 1) the scheme does not have, or rewards the scheme has no
        weights for (not 0/1 for a scheme defined on 0/1 rewards; not finite).
    """
    if token_level_rewards.ndim != 2 or response_mask.shape != token_level_rewards.shape:
        raise ValueError(f"token_level_rewards and response_mask must have one shape (batch, response_length), "
                         f"got {tuple(token_level_rewards.shape)} and {tuple(response_mask.shape)}")
    if len(index) != token_level_rewards.shape[0]:
        raise ValueError(f"index (verl's uid) must have one entry per row ({token_level_rewards.shape[0]}), "
                         f"got {len(index)}")
    with torch.no_grad():
        scores = token_level_rewards.sum(dim=-1).detach().cpu().double().numpy()
        valid = (response_mask.sum(dim=-1) > 0).cpu().numpy()
    Z = np.zeros(scores.shape[0])
    groups = []
    by_size: dict[int, list[np.ndarray]] = {}
    for rows in group_rows(index, valid):
        by_size.setdefault(rows.size, []).append(rows)
        groups.append((index[rows[0]], scores[rows]))
    for n, members in by_size.items():
        rows = np.stack(members)
        try:
            scheme = scheme_for.build(n) if isinstance(scheme_for, SchemeSpec) else scheme_for
        except ValueError:
            if n != 1:
                raise
            warnings.warn(f"{where}: {rows.shape[0]} group(s) of one answer got weight 0 (the scheme needs "
                          "groups of two or more: there is no other answer to compare with)", stacklevel=2)
            continue
        if scheme.M != n:
            raise ValueError(f"{where}: the scheme is for groups of M = {scheme.M} answers, got a group of {n}")
        try:
            Z[rows] = scheme.weights(scores[rows])
        except ValueError as err:
            bad = next((r for r in rows if not np.isin(scores[r], (0.0, 1.0)).all()), rows[0])
            hint = ("; verl sums token_level_rewards per response: make the reward function return 0/1 and keep "
                    "algorithm.use_kl_in_reward false (the KL in the reward makes rewards real)"
                    if np.isfinite(scores[bad]).all() else "")
            raise ValueError(f"{where}: group uid={index[bad[0]]!r} has rewards {scores[bad].tolist()}: {err}{hint}") \
                from None
    z = torch.as_tensor(Z, dtype=token_level_rewards.dtype, device=token_level_rewards.device)
    return z.unsqueeze(-1) * response_mask, groups


class GroupRecorder:
    """Per-group rewards of a verl run, one JSON line per group, and the scheme it used.

    ``record_dir/groups.jsonl`` gets, for every group of every batch, ``{"step", "prompt_id",
    "rewards": [...], "n", "p_hat", "split": "train", "scheme", "source": "verl"}`` (appended and
    flushed per batch). ``step`` counts the batches before this one (verl's training step minus 1);
    it continues after the last step already in the file, so a resumed run keeps numbering.
    ``prompt_id`` is verl's ``uid``: verl draws a fresh one each time it samples a prompt and hands
    estimators nothing else about the prompt, so ids do not repeat across steps. ``scheme`` is the
    name of the scheme that weighed the group (None for a group of one it had no weights for).
    ``record_dir/scheme.json`` holds the config block, the scheme for the most frequent group size
    (``WeightScheme.describe()``: name, ``M``, params, ``a``, ``b``, ``c``) and every group size's scheme.

    Parameters
    ----------
    record_dir : str or os.PathLike
        Created if missing.
    spec : SchemeSpec
        The scheme's configuration.
    """

    def __init__(self, record_dir: str | os.PathLike, spec: SchemeSpec) -> None:
        self.dir = Path(record_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.spec = spec
        self.sizes: Counter[int] = Counter()
        done = [r["step"] for r in read_jsonl(self.dir / GROUPS) if isinstance(r.get("step"), int)] \
            if (self.dir / GROUPS).exists() else []
        self.step = max(done) + 1 if done else 0

    def write(self, groups: list[tuple[Any, np.ndarray]]) -> None:
        """Append one line per group for the current step, then advance the step."""
        sizes = Counter(len(r) for _, r in groups)
        new = set(sizes) - set(self.sizes)
        self.sizes.update(sizes)
        if new:
            self._write_scheme()
        names = {n: None if self._scheme(n) is None else self._scheme(n).name for n in sizes}
        lines = [{"step": self.step, "prompt_id": str(uid), "rewards": rewards.tolist(), "n": int(rewards.size),
                  "p_hat": float(rewards.mean()), "split": "train", "scheme": names[rewards.size],
                  "source": "verl"} for uid, rewards in groups]
        append_lines(self.dir / GROUPS, lines, fsync=False)
        self.step += 1

    def _scheme(self, n: int) -> WeightScheme | None:
        """The scheme for groups of ``n``, None where it does not exist (a group of one: weight 0)."""
        try:
            return self.spec.build(n)
        except ValueError:
            return None

    def _write_scheme(self) -> None:
        built = {n: self._scheme(n) for n in sorted(self.sizes)}
        built = {n: s for n, s in built.items() if s is not None}
        main = max(built, key=lambda n: self.sizes[n], default=None)
        record = {"source": "verl", "estimator": ESTIMATOR, "config": self.spec.describe(),
                  "scheme": None if main is None else built[main].describe(),
                  "by_group_size": {str(n): s.describe() for n, s in built.items()}}
        tmp = self.dir / (SCHEME_RECORD + ".tmp")
        tmp.write_text(json.dumps(json_ready(record), indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, self.dir / SCHEME_RECORD)


#: Checked config blocks and open recorders, per process (a run uses one of each).
_SPECS: dict[str, tuple[SchemeSpec, str | None]] = {}
_RECORDERS: dict[Path, GroupRecorder] = {}


def _plain(value: Any) -> Any:
    """OmegaConf nodes (verl passes a ``DictConfig``) as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [_plain(v) for v in value]
    return value


def _configured(config: Any) -> tuple[SchemeSpec, str | None]:
    block = config.get(BLOCK) if config is not None else None
    if block is None:
        raise ValueError(f"algorithm.adv_estimator={ESTIMATOR} needs an algorithm.{BLOCK} block naming the scheme "
                         f"(scheme: NAME, target: EXPR or scheme_file: PATH; on the command line "
                         f"+algorithm.{BLOCK}.scheme=NAME)")
    block = _plain(block)
    if not isinstance(block, dict):
        raise ValueError(f"algorithm.{BLOCK} must be a mapping, got {block!r}")
    key = json.dumps(block, sort_keys=True, default=str)
    if key not in _SPECS:
        record_dir = block.get("record_dir")
        if record_dir is not None and not isinstance(record_dir, str):
            raise ValueError(f"algorithm.{BLOCK}.record_dir must be a path, got {record_dir!r}")
        spec = scheme_spec({k: v for k, v in block.items() if k not in PLUGIN_KEYS}, f"algorithm.{BLOCK}")
        _SPECS[key] = (spec, record_dir)
    return _SPECS[key]


def compute_rlvrlens_outcome_advantage(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: Sequence[Any] | None = None,
    config: Any = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """verl's advantage estimator ``rlvrlens``: the weights of the scheme named in ``algorithm.rlvrlens``.

    Called by verl's ``compute_advantage`` with keyword arguments (module docstring); other keyword
    arguments verl may pass (``reward_baselines``) are ignored.

    Parameters
    ----------
    token_level_rewards, response_mask : torch.Tensor, shape (batch, response_length)
    index : sequence
        verl's ``uid`` per row (the group id).
    config : mapping
        verl's ``algorithm`` config node, holding the ``rlvrlens`` block.

    Returns
    -------
    (advantages, returns) : tuple of torch.Tensor
        The same tensor twice, as verl's outcome estimators return it (:func:`verl_advantages`).
    """
    if index is None:
        raise ValueError(f"algorithm.adv_estimator={ESTIMATOR} needs verl's group ids (the batch's 'uid'), "
                         "which verl passes as index=")
    spec, record_dir = _configured(config)
    advantages, groups = verl_advantages(token_level_rewards, response_mask, index, spec, spec.where)
    if record_dir is not None:
        path = Path(record_dir).resolve()
        if path not in _RECORDERS:
            _RECORDERS[path] = GroupRecorder(path, spec)
        _RECORDERS[path].write(groups)
    return advantages, advantages


def register() -> None:
    """Register :func:`compute_rlvrlens_outcome_advantage` as verl's estimator ``rlvrlens`` (needs verl).

    Runs when this module is imported with verl installed (verl imports it through the ``verl.plugins``
    entry point); registering again is a no-op (verl accepts the same function under its name).
    """
    from verl.trainer.ppo.core_algos import register_adv_est

    register_adv_est(ESTIMATOR)(compute_rlvrlens_outcome_advantage)


if importlib.util.find_spec("verl") is not None:
    register()
