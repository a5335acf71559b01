"""Run directories: checked before anything is built, locked while in use, never silently replaced.

A run directory holds ``config.json``, ``log.jsonl``, ``success.jsonl``, ``checkpoint.pt`` and
``model/`` (the record format: :mod:`rlvrlens.core.records`). :func:`prepare` checks that ``out`` can be a run directory (not empty, not a file,
writable), refuses one that holds a run unless the caller resumes it or overwrites it, and takes
its :class:`RunLock`. JSONL files are appended one complete line at a time; :func:`complete_lines`
ignores a partial last line (a kill or a full disk during a write), which a resume truncates.

Only what a run wrote is ever removed or replaced. A file under a run's name counts as the run's
when its content is: ``config.json`` a recorded config, the JSONL files records with a ``step``, the
checkpoint a torch archive, and in ``model/`` the files its manifest ``rlvrlens-files.json`` lists
(written with the model; without one, the names ``save_pretrained`` writes); the temporary names (``*.tmp``) are the run's own. Any other file under
these names is :func:`foreign <foreign_files>`, and a directory holding one is refused.
Imports no torch.
"""

from __future__ import annotations

import errno
import fnmatch
import json
import os
import re
import shutil
import socket
import weakref
import zipfile
from pathlib import Path
from typing import Any, Callable

from rlvrlens.core.records import (
    CHECKPOINT, CONFIG, LOCK, LOG, MODEL, SUCCESS, append_lines, complete_lines, load_json,
)

#: Temporary names of an interrupted write (only a run uses them: always the run's own).
TEMPORARY = (CONFIG + ".tmp", CHECKPOINT + ".tmp", MODEL + ".tmp")
#: Files and folders a run writes (``--overwrite`` removes the run's own among these, nothing else).
RUN_FILES = (CONFIG, LOG, SUCCESS, CHECKPOINT, MODEL) + TEMPORARY
#: The manifest in ``model/``: the files the run saved there.
MODEL_MANIFEST = "rlvrlens-files.json"
#: What ``save_pretrained`` wrote into ``model/`` before the manifest existed (model and tokenizer files).
_SAVED_BEFORE_MANIFESTS = ("config.json", "generation_config.json", "model.safetensors", "model-*-of-*.safetensors",
                           "model.safetensors.index.json", "tokenizer.json", "tokenizer_config.json",
                           "special_tokens_map.json", "chat_template.jinja", "vocab.json", "merges.txt",
                           "added_tokens.json", "tokenizer.model")
#: Keys every recorded config has (a ``config.json`` without them is not a run's).
_CONFIG_KEYS = ("task", "scheme", "num_generations", "steps")
#: An OS error inside another library's message, e.g. safetensors' "(os error 28)".
_OS_ERROR_IN_TEXT = re.compile(r"os error (\d+)")


class RunDirError(ValueError):
    """The run directory holds another run, or is in use by another process."""


def check_out(out: str | os.PathLike) -> Path:
    """``out`` as a :class:`~pathlib.Path`, created if needed, after checking it can hold a run.

    Raises ``ValueError`` for an empty path, ``OSError`` (naming the path) when it is a file,
    sits under a file, or cannot be written.
    """
    if out is None or not str(out).strip():
        raise ValueError("the run directory (--out) must be a non-empty path")
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"run directory {str(path)!r} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise _os_error(exc, f"cannot write to run directory {str(path)!r}") from None
    return path


def _os_error(exc: OSError, what: str) -> OSError:
    """``exc`` re-raised as one line: ``what`` and the reason (a full disk says so)."""
    if exc.errno == errno.ENOSPC:
        err = OSError(f"{what}: disk full (no space left on the device)")
        err.errno = errno.ENOSPC
        return err
    err = type(exc)(f"{what}: {exc.strerror or exc}")
    err.errno = exc.errno
    return err


def _os_cause(exc: BaseException) -> OSError | None:
    """The ``OSError`` behind ``exc``: itself, one in its cause/context chain (torch reports a failed
    write to a file object as a ``RuntimeError`` raised while handling it), or one named in its text
    (safetensors: "No space left on device (os error 28)"); ``None`` if there is none."""
    if isinstance(exc, (ValueError, TypeError)) and not isinstance(exc, OSError):
        return None  # a message of ours (or a bad value), not a failed write
    seen = exc
    while seen is not None:
        if isinstance(seen, OSError):
            return seen
        seen = seen.__cause__ or seen.__context__
    found = _OS_ERROR_IN_TEXT.search(str(exc))
    if found is None:
        return None
    code = int(found.group(1))
    return OSError(code, os.strerror(code))


