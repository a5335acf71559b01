"""The run-record format, in one place: file names, and JSON lines read and written one way.

A run directory (:class:`rlvrlens.training.Trainer`) holds ``config.json`` (every
:class:`~rlvrlens.training.TrainConfig` field), ``log.jsonl`` (one line of metrics per step),
``success.jsonl`` (per-prompt success at evaluation steps: ``{"step", "method", "p": [...],
"low"?, "high"?, "prompt_ids"?}``), ``checkpoint.pt`` and ``model/``; TRL runs recorded by
:class:`rlvrlens.training.trl_adapter.PromptSuccessRecorder` write ``groups.jsonl`` (one line per
sampled group), a success file of the same shape, ``scheme.json`` (the scheme) and
``trl_config.json`` (the TRL arguments); ``rlvrlens forecast`` writes ``forecast.json`` before the
run. Lines are appended whole and flushed; a
killed writer leaves at most a partial last line, which every reader here drops. Imports nothing
above :mod:`rlvrlens.core`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

#: File names of a run directory.
LOG, SUCCESS, CHECKPOINT, CONFIG, MODEL, LOCK, GROUPS = (
    "log.jsonl", "success.jsonl", "checkpoint.pt", "config.json", "model", "run.lock", "groups.jsonl")
#: The TRL recorder's scheme and TRL arguments, and the forecast ``rlvrlens forecast`` writes before a run.
SCHEME, TRL_ARGS, FORECAST = "scheme.json", "trl_config.json", "forecast.json"


def load_json(text: str | bytes) -> Any:
    """``json.loads``, with a value nested too deeply for Python's parser refused as a
    ``json.JSONDecodeError`` like any other invalid JSON (``json.loads`` raises ``RecursionError``).

    >>> load_json("[" * 100_000 + "]" * 100_000)
    Traceback (most recent call last):
    ...
    json.decoder.JSONDecodeError: nested too deeply: line 1 column 1 (char 0)
    """
    try:
        return json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", "", 0) from None


def complete_lines(path: str | os.PathLike) -> tuple[int, int]:
    """``(n, nbytes)``: the number of complete (newline-terminated, valid JSON) lines at the start
    of ``path`` and their length in bytes; a partial or corrupt tail is not counted (0 for a
    missing file)."""
    n = size = 0
    try:
        with open(path, "rb") as fh:
            for line in fh:
                if not line.endswith(b"\n"):
                    break
                try:
                    load_json(line)
                except ValueError:
                    break
                n, size = n + 1, size + len(line)
    except FileNotFoundError:
        pass
    return n, size


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file, one per line, blank lines skipped.

    A partial last line (a kill or a full disk during a write) is dropped; any other line that is
    not a JSON object is refused with a ``ValueError`` naming the file and the line number.

    Examples
    --------
    >>> import tempfile
    >>> f = Path(tempfile.mkdtemp()) / "log.jsonl"
    >>> _ = f.write_text('{"step": 1}\\n{"step": 2}\\n{"st')
    >>> read_jsonl(f)
    [{'step': 1}, {'step': 2}]
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a text file of JSON lines ({exc.reason} at byte {exc.start})") from None
    out = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = load_json(line)
        except json.JSONDecodeError as exc:
            if i == len(lines):
                break  # a partial last line
            raise ValueError(f"{path}: line {i} is not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise ValueError(f"{path}: line {i} must be a JSON object, got {type(record).__name__}")
        out.append(record)
    return out


def append_lines(path: str | os.PathLike, records: Iterable[dict[str, Any]], *, fsync: bool = True) -> None:
    """Append one JSON line per record, flushed (and fsynced): a kill leaves at most a partial last line.

    Non-finite floats are written as ``null`` (JSON has no NaN), never as ``NaN``.
    """
    text = "".join(json.dumps(_finite(r), allow_nan=False) + "\n" for r in records)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        if fsync:
            os.fsync(fh.fileno())


def _finite(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by ``None`` (in nested lists and dicts)."""
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def json_ready(obj: Any) -> Any:
    """``obj`` as plain JSON values: numpy scalars and arrays to Python numbers and lists, tuples to
    lists, non-finite floats to ``None``.

    >>> import numpy as np
    >>> json_ready({"p": np.array([0.5, np.nan]), "n": np.int64(3)})
    {'p': [0.5, None], 'n': 3}
    """
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        obj = obj.tolist()
    if isinstance(obj, dict):
        return {str(k): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    return _finite(obj)