def guard_write(what: str, action: Callable[[], Any]) -> Any:
    """Run ``action``; an OS error (also one that torch or safetensors wrap in their own exception)
    becomes one line naming ``what`` (ENOSPC: "disk full")."""
    try:
        return action()
    except Exception as exc:
        cause = _os_cause(exc)
        if cause is None:
            raise
        raise _os_error(cause, f"cannot write {what}") from None


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through ``path.tmp`` and a rename: a kill or a full disk leaves the
    old file or the new one, never a part (and no temporary file after an error)."""
    tmp = path.with_name(path.name + ".tmp")

    def write() -> None:
        try:
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    guard_write(str(path), write)


def _is_run_config(path: Path) -> bool:
    try:
        data = load_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and all(key in data for key in _CONFIG_KEYS)


def _is_run_records(path: Path) -> bool:
    """Every line a JSON object with a ``step``, except a partial last one (a write cut short)."""
    try:
        with open(path, "rb") as fh:
            for line in fh:
                if not line.endswith(b"\n"):
                    return line.startswith(b"{")
                record = load_json(line)
                if not isinstance(record, dict) or "step" not in record:
                    return False
    except (OSError, ValueError):
        return False
    return True


def _is_checkpoint_archive(path: Path) -> bool:
    if not (path.is_file() and zipfile.is_zipfile(path)):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("/data.pkl") for name in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def _model_files(model: Path) -> set[str]:
    """The files of ``model/`` that the run saved: those its manifest lists; without a manifest (a
    model saved before manifests were written) those with the names ``save_pretrained`` writes."""
    try:
        files = load_json((model / MODEL_MANIFEST).read_text(encoding="utf-8"))["files"]
        return {str(f) for f in files} if isinstance(files, list) else set()
    except FileNotFoundError:
        return {f.name for f in model.iterdir() if any(fnmatch.fnmatchcase(f.name, p) for p in _SAVED_BEFORE_MANIFESTS)}
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def write_model_manifest(model: Path) -> None:
    """List every file under ``model`` (just saved by the run) in its manifest."""
    files = sorted(str(f.relative_to(model)) for f in model.rglob("*") if f.is_file() or f.is_symlink())
    (model / MODEL_MANIFEST).write_text(json.dumps({"files": files}, indent=1) + "\n", encoding="utf-8")


def foreign_files(path: Path) -> list[str]:
    """Files under a run's names in ``path`` that no run wrote (see the module docstring), relative to it."""
    path = Path(path)
    foreign = []
    checks = ((CONFIG, _is_run_config), (LOG, _is_run_records), (SUCCESS, _is_run_records),
              (CHECKPOINT, _is_checkpoint_archive))
    for name, ours in checks:
        target = path / name
        if (target.exists() or target.is_symlink()) and (target.is_symlink() or not ours(target)):
            foreign.append(name)
    model = path / MODEL
    if model.is_symlink() or model.is_file():
        foreign.append(MODEL)
    elif model.is_dir():
        listed = _model_files(model)
        foreign += sorted(f"{MODEL}/{f.relative_to(model)}" for f in model.rglob("*")
                          if (f.is_file() or f.is_symlink()) and f.name != MODEL_MANIFEST
                          and str(f.relative_to(model)) not in listed)
    return foreign


def describe_run(path: Path) -> str | None:
    """A one-line summary of the run ``path`` holds (``None``: it holds none)."""
    present = [name for name in RUN_FILES if (path / name).exists()]
    if not present:
        return None
    summary = []
    if _is_run_config(path / CONFIG):
        config = load_json((path / CONFIG).read_text(encoding="utf-8"))
        summary.append(f"task {config['task']!r}, scheme {config['scheme']!r}, "
                       f"M = {config['num_generations']}, {config['steps']} steps")
    if (path / LOG).exists():
        summary.append(f"{complete_lines(path / LOG)[0]} logged steps")
    return f"{', '.join(summary) or 'a run'} ({', '.join(present)})"


def _remove(target: Path) -> None:
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    elif target.exists() or target.is_symlink():
        target.unlink()


def remove_model(model: Path) -> None:
    """Delete the files the manifest of ``model`` lists, the manifest, then the folders left empty;
    anything else stays (and so does the folder holding it)."""
    for name in sorted(_model_files(model)):
        target = model / name
        if target.is_file() or target.is_symlink():
            target.unlink()
    (model / MODEL_MANIFEST).unlink(missing_ok=True)
    for folder in sorted((d for d in model.rglob("*") if d.is_dir() and not d.is_symlink()),
                         key=lambda d: len(d.parts), reverse=True) + [model]:
        if not any(folder.iterdir()):
            folder.rmdir()


def remove_run(path: Path) -> None:
    """Delete the files a run wrote in ``path`` and nothing else (:func:`foreign_files` stay)."""
    foreign = set(foreign_files(path))
    for name in (CONFIG, LOG, SUCCESS, CHECKPOINT):
        if name not in foreign:
            _remove(path / name)
    if (path / MODEL).is_dir() and MODEL not in foreign:
        remove_model(path / MODEL)
    for name in TEMPORARY:
        _remove(path / name)


class RunLock:
    """``path/run.lock`` holding ``"PID HOST"`` while a run uses the directory.

    :meth:`acquire` refuses at once when a live process holds the lock (this process included: a
    second :class:`~rlvrlens.training.Trainer` on the same directory) and replaces a stale lock (its
    process on this host is gone, e.g. after ``kill -9``). The lock is released by :meth:`release`,
    when the owner is garbage-collected, or at interpreter exit.
    """

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / LOCK
        self._token = f"{os.getpid()} {socket.gethostname()}\n"
        self._finalizer: weakref.finalize | None = None

    def acquire(self, owner: object) -> None:
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder is None:  # stale (or vanished meanwhile): take it over
                    self.path.unlink(missing_ok=True)
                    continue
                raise RunDirError(f"run directory {str(self.path.parent)!r} is in use by {holder} "
                                  f"(lock {str(self.path)!r}); wait for it to finish, or delete the lock "
                                  "if that process is not running") from None
            except OSError as exc:
                raise _os_error(exc, f"cannot create lock file {str(self.path)!r}") from None
            with os.fdopen(fd, "w") as fh:
                fh.write(self._token)
            self._finalizer = weakref.finalize(owner, _unlock, self.path, self._token)
            return
        raise RunDirError(f"could not take the lock {str(self.path)!r}")  # pragma: no cover (a race thrice)

    def release(self) -> None:
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None

    def _holder(self) -> str | None:
        """Who holds the lock, or ``None`` if it is stale."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        parts = text.split()
        if len(parts) != 2 or not parts[0].isdigit():
            return f"an unreadable lock ({text[:40]!r})"
        pid, host = int(parts[0]), parts[1]
        if host != socket.gethostname():
            return f"process {pid} on host {host}"
        if pid == os.getpid():
            return f"this process (pid {pid}; another Trainer on the same directory: close() it first)"
        return f"process {pid}" if _alive(pid) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed, not yet reaped) is not running
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _unlock(path: Path, token: str) -> None:
    try:
        if path.read_text() == token:
            path.unlink()
    except OSError:
        pass


def prepare(out: str | os.PathLike, *, resume: bool, overwrite: bool, owner: object) -> tuple[Path, RunLock]:
    """Check ``out``, lock it for ``owner``, and clear it when ``overwrite``; see the module docstring.

    A directory that holds a run is refused unless ``resume`` (the caller then checks that the
    run is the same) or ``overwrite`` (the run's files are deleted); one that holds files under a
    run's names that no run wrote (:func:`foreign_files`) is refused in every mode, naming them.
    Leftover temporary files of an interrupted write are removed.
    """
    if resume and overwrite:
        raise ValueError("resume and overwrite exclude each other: continue the run, or replace it")
    path = check_out(out)
    lock = RunLock(path)
    lock.acquire(owner)
    try:
        foreign = foreign_files(path)
        if foreign:
            shown = ", ".join(foreign[:8]) + (f", ... ({len(foreign) - 8} more)" if len(foreign) > 8 else "")
            raise RunDirError(f"run directory {str(path)!r} holds files under a run's names that no run wrote: "
                              f"{shown}; they are never removed or replaced (not even with --overwrite): move "
                              "them away or choose another directory")
        held = describe_run(path)
        if held is not None and not (resume or overwrite):
            raise RunDirError(f"run directory {str(path)!r} already holds a run: {held}; pass --resume "
                              "(resume=True) to continue it or --overwrite (overwrite=True) to replace it")
        if overwrite:
            guard_write(f"run directory {str(path)!r}", lambda: remove_run(path))
        for name in TEMPORARY:
            guard_write(f"run directory {str(path)!r}", lambda name=name: _remove(path / name))
    except BaseException:
        lock.release()
        raise
    return path, lock


def truncate_lines(path: Path, n: int) -> None:
    """Keep the first ``n`` complete lines of ``path`` (one ``truncate``: safe against a kill)."""
    have, _ = complete_lines(path)
    if have < n:
        raise ValueError(f"{str(path)!r} has fewer complete lines ({have}) than its checkpoint recorded ({n})")
    size = 0
    with open(path, "rb") as fh:
        for _ in range(n):
            size += len(fh.readline())
    guard_write(str(path), lambda: os.truncate(path, size))


def append_line(path: Path, record: dict) -> None:
    """Append one JSON line, flushed and fsynced (a kill leaves at most a partial last line)."""
    guard_write(str(path), lambda: append_lines(path, [record]))
